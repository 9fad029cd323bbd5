/**
 * @fileoverview Audit figures: the cost of a program load + close through bpf() with audit off
 * and with audit on (`-a always,exit -F arch=x86_64 -S bpf`: LOAD, SYSCALL, PROCTITLE, EOE and
 * UNLOAD records through kauditd to the log), interleaved in one run, and their ratio; for the
 * interpreter (where a load is cheapest, so audit's share is largest) and the JIT.
 */
import { pathToFileURL } from 'node:url';
import { boot } from '../../index.ts';
import { BPF_PROG_LOAD } from '../../bpf/syscall/attr.ts';
import { auditctl } from '../../cli/auditctl.ts';
import { interleave, median, report, type Line } from './util.ts';

export async function auditBench(): Promise<Line[]> {
  const sys = await boot();
  const b = sys.bpfSys, a = sys.kernel.audit;
  const insns = b.stage(Buffer.from('b7000000000000009500000000000000', 'hex')), lic = b.stage(Buffer.from('GPL\0'));
  const N = 500;
  const cycles = (): void => {
    for (let i = 0; i < N; i++) sys.kernel.current.files.close(b.call(BPF_PROG_LOAD, { prog_type: 1, insn_cnt: 2, insns, license: lic }).ret);
  };
  auditctl(a, ['-a', 'always,exit', '-F', 'arch=x86_64', '-S', 'bpf']);
  const off = (): void => { auditctl(a, ['-e', '0']); cycles(); };
  const on = (): void => { auditctl(a, ['-e', '1']); cycles(); a.records(); a.clearLog(); };
  const lines: Line[] = [];
  for (const engine of ['interp', 'jit'] as const) {
    b.jitEnabled = engine === 'jit';
    const [tOff, tOn] = interleave(7, [off, on]);
    const us = (ms: number): number => +((ms * 1000) / N).toFixed(2);
    const mOff = median(tOff!), mOn = median(tOn!);
    lines.push(
      [`audit.load_close_us_audit_off_${engine}`, us(mOff)],
      [`audit.load_close_us_audit_on_${engine}`, us(mOn)],
      [`audit.load_close_on_off_ratio_${engine}`, +(mOn / mOff).toFixed(3)],
    );
  }
  if (a.lost) throw new Error(`audit bench: ${a.lost} records lost`);
  sys.close();
  return lines;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) report(await auditBench());
