/**
 * @fileoverview Loading an opened object through bpf() as libbpf's bpf_object__load does: the
 * object's BTF (BTF_LOAD), every map (MAP_CREATE; global data sections filled and .rodata
 * frozen), then every program with its ld_imm64 relocations pointing at the maps' fds, CO-RE
 * relocations resolved against the kernel's BTF, and func/line info (PROG_LOAD).
 */
import type { BpfSubsystem } from '../syscall/bpf.ts';
import { BPF_BTF_LOAD, BPF_MAP_CREATE, BPF_MAP_UPDATE_ELEM, BPF_MAP_FREEZE, BPF_PROG_LOAD, BPF_RAW_TRACEPOINT_OPEN } from '../syscall/attr.ts';
import { encode, type Insn } from '../isa/insn.ts';
import { BPF_PSEUDO_MAP_FD, BPF_PSEUDO_MAP_VALUE } from '../isa/opcodes.ts';
import { BTF_KIND, type Btf } from '../btf/btf.ts';
import { findProgBtfId, ProgBtfError } from './prog_btf.ts';
import { openObject, ObjectError, type ObjectSpec, type ProgramSpec, type MapSpec, type BtfExtSections, type CoreReloRec } from './object.ts';

/** Applies one CO-RE relocation to an instruction, or explains why it cannot. */
export type CoreResolver = (local: Btf, prog: ProgramSpec, relo: CoreReloRec, insn: Insn, next: Insn | undefined) => void;

export interface LoadedMap { spec: MapSpec; fd: number; id: number }
export interface LoadedProgram { spec: ProgramSpec; fd: number; id: number; linkFd?: number }

/** A program this kernel model cannot attach yet (its SEC names a hook that is not modelled). */
export class AttachNotSupportedError extends Error {
  readonly errno = -524;
  constructor(prog: string, sec: string, why: string) { super(`program '${prog}' (SEC("${sec}")): attach not supported: ${why}`); this.name = 'AttachNotSupportedError'; }
}

const ERRNO: Record<number, string> = { 1: 'EPERM', 2: 'ENOENT', 7: 'E2BIG', 9: 'EBADF', 12: 'ENOMEM', 13: 'EACCES', 14: 'EFAULT', 16: 'EBUSY', 17: 'EEXIST', 22: 'EINVAL', 28: 'ENOSPC', 524: 'ENOTSUPP' };
export const errnoName = (e: number): string => ERRNO[-e] ?? `errno ${-e}`;

/** A failed bpf() during load: the command, the object it was for, and the kernel's log. */
export class LoadError extends Error {
  readonly errno: number;
  readonly log: string;
  constructor(what: string, errno: number, log = '') {
    super(`${what}: ${errnoName(errno)} (${errno})${log ? `\n${log}` : ''}`);
    this.name = 'LoadError';
    this.errno = errno;
    this.log = log;
  }
}

export interface ObjectLoadOptions {
  /** The kernel's BTF, for CO-RE and for fentry/fexit attach targets. */
  vmlinuxBtf?: Btf;
  core?: CoreResolver;
  ext?: (btfExt: Uint8Array, btf: Btf) => BtfExtSections;
  /** Verifier log level passed to PROG_LOAD (1 = on failure as libbpf retries, 0 = none). */
  logLevel?: number;
  /**
   * bpf_object_open_opts.attach_prog_fd (libbpf, v5.5): fentry/fexit programs attach to the
   * functions of this loaded program instead of the kernel's (setAttachTarget overrides it).
   */
  attachProgFd?: number;
  /** bpf_program__set_autoload: only the programs this returns true for are loaded. */
  autoload?: (p: ProgramSpec) => boolean;
  /** Each program's verifier log (log_buf) after its PROG_LOAD, loaded or rejected. */
  onLog?: (p: ProgramSpec, log: string) => void;
}

/** bpf_object: what libbpf's object API gives its user. */
export class BpfObject {
  readonly spec: ObjectSpec;
  readonly maps = new Map<string, LoadedMap>();
  readonly programs = new Map<string, LoadedProgram>();
  btfFd = -1;
  private sub: BpfSubsystem | undefined;
  private attachTargets = new Map<string, { fd: number; func: string | undefined }>();

  private constructor(spec: ObjectSpec) { this.spec = spec; }

  /** bpf_object__open_mem. */
  static open(bytes: Uint8Array, name: string, opts: Pick<ObjectLoadOptions, 'ext'> = {}): BpfObject {
    return new BpfObject(openObject(bytes, name, opts.ext));
  }

  get name(): string { return this.spec.name; }

  /** bpf_object__load: on any failure everything created so far is closed again. */
  load(sub: BpfSubsystem, opts: ObjectLoadOptions = {}): this {
    if (this.sub) throw new ObjectError(`${this.name}: already loaded`, -16);
    this.sub = sub;
    try {
      this.loadBtf(sub);
      for (const m of this.spec.maps) this.createMap(sub, m);
      for (const p of this.spec.programs) if (opts.autoload?.(p) ?? true) this.loadProgram(sub, p, opts);
    } catch (e) {
      this.close();
      throw e;
    }
    return this;
  }

  private staged<T>(sub: BpfSubsystem, bytes: Uint8Array, f: (addr: bigint) => T): T {
    const a = sub.stage(bytes);
    try { return f(a); } finally { sub.unstage(a); }
  }

  private loadBtf(sub: BpfSubsystem): void {
    const data = this.spec.btfData;
    if (!data) return;
    const r = this.staged(sub, data, (btf) => sub.call(BPF_BTF_LOAD, { btf, btf_size: data.length }).ret);
    // libbpf goes on without BTF when the kernel refuses it (it would sanitise first).
    if (r >= 0) this.btfFd = r;
  }

  private createMap(sub: BpfSubsystem, m: MapSpec): void {
    const withBtf = this.btfFd >= 0 && m.btfValueTypeId !== 0;
    const fd = sub.call(BPF_MAP_CREATE, {
      map_type: m.type, key_size: m.keySize, value_size: m.valueSize, max_entries: m.maxEntries,
      map_flags: m.mapFlags, map_name: m.name,
      ...(withBtf ? { btf_fd: this.btfFd, btf_key_type_id: m.btfKeyTypeId, btf_value_type_id: m.btfValueTypeId } : {}),
    }).ret;
    if (fd < 0) throw new LoadError(`map '${m.name}': BPF_MAP_CREATE`, fd);
    const id = sub.mapFromFd(fd)!.id;
    this.maps.set(m.name, { spec: m, fd, id });
    if (m.internal && m.internal.section !== '.bss') {
      const key = new Uint8Array(4);
      const r = this.staged(sub, key, (k) => this.staged(sub, m.internal!.data, (v) => sub.call(BPF_MAP_UPDATE_ELEM, { map_fd: fd, key: k, value: v, flags: 0 }).ret));
      if (r < 0) throw new LoadError(`map '${m.name}': initial data`, r);
    }
    if (m.internal?.readonly) {
      const r = sub.call(BPF_MAP_FREEZE, { map_fd: fd }).ret;
      if (r < 0) throw new LoadError(`map '${m.name}': BPF_MAP_FREEZE`, r);
    }
  }

  private loadProgram(sub: BpfSubsystem, p: ProgramSpec, opts: ObjectLoadOptions): void {
    const insns = p.insns.map((i) => ({ ...i }));
    for (const r of p.mapRelocs) {
      const m = this.maps.get(r.map);
      if (!m) throw new ObjectError(`program '${p.name}': insn ${r.insn}: relocation against unknown map '${r.map}'`);
      const ins = insns[r.insn]!, next = insns[r.insn + 1]!;
      ins.imm = m.fd;
      if (r.valueOff === undefined) ins.src = BPF_PSEUDO_MAP_FD;
      else { ins.src = BPF_PSEUDO_MAP_VALUE; next.imm = r.valueOff; }
    }
    for (const relo of p.coreRelos) {
      if (!opts.core || !this.spec.btf) throw new ObjectError(`program '${p.name}': CO-RE relocation at insn ${relo.insnOff} but no kernel BTF to resolve it`);
      opts.core(this.spec.btf, p, relo, insns[relo.insnOff]!, insns[relo.insnOff + 1]);
    }
    let attachBtfId = 0;
    const tgt = this.attachTargets.get(p.name) ?? (opts.attachProgFd ? { fd: opts.attachProgFd, func: undefined } : undefined);
    if (p.def.attachBtf && tgt) {
      // libbpf_find_prog_btf_id: the function in the target program's BTF.
      const func = tgt.func ?? p.target;
      if (!func) throw new ObjectError(`program '${p.name}': section '${p.secName}' names no attach target`);
      try { attachBtfId = findProgBtfId(sub, tgt.fd, func); } catch (e) {
        if (e instanceof ProgBtfError) throw new LoadError(`program '${p.name}': attach target '${func}': ${e.message}`, e.errno);
        throw e;
      }
    } else if (p.def.attachBtf) {
      if (!p.target) throw new ObjectError(`program '${p.name}': section '${p.secName}' names no attach target`);
      const fn = opts.vmlinuxBtf?.findByNameKind(p.target, BTF_KIND.FUNC);
      if (!fn) throw new LoadError(`program '${p.name}': attach target '${p.target}' is not a function in the kernel's BTF`, -2);
      attachBtfId = fn.id;
    }
    const license = Buffer.from(`${this.spec.license}\0`, 'latin1');
    const fi = new Uint8Array(8 * p.funcInfo.length);
    const fdv = new DataView(fi.buffer);
    p.funcInfo.forEach((r, k) => { fdv.setUint32(8 * k, r.insnOff, true); fdv.setUint32(8 * k + 4, r.typeId, true); });
    const li = new Uint8Array(16 * p.lineInfo.length);
    const ldv = new DataView(li.buffer);
    p.lineInfo.forEach((r, k) => {
      ldv.setUint32(16 * k, r.insnOff, true); ldv.setUint32(16 * k + 4, r.fileNameOff, true);
      ldv.setUint32(16 * k + 8, r.lineOff, true); ldv.setUint32(16 * k + 12, r.lineCol, true);
    });
    const logSize = 64 * 1024;
    const bufs = [encode(insns), license, fi, li, new Uint8Array(logSize)].map((b) => sub.stage(b));
    try {
      const [ui, ul, ufi, uli, ulog] = bufs as [bigint, bigint, bigint, bigint, bigint];
      const withBtf = this.btfFd >= 0 && p.funcInfo.length > 0;
      const fd = sub.call(BPF_PROG_LOAD, {
        prog_type: p.def.progType, expected_attach_type: p.def.expectedAttachType, insn_cnt: insns.length,
        insns: ui, license: ul, prog_name: p.name.slice(0, 15), kern_version: this.spec.kernVersion,
        log_level: opts.logLevel ?? 1, log_size: logSize, log_buf: ulog, attach_btf_id: attachBtfId,
        ...(p.def.attachBtf && tgt ? { attach_prog_fd: tgt.fd } : {}),
        ...(withBtf ? {
          prog_btf_fd: this.btfFd, func_info_rec_size: 8, func_info: ufi, func_info_cnt: p.funcInfo.length,
          line_info_rec_size: 16, line_info: uli, line_info_cnt: p.lineInfo.length,
        } : {}),
      }).ret;
      opts.onLog?.(p, sub.kernel.machine.mem.readCString(ulog, logSize));
      if (fd < 0) throw new LoadError(`program '${p.name}': BPF_PROG_LOAD`, fd, sub.kernel.machine.mem.readCString(ulog, logSize).trim());
      this.programs.set(p.name, { spec: p, fd, id: sub.progFromFd(fd)!.id });
    } finally {
      for (const b of bufs) sub.unstage(b);
    }
  }

  /**
   * bpf_program__attach: fentry/fexit/fmod_ret through BPF_RAW_TRACEPOINT_OPEN (as libbpf did on v5.5);
   * the link fd is closed by detach() or close().
   */
  attach(name: string): LoadedProgram {
    const p = this.programs.get(name);
    if (!p || !this.sub) throw new ObjectError(`${this.name}: no loaded program '${name}'`, -2);
    if (p.linkFd !== undefined) throw new LoadError(`program '${name}': already attached`, -16);
    const { def } = p.spec;
    if (!def.trampoline)
      throw new AttachNotSupportedError(name, p.spec.secName, def.attachUnsupported ?? 'no attach point');
    const fd = this.sub.call(BPF_RAW_TRACEPOINT_OPEN, { name: 0, prog_fd: p.fd }).ret;
    if (fd < 0) throw new LoadError(`program '${name}': BPF_RAW_TRACEPOINT_OPEN`, fd);
    p.linkFd = fd;
    return p;
  }

  /** Attaches every fentry/fexit/fmod_ret program (the others stay loaded); returns their names. */
  attachTracing(): string[] {
    return [...this.programs.values()].filter((p) => p.spec.def.trampoline)
      .map((p) => this.attach(p.spec.name).spec.name);
  }

  detach(name: string): void {
    const p = this.programs.get(name);
    if (p?.linkFd === undefined || !this.sub) return;
    this.sub.kernel.current.files.close(p.linkFd);
    delete p.linkFd;
  }

  /**
   * bpf_program__set_attach_target: before load, make program `progName` (an fentry/fexit one)
   * attach to function `funcName` (default: its SEC's target) of the loaded program `targetFd`.
   */
  setAttachTarget(progName: string, targetFd: number, funcName?: string): this {
    if (this.sub) throw new ObjectError(`${this.name}: set the attach target before load`, -16);
    const p = this.spec.programs.find((x) => x.name === progName);
    if (!p) throw new ObjectError(`${this.name}: no program '${progName}'`, -2);
    if (!p.def.attachBtf) throw new ObjectError(`program '${progName}' (SEC("${p.secName}")) takes no attach target`);
    this.attachTargets.set(progName, { fd: targetFd, func: funcName });
    return this;
  }

  findProgram(name: string): LoadedProgram | undefined { return this.programs.get(name); }
  findMap(name: string): LoadedMap | undefined { return this.maps.get(name); }

  /** bpf_object__close: every fd closed (objects live on while something else holds them). */
  close(): void {
    const files = this.sub?.kernel.current.files;
    if (!files) return;
    for (const p of this.programs.values()) { if (p.linkFd !== undefined) files.close(p.linkFd); files.close(p.fd); }
    for (const m of this.maps.values()) files.close(m.fd);
    if (this.btfFd >= 0) files.close(this.btfFd);
    this.programs.clear();
    this.maps.clear();
    this.btfFd = -1;
    this.sub = undefined;
  }
}
