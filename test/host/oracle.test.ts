/**
 * The host's real kernel as a second oracle (shared/DESIGN.md, "Testing method").
 *
 *  (a) From test/fixtures/host-kernel/conformance.json (recorded by scripts/record-host-oracle.ts):
 *      every conformance program the real kernel ran returned the file's `-- result`, and the
 *      ones it refused were refused for the reasons recorded. Runs everywhere.
 *  (b) Live: re-runs a sample on the host and compares with the fixture; skipped, with the
 *      reason, where the host refuses bpf() (CI may run on such a machine).
 *  (c) From test/fixtures/host-kernel/jit.json: the host JIT's bytes against bpfemu's (v5.5 rules),
 *      body for body; where the encodings legitimately differ the test says so, with versions.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { readFileSync, readdirSync } from 'node:fs';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readDataFile } from '../../bpf/asm/datafile.ts';
import { encode, type Insn } from '../../bpf/isa/insn.ts';
import * as b from '../../bpf/isa/build.ts';
import { BPF_ADD, BPF_EXIT, BPF_JMP } from '../../bpf/isa/opcodes.ts';
import { boot, type System } from '../../index.ts';
import { x86_64 } from '../../arch/x86_64/jit.ts';
import { BpfRuntime } from '../../bpf/prog.ts';
import type { Insn as X86Insn } from '../../emulator/capstone.ts';
import {
  hostBpfAvailable, hostRun, hostRunConformance, wrapForXdp, mainProgramEnd, verifierMessage, conformancePacket,
  hex64, toHex, JIT_PROGRAMS, WRAP_PROLOGUE_INSNS, MIN_PACKET,
} from './oracle.ts';

const HERE = dirname(fileURLToPath(import.meta.url));
const CONFORMANCE = resolve(HERE, '../../../shared/conformance');
const FIXTURES = resolve(HERE, '../fixtures/host-kernel');

interface ConformanceFixture {
  kernel: string;
  recorded: string;
  results: Record<string, {
    loaded: boolean; errno: number; verifierMessage?: string; rejectedHalf?: string;
    result?: string; runErrno?: number; expected: string; matchesExpected: boolean;
  }>;
}
interface JitFixture {
  kernel: string;
  recorded: string;
  programs: Record<string, { insns: string; loaded: boolean; retval: number; jited: string; xlated: string }>;
}
const conf = JSON.parse(readFileSync(join(FIXTURES, 'conformance.json'), 'utf8')) as ConformanceFixture;
const jit = JSON.parse(readFileSync(join(FIXTURES, 'jit.json'), 'utf8')) as JitFixture;
const files = readdirSync(CONFORMANCE).filter((f) => f.endsWith('.data')).sort();
const ran = files.filter((f) => conf.results[f]?.result !== undefined);
const rejected = files.filter((f) => conf.results[f] && !conf.results[f]!.loaded);
const bytes = (s: string): number[] => (s.replace(/\s+/g, '').match(/../g) ?? []).map((x) => parseInt(x, 16));

describe(`conformance suite vs the host kernel ${conf.kernel} (fixture recorded ${conf.recorded.slice(0, 10)})`, () => {
  it('the fixture has every conformance file, and each either ran or was refused', () => {
    expect(Object.keys(conf.results).sort()).toEqual(files);
    for (const f of files) {
      const r = conf.results[f]!;
      expect(r.loaded ? r.result !== undefined : r.verifierMessage !== undefined, f).toBe(true);
    }
    expect(ran.length + rejected.length).toBe(files.length);
    expect(ran.length).toBeGreaterThan(250); // recorded on 6.18.44: 300 ran, 13 refused
  });

  // The suite's expected values, checked against a real kernel: any failure here is either a bug
  // in the suite or a kernel/ISA disagreement worth an issue.
  it.each(ran)('%s: the kernel\'s 64-bit R0 is the file\'s -- result', (f) => {
    const d = readDataFile(join(CONFORMANCE, f));
    const r = conf.results[f]!;
    expect(r.expected, 'fixture recorded against another version of the file').toBe(hex64(d.result!));
    expect(r.result).toBe(hex64(d.result!));
    expect(r.matchesExpected).toBe(true);
  });

  // What the real verifier refuses, and why. The conformance runner treats these as defined
  // behaviour (shift counts masked; callx jumps through a register); Linux's verifier does not
  // accept them: a constant shift >= the operand width or negative is "invalid shift"
  // (check_alu_op), and opcode 0x8d (BPF_JMP|BPF_CALL|BPF_X) is not an instruction it knows.
  it('the refused programs are exactly the out-of-range constant shifts and callx', () => {
    const reasons = new Map<string, string[]>();
    for (const f of rejected) {
      const r = conf.results[f]!;
      const key = /^invalid shift -?\d+$/.test(r.verifierMessage!) ? 'invalid shift' : r.verifierMessage!;
      reasons.set(key, [...(reasons.get(key) ?? []), f]);
      expect(r.errno, f).toBe(22); // EINVAL
    }
    expect([...reasons.keys()].sort()).toEqual(['invalid shift', 'unknown opcode 8d']);
    expect(reasons.get('unknown opcode 8d')).toEqual(['callx.data']);
    for (const f of reasons.get('invalid shift')!) expect(f).toMatch(/^(arsh|lsh|rsh)(32|64)-imm-(high|neg)\.data$/);
    expect(reasons.get('invalid shift')).toHaveLength(12);
  });
});

describe('wrapForXdp: a conformance program as an XDP program (no host needed)', () => {
  it('prologue, then the program shifted as a block; main exits jump to the epilogue, subprogram exits stay', () => {
    // r0 = 1; call local +2; exit ; <pad> ; sub: r0 += 1; exit
    const prog: Insn[] = [b.mov64Imm(0, 1), b.callLocal(2), b.exit(), b.ja(0), b.alu64Imm(BPF_ADD, 0, 1), b.exit()];
    expect(mainProgramEnd(prog)).toBe(4);
    for (const half of ['low', 'high'] as const) {
      const w = wrapForXdp(prog, 8, half);
      expect(w).toHaveLength(WRAP_PROLOGUE_INSNS + prog.length);
      const body = w.slice(WRAP_PROLOGUE_INSNS);
      expect(body[1]).toEqual(prog[1]); // call local: relative, unchanged
      expect(body[2]).toEqual(b.ja(9 - (WRAP_PROLOGUE_INSNS + 2) - 1)); // back to the epilogue (index 9)
      expect(body[5]!.code).toBe(BPF_JMP | BPF_EXIT); // the subprogram's exit
      expect(w[10]!.code).toBe(BPF_JMP | BPF_EXIT);
    }
    expect(wrapForXdp(prog, 8, 'low')[9]).not.toEqual(wrapForXdp(prog, 8, 'high')[9]);
  });

  it('lddw second slots are copied, never taken for instructions', () => {
    const prog = [...b.ldImm64(0, 0x95n), b.exit()]; // a second slot whose imm looks like nothing
    const w = wrapForXdp(prog, 0, 'low').slice(WRAP_PROLOGUE_INSNS);
    expect(w.slice(0, 2)).toEqual(prog.slice(0, 2));
  });

  it('packets are padded to ETH_HLEN; verdict lines skip the statistics', () => {
    expect(conformancePacket(new Uint8Array([1, 2]))).toEqual(Uint8Array.from([1, 2, ...new Array<number>(MIN_PACKET - 2).fill(0)]));
    expect(conformancePacket(new Uint8Array(40)).length).toBe(40);
    expect(verifierMessage('0: (b7) r0 = 1\ninvalid shift 68\nprocessed 2 insns (limit 1000000) max_states_per_insn 0\n')).toBe('invalid shift 68');
  });
});

const avail = hostBpfAvailable();
const liveIt = avail.ok ? it : it.skip;
const why = avail.ok ? '' : ` (skipped: ${avail.reason})`;

describe(`live: the host kernel now${why}`, () => {
  // Every 16th file, plus the ones whose shape matters most to the wrapping.
  const sample = [...new Set([...files.filter((_, i) => i % 16 === 0), 'call_local.data', 'stxdw.data', 'lsh64-imm-high.data', 'callx.data'])]
    .filter((f) => files.includes(f)).slice(0, 24);

  liveIt.each(sample)('%s: same verdict and result as the fixture', (f) => {
    const d = readDataFile(join(CONFORMANCE, f));
    const r = hostRunConformance(d.insns, d.mem);
    const rec = conf.results[f]!;
    expect(r.loaded).toBe(rec.loaded);
    if (rec.loaded) expect(r.result !== undefined ? hex64(r.result) : undefined).toBe(rec.result);
    else expect(r.verifierMessage).toBe(rec.verifierMessage);
  });

  liveIt('the full 64 bits come back (high and low runs), and a bad program is a verdict, not an error', () => {
    const r = hostRunConformance([...b.ldImm64(0, 0x8000000100000002n), b.exit()], new Uint8Array(0));
    expect(r.result).toBe(0x8000000100000002n);
    const bad = hostRun([b.exit()], new Uint8Array(MIN_PACKET)); // R0 never written
    expect(bad.loaded).toBe(false);
    expect(bad.errno).toBe(13); // EACCES
    expect(verifierMessage(bad.log)).toBe('R0 !read_ok');
  });

  liveIt('jited bytes of the JIT programs are as recorded (same kernel) and xlated is the program', () => {
    for (const p of JIT_PROGRAMS) {
      const r = hostRun(p.insns, new Uint8Array(64));
      expect(r.loaded, p.name).toBe(true);
      expect(toHex(r.xlated), p.name).toBe(toHex(encode(p.insns)));
      if (r.kernel === jit.kernel) expect(toHex(r.jited), p.name).toBe(jit.programs[p.name]!.jited);
    }
  });
});

// --- (c) JIT bytes ----------------------------------------------------------------------------

/**
 * Splits a JIT image into prologue, body and epilogue by disassembly. Prologue: nops, endbr64,
 * the 6.x tail-call-counter `xor eax, eax` (before `push rbp`), `push rbp; mov rbp, rsp`, then
 * endbr64, `sub rsp, N`, pushes of the callee-saved registers and v5.5's `push 0`. Epilogue, from
 * the end: `ret` (or a return-thunk `jmp`) with any SLS `int3`s, `leave`, and at most as many
 * pops of callee-saved registers as the prologue pushed. The body is what is left.
 */
function split(code: Uint8Array, dis: (c: Uint8Array) => X86Insn[]): { prologue: string[]; body: string; epilogue: string[] } {
  const insns = dis(code);
  const text = (i: X86Insn): string => `${i.mnemonic} ${i.opStr}`.trim();
  const CALLEE = /^push (rbx|r13|r14|r15|0)$/;
  let k = 0, phase = 0, pushes = 0;
  for (; k < insns.length; k++) {
    const t = text(insns[k]!);
    if (phase === 0 && (t.startsWith('nop') || t === 'endbr64' || t === 'xor eax, eax' || t === 'xor rax, rax')) continue;
    if (phase === 0 && t === 'push rbp') { phase = 1; continue; }
    if (phase === 1 && t === 'mov rbp, rsp') { phase = 2; continue; }
    if (phase === 2 && (t === 'endbr64' || /^sub rsp, /.test(t))) continue;
    if (phase === 2 && CALLEE.test(t)) { pushes++; continue; }
    break;
  }
  if (phase !== 2) throw new Error(`no push rbp; mov rbp, rsp in ${toHex(code)}`);
  let e = insns.length;
  while (e > k && text(insns[e - 1]!) === 'int3') e--;
  if (e > k && (text(insns[e - 1]!) === 'ret' || insns[e - 1]!.mnemonic === 'jmp')) e--;
  if (e > k && text(insns[e - 1]!) === 'leave') e--;
  for (let pops = 0; pops < pushes && e > k && /^pop (rbx|r13|r14|r15)$/.test(text(insns[e - 1]!)); pops++) e--;
  const hexOf = (l: X86Insn[]): string => l.map((i) => toHex(i.bytes)).join(' ');
  return { prologue: insns.slice(0, k).map(text), body: hexOf(insns.slice(k, e)), epilogue: insns.slice(e).map(text) };
}

describe(`JIT bytes: bpfemu (v5.5 x86 JIT rules) vs the host kernel ${jit.kernel} (fixture)`, () => {
  let sys: System;
  let rt: BpfRuntime;
  beforeAll(async () => { sys = await boot(); rt = new BpfRuntime(sys.kernel, x86_64); });
  afterAll(() => sys.close());
  const dis = (c: Uint8Array): X86Insn[] => sys.disassembler.disasm(c, 0n);
  const emuImage = (insns: Insn[]): { code: Uint8Array; ret: bigint } => {
    const p = rt.load(insns);
    const code = new Uint8Array(p.jit!.image.code);
    const ret = rt.runJit(p, 0n);
    rt.free(p);
    return { code, ret };
  };

  it('the fixture holds the same programs, each accepted, its xlated image the program itself', () => {
    expect(Object.keys(jit.programs)).toEqual(JIT_PROGRAMS.map((p) => p.name));
    for (const p of JIT_PROGRAMS) {
      const f = jit.programs[p.name]!;
      expect(f.insns, p.name).toBe(toHex(encode(p.insns)));
      expect(f.xlated, p.name).toBe(f.insns); // nothing for the verifier to rewrite in these
      expect(f.loaded).toBe(true);
    }
  });

  // Prologue and epilogue, as recorded on 6.18.44 (x86-64, jit_harden 0):
  //   host 6.18: nop5 (trampoline site); nop3 `0f 1f 00` (where `xor eax, eax` initialises
  //              tail_call_cnt when a tail call is reachable: "keep the same instruction layout");
  //              push rbp; mov rbp, rsp; `sub rsp, N` only when the stack is used; callee-saved
  //              registers pushed only when the program uses them (none here); no tail_call_cnt
  //              push. Epilogue `leave; ret`: no endbr64 (this kernel/CPU has no IBT in force) and
  //              a plain `ret` (no return thunk, no SLS int3).
  //   v5.5 (bpfemu): nop5; push rbp; mov rbp, rsp; `sub rsp, N` always (imm32, even 0); push rbx,
  //              r13, r14, r15 always; push 0 (tail_call_cnt). Epilogue: pop rbx (the counter
  //              slot); pop r15, r14, r13, rbx; leave; ret.
  it.each(JIT_PROGRAMS.map((p) => p.name))('%s: prologue and epilogue are each kernel\'s own', (name) => {
    const p = JIT_PROGRAMS.find((x) => x.name === name)!;
    const host = split(Uint8Array.from(bytes(jit.programs[name]!.jited)), dis);
    const emu = split(emuImage(p.insns).code, dis);
    const depth = name === 'stack-store-load' ? 8 : 0;
    expect(emu.prologue).toEqual(['nop dword ptr [rax + rax]', 'push rbp', 'mov rbp, rsp', `sub rsp, ${depth}`,
      'push rbx', 'push r13', 'push r14', 'push r15', 'push 0']);
    expect(emu.epilogue).toEqual(['pop rbx', 'pop r15', 'pop r14', 'pop r13', 'pop rbx', 'leave', 'ret']);
    expect(host.prologue).toEqual(['nop dword ptr [rax + rax]', 'nop dword ptr [rax]', 'push rbp', 'mov rbp, rsp',
      ...(depth ? [`sub rsp, ${depth}`] : [])]);
    expect(host.epilogue).toEqual(['leave', 'ret']);
  });

  // Bodies: the same emit rules give the same bytes.
  const same: { name: string; body: string }[] = [
    { name: 'mov-add', body: 'b8 01 00 00 00 48 83 c0 02' },                           // mov eax, 1; add rax, 2
    { name: 'mov32-neg', body: 'b8 fe ff ff ff' },                                      // mov eax, 0xfffffffe (zero-extends)
    { name: 'stack-store-load', body: 'bf 2a 00 00 00 48 89 7d f8 48 8b 45 f8' },       // mov edi, 42; mov [rbp-8], rdi; mov rax, [rbp-8]
    { name: 'jne-loop', body: '31 c0 bf 0a 00 00 00 48 83 c0 03 48 83 ef 01 48 85 ff 75 f3' }, // xor; mov; add; sub; test; jne rel8 back
    { name: 'bswap', body: '48 b8 08 07 06 05 04 03 02 01 48 0f c8 0f c8' },          // movabs; bswap rax; bswap eax
    { name: 'lddw', body: '48 b8 88 77 66 55 44 33 22 11' },                           // movabs rax, imm64
  ];
  it.each(same)('$name: the body bytes agree', ({ name, body }) => {
    const p = JIT_PROGRAMS.find((x) => x.name === name)!;
    const host = split(Uint8Array.from(bytes(jit.programs[name]!.jited)), dis);
    const emu = split(emuImage(p.insns).code, dis);
    expect(emu.body.replace(/ /g, '')).toBe(body.replace(/ /g, ''));
    expect(host.body).toBe(emu.body);
  });

  // Bodies where the encodings legitimately differ between v5.5 and the host's 6.x: the same
  // instructions around them agree, and each side is what its kernel's emit rule says.
  const differs: { name: string; around: string; v55: string; host: string[]; why: string }[] = [
    {
      name: 'mul-reg', around: 'b8 06 00 00 00 bf 07 00 00 00', // mov eax, 6; mov edi, 7
      // v5.5: push rdx; mov r11, rax; mov rax, rdi; mul r11; pop rdx (dst is rax: no push/pop rax)
      v55: '52 49 89 c3 48 89 f8 49 f7 e3 5a',
      // "bpf,x64 Emit IMUL instead of MUL for x86-64" (Jie Meng, bpf-next Sept 2021, after v5.5):
      host: ['48 0f af c7'], // imul rax, rdi
      why: 'BPF_MUL: v5.5 uses mul through rax/rdx; 6.x uses imul',
    },
    {
      name: 'lsh-reg', around: 'b8 01 00 00 00 bf 05 00 00 00', // mov eax, 1; mov edi, 5
      // v5.5: push rcx; mov rcx, rdi; shl rax, cl; pop rcx
      v55: '51 48 89 f9 48 d3 e0 59',
      // "bpf,x64: use shrx/sarx/shlx when available" (Jie Meng, bpf-next Oct 2022): on a CPU with
      // BMI2, shlx rax, rax, rdi; without BMI2 6.x still emits v5.5's sequence.
      host: ['c4 e2 c1 f7 c0', '51 48 89 f9 48 d3 e0 59'],
      why: 'BPF_LSH by register: 6.x uses BMI2 shlx when the CPU has it',
    },
  ];
  it.each(differs)('$name: differs as documented ($why)', ({ name, around, v55, host: hostForms }) => {
    const p = JIT_PROGRAMS.find((x) => x.name === name)!;
    const host = split(Uint8Array.from(bytes(jit.programs[name]!.jited)), dis);
    const emu = emuImage(p.insns);
    const emuBody = split(emu.code, dis).body.replace(/ /g, '');
    const hostBody = host.body.replace(/ /g, '');
    const a = around.replace(/ /g, '');
    expect(emuBody).toBe(a + v55.replace(/ /g, ''));
    expect(hostBody.startsWith(a)).toBe(true);
    expect(hostForms.map((h) => h.replace(/ /g, ''))).toContain(hostBody.slice(a.length));
    expect(emu.ret).toBe(BigInt(jit.programs[name]!.retval)); // and both compute the same value
  });

  it('every JIT program returns in bpfemu what it returned in the host kernel', () => {
    for (const p of JIT_PROGRAMS) expect(BigInt.asUintN(32, emuImage(p.insns).ret), p.name).toBe(BigInt(jit.programs[p.name]!.retval));
  });
});
