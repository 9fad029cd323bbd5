/**
 * @fileoverview The verifier log in the kernel's format (level 1: the instructions walked, the
 * state where a branch is resumed, the error; level 2: the state at every instruction; every
 * level: the `processed N insns (limit 1000000) …` line), a log that fills log_size (-ENOSPC),
 * and the complexity limit: a program built to explode the state space ends with the kernel's
 * message in bounded time, through bpf() too, and the machine keeps working.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { boot, type System } from '../../index.ts';
import { encode, type Insn } from '../../bpf/isa/insn.ts';
import { BPF_PROG_LOAD, BPF_PROG_TEST_RUN } from '../../bpf/syscall/attr.ts';
import { bpfCheck } from '../../bpf/verifier/verifier.ts';
import {
  prog, BPF_LDX_MEM, BPF_ST_MEM, BPF_EXIT_INSN, BPF_MOV64_IMM, BPF_MOV64_REG, BPF_ALU64_IMM, BPF_ALU64_REG, BPF_JMP_IMM, BPF_EMIT_CALL, BPF_FUNC,
  BPF_DW, BPF_ADD, BPF_AND, BPF_JEQ, R0, R1, R2, R6, R10,
} from './verifier/harness.ts';

const SOCKET_FILTER = 1, XDP = 6;
const STATS = /^processed \d+ insns \(limit 1000000\) max_states_per_insn \d+ total_states \d+ peak_states \d+ mark_read \d+$/;

/** 2^n paths: each diamond adds a different amount to r6, which the last instruction uses. */
function explosion(n: number): Insn[] {
  const body: Insn[][] = [[BPF_MOV64_IMM(R6, 0)]];
  for (let i = 0; i < n; i++) {
    body.push([BPF_EMIT_CALL(BPF_FUNC.get_prandom_u32), BPF_ALU64_IMM(BPF_AND, R0, 1), BPF_JMP_IMM(BPF_JEQ, R0, 0, 1), BPF_ALU64_IMM(BPF_ADD, R6, 1 << (i % 30))]);
  }
  // r6 ends up as a stack-pointer offset, which makes it precise: states that differ in r6 are kept apart.
  return prog(...body.flat(), BPF_ALU64_IMM(BPF_AND, R6, 0xff), BPF_MOV64_REG(R2, R10), BPF_ALU64_IMM(BPF_ADD, R2, -256),
    BPF_ALU64_REG(BPF_ADD, R2, R6), BPF_MOV64_IMM(R0, 0), BPF_EXIT_INSN());
}

describe('the log at each level', () => {
  it('level 1, rejected: the failing path, the state where it resumed, the error and the statistics', () => {
    const r = bpfCheck(prog(BPF_MOV64_IMM(R0, 0), BPF_JMP_IMM(BPF_JEQ, R1, 0, 1), BPF_EXIT_INSN(), BPF_LDX_MEM(BPF_DW, R0, R10, -8), BPF_EXIT_INSN()),
      { progType: SOCKET_FILTER, logLevel: 1 });
    expect(r.errno).toBe(13);
    expect(r.log).toEqual([
      '0: (b7) r0 = 0',
      '1: (15) if r1 == 0x0 goto pc+1',
      '',
      'from 1 to 3: R0_w=inv0 R1=ctx(id=0,off=0,imm=0) R10=fp0',
      '3: (79) r0 = *(u64 *)(r10 -8)',
      'invalid read from stack R10 off=-8 size=8',
      'processed 4 insns (limit 1000000) max_states_per_insn 0 total_states 0 peak_states 0 mark_read 0',
    ]);
  });

  it('level 1, accepted: only the statistics (the trace of verified paths is dropped)', () => {
    const r = bpfCheck(prog(BPF_ST_MEM(BPF_DW, R10, -8, 7), BPF_LDX_MEM(BPF_DW, R0, R10, -8), BPF_EXIT_INSN()), { progType: SOCKET_FILTER, logLevel: 1 });
    expect(r.errno).toBe(0);
    expect(r.log).toEqual(['processed 3 insns (limit 1000000) max_states_per_insn 0 total_states 0 peak_states 0 mark_read 0']);
  });

  it('level 2: the state before every instruction, liveness marks included', () => {
    const r = bpfCheck(prog(BPF_MOV64_REG(R2, R1), BPF_MOV64_IMM(R0, 1), BPF_EXIT_INSN()), { progType: SOCKET_FILTER, logLevel: 2 });
    expect(r.errno).toBe(0);
    expect(r.log).toEqual([
      'func#0 @0',
      '0: R1=ctx(id=0,off=0,imm=0) R10=fp0',
      '0: (bf) r2 = r1',
      '1: R1=ctx(id=0,off=0,imm=0) R2_w=ctx(id=0,off=0,imm=0) R10=fp0',
      '1: (b7) r0 = 1',
      '2: R0_w=inv1 R1=ctx(id=0,off=0,imm=0) R2_w=ctx(id=0,off=0,imm=0) R10=fp0',
      '2: (95) exit',
      'processed 3 insns (limit 1000000) max_states_per_insn 0 total_states 0 peak_states 0 mark_read 0',
    ]);
  });

  it('level 4: the verification time and stack depth of each function', () => {
    const r = bpfCheck(prog(BPF_ST_MEM(BPF_DW, R10, -24, 7), BPF_MOV64_IMM(R0, 0), BPF_EXIT_INSN()), { progType: SOCKET_FILTER, logLevel: 4 });
    expect(r.log[0]).toMatch(/^verification time \d+ usec$/);
    expect(r.log[1]).toBe('stack depth 24');
    expect(r.log[2]).toMatch(STATS);
  });

  it('a log that fills log_size fails the load with -ENOSPC', () => {
    const p = prog(BPF_MOV64_IMM(R0, 0), BPF_JMP_IMM(BPF_JEQ, R1, 0, 1), BPF_EXIT_INSN(), BPF_LDX_MEM(BPF_DW, R0, R10, -8), BPF_EXIT_INSN());
    expect(bpfCheck(p, { progType: SOCKET_FILTER, logLevel: 1, logSize: 64 }).errno).toBe(28);
    expect(bpfCheck(p, { progType: SOCKET_FILTER, logLevel: 1, logSize: 4096 }).errno).toBe(13);
  });

  it('pruning: states are kept and reused (the counts the kernel reports)', () => {
    const r = bpfCheck(explosion(12).slice(0, -5).concat(prog(BPF_MOV64_IMM(R0, 0), BPF_EXIT_INSN())), { progType: SOCKET_FILTER });
    expect(r.errno).toBe(0);
    expect(r.stats.totalStates).toBeGreaterThan(0);
    // r6 is never read: its value does not keep states apart, so each diamond is walked once per side.
    expect(r.stats.insnProcessed).toBeLessThan(200);
  });
});

describe('the complexity limit', () => {
  it('2^40 paths end with the kernel\'s message after 1M instructions, in bounded time', () => {
    const t0 = Date.now();
    const r = bpfCheck(explosion(40), { progType: SOCKET_FILTER });
    expect(r.errno).toBe(7);
    expect(r.log.at(-2)).toBe('BPF program is too large. Processed 1000001 insn');
    expect(r.log.at(-1)).toMatch(STATS);
    expect(r.stats.insnProcessed).toBe(1000001);
    expect(Date.now() - t0).toBeLessThan(30_000);
  });
});

describe('through bpf()', () => {
  let sys: System;
  beforeAll(async () => { sys = await boot(); });
  afterAll(() => sys?.close?.());

  function load(insns: Insn[], type: number, logSize = 65536, logLevel = 1, progFlags = 0): { fd: number; log: string } {
    const b = sys.bpfSys;
    const ui = b.stage(encode(insns)), lic = b.stage(Buffer.from('GPL\0')), log = b.stage(new Uint8Array(logSize));
    const fd = b.call(BPF_PROG_LOAD, {
      prog_type: type, insns: ui, insn_cnt: insns.length, license: lic, log_level: logLevel, log_size: logSize, log_buf: log, prog_flags: progFlags,
    }).ret;
    const text = sys.kernel.machine.mem.readCString(log, logSize);
    b.unstage(ui); b.unstage(lic); b.unstage(log);
    return { fd, log: text };
  }

  it('PROG_LOAD writes the verifier log to log_buf; a rejection is the verifier\'s errno', () => {
    const bad = load(prog(BPF_LDX_MEM(BPF_DW, R0, R10, -8), BPF_EXIT_INSN()), XDP);
    expect(bad.fd).toBe(-13);
    expect(bad.log).toContain('invalid read from stack R10 off=-8 size=8\nprocessed 1 insns (limit 1000000)');
    const ok = load(prog(BPF_MOV64_IMM(R0, 2), BPF_EXIT_INSN()), XDP);
    expect(ok.fd).toBeGreaterThan(0);
    expect(ok.log).toMatch(/^processed 2 insns \(limit 1000000\)/);
    sys.kernel.current.files.close(ok.fd);
  });

  it('prog_flags BPF_F_TEST_STATE_FREQ: a checkpoint at every pruning point (the statistics show it)', () => {
    const p = explosion(6);
    const states = (flags: number): number => {
      const r = load(p, XDP, 4096, 4, flags);
      expect(r.fd).toBeGreaterThan(0);
      sys.kernel.current.files.close(r.fd);
      return Number(/total_states (\d+)/.exec(r.log)![1]);
    };
    expect(states(1 << 3)).toBeGreaterThan(states(0));
    expect(load(p, XDP, 4096, 4, 1 << 4).fd).toBe(-22); // not a v5.5 flag
  });

  it('a state explosion is -E2BIG with the kernel\'s message; the machine loads and runs programs after', () => {
    const big = load(explosion(40), XDP, 4096, 4); // log level 4: errors and statistics only
    expect(big.fd).toBe(-7);
    expect(big.log).toContain('BPF program is too large. Processed 1000001 insn');
    const ok = load(prog(BPF_MOV64_IMM(R0, 2), BPF_EXIT_INSN()), XDP);
    expect(ok.fd).toBeGreaterThan(0);
    const b = sys.bpfSys;
    const pkt = b.stage(new Uint8Array(64));
    const r = b.call(BPF_PROG_TEST_RUN, { prog_fd: ok.fd, data_in: pkt, data_size_in: 64 });
    expect(r.ret).toBe(0);
    expect(r.attr.retval).toBe(2);
    b.unstage(pkt);
    sys.kernel.current.files.close(ok.fd);
  });
});
