/**
 * @fileoverview 12 arguments on x86-64 (6.6, 473e3150e30a), as the selftest fentry_many_args /
 * fexit_many_args checks it: a module (gcc-built, split BTF) with bpf_testmod-style
 * bpf_testmod_fentry_test7 (7 args) and bpf_testmod_fentry_test11 (11 args), called with
 * 16, 17, … and traced by fentry and fexit programs that read every argument (the 7th and later
 * from the caller's stack) and the return value (133 and 231). Each program sets its slot of an
 * array map to 1 when all values match. Under 6.1 the same programs load and attach fails with
 * -ENOTSUPP (more than six register arguments).
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { boot, type System } from '../../index.ts';
import { buildModule } from '../../cli/abifuzz/build.ts';
import { enableModuleBtf } from '../../bpf/btf_module.ts';
import { BTF_KIND } from '../../bpf/btf/btf.ts';
import { encode, type Insn } from '../../bpf/isa/insn.ts';
import { BPF_B, BPF_H, BPF_W, BPF_DW, BPF_JNE, BPF_PSEUDO_MAP_FD } from '../../bpf/isa/opcodes.ts';
import { callHelper, exit, jmpImm, ldImm64, ldxMem, mov64Imm, mov64Reg, alu64Imm, stMem } from '../../bpf/isa/build.ts';
import { BPF_ADD } from '../../bpf/isa/opcodes.ts';
import { BPF_BTF_GET_FD_BY_ID, BPF_MAP_CREATE, BPF_MAP_LOOKUP_ELEM, BPF_PROG_LOAD, BPF_RAW_TRACEPOINT_OPEN } from '../../bpf/syscall/attr.ts';

const SRC = `#include "kernel.h"
noinline int bpf_testmod_fentry_test7(u64 a, void *b, short c, int d, void *e, char f, int g)
{
	return a + (long)b + c + d + (long)e + f + g;
}
noinline int bpf_testmod_fentry_test11(u64 a, void *b, short c, int d, void *e, char f, int g,
				       unsigned int h, long i, u64 j, unsigned long k)
{
	return a + (long)b + c + d + (long)e + f + g + h + i + j + k;
}
/* bpf_testmod_test_read's calls: 0 when both return what they should. */
notrace int bpf_testmod_many_args_run(void)
{
	if (bpf_testmod_fentry_test7(16, (void *)17, 18, 19, (void *)20, 21, 22) != 133)
		return -1;
	if (bpf_testmod_fentry_test11(16, (void *)17, 18, 19, (void *)20, 21, 22, 23, 24, 25, 26) != 231)
		return -2;
	return 0;
}
`;

/** Load sizes of each argument slot as the programs read them (BPF_PROG casts). */
const SIZES7 = [BPF_DW, BPF_DW, BPF_H, BPF_W, BPF_DW, BPF_B, BPF_W];
const SIZES11 = [...SIZES7, BPF_W, BPF_DW, BPF_DW, BPF_DW];

/** r6 = ctx; every arg i (and ret) compared with 16 + i (and `ret`); all equal: map[slot] = 1. */
function checker(mapFd: number, sizes: readonly number[], slot: number, ret?: number): Insn[] {
  const want = sizes.map((_, i) => 16 + i);
  const checks: Insn[] = [];
  const all = ret === undefined ? sizes.map((s, i) => [s, want[i]!] as const) : [...sizes.map((s, i) => [s, want[i]!] as const), [BPF_W, ret] as const];
  const n = all.length;
  all.forEach(([size, v], i) => {
    checks.push(ldxMem(size, 0, 6, 8 * i));
    // Jump to `exit0` (past the remaining checks and the map update: 9 instructions) on a mismatch.
    checks.push(jmpImm(BPF_JNE, 0, v, 2 * (n - i - 1) + 9));
  });
  return [
    mov64Reg(6, 1),
    ...checks,
    stMem(BPF_W, 10, -4, slot),
    mov64Reg(2, 10), alu64Imm(BPF_ADD, 2, -4),
    ...ldImm64(1, BigInt(mapFd), BPF_PSEUDO_MAP_FD),
    callHelper(1),
    jmpImm(0x10 /* JEQ */, 0, 0, 1),
    stMem(BPF_DW, 0, 0, 1),
    mov64Imm(0, 0), // exit0
    exit(),
  ];
}

describe.each([['6.6', 'jit'], ['6.6', 'interp'], ['6.1', 'jit']] as const)('many args (kernel %s, %s)', (v, engine) => {
  let sys: System;
  beforeAll(async () => { sys = await boot({ kernel: v }); });
  afterAll(() => sys.close());

  it(v === '6.6' ? 'fentry and fexit see all 7 and 11 arguments and the return values' : 'the programs load; attach is -ENOTSUPP', () => {
    const b = sys.bpfSys, files = sys.kernel.current.files, mem = sys.kernel.machine.mem;
    const mods = enableModuleBtf(b, sys.btf);
    const mod = mods.modules.load(buildModule(SRC).bytes, { name: 'bpf_testmod', requireBtf: true });
    const btf = mods.of(mod)!.btf;
    const btfFd = b.call(BPF_BTF_GET_FD_BY_ID, { start_id: mods.of(mod)!.obj.id }).ret;
    const mapFd = b.call(BPF_MAP_CREATE, { map_type: 2, key_size: 4, value_size: 8, max_entries: 4 }).ret;
    expect(mapFd).toBeGreaterThan(0);
    b.jitEnabled = engine === 'jit';
    const fds: number[] = [];
    try {
      const load = (fn: string, eat: number, insns: Insn[]): number => {
        const ui = b.stage(encode(insns)), lic = b.stage(Buffer.from('GPL\0')), log = b.stage(new Uint8Array(4096));
        const fd = b.call(BPF_PROG_LOAD, {
          prog_type: 26, expected_attach_type: eat, attach_btf_id: btf.findByNameKind(fn, BTF_KIND.FUNC)!.id, attach_prog_fd: btfFd,
          insns: ui, insn_cnt: insns.length, license: lic, log_level: 1, log_size: 4096, log_buf: log,
        }).ret;
        const text = mem.readCString(log, 4096);
        b.unstage(ui); b.unstage(lic); b.unstage(log);
        expect(fd, text).toBeGreaterThan(0);
        fds.push(fd);
        return fd;
      };
      const progs = [
        load('bpf_testmod_fentry_test7', 24, checker(mapFd, SIZES7, 0)),
        load('bpf_testmod_fentry_test11', 24, checker(mapFd, SIZES11, 1)),
        load('bpf_testmod_fentry_test7', 25, checker(mapFd, SIZES7, 2, 133)),
        load('bpf_testmod_fentry_test11', 25, checker(mapFd, SIZES11, 3, 231)),
      ];
      const links = progs.map((p) => b.call(BPF_RAW_TRACEPOINT_OPEN, { name: 0, prog_fd: p }).ret);
      if (v !== '6.6') {
        expect(links).toEqual([-524, -524, -524, -524]);
        return;
      }
      expect(links.every((l) => l > 0), `links ${links}`).toBe(true);
      fds.push(...links);
      const run = mod.syms.find((s) => s.name === 'bpf_testmod_many_args_run')!.address;
      expect(BigInt.asIntN(32, sys.kernel.call(run))).toBe(0n);
      const k = b.stage(new Uint8Array(4)), val = b.stage(new Uint8Array(8));
      const results = [0, 1, 2, 3].map((i) => {
        mem.writeU32(k, i);
        expect(b.call(BPF_MAP_LOOKUP_ELEM, { map_fd: mapFd, key: k, value: val }).ret).toBe(0);
        return mem.readU64(val);
      });
      b.unstage(k); b.unstage(val);
      expect(results).toEqual([1n, 1n, 1n, 1n]);
    } finally {
      b.jitEnabled = true;
      fds.reverse().forEach((fd) => files.close(fd));
      files.close(mapFd);
      files.close(btfFd);
      b.trampolines!.reap();
      expect(mods.modules.rmmod('bpf_testmod')).toBe(0);
    }
  });
});
