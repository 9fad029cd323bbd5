/**
 * @fileoverview The verifier against the kernel's verifier selftests: each row a program with
 * the kernel's verdict and, for a rejection, its message (test/bpf/verifier/cases_*.ts).
 */
import { describe, expect, it } from 'vitest';
import { runCase, type VCase } from './verifier/harness.ts';
import { TABLES } from './verifier/tables.ts';

/** The assertion every table row makes: verdict, and for rejects the message in the log. */
function checkCase(c: VCase): void {
  const r = runCase(c);
  const log = r.log.join('\n');
  if (c.result === 'accept') {
    expect(r.errno, `${c.descr}: rejected with errno ${r.errno}\n${log}`).toBe(0);
  } else {
    expect(r.errno, `${c.descr}: accepted\n${log}`).not.toBe(0);
    if (c.errno !== undefined) expect(r.errno).toBe(c.errno);
    if (c.errstr !== undefined) expect(log, c.descr).toContain(c.errstr);
  }
  if (c.logSeq) {
    let at = 0;
    for (const want of c.logSeq) {
      const i = log.indexOf(want, at);
      expect(i, `${c.descr}: '${want}' (in order) not in\n${log}`).toBeGreaterThanOrEqual(0);
      at = i + want.length;
    }
  }
  if (c.insnProcessed !== undefined) expect(r.stats.insnProcessed).toBe(c.insnProcessed);
  expect(log).toMatch(/processed \d+ insns \(limit 1000000\) max_states_per_insn \d+ total_states \d+ peak_states \d+ mark_read \d+$/);
}

for (const [name, cases] of TABLES) {
  describe(`verifier selftests: ${name}`, () => {
    it.each(cases.map((c) => [c.descr, c] as const))('%s', (_d, c) => checkCase(c));
  });
}
