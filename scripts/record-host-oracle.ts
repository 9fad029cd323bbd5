/**
 * @fileoverview Records the host's real kernel's answers as fixtures (shared/DESIGN.md, "Testing
 * method": the host kernel is a second oracle). Needs root and a kernel that accepts bpf() for XDP.
 *
 *   npx tsx scripts/record-host-oracle.ts          conformance: test/fixtures/host-kernel/conformance.json
 *   npx tsx scripts/record-host-oracle.ts --jit    JIT bytes:   test/fixtures/host-kernel/jit.json
 *
 * Conformance: every ../shared/conformance/*.data runs as XDP through test/host/oracle.ts's
 * wrapping (two loads: the low and the high 32 bits of R0). Prints the counts and the reject
 * reasons, grouped. Exit 3 (nothing written) when the host refuses bpf().
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readDataFile } from '../bpf/asm/datafile.ts';
import { encode } from '../bpf/isa/insn.ts';
import {
  recordScriptStart, hostRun, hostRunConformance, hex64, toHex, JIT_PROGRAMS, WRAP_PROLOGUE_INSNS, MIN_PACKET,
} from '../test/host/oracle.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const CONFORMANCE = resolve(ROOT, '../shared/conformance');
const OUT = join(ROOT, 'test/fixtures/host-kernel');

export interface ConformanceRecord {
  loaded: boolean;
  errno: number;
  /** The verifier's last line on reject (indices of the wrapped program). */
  verifierMessage?: string;
  rejectedHalf?: 'low' | 'high';
  /** The 64-bit R0 the kernel computed, when it loaded and ran. */
  result?: string;
  runErrno?: number;
  /** The file's `-- result`. */
  expected: string;
  /** Ran, and result === expected. */
  matchesExpected: boolean;
}

const kernel = execFileSync('uname', ['-r'], { encoding: 'utf8' }).trim();
const recorded = new Date().toISOString();

function recordConformance(): void {
  const files = readdirSync(CONFORMANCE).filter((f) => f.endsWith('.data')).sort();
  const results: Record<string, ConformanceRecord> = {};
  for (const f of files) {
    const d = readDataFile(join(CONFORMANCE, f));
    if (d.result === undefined) throw new Error(`${f}: no -- result (the recorder expects every file to have one)`);
    const r = hostRunConformance(d.insns, d.mem);
    const rec: ConformanceRecord = { loaded: r.loaded, errno: r.errno, expected: hex64(d.result), matchesExpected: false };
    if (r.verifierMessage !== undefined) rec.verifierMessage = r.verifierMessage;
    if (r.rejectedHalf !== undefined) rec.rejectedHalf = r.rejectedHalf;
    if (r.runErrno !== undefined) rec.runErrno = r.runErrno;
    if (r.result !== undefined) {
      rec.result = hex64(r.result);
      rec.matchesExpected = r.result === d.result;
    }
    results[f] = rec;
  }
  mkdirSync(OUT, { recursive: true });
  const fixture = {
    kernel, recorded,
    wrapping: `test/host/oracle.ts wrapForXdp: ${WRAP_PROLOGUE_INSNS}-insn prologue (xdp_md -> R1 = data, R2 = mem length, bounds-checked), `
      + `main-program exits -> goto epilogue (w0 = w0 | r0 >>= 32), two loads; packet = mem zero-padded to ${MIN_PACKET} bytes`,
    results,
  };
  writeFileSync(join(OUT, 'conformance.json'), `${JSON.stringify(fixture, null, 2)}\n`);

  const recs = Object.entries(results);
  const ran = recs.filter(([, r]) => r.result !== undefined);
  const rejected = recs.filter(([, r]) => !r.loaded);
  const mismatched = ran.filter(([, r]) => !r.matchesExpected);
  const runFailed = recs.filter(([, r]) => r.loaded && r.result === undefined);
  console.log(`kernel ${kernel}: ${recs.length} files, ${ran.length} ran, ${rejected.length} rejected, ${runFailed.length} loaded but failed to run, ${mismatched.length} result mismatches`);
  const groups = new Map<string, string[]>();
  for (const [f, r] of rejected) {
    // Group on the message with numbers (insn indices, registers' values) blanked.
    const key = `errno ${r.errno}: ${(r.verifierMessage ?? '').replace(/\d+/g, 'N')}`;
    groups.set(key, [...(groups.get(key) ?? []), f]);
  }
  for (const [k, fs] of [...groups].sort((a, b) => b[1].length - a[1].length)) console.log(`  ${fs.length} × ${k}\n      ${fs.join(' ')}`);
  for (const [f, r] of mismatched) console.log(`  MISMATCH ${f}: kernel ${r.result}, file ${r.expected}`);
  for (const [f, r] of runFailed) console.log(`  RUN FAILED ${f}: errno ${r.runErrno}`);
}

function recordJit(): void {
  const programs: Record<string, { insns: string; loaded: boolean; retval: number; jited: string; xlated: string; log?: string }> = {};
  for (const p of JIT_PROGRAMS) {
    const r = hostRun(p.insns, new Uint8Array(64));
    if (!r.loaded) throw new Error(`${p.name}: the host kernel refused it: ${r.log}`);
    if (r.jited.length === 0) throw new Error(`${p.name}: no jited bytes (net.core.bpf_jit_enable off, or kptr_restrict hides them)`);
    programs[p.name] = { insns: toHex(encode(p.insns)), loaded: r.loaded, retval: r.retval, jited: toHex(r.jited), xlated: toHex(r.xlated) };
    console.log(`${p.name}: ${toHex(r.jited)}`);
  }
  mkdirSync(OUT, { recursive: true });
  writeFileSync(join(OUT, 'jit.json'), `${JSON.stringify({ kernel, recorded, programType: 'XDP', programs }, null, 2)}\n`);
}

const args = recordScriptStart('record-host-oracle.ts', ['--jit']);
if (args.includes('--jit')) recordJit();
else recordConformance();
