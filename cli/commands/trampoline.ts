/**
 * @fileoverview `bpfemu trampoline show FUNC [OBJ]` and `bpfemu trampoline diff FUNC --kernel A
 * --kernel B [OBJ]`: the BPF trampoline each kernel generation generates for the same function
 * and the same programs, read back from the live image and disassembled; `diff` prints two
 * profiles side by side, aligned (tramp/align.ts), with the instruction and byte counts of each.
 *
 * `--kernel` is also the global flag (one profile per machine). main.ts collects every
 * `--kernel` of the command line and hands the list to a command that declares its own
 * `--kernel` option, as `diff` does: so `trampoline diff F --kernel 5.5 --kernel 6.6` gets both.
 */
import type { Command } from 'commander';
import { emit, UsageError, type OutputOptions } from '../output.ts';
import { KERNEL_VERSIONS, kernelProfile, type KernelVersion } from '../../kernel/profile.ts';
import { getBootOptions } from '../session.ts';
import { alignTexts, renderSideBySide, type AlignedRow } from '../tramp/align.ts';
import { traceImage, TRACE_KINDS, type TraceKind, type TraceRequest, type TrampImage } from '../tramp/image.ts';

/** `--progs fentry,fexit,fmod_ret`: the kinds of the default programs. */
function parseKinds(s: string | undefined): TraceKind[] | undefined {
  if (s === undefined) return undefined;
  const kinds = s.split(',').map((x) => x.trim()).filter(Boolean);
  for (const k of kinds) if (!(TRACE_KINDS as readonly string[]).includes(k)) throw new UsageError(`--progs: unknown program kind '${k}' (${TRACE_KINDS.join(', ')})`);
  if (!kinds.length) throw new UsageError('--progs: give at least one program kind');
  return kinds as TraceKind[];
}

/** The programs: OBJ's, or the default ones of --progs (with --func-ip). */
const progsOf = (obj: string | undefined, o: { progs: string; funcIp?: boolean }): Omit<TraceRequest, 'kernel' | 'func'> =>
  (obj ? { obj } : { kinds: parseKinds(o.progs)!, ...(o.funcIp ? { funcIp: true } : {}) });

const profileOf = (v: string): KernelVersion => {
  try { return kernelProfile(v).version; } catch (e) { throw new UsageError((e as Error).message); }
};

/** An image as JSON: counts, where it lives, and every instruction. */
const sideJson = (t: TrampImage) => ({
  kernel: t.kernel, symbol: t.symbol, address: `0x${t.address.toString(16)}`, insns: t.insns.length, bytes: t.size,
  progs: t.progs, code: t.insns.map((i) => ({ offset: i.offset, bytes: i.bytes, text: i.text })),
});

const progList = (t: TrampImage): string => t.progs.map((p) => (p.name === p.kind ? p.kind : `${p.kind} ${p.name}`)).join(', ');
const header = (t: TrampImage): string => `${t.kernel}: ${t.symbol}, ${t.insns.length} instructions, ${t.size} bytes`;

export interface TrampolineDiff {
  func: string;
  a: TrampImage;
  b: TrampImage;
  rows: AlignedRow[];
  identical: number;
}

/** Both images and their alignment. */
export async function trampolineDiff(func: string, ka: KernelVersion, kb: KernelVersion, progs: Omit<TraceRequest, 'kernel' | 'func'> = {}): Promise<TrampolineDiff> {
  const a = await traceImage({ kernel: ka, func, ...progs });
  const b = await traceImage({ kernel: kb, func, ...progs });
  const rows = alignTexts(a.insns.map((i) => i.norm), b.insns.map((i) => i.norm));
  return { func, a, b, rows, identical: rows.filter((r) => r.op === '=').length };
}

function diffText(d: TrampolineDiff): string {
  return [
    `trampoline of ${d.func} with ${progList(d.a)}`,
    ...renderSideBySide(d.rows, d.a.insns, d.b.insns, [d.a.kernel, d.b.kernel]),
    '',
    header(d.a),
    header(d.b),
    `${d.identical} identical, ${d.rows.filter((r) => r.op === '|').length} changed, ${d.rows.filter((r) => r.op === '<').length} only in ${d.a.kernel}, ${d.rows.filter((r) => r.op === '>').length} only in ${d.b.kernel}`,
  ].join('\n');
}

export function register(program: Command, global: () => OutputOptions): void {
  const tramp = program.command('trampoline').description('the BPF trampoline each kernel profile generates: show one, diff two');

  tramp.command('show')
    .description('attach programs to FUNC and print the trampoline the kernel profile (--kernel) generates')
    .argument('<func>', 'the traced kernel function')
    .argument('[obj]', "an object whose fentry/fexit/fmod_ret programs on FUNC are attached (default: one 'r0 = 0; exit' program per --progs kind)")
    .option('--progs <kinds>', `kinds of the default programs, comma-separated (${TRACE_KINDS.join(',')})`, 'fentry,fexit')
    .option('--func-ip', 'the default programs call bpf_get_func_ip (5.15+)')
    .action(async (func: string, obj: string | undefined, o: { progs: string; funcIp?: boolean }) => {
      const t = await traceImage({ kernel: profileOf(getBootOptions().kernel ?? '5.5'), func, ...progsOf(obj, o) });
      emit(global(), { func, ...sideJson(t) }, () => [
        `trampoline of ${func} with ${progList(t)}`,
        ...t.insns.map((i) => `${i.offset.toString(16).padStart(4)}:  ${i.bytes.padEnd(22)} ${i.text}`),
        header(t),
      ].join('\n'));
    });

  tramp.command('diff')
    .description('the trampolines two kernel profiles generate for FUNC, side by side and aligned')
    .argument('<func>', 'the traced kernel function')
    .argument('[obj]', "an object whose fentry/fexit/fmod_ret programs on FUNC are attached (default: one 'r0 = 0; exit' program per --progs kind)")
    // Declared so main.ts hands this command every --kernel of the command line.
    .option('--kernel <version>', `a kernel profile, given twice (${KERNEL_VERSIONS.join(', ')})`, (v: string, prev: string[]) => [...prev, v], [] as string[])
    .option('--progs <kinds>', `kinds of the default programs, comma-separated (${TRACE_KINDS.join(',')})`, 'fentry,fexit')
    .option('--func-ip', 'the default programs call bpf_get_func_ip (5.15+)')
    .action(async (func: string, obj: string | undefined, o: { kernel: string[]; progs: string; funcIp?: boolean }) => {
      if (o.kernel.length !== 2) throw new UsageError(`trampoline diff needs two kernel profiles (--kernel A --kernel B), got ${o.kernel.length}`);
      const [ka, kb] = o.kernel.map(profileOf) as [KernelVersion, KernelVersion];
      const d = await trampolineDiff(func, ka, kb, progsOf(obj, o));
      emit(global(), {
        func, a: sideJson(d.a), b: sideJson(d.b), identical: d.identical,
        rows: d.rows.map((r) => ({ op: r.op, a: r.a ?? null, b: r.b ?? null })),
      }, () => diffText(d));
    });
}
