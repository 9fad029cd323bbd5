/**
 * @fileoverview Running the BPF ISA conformance suite (bpf_conformance's `.data` files) on an
 * engine: `-- mem` copied into guest memory, R1 = its address, R2 = its length, helper 5 = the
 * suite's "unwind" helper (returns R1; the suite never passes it 0), and the result compared
 * with `-- result`, or a failure expected for `-- error`.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { readDataFile, type DataFile } from './asm/datafile.ts';
import type { BpfRuntime, Engine, HelperDef } from './prog.ts';

export const CONFORMANCE_HELPERS: readonly HelperDef[] = [
  { id: 5, name: 'conformance_unwind', fn: (r1) => r1, argc: 1 },
];

export interface ConformanceResult {
  file: string;
  engine: Engine;
  status: 'pass' | 'fail' | 'skip';
  want?: bigint;
  got?: bigint;
  /** Why it failed, or why it was skipped. */
  reason?: string;
}

const MEM_SIZE = 4096;

export function conformanceFiles(dir: string): string[] {
  return readdirSync(dir).filter((f) => f.endsWith('.data')).sort().map((f) => join(dir, f));
}

export class ConformanceRunner {
  private rt: BpfRuntime;
  private mem: bigint;

  constructor(rt: BpfRuntime) {
    this.rt = rt;
    const mem = rt.kernel.slab.kzalloc(MEM_SIZE);
    if (mem === undefined) throw new Error('conformance: cannot allocate the memory buffer');
    this.mem = mem;
  }

  run(path: string, engine: Engine): ConformanceResult {
    const file = path.split('/').pop()!;
    let d: DataFile;
    try { d = readDataFile(path); } catch (e) { return { file, engine, status: 'fail', reason: (e as Error).message }; }
    if (d.mem.length > MEM_SIZE) return { file, engine, status: 'skip', reason: `-- mem of ${d.mem.length} bytes is over ${MEM_SIZE}` };
    const view = this.rt.kernel.machine.mem.view(this.mem, MEM_SIZE);
    view.fill(0);
    view.set(d.mem);
    let got: bigint;
    try {
      const prog = this.rt.load(d.insns, { name: file.replace(/\.data$/, '').replace(/[^A-Za-z0-9_]/g, '_'), helpers: CONFORMANCE_HELPERS, jit: engine === 'jit' });
      try { got = this.rt.run(prog, [this.mem, BigInt(d.mem.length)], engine).r0; } finally { this.rt.free(prog); }
    } catch (e) {
      if (d.error !== undefined) return { file, engine, status: 'pass', reason: `failed as expected: ${(e as Error).message}` };
      return { file, engine, status: 'fail', ...(d.result !== undefined ? { want: d.result } : {}), reason: (e as Error).message };
    }
    if (d.error !== undefined) return { file, engine, status: 'fail', got, reason: `expected the error "${d.error}", but it returned 0x${got.toString(16)}` };
    const want = BigInt.asUintN(64, d.result ?? 0n);
    return got === want ? { file, engine, status: 'pass', want, got }
      : { file, engine, status: 'fail', want, got, reason: `returned 0x${got.toString(16)}, expected 0x${want.toString(16)}` };
  }

  free(): void { this.rt.kernel.slab.kfree(this.mem); }
}
