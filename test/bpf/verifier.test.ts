/**
 * @fileoverview The verifier against the kernel's verifier selftests: each row a program with
 * the kernel's verdict and, for a rejection, its message (test/bpf/verifier/cases_*.ts).
 */
import { describe, it } from 'vitest';
import { checkCase, type VCase } from './verifier/harness.ts';
import { BASIC } from './verifier/cases_basic.ts';
import { MAP } from './verifier/cases_map.ts';
import { PKT } from './verifier/cases_pkt.ts';
import { CALLS } from './verifier/cases_calls.ts';
import { LOOPS } from './verifier/cases_loops.ts';
import { BOUNDS } from './verifier/cases_bounds.ts';
import { STACK } from './verifier/cases_stack.ts';
import { CTX } from './verifier/cases_ctx.ts';
import { JMP32 } from './verifier/cases_jmp32.ts';

const tables: [string, VCase[]][] = [['basic', BASIC], ['maps', MAP], ['packets', PKT], ['bpf-to-bpf calls', CALLS], ['loops', LOOPS], ['bounds', BOUNDS], ['stack', STACK], ['context', CTX], ['jmp32', JMP32]];

for (const [name, cases] of tables) {
  describe(`verifier selftests: ${name}`, () => {
    it.each(cases.map((c) => [c.descr, c] as const))('%s', (_d, c) => checkCase(c));
  });
}
