/**
 * @fileoverview Every table of verifier selftest programs, by name: what test/bpf/verifier.test.ts
 * runs, what the bench times, and what scripts/record-host-verifier.ts loads in the host kernel.
 */
import type { VCase } from './harness.ts';
import { BASIC } from './cases_basic.ts';
import { MAP } from './cases_map.ts';
import { PKT } from './cases_pkt.ts';
import { CALLS } from './cases_calls.ts';
import { LOOPS } from './cases_loops.ts';
import { BOUNDS } from './cases_bounds.ts';
import { STACK } from './cases_stack.ts';
import { CTX } from './cases_ctx.ts';
import { JMP32 } from './cases_jmp32.ts';
import { PRUNE } from './cases_prune.ts';
import { MISC } from './cases_misc.ts';
import { ARRAY } from './cases_array.ts';

export const TABLES: readonly (readonly [name: string, cases: readonly VCase[]])[] = [
  ['basic', BASIC], ['maps', MAP], ['packets', PKT], ['bpf-to-bpf calls', CALLS], ['loops', LOOPS], ['bounds', BOUNDS], ['stack', STACK],
  ['context', CTX], ['jmp32', JMP32], ['pruning and precision', PRUNE], ['spills, xadd, dead code', MISC], ['array access and variable offsets', ARRAY],
];

/** Each case under a unique key: `table/descr`. */
export const CASES_BY_KEY: ReadonlyMap<string, VCase> = new Map(TABLES.flatMap(([t, cs]) => cs.map((c) => [`${t}/${c.descr}`, c] as const)));
