/**
 * @fileoverview Trampoline figures: crossings into TypeScript per traced call (stats off must be
 * 0), exact guest instructions of a traced call with 0, 1 fentry, 1 fentry + 1 fexit and 40
 * programs, traced/untraced wall-time ratios (interleaved), and attach/detach times.
 */
import { pathToFileURL } from 'node:url';
import { boot, type System } from '../../index.ts';
import { BPF_PROG_LOAD, BPF_RAW_TRACEPOINT_OPEN } from '../../bpf/syscall/attr.ts';
import { BTF_KIND } from '../../bpf/btf/btf.ts';
import { encode } from '../../bpf/isa/insn.ts';
import { assemble } from '../../bpf/asm/assembler.ts';
import { interleave, median, report, type Line } from './util.ts';

const FUNC = 'bpf_fentry_test1';

function loadProg(sys: System, fexit: boolean): number {
  const b = sys.bpfSys;
  const insns = assemble('mov %r0, 0\nexit');
  const ui = b.stage(encode(insns)), lic = b.stage(Buffer.from('GPL\0'));
  const fd = b.call(BPF_PROG_LOAD, {
    prog_type: 26, expected_attach_type: fexit ? 25 : 24, attach_btf_id: sys.btf.findByNameKind(FUNC, BTF_KIND.FUNC)!.id,
    insns: ui, insn_cnt: insns.length, license: lic,
  }).ret;
  b.unstage(ui); b.unstage(lic);
  if (fd < 0) throw new Error(`bench: PROG_LOAD ${fd}`);
  return fd;
}

export async function trampolineBench(): Promise<Line[]> {
  const sys = await boot();
  const k = sys.kernel, m = k.machine, files = k.current.files;
  const addr = k.addressOf(FUNC);
  const attach = (fd: number): number => sys.bpfSys.call(BPF_RAW_TRACEPOINT_OPEN, { name: 0, prog_fd: fd }).ret;
  const insnsOfCall = (): number => {
    let n = 0;
    const h = m.hookCode(() => { n++; });
    try { m.call(addr, [1]); } finally { m.removeHook(h); }
    return n;
  };
  const crossingsOfCall = (): number => { const c = m.crossings; m.call(addr, [1]); return m.crossings - c; };
  const lines: Line[] = [];

  lines.push(['trampoline.guest_insns.untraced', insnsOfCall()]);
  const fentry = loadProg(sys, false), fexit = loadProg(sys, true);
  const lf = attach(fentry);
  lines.push(['trampoline.guest_insns.1_fentry', insnsOfCall()]);
  lines.push(['trampoline.crossings_per_call.stats_off', crossingsOfCall()]);
  sys.bpfSys.statsEnabled = true;
  lines.push(['trampoline.crossings_per_call.stats_on_1_prog', crossingsOfCall()]);
  sys.bpfSys.statsEnabled = false;
  const lx = attach(fexit);
  lines.push(['trampoline.guest_insns.1_fentry_1_fexit', insnsOfCall()]);

  // Wall time: untraced vs traced (1 fentry + 1 fexit), interleaved in this process.
  const N = 2000;
  const loop = (): void => { for (let i = 0; i < N; i++) m.call(addr, [1]); };
  const [tTraced] = interleave(5, [loop]);
  files.close(lx); files.close(lf);
  const [tPlain] = interleave(5, [loop]);
  lines.push(['trampoline.wall_ratio.traced_2_progs_vs_untraced', +(median(tTraced!) / median(tPlain!)).toFixed(2)]);

  // Attach/detach time at 1 and at 40 programs on one trampoline.
  const progs = Array.from({ length: 40 }, (_, i) => loadProg(sys, i % 2 === 1));
  let t = performance.now();
  const one = attach(progs[0]!);
  const attach1 = performance.now() - t;
  t = performance.now(); files.close(one); const detach1 = performance.now() - t;
  const links: number[] = [];
  t = performance.now();
  for (const p of progs) links.push(attach(p));
  const attach40 = (performance.now() - t) / 40;
  lines.push(['trampoline.guest_insns.40_progs', insnsOfCall()]);
  const [t40] = interleave(3, [loop]);
  t = performance.now();
  for (const l of links.reverse()) files.close(l);
  const detach40 = (performance.now() - t) / 40;
  lines.push(
    ['trampoline.wall_ratio.traced_40_progs_vs_untraced', +(median(t40!) / median(tPlain!)).toFixed(2)],
    ['trampoline.attach_ms.first_prog', +attach1.toFixed(3)],
    ['trampoline.detach_ms.last_prog', +detach1.toFixed(3)],
    ['trampoline.attach_ms.avg_of_40', +attach40.toFixed(3)],
    ['trampoline.detach_ms.avg_of_40', +detach40.toFixed(3)],
  );
  sys.close();
  return lines;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) report(await trampolineBench());
