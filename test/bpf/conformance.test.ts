/**
 * @fileoverview The bpf_conformance suite (/work/shared/conformance/*.data, all ISA versions)
 * through each execution engine: `-- mem` copied into guest memory, R1 = its address, R2 = its
 * length; helper 5 returns R1 (the suite's "unwind" helper, never given 0 here); each file must
 * give its `-- result` (or fail with its `-- error`). An engine is one entry of ENGINES.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Machine } from '../../emulator/machine.ts';
import { PAGE_SIZE, PROT_R, PROT_W } from '../../emulator/memory.ts';
import { readDataFile, type DataFile } from '../../bpf/asm/datafile.ts';
import { bpfRun, stackRegion, type BpfHelper } from '../../bpf/interp/interpreter.ts';

const CONFORMANCE = fileURLToPath(new URL('../../../shared/conformance/', import.meta.url));
const files = readdirSync(CONFORMANCE).filter((f) => f.endsWith('.data')).sort();

const STACK = 0xffff888000100000n, STACK_SIZE = 0x10000;
const MEM = 0xffffc90000000000n, MEM_SIZE = PAGE_SIZE;

/** The conformance suite's helpers: 5 returns its first argument. */
const HELPERS = new Map<number, BpfHelper>([[5, (r1) => r1]]);

let m: Machine;
beforeAll(() => {
  m = new Machine();
  m.mem.map(STACK, STACK_SIZE, PROT_R | PROT_W, { name: 'bpf stack' });
  m.mem.map(MEM, MEM_SIZE, PROT_R | PROT_W, { name: 'mem' });
});
afterAll(() => m.close());

/** Runs a data file's program with its memory; returns R0. */
type Engine = (d: DataFile, mem: bigint) => bigint;
const ENGINES: Record<string, Engine> = {
  interp: (d, mem) => bpfRun({ insns: d.insns }, [mem, BigInt(d.mem.length)], {
    mem: m.mem, stack: stackRegion(STACK, STACK_SIZE), helpers: HELPERS, maxInsns: 1_000_000,
  }).r0,
};

describe.each(Object.keys(ENGINES))('conformance (%s)', (engine) => {
  it('has all 313 files', () => expect(files).toHaveLength(313));

  it.each(files)('%s', (f) => {
    const d = readDataFile(CONFORMANCE + f);
    expect(d.mem.length).toBeLessThanOrEqual(MEM_SIZE);
    const view = m.mem.view(MEM, MEM_SIZE);
    view.fill(0);
    view.set(d.mem);
    const run = (): bigint => ENGINES[engine]!(d, MEM);
    if (d.error !== undefined) expect(run).toThrow(d.error);
    else expect(run().toString(16)).toBe(d.result!.toString(16));
  });
});
