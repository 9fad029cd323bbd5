/**
 * @fileoverview The host's real kernel as a second oracle (shared/DESIGN.md, "Testing method").
 *
 * `images/build/host/bpfrun` (images/host/bpfrun.c, built by `make -C images`) loads a raw BPF
 * program into the host kernel as BPF_PROG_TYPE_XDP and test-runs it; this module spawns it:
 *
 *  - {@link hostBpfAvailable}: whether bpf() may be used here (the tool's `--probe`), with the
 *    reason when not (no tool, bpf() refused: exit 3). Live tests skip with it.
 *  - {@link hostRun}: one load + BPF_PROG_TEST_RUN + bpf_prog_info, parsed.
 *  - {@link wrapForXdp} / {@link hostRunConformance}: a conformance program (R1 = pointer to
 *    `-- mem`, R2 = its length, a 64-bit R0) run by the real kernel as XDP, which gives R1 =
 *    struct xdp_md and returns a 32-bit retval. The design (indices of the wrapped program):
 *
 *    ```
 *     0  r2 = *(u32 *)(r1 + 4)        xdp_md->data_end
 *     1  r1 = *(u32 *)(r1 + 0)        xdp_md->data
 *     2  r1 += N                      N = mem length
 *     3  if r1 <= r2 goto +2          the packet bounds check the verifier needs: R1 gets range N
 *     4  w0 = 0xbadbad                (never taken: the packet is the mem, padded to >= 14 bytes)
 *     5  exit
 *     6  r1 -= N                      keeps the range (a constant subtraction moves reg->off only)
 *     7  r2 = N
 *     8  goto +2                      to the program
 *     9  EPI: w0 = w0  |  r0 >>= 32   the low run | the high run
 *    10  exit
 *    11  the program, unchanged except: every `exit` of the MAIN program becomes `goto EPI`
 *    ```
 *
 *    The program is shifted as one block, so its jumps and `call local` immediates (both
 *    relative) need no change, and the epilogue sits inside the main program's range (the
 *    verifier refuses jumps between subprograms). Subprogram exits (from the first call target
 *    on) stay `exit`: they return to their caller. Only registers R1 and R2 are written before
 *    the program starts, so a read of R3..R9 is still "!read_ok" as in the conformance runner's
 *    terms. Two loads (low, high) give the 64-bit R0. Verifier messages name wrapped indices:
 *    subtract {@link WRAP_PROLOGUE_INSNS}.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { encode, isLdImm64, type Insn } from '../../bpf/isa/insn.ts';
import {
  BPF_ALU, BPF_DW, BPF_END, BPF_JNE, BPF_LSH, BPF_MUL, BPF_TO_BE,
  BPF_ADD, BPF_CALL, BPF_EXIT, BPF_JA, BPF_JLE, BPF_JMP, BPF_JMP32, BPF_MOV, BPF_PSEUDO_CALL,
  BPF_PSEUDO_FUNC, BPF_RSH, BPF_SUB, BPF_W,
} from '../../bpf/isa/opcodes.ts';
import * as b from '../../bpf/isa/build.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
/** The host tool, as `make -C images` builds it. */
export const BPFRUN = join(ROOT, 'images/build/host/bpfrun');

/** What the host kernel said about one program. */
export interface HostResult {
  loaded: boolean;
  /** The load's errno (0 when it loaded). */
  errno: number;
  /** The verifier log (log_level 1). */
  log: string;
  /** The test run's 32-bit retval (0 when not run). */
  retval: number;
  /** The test run's errno (0 when it ran, or when not loaded). */
  runErrno: number;
  dataOut: Uint8Array;
  /** jited_prog_insns / xlated_prog_insns from BPF_OBJ_GET_INFO_BY_FD. */
  jited: Uint8Array;
  xlated: Uint8Array;
  /** The host's `uname -r`. */
  kernel: string;
}

/** bpf() was refused by the host (the tool exited 3): callers skip with `reason`. */
export class HostRefusedError extends Error {
  readonly reason: string;
  constructor(reason: string) {
    super(`host bpf() refused: ${reason}`);
    this.name = 'HostRefusedError';
    this.reason = reason;
  }
}

const hexBytes = (s: string): Uint8Array => Uint8Array.from(s.match(/../g) ?? [], (x) => parseInt(x, 16));
export const toHex = (u: Uint8Array): string => Buffer.from(u).toString('hex');

/** Builds the tool if it is missing (a machine set up before it existed); undefined when built. */
function ensureTool(): string | undefined {
  if (existsSync(BPFRUN)) return undefined;
  const r = spawnSync('make', ['-s', '-C', join(ROOT, 'images'), BPFRUN], { encoding: 'utf8' });
  if (r.status !== 0 || !existsSync(BPFRUN)) return `${BPFRUN} is missing and 'make -C images' could not build it: ${(r.stderr || r.error?.message || '').trim()}`;
  return undefined;
}

let availability: { ok: boolean; reason?: string } | undefined;

/** Whether the host kernel accepts bpf() here (cached per process); `reason` when it does not. */
export function hostBpfAvailable(): { ok: boolean; reason?: string } {
  if (availability) return availability;
  const check = (): { ok: boolean; reason?: string } => {
    if (process.platform !== 'linux') return { ok: false, reason: `host is ${process.platform}, not Linux` };
    const missing = ensureTool();
    if (missing) return { ok: false, reason: missing };
    const r = spawnSync(BPFRUN, ['--probe'], { encoding: 'utf8' });
    if (r.status === 0) return { ok: true };
    const why = (r.stderr || r.error?.message || `exit ${r.status}`).trim();
    const who = process.getuid?.() === 0 ? '' : ' (not root)';
    return { ok: false, reason: r.status === 3 ? `${why}${who}` : `bpfrun --probe failed: ${why}` };
  };
  return (availability = check());
}

/**
 * Loads `insns` into the host kernel as XDP and test-runs it once on `packet` (at least 14 bytes:
 * ETH_HLEN, or the run fails with EINVAL in runErrno).
 * @throws HostRefusedError when bpf() itself is refused; Error when the tool fails otherwise.
 */
export function hostRun(insns: readonly Insn[], packet: Uint8Array): HostResult {
  const missing = ensureTool();
  if (missing) throw new Error(missing);
  const dir = mkdtempSync(join(tmpdir(), 'bpfrun-'));
  try {
    const prog = join(dir, 'prog.bin'), pkt = join(dir, 'packet.bin');
    writeFileSync(prog, encode(insns));
    writeFileSync(pkt, packet);
    const r = spawnSync(BPFRUN, [prog, `@${pkt}`], { encoding: 'utf8', maxBuffer: 16 << 20 });
    if (r.status === 3) throw new HostRefusedError(r.stderr.trim());
    if (r.status !== 0) throw new Error(`bpfrun exited ${r.status ?? r.signal}: ${(r.stderr || r.error?.message || '').trim()}`);
    const j = JSON.parse(r.stdout) as {
      loaded: boolean; errno: number; log: string; retval: number; run_errno: number;
      data_out: string; jited: string; xlated: string; kernel: string;
    };
    return {
      loaded: j.loaded, errno: j.errno, log: j.log, retval: j.retval, runErrno: j.run_errno,
      dataOut: hexBytes(j.data_out), jited: hexBytes(j.jited), xlated: hexBytes(j.xlated), kernel: j.kernel,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// --- conformance programs as XDP ------------------------------------------------------------

/** Instructions before the program in {@link wrapForXdp}'s output. */
export const WRAP_PROLOGUE_INSNS = 11;
/** Index of the epilogue (the half selector) in the wrapped program. */
const EPI = 9;
/** ETH_HLEN: bpf_prog_test_run_xdp() refuses shorter packets. */
export const MIN_PACKET = 14;

/**
 * Where the main program ends: the first subprogram's start (the lowest `call local` or
 * BPF_PSEUDO_FUNC target), else the program's length.
 */
export function mainProgramEnd(insns: readonly Insn[]): number {
  let end = insns.length;
  for (let i = 0; i < insns.length; i++) {
    const x = insns[i]!;
    const target = (x.code === (BPF_JMP | BPF_CALL) && x.src === BPF_PSEUDO_CALL) || (isLdImm64(x) && x.src === BPF_PSEUDO_FUNC)
      ? i + x.imm + 1 : undefined;
    if (target !== undefined && target > 0 && target < end) end = target;
    if (isLdImm64(x)) i++;
  }
  return end;
}

/** The conformance program as an XDP program returning the low or the high 32 bits of its R0. */
export function wrapForXdp(insns: readonly Insn[], memLen: number, half: 'low' | 'high'): Insn[] {
  if (!Number.isInteger(memLen) || memLen < 0 || memLen > 0x7fffffff) throw new RangeError(`bad mem length ${memLen}`);
  const out: Insn[] = [
    b.ldxMem(BPF_W, 2, 1, 4),
    b.ldxMem(BPF_W, 1, 1, 0),
    b.alu64Imm(BPF_ADD, 1, memLen),
    b.jmpReg(BPF_JLE, 1, 2, 2),
    b.mov32Imm(0, 0xbadbad),
    b.exit(),
    b.alu64Imm(BPF_SUB, 1, memLen),
    b.mov64Imm(2, memLen),
    b.ja(2),
    half === 'low' ? b.alu32Reg(BPF_MOV, 0, 0) : b.alu64Imm(BPF_RSH, 0, 32),
    b.exit(),
  ];
  if (out.length !== WRAP_PROLOGUE_INSNS || out[EPI + 1]!.code !== (BPF_JMP | BPF_EXIT)) throw new Error('wrapForXdp: prologue layout changed');
  const mainEnd = mainProgramEnd(insns);
  for (let i = 0; i < insns.length; i++) {
    const x = insns[i]!;
    if (i < mainEnd && x.code === (BPF_JMP | BPF_EXIT)) {
      const off = EPI - (WRAP_PROLOGUE_INSNS + i) - 1;
      // gotol (JMP32 | JA, offset in imm) past the s16 range of `goto`.
      out.push(off >= -0x8000 ? b.ja(off) : { code: BPF_JMP32 | BPF_JA, dst: 0, src: 0, off: 0, imm: off });
    } else {
      out.push({ ...x });
    }
    if (isLdImm64(x) && i + 1 < insns.length) out.push({ ...insns[++i]! });
  }
  return out;
}

/** The packet for a conformance run: the mem bytes, zero-padded to {@link MIN_PACKET}. */
export function conformancePacket(mem: Uint8Array): Uint8Array {
  const p = new Uint8Array(Math.max(mem.length, MIN_PACKET));
  p.set(mem);
  return p;
}

/** The verifier's verdict line: the last log line that is not a statistics line. */
export function verifierMessage(log: string): string {
  const lines = log.split('\n').map((l) => l.trim()).filter((l) => l !== '' && !/^(processed \d+ insns|verification time|stack depth|mark_read)/.test(l));
  return lines.at(-1) ?? '';
}

export interface ConformanceHostResult {
  loaded: boolean;
  errno: number;
  /** On reject: the verifier's last line (wrapped indices; see {@link WRAP_PROLOGUE_INSNS}). */
  verifierMessage?: string;
  /** Which half's load failed first, on reject. */
  rejectedHalf?: 'low' | 'high';
  /** The 64-bit R0, when both halves loaded and ran. */
  result?: bigint;
  /** A failed test run's errno. */
  runErrno?: number;
  kernel: string;
}

/** Runs a conformance program on the host kernel: two loads (low and high 32 bits of R0). */
export function hostRunConformance(insns: readonly Insn[], mem: Uint8Array): ConformanceHostResult {
  const packet = conformancePacket(mem);
  const halves: bigint[] = [];
  let kernel = '';
  for (const half of ['low', 'high'] as const) {
    const r = hostRun(wrapForXdp(insns, mem.length, half), packet);
    kernel = r.kernel;
    if (!r.loaded) return { loaded: false, errno: r.errno, verifierMessage: verifierMessage(r.log), rejectedHalf: half, kernel };
    if (r.runErrno !== 0) return { loaded: true, errno: 0, runErrno: r.runErrno, kernel };
    halves.push(BigInt(r.retval >>> 0));
  }
  return { loaded: true, errno: 0, result: (halves[1]! << 32n) | halves[0]!, kernel };
}

/** `0x` and 16 hex digits. */
export const hex64 = (v: bigint): string => `0x${BigInt.asUintN(64, v).toString(16).padStart(16, '0')}`;

// --- programs whose JIT bytes are compared (test/fixtures/host-kernel/jit.json) ---------------

/** Small programs for the JIT-bytes fixture: none touches its context, each ends in one exit. */
export const JIT_PROGRAMS: { name: string; insns: Insn[] }[] = [
  { name: 'mov-add', insns: [b.mov64Imm(0, 1), b.alu64Imm(BPF_ADD, 0, 2), b.exit()] },
  { name: 'mov32-neg', insns: [b.mov32Imm(0, -2), b.exit()] },
  { name: 'stack-store-load', insns: [b.mov64Imm(1, 42), b.stxMem(BPF_DW, 10, 1, -8), b.ldxMem(BPF_DW, 0, 10, -8), b.exit()] },
  {
    name: 'jne-loop', // r0 = 0; r1 = 10; do { r0 += 3; r1 -= 1 } while (r1 != 0)
    insns: [b.mov64Imm(0, 0), b.mov64Imm(1, 10), b.alu64Imm(BPF_ADD, 0, 3), b.alu64Imm(BPF_SUB, 1, 1), b.jmpImm(BPF_JNE, 1, 0, -3), b.exit()],
  },
  { name: 'bswap', insns: [...b.ldImm64(0, 0x0102030405060708n), { code: BPF_ALU | BPF_END | BPF_TO_BE, dst: 0, src: 0, off: 0, imm: 64 }, { code: BPF_ALU | BPF_END | BPF_TO_BE, dst: 0, src: 0, off: 0, imm: 32 }, b.exit()] },
  { name: 'lddw', insns: [...b.ldImm64(0, 0x1122334455667788n), b.exit()] },
  { name: 'mul-reg', insns: [b.mov64Imm(0, 6), b.mov64Imm(1, 7), b.alu64Reg(BPF_MUL, 0, 1), b.exit()] },
  { name: 'lsh-reg', insns: [b.mov64Imm(0, 1), b.mov64Imm(1, 5), b.alu64Reg(BPF_LSH, 0, 1), b.exit()] },
];

/**
 * The opening of every scripts/record-host-*.ts: checks the arguments (`allowed` flags only) and
 * that the host kernel takes bpf(); prints usage (exit 2) or the reason (exit 3) otherwise.
 */
export function recordScriptStart(script: string, allowed: readonly string[] = []): string[] {
  const args = process.argv.slice(2);
  if (args.some((a) => !allowed.includes(a))) {
    console.error(`usage: ${script}${allowed.map((a) => ` [${a}]`).join('')}`);
    process.exit(2);
  }
  const avail = hostBpfAvailable();
  if (!avail.ok) {
    console.error(`${script.replace(/\.ts$/, '')}: the host kernel cannot be used: ${avail.reason}`);
    process.exit(3);
  }
  return args;
}
