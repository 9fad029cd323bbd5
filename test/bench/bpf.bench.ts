/**
 * @fileoverview BPF engine figures on the shared benchmark programs (../shared/bench/*.data),
 * beside the peers' figures in its README (ubpf's interpreter and JIT, the Linux JIT): dynamic
 * BPF instructions (counted by the interpreter), interpreter time and rate, JIT time, guest
 * x86 instructions per BPF instruction (counted exactly by a code hook over the image), JIT
 * code size, the JIT/interpreter time ratio, and JIT compile time per 1000 instructions.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { boot } from '../../index.ts';
import { readDataFile } from '../../bpf/asm/datafile.ts';
import { conformanceFiles } from '../../bpf/conformance.ts';
import { randomProgram } from '../bpf/randprog.ts';
import { interleave, median, report, type Line } from './util.ts';

const DIR = fileURLToPath(new URL('../../../shared/bench/', import.meta.url));

/** The peers' table of ../shared/bench/README.md: program → [ubpf interp µs, ubpf JIT µs, Linux JIT µs]. */
function peerFigures(): Map<string, number[]> {
  const out = new Map<string, number[]>();
  let text = '';
  try { text = readFileSync(DIR + 'README.md', 'utf8'); } catch { return out; }
  for (const line of text.split('\n')) {
    const cells = line.split('|').map((c) => c.trim());
    if (cells.length < 6 || !/^[a-z_]+$/.test(cells[1] ?? '')) continue;
    const us = cells.slice(3, 6).map((c) => { const m = /([\d.,]+) µs/.exec(c); return m ? Number(m[1]!.replace(/,/g, '')) : NaN; });
    out.set(cells[1]!, us);
  }
  return out;
}

export async function bpfBench(): Promise<Line[]> {
  const sys = await boot();
  const lines: Line[] = [];
  const peers = peerFigures();
  const mem = sys.kernel.slab.kzalloc(4096)!;
  const m = sys.kernel.machine;
  for (const path of conformanceFiles(DIR)) {
    const d = readDataFile(path);
    const name = d.name.replace(/\.data$/, '');
    sys.kernel.machine.mem.view(mem, 4096).set(d.mem);
    const p = sys.bpf.load(d.insns, { name });
    const args = [mem, BigInt(d.mem.length)];
    const dyn = sys.bpf.run(p, args, 'interp').insns;
    // Exact guest instructions of one JIT run: a code hook over the image.
    let guest = 0;
    const img = p.jit!.image;
    const h = m.hookCode(() => { guest++; }, img.image, img.image + BigInt(img.code.length) - 1n);
    sys.bpf.run(p, args, 'jit');
    m.removeHook(h);
    const [ti, tj] = interleave(5, [() => sys.bpf.run(p, args, 'interp'), () => sys.bpf.run(p, args, 'jit')]);
    const interpUs = median(ti) * 1000, jitUs = median(tj) * 1000;
    const [ubpfI, ubpfJ, linuxJ] = peers.get(name) ?? [];
    lines.push(
      [`bpf.${name}.dynamic_insns`, dyn],
      [`bpf.${name}.interp_us`, +interpUs.toFixed(1)],
      [`bpf.${name}.interp_minsns_per_sec`, +(dyn / interpUs).toFixed(1)],
      [`bpf.${name}.jit_us`, +jitUs.toFixed(1)],
      [`bpf.${name}.jit_guest_insns_per_bpf_insn`, +(guest / dyn).toFixed(3)],
      [`bpf.${name}.jit_code_bytes`, img.code.length],
      [`bpf.${name}.jit_vs_interp_time_ratio`, +(jitUs / interpUs).toFixed(3)],
    );
    if (ubpfI !== undefined && !Number.isNaN(ubpfI)) lines.push([`bpf.${name}.interp_vs_ubpf_interp_time_ratio`, +(interpUs / ubpfI).toFixed(2)]);
    if (ubpfJ !== undefined && !Number.isNaN(ubpfJ)) lines.push([`bpf.${name}.jit_vs_ubpf_jit_time_ratio`, +(jitUs / ubpfJ).toFixed(2)]);
    if (linuxJ !== undefined && !Number.isNaN(linuxJ)) lines.push([`bpf.${name}.jit_vs_linux_jit_time_ratio`, +(jitUs / linuxJ).toFixed(2)]);
    sys.bpf.free(p);
  }
  // JIT compile time: load (fixups, passes, placement) of 1000-instruction programs.
  const progs = [1, 2, 3, 4, 5].map((s) => randomProgram(s, 1000));
  const n = progs.reduce((a, p) => a + p.length, 0);
  const helpers = [{ id: 1, name: 'bench_helper', fn: () => 0n }];
  const [tc] = interleave(3, [() => { for (const p of progs) sys.bpf.free(sys.bpf.load(p, { helpers, name: 'compile' })); }]);
  lines.push(['bpf.jit_compile_ms_per_1000_insns', +(median(tc!) / n * 1000).toFixed(3)]);
  sys.close();
  return lines;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) report(await bpfBench());
