/**
 * @fileoverview Kernel modules: gcc-built relocatable objects loaded into the module area,
 * relocated against kallsyms, their symbols in kallsyms and their sites in the ftrace table,
 * their split BTF registered so their functions are fentry/fexit targets by their own ids; the
 * refcount a loaded program holds; every bad object refused with nothing left behind.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { boot, type System } from '../../index.ts';
import { buildModule } from '../../cli/abifuzz/build.ts';
import { enableModuleBtf, type BtfModules } from '../../bpf/btf_module.ts';
import { ModuleError, EWOULDBLOCK, type KernelModule } from '../../kernel/module.ts';
import { X86_NOP5 } from '../../kernel/ftrace.ts';
import { MODULES_ALLOC_START, MODULES_END } from '../../kernel/layout.ts';
import { BTF_KIND } from '../../bpf/btf/btf.ts';
import { assemble } from '../../bpf/asm/assembler.ts';
import { encode } from '../../bpf/isa/insn.ts';
import { ElfFile } from '../../kernel/elf.ts';
import { ldImm64, ldxMem, stxMem, mov64Imm, exit } from '../../bpf/isa/build.ts';
import { BPF_DW, BPF_PSEUDO_MAP_VALUE } from '../../bpf/isa/opcodes.ts';
import { BPF_PROG_LOAD, BPF_RAW_TRACEPOINT_OPEN, BPF_BTF_GET_FD_BY_ID, BPF_BTF_GET_NEXT_ID, BPF_MAP_CREATE } from '../../bpf/syscall/attr.ts';

const SRC = `#include "kernel.h"
extern u64 bpfemu_counter;
u64 bpfemu_counter_inc(void);
static const char greeting[] = "hello from a module";
u64 mod_data = 0x1122334455667788ULL;
u64 mod_bss;
u64 (*mod_fnptr)(void) = bpfemu_counter_inc;     /* R_X86_64_64 to the kernel */
const char *mod_strptr = greeting;                 /* R_X86_64_64 to the module's rodata */
int init_ran;

noinline u64 mod_add(u64 a, u32 b, s8 c) { return a + b + c; }
noinline u64 mod_bump(void) { mod_bss++; return bpfemu_counter_inc() + mod_bss; }
notrace u64 mod_untraced(void) { return (u64)(unsigned long)&mod_data; }  /* 32S under -mcmodel=kernel */
noinline char mod_greeting_char(int i) { return greeting[i]; }
int init_module(void) { init_ran = 1; return 0; }
`;

let sys: System;
let bm: BtfModules;
let obj: Uint8Array;
beforeAll(async () => {
  sys = await boot();
  bm = enableModuleBtf(sys.bpfSys, sys.btf);
  obj = buildModule(SRC, { name: 'modtest' }).bytes;
});
afterAll(() => sys.close());

const files = () => sys.kernel.current.files;
const sym = (mod: KernelModule, n: string): bigint => mod.syms.find((s) => s.name === n)!.address;

/** Everything a half-loaded module would leave behind. */
function state() {
  const k = sys.kernel;
  return {
    ksyms: k.ksyms.all().length, sites: k.ftrace.size, pages: k.execmem.pagesInUse, mods: bm.modules.list().length,
    btfs: sys.bpfSys.btfs.size, maps: k.machine.mem.mappings().length,
  };
}

function loadTracing(btfId: number, asm: string, opts: { fexit?: boolean; objFd?: number } = {}): { fd: number; log: string } {
  const b = sys.bpfSys;
  const insns = assemble(asm);
  const ui = b.stage(encode(insns)), lic = b.stage(Buffer.from('GPL\0')), log = b.stage(new Uint8Array(4096));
  const fd = b.call(BPF_PROG_LOAD, {
    prog_type: 26, expected_attach_type: opts.fexit ? 25 : 24, attach_btf_id: btfId, attach_prog_fd: opts.objFd ?? 0,
    insns: ui, insn_cnt: insns.length, license: lic, log_level: 1, log_size: 4096, log_buf: log, prog_name: 'modprog',
  }).ret;
  const text = sys.kernel.machine.mem.readCString(log, 4096);
  b.unstage(ui); b.unstage(lic); b.unstage(log);
  return { fd, log: text };
}

describe('loading a module', () => {
  it('lays it out in the module area, relocates it, runs init_module, and its code runs', () => {
    const before = state();
    const mod = bm.modules.load(obj, { name: 'modtest', requireBtf: true });
    try {
      expect(mod.state).toBe('live');
      for (const r of [mod.regions.text!, mod.regions.rodata!, mod.regions.data!]) {
        expect(r.start >= MODULES_ALLOC_START && r.start < MODULES_END).toBe(true);
      }
      const m = sys.kernel.machine;
      expect(m.mem.find(mod.regions.text!.start)!.perms).toBe(5); // r-x
      expect(m.mem.find(mod.regions.rodata!.start)!.perms).toBe(1); // r--
      expect(m.mem.find(mod.regions.data!.start)!.perms).toBe(3); // rw-
      expect(m.mem.readU32(sym(mod, 'init_ran'))).toBe(1);
      // PLT32 calls inside the module and to the kernel, PC32 data, 32S addresses, 64-bit pointers.
      expect(sys.kernel.call('mod_add', [40n, 1n, 0xffn])).toBe(40n); // (s8)0xff = -1
      const c0 = m.mem.readU64(sys.kernel.addressOf('bpfemu_counter', 'symbol'));
      expect(sys.kernel.call('mod_bump')).toBe(c0 + 1n + 1n);
      expect(sys.kernel.call('mod_untraced')).toBe(sym(mod, 'mod_data'));
      expect(m.mem.readU64(sym(mod, 'mod_data'))).toBe(0x1122334455667788n);
      expect(m.mem.readU64(sym(mod, 'mod_fnptr'))).toBe(sys.kernel.addressOf('bpfemu_counter_inc'));
      expect(m.mem.readCString(m.mem.readU64(sym(mod, 'mod_strptr')))).toBe('hello from a module');
      expect(BigInt.asIntN(8, sys.kernel.call('mod_greeting_char', [1n]))).toBe(BigInt('e'.charCodeAt(0)));
      // kallsyms letters and the ftrace sites (traced functions only, each starting with the nop).
      const k = sys.kernel.ksyms;
      expect(k.lookup('mod_add')!.type).toBe('T');
      expect(k.lookup('mod_data')!.type).toBe('D');
      expect(k.lookup('mod_bss')!.type).toBe('B');
      expect(k.lookup('greeting')!.type).toBe('r');
      expect(sys.kernel.symbolize(sym(mod, 'mod_add') + 5n)).toBe('mod_add+0x5');
      expect(mod.sites.map((s) => s.func).sort()).toEqual(['init_module', 'mod_add', 'mod_bump', 'mod_greeting_char']);
      expect(sys.kernel.ftrace.forFunc('mod_add')!.ip).toBe(sym(mod, 'mod_add'));
      expect(sys.kernel.ftrace.forFunc('mod_untraced')).toBeUndefined();
      expect([...m.mem.read(sym(mod, 'mod_add'), 5)]).toEqual([...X86_NOP5]);
    } finally {
      expect(bm.modules.rmmod('modtest')).toBe(0);
    }
    expect(state()).toEqual(before);
    expect(sys.kernel.ksyms.lookup('mod_add')).toBeUndefined();
  });

  it('registers its split BTF: a BTF object with an id, FUNC ids past vmlinux\'s', () => {
    const mod = bm.modules.load(obj, { name: 'modtest', requireBtf: true });
    const objId = bm.of(mod)!.obj.id;
    try {
      const mb = bm.of(mod)!;
      expect(mb.btf.startId).toBe(sys.btf.types.length);
      const f = mb.btf.findByNameKind('mod_add', BTF_KIND.FUNC)!;
      expect(f.id).toBeGreaterThanOrEqual(sys.btf.types.length);
      expect(mb.btf.typeName(f.sizeOrType)).toBe('u64 (*)(u64, u32, s8)');
      const ids: number[] = [];
      for (let id = 0; ;) {
        const r = sys.bpfSys.call(BPF_BTF_GET_NEXT_ID, { start_id: id });
        if (r.ret) break;
        id = r.attr.next_id as number;
        ids.push(id);
      }
      expect(ids).toContain(mb.obj.id);
    } finally {
      expect(bm.modules.rmmod('modtest')).toBe(0);
    }
    expect(sys.bpfSys.btfs.find(objId)).toBeUndefined(); // the module held the only reference
  });
});

describe('module functions as fentry/fexit targets', () => {
  it('attaches by the module\'s BTF id; the program sees the args; unload is refused while it is loaded', () => {
    const mod = bm.modules.load(obj, { name: 'modtest', requireBtf: true });
    const id = bm.of(mod)!.btf.findByNameKind('mod_add', BTF_KIND.FUNC)!.id;
    // fexit: ctx = {a, b, c, ret}, each stored raw into an array map's value.
    const map = sys.bpfSys.call(BPF_MAP_CREATE, { map_type: 2, key_size: 4, value_size: 32, max_entries: 1 }).ret;
    const value = sys.bpfSys.mapFromFd(map)!.impl.lookupElem(new Uint8Array(4))!;
    const insns = [
      ...ldImm64(6, BigInt(map), BPF_PSEUDO_MAP_VALUE), // r6 = &value[0]
      ...[0, 1, 2, 3].flatMap((i) => [ldxMem(BPF_DW, 2, 1, 8 * i), stxMem(BPF_DW, 6, 2, 8 * i)]),
      mov64Imm(0, 0), exit(),
    ];
    const b = sys.bpfSys;
    const ui = b.stage(encode(insns)), lic = b.stage(Buffer.from('GPL\0'));
    const btfFd = b.call(BPF_BTF_GET_FD_BY_ID, { start_id: bm.of(mod)!.obj.id }).ret;
    const fd = b.call(BPF_PROG_LOAD, {
      prog_type: 26, expected_attach_type: 25, attach_btf_id: id, attach_prog_fd: btfFd, insns: ui, insn_cnt: insns.length, license: lic,
    }).ret;
    b.unstage(ui); b.unstage(lic);
    expect(fd).toBeGreaterThan(0);
    const link = b.call(BPF_RAW_TRACEPOINT_OPEN, { name: 0, prog_fd: fd }).ret;
    expect(link).toBeGreaterThan(0);
    expect(sys.kernel.machine.mem.read(sym(mod, 'mod_add'), 1)[0]).toBe(0xe8); // call <trampoline>
    expect(sys.kernel.call('mod_add', [0x100000000n, 7n, 0x1fen])).toBe(0x100000005n);
    const m = sys.kernel.machine.mem;
    expect(m.readU64(value)).toBe(0x100000000n);
    expect(m.readU64(value + 8n) & 0xffffffffn).toBe(7n);
    expect(m.readU64(value + 16n) & 0xffn).toBe(0xfen);
    expect(m.readU64(value + 24n)).toBe(0x100000005n);
    // The program (attached or only loaded) holds the module.
    expect(bm.modules.refcount(mod)).toBe(1);
    expect(bm.modules.rmmod('modtest')).toBe(-16); // kmod: "Module modtest is in use" (-EBUSY)
    expect(bm.modules.deleteModule('modtest')).toBe(-EWOULDBLOCK); // delete_module(2), O_NONBLOCK
    files().close(link);
    expect([...m.read(sym(mod, 'mod_add'), 5)]).toEqual([...X86_NOP5]);
    expect(bm.modules.rmmod('modtest')).toBe(-16); // still loaded
    files().close(fd);
    expect(bm.modules.refcount(mod)).toBe(0);
    files().close(btfFd);
    files().close(map);
    expect(bm.modules.rmmod('modtest')).toBe(0);
    expect(bm.modules.rmmod('modtest')).toBe(-2);
  });

  it('two modules (each with its init_module) with the same BTF ids: attach_btf_obj_fd picks the module, the trampolines are apart', () => {
    const a = bm.modules.load(obj, { name: 'moda', requireBtf: true });
    const other = buildModule(SRC.replace(/mod_|greeting|init_ran/g, (s) => `x${s}`), { name: 'modb' }).bytes;
    const bmod = bm.modules.load(other, { name: 'modb', requireBtf: true });
    try {
      const ida = bm.of(a)!.btf.findByNameKind('mod_add', BTF_KIND.FUNC)!.id;
      const idb = bm.of(bmod)!.btf.findByNameKind('xmod_add', BTF_KIND.FUNC)!.id;
      expect(ida).toBe(idb); // same layout, same split ids
      expect(sys.kernel.machine.mem.readU32(sym(bmod, 'xinit_ran'))).toBe(1);
      expect(sys.kernel.ksyms.lookup('init_module')).toBeUndefined(); // each module's own, not in kallsyms
      // Without attach_btf_obj_fd an id two modules share is ambiguous.
      expect(loadTracing(ida, 'mov %r0, 0\nexit').fd).toBe(-22);
      const fdA = sys.bpfSys.call(BPF_BTF_GET_FD_BY_ID, { start_id: bm.of(a)!.obj.id }).ret;
      const fdB = sys.bpfSys.call(BPF_BTF_GET_FD_BY_ID, { start_id: bm.of(bmod)!.obj.id }).ret;
      const pa = loadTracing(ida, 'mov %r0, 0\nexit', { objFd: fdA }).fd, pb = loadTracing(idb, 'mov %r0, 0\nexit', { objFd: fdB }).fd;
      const ta = sys.bpfSys.progFromFd(pa)!.trampoline!, tb = sys.bpfSys.progFromFd(pb)!.trampoline!;
      expect(ta).not.toBe(tb);
      expect(ta.func.name).toBe('mod_add');
      expect(tb.func.name).toBe('xmod_add');
      expect(ta.key).toBe((BigInt(bm.of(a)!.obj.id) << 32n) | BigInt(ida));
      for (const fd of [pa, pb, fdA, fdB]) files().close(fd);
    } finally {
      expect(bm.modules.rmmod('moda')).toBe(0);
      expect(bm.modules.rmmod('modb')).toBe(0);
    }
  });
});

describe('bad modules: a clear error, nothing half-loaded, the machine still usable', () => {
  const refuse = (bytes: Uint8Array, errno: number, msg: RegExp, opts: { name?: string; requireBtf?: boolean } = { requireBtf: true }) => {
    const before = state();
    let err: unknown;
    try { bm.modules.load(bytes, { name: 'bad', ...opts }); } catch (e) { err = e; }
    expect(err).toBeInstanceOf(ModuleError);
    expect((err as ModuleError).errno).toBe(errno);
    expect((err as ModuleError).message).toMatch(msg);
    expect(state()).toEqual(before);
    expect(sys.kernel.call('bpf_fentry_test1', [1n])).toBe(2n);
  };

  it('a corrupt object', () => {
    refuse(new Uint8Array(100), -8, /bad magic/);
    refuse(obj.subarray(0, 200), -8, /runs past the end|past the end of the file/);
    const bad = obj.slice();
    bad[18] = 0x28; // e_machine = ARM
    refuse(bad, -8, /e_machine 40 is not x86-64/);
  });

  it('not a relocatable object (the image itself)', () => {
    refuse(sys.kernel.elf.bytes, -8, /not a relocatable object/);
  });

  it('an unresolved symbol', () => {
    refuse(buildModule('#include "kernel.h"\nu64 no_such_kernel_function(u64);\nnoinline u64 f(u64 a) { return no_such_kernel_function(a); }\n').bytes,
      -2, /Unknown symbol no_such_kernel_function/);
  });

  it('a module without BTF (when its functions are to be traced)', () => {
    refuse(buildModule(SRC, { btf: false }).bytes, -22, /has no \.BTF section.*pahole -J --btf_base vmlinux/);
  });

  it('BTF the kernel refuses', () => {
    const bytes = obj.slice();
    bytes[new ElfFile(bytes).section('.BTF')!.offset + 2] = 9; // BTF version 9
    refuse(bytes, -524, /failed to validate module \[bad\] BTF: -524/); // btf_parse_hdr: -ENOTSUPP
  });

  it('a symbol the kernel already has, a name already loaded, a failing init_module', () => {
    refuse(buildModule('#include "kernel.h"\nnoinline u64 bpfemu_counter_inc(void) { return 1; }\n').bytes, -8, /bpfemu_counter_inc is already defined \(by the kernel\)/);
    bm.modules.load(obj, { name: 'bad', requireBtf: true });
    try {
      const other = buildModule('#include "kernel.h"\nnoinline u64 g(void) { return 1; }\n').bytes;
      refuse(other, -17, /already loaded/);
    } finally { bm.modules.rmmod('bad'); }
    refuse(buildModule('#include "kernel.h"\nnoinline u64 h(void) { return 1; }\nint init_module(void) { return -22; }\n').bytes, -22, /init_module returned -22/);
  });

  it('code not built for the kernel code model: R_X86_64_32 cannot reach the module area', () => {
    refuse(buildModule('#include "kernel.h"\nu64 v;\nnotrace u64 *addr(void) { return &v; }\n', { extraFlags: ['-mcmodel=small'] }).bytes,
      -8, /overflow in relocation type 10/);
  });

  it('code built without -mnop-mcount: the site is not the 5-byte nop', () => {
    // gcc then emits `call __fentry__`, which this kernel does not have: the relocation refuses it first.
    const b = buildModule('#include "kernel.h"\nnoinline u64 k(u64 a) { return a + 1; }\n', { extraFlags: ['-mno-nop-mcount'] });
    refuse(b.bytes, -2, /Unknown symbol __fentry__/);
  });
});
