/**
 * @fileoverview The bpf() system call (kernel/bpf/syscall.c): the attr copied in from guest
 * memory with the kernel's size rules, one handler per command in one table, objects with ids
 * and refcounts behind per-task fds, and errnos as the kernel returns them. Registered into the
 * kernel's syscall table as __NR_bpf (321); a TypeScript caller goes through the same path.
 */
import type { Kernel } from '../../kernel/kernel.ts';
import { Idr } from '../../kernel/idr.ts';
import { KFile } from '../../kernel/file.ts';
import { __NR } from '../../kernel/syscalls.ts';
import { PAGE_SIZE } from '../../kernel/layout.ts';
import { GuestMemoryError } from '../../emulator/memory.ts';
import { Btf, BtfError } from '../btf/btf.ts';
import { validateBtf } from '../btf/verifier.ts';
import { decode, isLdImm64, type Insn } from '../isa/insn.ts';
import { BPF_PSEUDO_MAP_FD, BPF_PSEUDO_MAP_VALUE } from '../isa/opcodes.ts';
import { BpfLoadError, type BpfRuntime, type HelperDef } from '../prog.ts';
import { checkStructure } from '../check.ts';
import { BpfMap, BPF_F_LOCK, BPF_F_RDONLY, BPF_F_WRONLY, type MapAttr } from '../maps/map.ts';
import { createMap, freeMap, writeBpfMapStruct } from '../maps/types.ts';
import { bpfHelpers } from '../helpers/index.ts';
import { PROG_TYPES, BPF_PROG_TYPE_TRACING, BPF_TRACE_FENTRY, BPF_TRACE_FEXIT, BPF_MODIFY_RETURN } from '../prog_types.ts';
import { BTF_KIND } from '../btf/btf.ts';
import { btfDistillFuncProto, FuncModelError, funcModelRules } from '../btf_func_model.ts';
import { checkAttachModifyReturn, tracingKindOf } from '../fmod_ret.ts';
import { inlineTracingHelpers, tracingFuncHelpers } from '../helpers/tracing_func.ts';
import { TrampolineManager, type TrampLinkable, type TrampKind } from '../trampoline.ts';
import { installProgEnterExit, type ProgEnterExitAddrs } from '../prog_enter_install.ts';
import { encode } from '../isa/insn.ts';
import {
  BPF_ATTR_SIZE, ATTR_FIELDS, readAttr, checkAttrTail, writeAttrU32, type Attr,
  BPF_MAP_CREATE, BPF_MAP_LOOKUP_ELEM, BPF_MAP_UPDATE_ELEM, BPF_MAP_DELETE_ELEM, BPF_MAP_GET_NEXT_KEY, BPF_PROG_LOAD,
  BPF_PROG_TEST_RUN, BPF_PROG_GET_NEXT_ID, BPF_MAP_GET_NEXT_ID, BPF_PROG_GET_FD_BY_ID, BPF_MAP_GET_FD_BY_ID,
  BPF_OBJ_GET_INFO_BY_FD, BPF_BTF_LOAD, BPF_BTF_GET_FD_BY_ID, BPF_MAP_FREEZE, BPF_BTF_GET_NEXT_ID,
  BPF_RAW_TRACEPOINT_OPEN, BPF_ENABLE_STATS, BPF_STATS_RUN_TIME,
  BPF_LINK_CREATE, BPF_LINK_GET_FD_BY_ID, BPF_LINK_GET_NEXT_ID, BPF_LINK_DETACH,
} from './attr.ts';
import { ANON_BTF, ANON_MAP, ANON_PROG, ANON_TRACING, ANON_STATS, ANON_LINK, BPF_LINK_TYPE_TRACING, type BpfProgObj, type BtfObj, type BpfLinkObj } from './objects.ts';
import { testRun } from './test_run.ts';
import { checkProg } from './prog_check.ts';
import { bpf2bpfTarget } from '../bpf2bpf.ts';
import { verifyForLoad } from '../verifier/load.ts';
import { progInfo, mapInfo, btfInfo, linkInfo } from './info.ts';
import { BpfPrivilege, bindBpfSysctls } from './privilege.ts';

export const EPERM = 1, ENOENT = 2, E2BIG = 7, EBADF = 9, ENOMEM = 12, EACCES = 13, EFAULT = 14, EBUSY = 16;
export const EINVAL = 22, ENOSPC = 28, EBADFD = 77, ENOTSUPP = 524;

/** The verifier log limits of v5.5: log_size >= 128 and < UINT_MAX >> 2 when logging. */
const LOG_MIN = 128, LOG_MAX = 0xffffffff >>> 2;
const OBJ_FLAG_MASK = BPF_F_RDONLY | BPF_F_WRONLY;

type Handler = (attr: Uint8Array, uattr: bigint) => number;

export class BpfSubsystem {
  readonly kernel: Kernel;
  readonly rt: BpfRuntime;
  readonly progs = new Idr<BpfProgObj>();
  readonly maps = new Idr<BpfMap>();
  readonly btfs = new Idr<BtfObj>();
  readonly links = new Idr<BpfLinkObj>();
  private mapsByKaddr = new Map<bigint, BpfMap>();
  readonly helpers: readonly HelperDef[];
  private statsOn = false;
  /** Open BPF_ENABLE_STATS fds: references on the stats key, as kernel.bpf_stats_enabled = 1 is. */
  statsFds = 0;
  /** sysctl net.core.bpf_jit_enable: programs are JIT-compiled at load, else interpreted. */
  jitEnabled = true;
  readonly nrCpus = 1;
  private scratch: bigint;
  private readonly commands: Readonly<Record<number, Handler>>;

  readonly vmlinuxBtf: Btf | undefined;
  /**
   * A module's split BTF for an attach_btf_id past vmlinux's types (bpf/btf_module.ts): the BTF
   * and the trampoline key ((btf obj id << 32) | btf_id, bpf_trampoline_compute_key, 5.11+).
   * `objFd` is attach_btf_obj_fd (the union slot of attach_prog_fd), 0 when not given.
   */
  moduleBtf: ((btfId: number, objFd: number) => { btf: Btf; key: bigint } | undefined) | undefined;
  /** The trampolines (absent when the architecture has no trampoline generator). */
  readonly trampolines: TrampolineManager | undefined;
  private progByAddr = new Map<bigint, BpfProgObj>();
  private progByInsnsi = new Map<bigint, BpfProgObj>();
  private enterExit: ProgEnterExitAddrs | undefined;
  private interpEntry: bigint | undefined;
  /** Who may do what: the profile's capability and sysctl checks (privilege.ts). */
  readonly privilege: BpfPrivilege;

  constructor(kernel: Kernel, rt: BpfRuntime, opts: { vmlinuxBtf?: Btf } = {}) {
    this.kernel = kernel;
    this.rt = rt;
    this.vmlinuxBtf = opts.vmlinuxBtf;
    const arch = rt.arch;
    if (arch.trampoline && arch.progEnterExit) {
      this.setupEnterExit();
      this.trampolines = new TrampolineManager(kernel, arch.trampoline, {
        isKernelText: (ip) => kernel.ftrace.location(ip) !== undefined || kernel.ksyms.find(ip)?.type.toUpperCase() === 'T',
        isBpfText: (ip) => [...this.progs.values()].some((p) => p.prog.jit?.funcAddrs.includes(ip)),
      }, () => this.enterExit!);
    }
    this.helpers = bpfHelpers({ kernel, mapByAddr: (a) => this.mapsByKaddr.get(a), nrCpus: this.nrCpus });
    const s = kernel.slab.kzalloc(PAGE_SIZE);
    if (s === undefined) throw new Error('bpf: no memory for the syscall scratch page');
    this.scratch = s;
    this.commands = {
      [BPF_MAP_CREATE]: (a) => this.mapCreate(a),
      [BPF_MAP_LOOKUP_ELEM]: (a) => this.mapLookupElem(a),
      [BPF_MAP_UPDATE_ELEM]: (a) => this.mapUpdateElem(a),
      [BPF_MAP_DELETE_ELEM]: (a) => this.mapDeleteElem(a),
      [BPF_MAP_GET_NEXT_KEY]: (a) => this.mapGetNextKey(a),
      [BPF_MAP_FREEZE]: (a) => this.mapFreeze(a),
      [BPF_PROG_LOAD]: (a) => this.progLoad(a),
      [BPF_PROG_TEST_RUN]: (a, u) => this.progTestRun(a, u),
      [BPF_PROG_GET_NEXT_ID]: (a, u) => this.getNextId(a, u, this.progs, BPF_PROG_GET_NEXT_ID),
      [BPF_MAP_GET_NEXT_ID]: (a, u) => this.getNextId(a, u, this.maps, BPF_MAP_GET_NEXT_ID),
      [BPF_BTF_GET_NEXT_ID]: (a, u) => this.getNextId(a, u, this.btfs, BPF_BTF_GET_NEXT_ID),
      [BPF_PROG_GET_FD_BY_ID]: (a) => this.progGetFdById(a),
      [BPF_MAP_GET_FD_BY_ID]: (a) => this.mapGetFdById(a),
      [BPF_BTF_GET_FD_BY_ID]: (a) => this.btfGetFdById(a),
      [BPF_OBJ_GET_INFO_BY_FD]: (a, u) => this.objGetInfoByFd(a, u),
      [BPF_BTF_LOAD]: (a) => this.btfLoad(a),
      [BPF_RAW_TRACEPOINT_OPEN]: (a) => this.rawTracepointOpen(a),
      [BPF_ENABLE_STATS]: (a) => this.enableStats(a),
      [BPF_LINK_CREATE]: (a) => this.linkCreate(a),
      [BPF_LINK_GET_FD_BY_ID]: (a) => this.linkGetFdById(a),
      [BPF_LINK_GET_NEXT_ID]: (a, u) => this.getNextId(a, u, this.links, BPF_LINK_GET_NEXT_ID),
      [BPF_LINK_DETACH]: (a) => this.linkDetach(a),
    };
    kernel.syscalls.register({ nr: __NR.bpf, name: 'bpf', argc: 3, fn: (cmd, uattr, size) => this.sysBpf(Number(BigInt.asIntN(32, cmd)), uattr, Number(size & 0xffffffffn)) });
    this.privilege = new BpfPrivilege(kernel);
    bindBpfSysctls(this);
  }

  /**
   * __bpf_prog_enter/__bpf_prog_exit as guest code (the stats check is a static key in guest
   * code: no crossing into TypeScript while stats are off), their stats paths as natives, and
   * the interpreter's entry for programs that are not JIT-compiled.
   */
  private setupEnterExit(): void {
    const k = this.kernel;
    this.enterExit = installProgEnterExit(k, this.rt.arch, (prog, start) => {
      const p = this.progByAddr.get(prog);
      if (p && this.statsOn && start !== 0n) {
        p.runCnt++;
        p.runTimeNs += k.clock.ktimeGetNs() - start;
      }
    });
    this.interpEntry = k.defineNative('__bpf_prog_run_interp', (ctx, insnsi) => {
      const p = this.progByInsnsi.get(insnsi);
      if (!p) throw new Error(`__bpf_prog_run: no program at insnsi 0x${insnsi.toString(16)}`);
      return this.rt.run(p.prog, [ctx], 'interp').r0;
    }, 2).address;
  }

  /** sysctl kernel.bpf_stats_enabled: flips the static key in __bpf_prog_enter/exit's guest code. */
  get statsEnabled(): boolean { return this.statsOn; }
  set statsEnabled(on: boolean) {
    if (on === this.statsOn) return;
    this.statsOn = on;
    const e = this.enterExit;
    if (!e || !this.rt.arch.staticKeyInsn) return;
    this.kernel.machine.writeCode(e.enterKey, this.rt.arch.staticKeyInsn(e.enterKey, on ? e.enterStats : undefined));
    this.kernel.machine.writeCode(e.exitKey, this.rt.arch.staticKeyInsn(e.exitKey, on ? e.exitStats : undefined));
  }

  private get mem() { return this.kernel.machine.mem; }
  private get files() { return this.kernel.current.files; }

  /** bpf(2) under audit (audit_syscall_entry/exit around __sys_bpf). */
  sysBpf(cmd: number, uattr: bigint, size: number): number {
    return this.kernel.audit.syscall(__NR.bpf, [BigInt.asUintN(64, BigInt(cmd)), uattr, BigInt(size)], () => this.sysBpfInner(cmd, uattr, size));
  }

  /** __sys_bpf: the attr's size rules, then the command. */
  private sysBpfInner(cmd: number, uattr: bigint, size: number): number {
    const denied = this.privilege.sysBpfEntry(); // sysctl_unprivileged_bpf_disabled, before the attr is read
    if (denied) return denied;
    // bpf_check_uarg_tail_zero: a larger attr than we know must be zero past our size.
    if (size > PAGE_SIZE) return -E2BIG;
    let user: Uint8Array;
    try { user = this.mem.read(uattr, size); } catch (e) { if (e instanceof GuestMemoryError) return -EFAULT; throw e; }
    if (size > BPF_ATTR_SIZE && !user.subarray(BPF_ATTR_SIZE).every((b) => b === 0)) return -E2BIG;
    const attr = new Uint8Array(BPF_ATTR_SIZE);
    attr.set(user.subarray(0, Math.min(size, BPF_ATTR_SIZE)));
    // A command newer than the profile's kernel is the switch's default case.
    const h = cmd <= this.kernel.profile.bpf.maxCmd ? this.commands[cmd] : undefined;
    if (!h) return -EINVAL;
    try {
      return h(attr, uattr);
    } catch (e) {
      if (e instanceof GuestMemoryError) return -EFAULT; // copy_from_user/copy_to_user
      throw e;
    }
  }

  /**
   * bpf(cmd, attr) from TypeScript: `fields` by uAPI name are laid out in a scratch buffer in
   * guest memory and passed through sysBpf exactly as a process's call would be.
   */
  call(cmd: number, fields: Record<string, number | bigint | string>, size = BPF_ATTR_SIZE): { ret: number; attr: Attr } {
    const layout = layoutOf(cmd);
    const bytes = new Uint8Array(Math.max(size, BPF_ATTR_SIZE));
    const dv = new DataView(bytes.buffer);
    for (const [name, v] of Object.entries(fields)) {
      const f = ATTR_FIELDS[layout]!.find(([n]) => n === name);
      if (!f) throw new Error(`bpf(${cmd}): no attr field ${name} in ${layout}`);
      const [, off, w] = f;
      if (w === 16) bytes.set(Buffer.from(String(v), 'latin1').subarray(0, 16), off);
      else if (w === 8) dv.setBigUint64(off, BigInt.asUintN(64, BigInt(v)), true);
      else dv.setUint32(off, Number(BigInt.asUintN(32, BigInt(v))), true);
    }
    this.mem.write(this.scratch, bytes.subarray(0, size));
    const ret = this.sysBpf(cmd, this.scratch, size);
    return { ret, attr: readAttr(this.mem.read(this.scratch, BPF_ATTR_SIZE), layout) };
  }

  /** A scratch area in guest memory for TypeScript callers' buffers (keys, values, insns). */
  stage(bytes: Uint8Array): bigint {
    const a = this.kernel.slab.kzalloc(Math.max(bytes.length, 1));
    if (a === undefined) throw new Error('bpf: out of kmalloc memory');
    this.mem.write(a, bytes);
    return a;
  }

  unstage(addr: bigint): void { this.kernel.slab.kfree(addr); }

  // --- fds ---------------------------------------------------------------------------------

  private installFd(name: string, priv: unknown, release: () => void): number {
    return this.files.install(new KFile(name, priv, release));
  }

  mapFromFd(fd: number): BpfMap | undefined {
    const f = this.files.get(fd);
    return f && f.name === ANON_MAP ? (f.priv as BpfMap) : undefined;
  }

  progFromFd(fd: number): BpfProgObj | undefined {
    const f = this.files.get(fd);
    return f && f.name === ANON_PROG ? (f.priv as BpfProgObj) : undefined;
  }

  btfFromFd(fd: number): BtfObj | undefined {
    const f = this.files.get(fd);
    return f && f.name === ANON_BTF ? (f.priv as BtfObj) : undefined;
  }

  mapByKaddr(addr: bigint): BpfMap | undefined { return this.mapsByKaddr.get(addr); }

  private newMapFd(map: BpfMap): number {
    map.refcnt++;
    map.usercnt++;
    return this.installFd(ANON_MAP, map, () => { map.usercnt--; this.mapPut(map); });
  }

  mapPut(map: BpfMap): void {
    if (--map.refcnt > 0) return;
    this.maps.remove(map.id);
    this.mapsByKaddr.delete(map.kaddr);
    freeMap(map, this.mapCtx());
  }

  private newProgFd(p: BpfProgObj): number {
    p.refcnt++;
    return this.installFd(ANON_PROG, p, () => this.progPut(p));
  }

  progPut(p: BpfProgObj): void {
    if (--p.refcnt > 0) return;
    this.kernel.audit.bpfProg(p.id, 'UNLOAD'); // __bpf_prog_put: before bpf_prog_free_id
    this.progs.remove(p.id);
    if (p.trampoline) this.trampolines!.put(p.trampoline);
    this.progByAddr.delete(p.progAddr);
    this.kernel.slab.kfree(p.progAddr);
    if (p.insnsi !== undefined) { this.progByInsnsi.delete(p.insnsi); this.kernel.slab.kfree(p.insnsi); }
    this.rt.free(p.prog);
    for (const m of p.maps) this.mapPut(m);
    if (p.btf) this.btfPut(p.btf);
    if (p.linkedProg) this.progPut(p.linkedProg);
  }

  private newBtfFd(b: BtfObj): number {
    b.refcnt++;
    return this.installFd(ANON_BTF, b, () => this.btfPut(b));
  }

  btfPut(b: BtfObj): void {
    if (--b.refcnt > 0) return;
    this.btfs.remove(b.id);
  }

  private mapCtx() { return { kernel: this.kernel, nrCpus: this.nrCpus }; }

  // --- maps --------------------------------------------------------------------------------

  private mapCreate(a: Uint8Array): number {
    if (!checkAttrTail(a, 'map_create')) return -EINVAL;
    const f = readAttr(a, 'map_create');
    const attr: MapAttr = {
      mapType: f.map_type as number, keySize: f.key_size as number, valueSize: f.value_size as number,
      maxEntries: f.max_entries as number, mapFlags: f.map_flags as number, innerMapFd: f.inner_map_fd as number,
      numaNode: f.numa_node as number, name: f.map_name as string, mapIfindex: f.map_ifindex as number,
      btfFd: f.btf_fd as number, btfKeyTypeId: f.btf_key_type_id as number, btfValueTypeId: f.btf_value_type_id as number,
    };
    if (attr.mapIfindex) return -EINVAL; // no offload devices
    let denied = this.privilege.mapCreate(attr.mapType, 'alloc'); // the type's map_alloc_check (until 6.4)
    if (denied) return denied;
    const map = createMap(attr, this.mapCtx());
    if (typeof map === 'number') return map;
    denied = this.privilege.mapCreate(attr.mapType, 'switch'); // map_create's switch, after map_alloc_check (6.5)
    if (denied) { freeMap(map, this.mapCtx()); return denied; }
    const id = this.maps.allocCyclic(map);
    if (id === undefined) { freeMap(map, this.mapCtx()); return -ENOSPC; }
    map.id = id;
    this.mapsByKaddr.set(map.kaddr, map);
    writeBpfMapStruct(this.mem, map);
    // The creating reference becomes the fd's.
    map.refcnt = 0;
    map.usercnt = 0;
    return this.newMapFd(map);
  }

  private mapOfAttr(a: Uint8Array, layout: 'map_elem' | 'map_next_key'): { map: BpfMap; f: Attr } | number {
    if (!checkAttrTail(a, layout)) return -EINVAL;
    const f = readAttr(a, layout);
    const map = this.mapFromFd(f.map_fd as number);
    if (!map) return this.files.get(f.map_fd as number) ? -EINVAL : -EBADF;
    return { map, f };
  }

  private mapLookupElem(a: Uint8Array): number {
    const r = this.mapOfAttr(a, 'map_elem');
    if (typeof r === 'number') return r;
    const { map, f } = r;
    if (BigInt(f.flags as bigint) & ~BigInt(BPF_F_LOCK)) return -EINVAL;
    if (map.flags & BPF_F_WRONLY) return -EPERM;
    const key = this.mem.read(f.key as bigint, map.keySize);
    const v = map.impl.lookupSyscall(key);
    if (typeof v === 'number') return v;
    this.mem.write(f.value as bigint, v);
    return 0;
  }

  private mapUpdateElem(a: Uint8Array): number {
    const r = this.mapOfAttr(a, 'map_elem');
    if (typeof r === 'number') return r;
    const { map, f } = r;
    if (map.flags & BPF_F_RDONLY || map.frozen) return -EPERM;
    const key = this.mem.read(f.key as bigint, map.keySize);
    const value = this.mem.read(f.value as bigint, this.syscallValueSize(map));
    return map.impl.updateElem(key, value, Number(f.flags as bigint), true);
  }

  private mapDeleteElem(a: Uint8Array): number {
    const r = this.mapOfAttr(a, 'map_elem');
    if (typeof r === 'number') return r;
    const { map, f } = r;
    if (map.flags & BPF_F_RDONLY || map.frozen) return -EPERM;
    return map.impl.deleteElem(this.mem.read(f.key as bigint, map.keySize));
  }

  private mapGetNextKey(a: Uint8Array): number {
    const r = this.mapOfAttr(a, 'map_next_key');
    if (typeof r === 'number') return r;
    const { map, f } = r;
    if (map.flags & BPF_F_WRONLY) return -EPERM;
    const key = (f.key as bigint) === 0n ? undefined : this.mem.read(f.key as bigint, map.keySize);
    const next = map.impl.getNextKey(key);
    if (typeof next === 'number') return next;
    this.mem.write(f.next_key as bigint, next);
    return 0;
  }

  private mapFreeze(a: Uint8Array): number {
    if (!checkAttrTail(a, 'map_freeze')) return -EINVAL;
    const fd = readAttr(a, 'map_freeze').map_fd as number;
    const map = this.mapFromFd(fd);
    if (!map) return this.files.get(fd) ? -EINVAL : -EBADF;
    if (map.writecnt !== 0) return -EBUSY; // writable mmap()s exist (bpf/syscall/mmap.ts)
    if (map.frozen) return -EBUSY;
    const denied = this.privilege.command(BPF_MAP_FREEZE);
    if (denied) return denied;
    map.frozen = true;
    writeBpfMapStruct(this.mem, map);
    return 0;
  }

  /** Bytes the syscall moves for one value: per-CPU maps move every CPU's, each rounded to 8. */
  syscallValueSize(map: BpfMap): number {
    return map.type === 5 || map.type === 6 ? ((map.valueSize + 7) & ~7) * this.nrCpus : map.valueSize;
  }

  // --- programs ----------------------------------------------------------------------------

  private progLoad(a: Uint8Array): number {
    if (!checkAttrTail(a, 'prog_load')) return -EINVAL;
    const f = readAttr(a, 'prog_load');
    const type = f.prog_type as number;
    if ((f.prog_flags as number) & ~0xf) return -EINVAL; // BPF_F_STRICT_ALIGNMENT | BPF_F_ANY_ALIGNMENT | BPF_F_TEST_RND_HI32 | BPF_F_TEST_STATE_FREQ
    const insnCnt = f.insn_cnt as number;
    const denied = this.privilege.progLoad(type, insnCnt); // before the type is looked up, as bpf_prog_load
    if (denied) return denied;
    const info = PROG_TYPES[type];
    if (!info) return -EINVAL;
    if (insnCnt === 0 || insnCnt > 1_000_000) return -E2BIG;
    const logLevel = f.log_level as number, logSize = f.log_size as number, logBuf = f.log_buf as bigint;
    // The log attrs must be all set or all unset (bpf_verifier_log_attr_valid, v5.5).
    if ((logLevel || logBuf || logSize) && (logSize < LOG_MIN || logSize > LOG_MAX || !logLevel || !logBuf || logLevel & ~7)) return -EINVAL;
    if (!info.tracing && (f.attach_btf_id || f.attach_prog_fd)) return -EINVAL;
    if (f.prog_ifindex) return -EINVAL;
    const license = this.mem.readCString(f.license as bigint, 128);
    const insns = decode(this.mem.read(f.insns as bigint, insnCnt * 8));
    const log: string[] = [];
    const fail = (errno: number, msg: string): number => {
      log.push(msg);
      if (errno && logLevel) this.writeLog(logBuf, logSize, log);
      return -errno;
    };
    const bad = checkStructure(insns);
    if (bad) return fail(bad.errno, bad.msg);
    let btf: BtfObj | undefined;
    if (f.prog_btf_fd) {
      btf = this.btfFromFd(f.prog_btf_fd as number);
      if (!btf) return fail(EBADF, `invalid btf_fd ${f.prog_btf_fd}`);
    }
    // Maps referenced by ld_imm64 (BPF_PSEUDO_MAP_FD / _VALUE): each used map holds a reference.
    const used: BpfMap[] = [];
    const resolve = (insn: Insn, next: Insn): bigint | number => {
      const map = this.mapFromFd(insn.imm);
      if (!map) return -EBADF;
      if (!used.includes(map)) used.push(map);
      if (insn.src === BPF_PSEUDO_MAP_FD) return map.kaddr;
      if (insn.src === BPF_PSEUDO_MAP_VALUE) {
        const base = map.impl.lookupElem(new Uint8Array(4));
        if (base === undefined || map.type !== 2 || next.imm < 0 || next.imm >= map.valueSize) return -EINVAL;
        return base + BigInt(next.imm);
      }
      return -EINVAL;
    };
    for (let i = 0; i < insns.length; i++) {
      const ins = insns[i]!;
      if (!isLdImm64(ins) || ins.src === 0) continue;
      if (ins.src !== BPF_PSEUDO_MAP_FD && ins.src !== BPF_PSEUDO_MAP_VALUE) return fail(EINVAL, 'unrecognized bpf_ld_imm64 insn');
      const v = resolve(ins, insns[i + 1]!);
      if (typeof v === 'number') return fail(-v, v === -EBADF ? `fd ${ins.imm} is not pointing to valid bpf_map` : `invalid access to map value pointer`);
      i++;
    }
    // func_info, BTF argument match, context rewrite (prog_check.ts).
    const checked = checkProg(this.mem, f, type, insns, btf?.btf, this.vmlinuxBtf, fail);
    if (typeof checked === 'number') return checked;
    // attach_prog_fd: another program (bpf2bpf.ts); a BTF fd there is a module's (attach_btf_obj_fd).
    const tgtFd = f.attach_prog_fd as number;
    const tracing = type !== BPF_PROG_TYPE_TRACING ? undefined
      : tgtFd && !this.btfFromFd(tgtFd) ? bpf2bpfTarget(this, f, insns, fail) : this.tracingTarget(f, insns, fail);
    if (typeof tracing === 'number') return tracing;
    // bpf_check: the verifier (bpf/verifier/); its log is the load's log.
    const verdict = verifyForLoad(this, f, insns, isGplCompatible(license), tracing);
    log.push(...verdict.log);
    if (verdict.errno) { if (logLevel) this.writeLog(logBuf, logSize, log); return -verdict.errno; }
    let prog;
    // Later kernels' trampoline-frame helpers, inlined as do_misc_fixups does (helpers/tracing_func.ts).
    const inl = inlineTracingHelpers(checked.insns, this.kernel.profile, type, f.expected_attach_type as number);
    try {
      prog = this.rt.load(inl?.insns ?? checked.insns, {
        name: f.prog_name as string, jit: this.jitEnabled, tag: checked.tag, funcNames: checked.funcInfo?.names,
        helpers: type === BPF_PROG_TYPE_TRACING ? [...this.helpers, ...tracingFuncHelpers(this.kernel)] : this.helpers,
        resolveLdImm64: (insn, next) => resolve(insn, next),
        // BPF_PROBE_MEM loads, by the verifier's indices (the ctx rewrite keeps a tracing program's).
        ...(checked.insns.length === insns.length ? { probeMem: inl ? verdict.probeMem.map((i) => inl.origToNew[i]!) : verdict.probeMem } : {}),
      });
    } catch (e) {
      if (e instanceof BpfLoadError) return fail(-e.errno, e.message);
      throw e;
    }
    const progAddr = this.kernel.slab.kzalloc(64);
    if (progAddr === undefined) { this.rt.free(prog); return -ENOMEM; }
    const obj: BpfProgObj = {
      id: 0, type, expectedAttachType: f.expected_attach_type as number, attachBtfId: f.attach_btf_id as number,
      prog, maps: used, btf, gplCompatible: isGplCompatible(license), loadTime: this.kernel.clock.ktimeGetNs(),
      uid: this.kernel.current.cred.uid, refcnt: 0, runCnt: 0n, runTimeNs: 0n, progAddr, linked: false,
      callGetFuncIp: verdict.callGetFuncIp === true,
      ...(checked.funcInfo ? { funcInfo: checked.funcInfo } : {}),
    };
    if (!prog.jit) {
      obj.insnsi = this.stage(encode(prog.insns));
      this.progByInsnsi.set(obj.insnsi, obj);
    }
    const id = this.progs.allocCyclic(obj);
    if (id === undefined) { this.rt.free(prog); this.kernel.slab.kfree(progAddr); return -ENOSPC; }
    this.progByAddr.set(progAddr, obj);
    this.mem.writeU32(progAddr, id); // struct bpf_prog stand-in: its id first
    if (tracing) obj.trampoline = this.trampolines!.lookup(tracing.key ?? BigInt(obj.attachBtfId), tracing);
    obj.id = id;
    this.kernel.audit.bpfProg(id, 'LOAD'); // bpf_audit_prog(prog, LOAD): after the id, before the fd
    for (const m of used) m.refcnt++;
    if (btf) btf.refcnt++;
    const linked = tracing && tgtFd ? this.progFromFd(tgtFd) : undefined;
    if (linked) { obj.linkedProg = linked; linked.refcnt++; } // prog->aux->linked_prog
    if (logLevel) this.writeLog(logBuf, logSize, log);
    return this.newProgFd(obj);
  }

  /**
   * check_attach_btf_id for fentry/fexit (v5.5): the target FUNC in the kernel's BTF, its model,
   * its address, and the ctx rule; a negative errno (with the log written) when refused.
   */
  private tracingTarget(f: Attr, insns: Insn[], fail: (errno: number, msg: string) => number) {
    const eat = f.expected_attach_type as number, btfId = f.attach_btf_id as number;
    // fmod_ret from 5.7 (fmod_ret.ts); anything else is check_attach_btf_id's default: -EINVAL.
    if (!tracingKindOf(this.kernel.profile, eat)) return fail(EINVAL, `Only FENTRY/FEXIT progs are attachable (expected_attach_type ${eat} is not supported)`);
    if (!this.trampolines) return fail(ENOTSUPP, 'this architecture has no BPF trampoline');
    const mod = this.vmlinuxBtf && btfId >= this.vmlinuxBtf.types.length ? this.moduleBtf?.(btfId, f.attach_prog_fd as number) : undefined;
    const btf = mod?.btf ?? this.vmlinuxBtf;
    if (!btfId) return fail(EINVAL, 'Tracing programs must provide btf_id');
    const t = btf?.types[btfId];
    if (!btf || !t || btfId <= 0) return fail(EINVAL, `attach_btf_id ${btfId} is invalid`);
    if (t.kind !== BTF_KIND.FUNC) return fail(EINVAL, `attach_btf_id ${btfId} is not a function`);
    let model;
    try { model = btfDistillFuncProto(btf, btfId, funcModelRules(this.kernel.profile.verifier)); } catch (e) {
      if (e instanceof FuncModelError) return fail(EINVAL, e.message);
      throw e;
    }
    const sym = this.kernel.ksyms.lookup(t.name);
    if (!sym) return fail(ENOENT, `The address of function ${t.name} cannot be found`);
    const unmodifiable = eat === BPF_MODIFY_RETURN ? checkAttachModifyReturn(this.kernel, sym.address, t.name) : undefined;
    if (unmodifiable) return fail(unmodifiable.errno, unmodifiable.msg);
    // The ctx and typed-pointer rules (btf_ctx_access, btf_struct_access) are the verifier's.
    return { addr: sym.address, model, name: t.name, key: mod?.key };
  }

  /** What the trampoline calls: the JIT image, or the interpreter with insnsi; the link's cookie (5.19). */
  private linkable(p: BpfProgObj, cookie = 0n): TrampLinkable {
    const c = cookie ? { cookie } : {};
    // callGetFuncIp: the manager sets BPF_TRAMP_F_IP_ARG when a linked program has it (5.15).
    const l: TrampLinkable = {
      name: p.prog.name,
      callGetFuncIp: p.callGetFuncIp === true,
      trampProg: p.prog.jit ? { bpfFunc: p.prog.jit.funcAddrs[0]!, progAddr: p.progAddr, ...c }
        : { bpfFunc: this.interpEntry!, progAddr: p.progAddr, insnsi: p.insnsi!, ...c },
    };
    return l;
  }

  private linkables = new Map<BpfProgObj, TrampLinkable>();

  /**
   * BPF_RAW_TRACEPOINT_OPEN with name NULL on a fentry/fexit program (bpf_tracing_prog_attach,
   * v5.5): links it to its trampoline and returns an anon fd "bpf-tracing-prog"; closing it unlinks.
   */
  private rawTracepointOpen(a: Uint8Array): number {
    if (!checkAttrTail(a, 'raw_tp')) return -EINVAL;
    const f = readAttr(a, 'raw_tp');
    const fd = f.prog_fd as number;
    const p = this.progFromFd(fd);
    if (!p) return this.files.get(fd) ? -EINVAL : -EBADF;
    if (f.name !== 0n) return p.type === BPF_PROG_TYPE_TRACING ? -EINVAL : -ENOENT; // raw tracepoints are not modelled
    if (p.type !== BPF_PROG_TYPE_TRACING || !p.trampoline) return -EINVAL;
    // From 5.8 (the 5.12 profile here) the fd is a bpf_link's, with an id `link show` lists.
    if (this.kernel.profile.bpf.maxCmd >= BPF_LINK_GET_NEXT_ID) return this.tracingLinkFd(p, 0n);
    return this.tracingAttach(p);
  }

  /** Links a loaded fentry/fexit program to its trampoline; returns the undo, or -errno. */
  private tracingLink(p: BpfProgObj, cookie = 0n): (() => void) | number {
    const kind: TrampKind = tracingKindOf(this.kernel.profile, p.expectedAttachType) ?? 'fentry';
    const l = this.linkables.get(p) ?? this.linkable(p, cookie);
    const err = this.trampolines!.linkProg(p.trampoline!, l, kind);
    if (err) return err;
    this.linkables.set(p, l);
    p.linked = true;
    p.refcnt++;
    return () => {
      this.trampolines!.unlinkProg(p.trampoline!, l, kind);
      this.linkables.delete(p);
      p.linked = false;
      this.progPut(p);
    };
  }

  /** v5.5's attach: an anon fd "bpf-tracing-prog" whose close detaches. */
  tracingAttach(p: BpfProgObj): number {
    const undo = this.tracingLink(p);
    if (typeof undo === 'number') return undo;
    return this.installFd(ANON_TRACING, p, undo);
  }

  /**
   * BPF_LINK_CREATE for a fentry/fexit program (as later kernels attach them): a bpf_link with an
   * id; closing its last fd detaches, and so does BPF_LINK_DETACH (the fd then stays, defunct).
   */
  private linkCreate(a: Uint8Array): number {
    const denied = this.privilege.command(BPF_LINK_CREATE); // 5.7: before CHECK_ATTR
    if (denied) return denied;
    if (!checkAttrTail(a, 'link_create')) return -EINVAL;
    const f = readAttr(a, 'link_create');
    const fd = f.prog_fd as number;
    const p = this.progFromFd(fd);
    if (!p) return this.files.get(fd) ? -EINVAL : -EBADF;
    if (f.flags || f.target_fd) return -EINVAL;
    if (!this.kernel.profile.bpf.tracingLinkCreate) return -EINVAL; // link_create's switch: no tracing case yet
    if (p.type !== BPF_PROG_TYPE_TRACING || !p.trampoline || (f.attach_type as number) !== p.expectedAttachType) return -EINVAL;
    // link_create.tracing.cookie (5.19); an older kernel's CHECK_ATTR finds it past its last field.
    if (f.target_btf_id || (f.tracing_cookie && !this.kernel.profile.helpers.tracingCookie)) return -EINVAL;
    return this.tracingLinkFd(p, BigInt(f.tracing_cookie as bigint));
  }

  /** bpf_tracing_prog_attach with a bpf_link: linked to the trampoline, an id, an fd. */
  private tracingLinkFd(p: BpfProgObj, cookie: bigint): number {
    const undo = this.tracingLink(p, cookie);
    if (typeof undo === 'number') return undo;
    const link: BpfLinkObj = { id: 0, type: BPF_LINK_TYPE_TRACING, prog: p, refcnt: 0, release: undo };
    const id = this.links.allocCyclic(link);
    if (id === undefined) { undo(); return -ENOSPC; }
    link.id = id;
    return this.newLinkFd(link);
  }

  private newLinkFd(link: BpfLinkObj): number {
    link.refcnt++;
    return this.installFd(ANON_LINK, link, () => {
      if (--link.refcnt > 0) return;
      this.links.remove(link.id);
      const r = link.release;
      link.release = undefined;
      r?.();
    });
  }

  linkFromFd(fd: number): BpfLinkObj | undefined {
    const f = this.files.get(fd);
    return f && f.name === ANON_LINK ? (f.priv as BpfLinkObj) : undefined;
  }

  private linkGetFdById(a: Uint8Array): number {
    const r = this.byIdAttr(a, BPF_LINK_GET_FD_BY_ID);
    if (typeof r === 'number') return r;
    const l = this.links.find(r.id);
    return l ? this.newLinkFd(l) : -ENOENT;
  }

  private linkDetach(a: Uint8Array): number {
    if (!checkAttrTail(a, 'link_detach')) return -EINVAL;
    const fd = readAttr(a, 'link_detach').link_fd as number;
    const l = this.linkFromFd(fd);
    if (!l) return this.files.get(fd) ? -EINVAL : -EBADF;
    const r = l.release;
    l.release = undefined;
    r?.();
    return 0;
  }

  /** BPF_ENABLE_STATS (5.8): run-time stats on while the returned fd is open. */
  private enableStats(a: Uint8Array): number {
    if (!checkAttrTail(a, 'enable_stats')) return -EINVAL;
    const denied = this.privilege.command(BPF_ENABLE_STATS);
    if (denied) return denied;
    if (readAttr(a, 'enable_stats').type !== BPF_STATS_RUN_TIME) return -EINVAL;
    this.statsFds++;
    this.statsEnabled = true;
    // The last fd's close leaves the key on while the sysctl holds its own reference.
    return this.installFd(ANON_STATS, undefined, () => { if (--this.statsFds === 0) this.statsEnabled = this.kernel.sysctl.get('kernel.bpf_stats_enabled') === 1; });
  }

  private writeLog(buf: bigint, size: number, lines: string[]): void {
    const text = Buffer.from(lines.map((l) => `${l}\n`).join(''), 'utf8').subarray(0, size - 1);
    const out = new Uint8Array(text.length + 1);
    out.set(text);
    this.mem.write(buf, out);
  }

  /** Runs a program as BPF_PROG_RUN does, with stats when kernel.bpf_stats_enabled is on. */
  runProg(p: BpfProgObj, ctx: bigint, engine: 'jit' | 'interp' = p.prog.jit ? 'jit' : 'interp'): bigint {
    const t0 = this.statsEnabled ? this.kernel.clock.ktimeGetNs() : 0n;
    const r = this.rt.run(p.prog, [ctx], engine).r0;
    if (this.statsEnabled) {
      p.runCnt++;
      p.runTimeNs += this.kernel.clock.ktimeGetNs() - t0;
    }
    return r;
  }

  private progTestRun(a: Uint8Array, uattr: bigint): number {
    const denied = this.privilege.command(BPF_PROG_TEST_RUN); // 5.5: before CHECK_ATTR
    if (denied) return denied;
    if (!checkAttrTail(a, 'test')) return -EINVAL;
    const f = readAttr(a, 'test');
    const p = this.progFromFd(f.prog_fd as number);
    if (!p) return this.files.get(f.prog_fd as number) ? -EINVAL : -EBADF;
    return testRun(this, p, f, uattr);
  }

  writeTestResult(uattr: bigint, name: string, v: number): void { writeAttrU32(this.mem, uattr, 'test', name, v); }

  // --- ids ---------------------------------------------------------------------------------

  private getNextId<T>(a: Uint8Array, uattr: bigint, idr: Idr<T>, cmd: number): number {
    const start = readAttr(a, 'get_id').start_id as number;
    if (!checkAttrTail(a, 'get_id') || readAttr(a, 'get_id').open_flags || start >= 0x7fffffff) return -EINVAL;
    const denied = this.privilege.command(cmd);
    if (denied) return denied;
    const next = idr.getNext(start);
    if (!next) return -ENOENT;
    writeAttrU32(this.mem, uattr, 'get_id', 'next_id', next.id);
    return 0;
  }

  private byIdAttr(a: Uint8Array, cmd: number): { id: number } | number {
    if (!checkAttrTail(a, 'get_id')) return -EINVAL;
    const f = readAttr(a, 'get_id');
    if ((f.open_flags as number) & ~OBJ_FLAG_MASK) return -EINVAL;
    return this.privilege.command(cmd) || { id: f.start_id as number };
  }

  private progGetFdById(a: Uint8Array): number {
    const r = this.byIdAttr(a, BPF_PROG_GET_FD_BY_ID);
    if (typeof r === 'number') return r;
    const p = this.progs.find(r.id);
    return p ? this.newProgFd(p) : -ENOENT;
  }

  private mapGetFdById(a: Uint8Array): number {
    const r = this.byIdAttr(a, BPF_MAP_GET_FD_BY_ID);
    if (typeof r === 'number') return r;
    const m = this.maps.find(r.id);
    return m ? this.newMapFd(m) : -ENOENT;
  }

  private btfGetFdById(a: Uint8Array): number {
    const r = this.byIdAttr(a, BPF_BTF_GET_FD_BY_ID);
    if (typeof r === 'number') return r;
    const b = this.btfs.find(r.id);
    return b ? this.newBtfFd(b) : -ENOENT;
  }

  // --- info ----------------------------------------------------------------------------------

  private objGetInfoByFd(a: Uint8Array, uattr: bigint): number {
    if (!checkAttrTail(a, 'info')) return -EINVAL;
    const f = readAttr(a, 'info');
    const file = this.files.get(f.bpf_fd as number);
    if (!file) return -EBADFD; // fdget failing is -EBADFD here, unlike the other commands
    const uinfo = f.info as bigint, ulen = f.info_len as number;
    const r = file.name === ANON_PROG ? progInfo(this, file.priv as BpfProgObj, uinfo, ulen)
      : file.name === ANON_LINK ? linkInfo(this, file.priv as BpfLinkObj, uinfo, ulen)
      : file.name === ANON_MAP ? mapInfo(this, file.priv as BpfMap, uinfo, ulen)
      : file.name === ANON_BTF ? btfInfo(this, file.priv as BtfObj, uinfo, ulen)
      : -EINVAL;
    if (r < 0) return r;
    writeAttrU32(this.mem, uattr, 'info', 'info_len', r);
    return 0;
  }

  // --- BTF -----------------------------------------------------------------------------------

  private btfLoad(a: Uint8Array): number {
    if (!checkAttrTail(a, 'btf_load')) return -EINVAL;
    const denied = this.privilege.command(BPF_BTF_LOAD);
    if (denied) return denied;
    const f = readAttr(a, 'btf_load');
    const size = f.btf_size as number;
    // BTF_MAX_SIZE (16 MiB) in v5.5; a header's worth at least.
    if (size > 16 * 1024 * 1024) return -E2BIG;
    if (size < 24) return -EINVAL;
    const logLevel = f.btf_log_level as number, logSize = f.btf_log_size as number, logBuf = f.btf_log_buf as bigint;
    if ((logLevel || logBuf || logSize) && (logSize < LOG_MIN || logSize > LOG_MAX || !logLevel || !logBuf)) return -EINVAL;
    const data = this.mem.read(f.btf as bigint, size);
    let btf: Btf;
    try {
      btf = validateBtf(data); // btf_parse: every check of the kernel, with its log lines
    } catch (e) {
      if (e instanceof BtfError) {
        if (logLevel) this.writeLog(logBuf, logSize, [...e.log]);
        return e.errno;
      }
      throw e;
    }
    const obj: BtfObj = { id: 0, btf, data, refcnt: 0 };
    const id = this.btfs.allocCyclic(obj);
    if (id === undefined) return -ENOSPC;
    obj.id = id;
    return this.newBtfFd(obj);
  }
}

function layoutOf(cmd: number): keyof typeof ATTR_FIELDS {
  switch (cmd) {
    case BPF_MAP_CREATE: return 'map_create';
    case BPF_MAP_LOOKUP_ELEM: case BPF_MAP_UPDATE_ELEM: case BPF_MAP_DELETE_ELEM: return 'map_elem';
    case BPF_MAP_GET_NEXT_KEY: return 'map_next_key';
    case BPF_PROG_LOAD: return 'prog_load';
    case BPF_PROG_TEST_RUN: return 'test';
    case BPF_OBJ_GET_INFO_BY_FD: return 'info';
    case BPF_BTF_LOAD: return 'btf_load';
    case BPF_MAP_FREEZE: return 'map_freeze';
    case BPF_RAW_TRACEPOINT_OPEN: return 'raw_tp';
    case BPF_ENABLE_STATS: return 'enable_stats';
    case BPF_LINK_CREATE: return 'link_create';
    case BPF_LINK_DETACH: return 'link_detach';
    default: return 'get_id';
  }
}

/** license_is_gpl_compatible() (include/linux/license.h). */
export function isGplCompatible(license: string): boolean {
  return ['GPL', 'GPL v2', 'GPL and additional rights', 'Dual BSD/GPL', 'Dual MIT/GPL', 'Dual MPL/GPL'].includes(license);
}

export { ENOTSUPP as BPF_ENOTSUPP };
