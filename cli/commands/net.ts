/**
 * @fileoverview `bpfemu net`: the image's network devices and their BPF hooks.
 *   net show                                    devices, counters, attached programs
 *   net attach IFACE xdp|tc OBJ [PROG]          load OBJ, attach PROG (default: its first xdp/tc program)
 *   net detach IFACE xdp|tc
 *   net rx IFACE HEX... [--xdp OBJ[:PROG]] [--tc OBJ[:PROG]] [--engine E]
 *                                               inject frames into the driver's receive; print the
 *                                               verdicts of each and the device's counters
 * In a batch file or the shell, attachments stay for the next lines (one machine).
 */
import type { Command } from 'commander';
import { readFileSync, existsSync } from 'node:fs';
import type { System } from '../../index.ts';
import { BpfObject, errnoName } from '../../bpf/libbpf/load.ts';
import { BPF_PROG_TYPE_SCHED_CLS, BPF_PROG_TYPE_XDP } from '../../bpf/prog_types.ts';
import type { RxResult, DeviceStats } from '../../net/netdev.ts';
import { session, release, keepObject, releaseObject } from '../session.ts';
import { findProgram, hexBytes } from '../bpfobj.ts';
import { emit, UsageError, type OutputOptions } from '../output.ts';

type HookName = 'xdp' | 'tc';
const HOOK_TYPE: Record<HookName, number> = { xdp: BPF_PROG_TYPE_XDP, tc: BPF_PROG_TYPE_SCHED_CLS };

const hookOf = (s: string): HookName => {
  if (s !== 'xdp' && s !== 'tc') throw new UsageError(`hook '${s}': expected xdp or tc`);
  return s;
};

/** Opens and loads an object for a hook; the program by name, or the first of the hook's type. */
export function loadForHook(sys: System, spec: string, hook: HookName): { obj: BpfObject; fd: number; name: string } {
  const colon = spec.lastIndexOf(':');
  const [path, which] = colon > 0 && !existsSync(spec) ? [spec.slice(0, colon), spec.slice(colon + 1)] : [spec, undefined];
  if (!existsSync(path)) throw new UsageError(`object file ${path} not found`);
  const obj = BpfObject.open(new Uint8Array(readFileSync(path)), path, sys.objectLoadOptions).load(sys.bpfSys, sys.objectLoadOptions);
  try {
    const p = which ? findProgram(obj, which) : [...obj.programs.values()].find((x) => x.spec.def.progType === HOOK_TYPE[hook]);
    if (!p) throw new UsageError(`${obj.name} has no ${hook} program`);
    return { obj, fd: p.fd, name: p.spec.name };
  } catch (e) { obj.close(); throw e; }
}

/** Attaches a loaded program to a hook; a UsageError-free failure is the kernel's errno. */
export function attachHook(sys: System, iface: string, hook: HookName, fd: number): void {
  const r = hook === 'xdp' ? sys.net.setXdp(iface, fd) : sys.net.setTcIngress(iface, fd);
  if (r === -19) throw new UsageError(`no device ${iface} (devices: ${sys.net.devices().map((d) => d.name).join(', ')})`);
  if (r < 0) throw new Error(`attach to ${iface} ${hook}: ${errnoName(r)} (${r})`);
}

/** One line of `net rx`. */
export function rxLine(n: number, bytes: number, r: RxResult): string {
  const parts = [r.xdp && `xdp ${r.xdp.name}`, r.tc && `tc ${r.tc.name}`].filter(Boolean);
  const fate = r.delivered ? `delivered (len ${r.len}, protocol 0x${r.protocol!.toString(16).padStart(4, '0')}, pkt_type ${r.pktType})`
    : r.ret ? 'dropped' : 'consumed';
  return `packet ${n}: ${bytes} bytes: ${parts.length ? `${parts.join(', ')}: ` : ''}${fate}`;
}

export function statsLine(iface: string, s: DeviceStats): string {
  const nz = (o: Record<string, bigint>): string => Object.entries(o).filter(([, v]) => v).map(([k, v]) => `${k} ${v}`).join(' ');
  const x = nz(s.xdp), t = nz(s.tc);
  return `${iface}: rx_packets ${s.rxPackets} rx_bytes ${s.rxBytes} rx_dropped ${s.rxDropped}${x ? `  xdp: ${x}` : ''}${t ? `  tc: ${t}` : ''}`;
}

export const rxJson = (frames: Uint8Array[], results: RxResult[]) => results.map((r, i) => ({ bytes: frames[i]!.length, ...r }));

export function register(program: Command, global: () => OutputOptions): void {
  const net = program.command('net').description('network devices: XDP and TC ingress hooks, receiving frames');

  net.command('show').alias('list')
    .description('devices, their counters and attached programs')
    .action(async () => {
      const sys = await session();
      try {
        const devs = sys.net.devices().map((d) => ({
          name: d.name, ifindex: d.ifindex,
          xdp: sys.net.program(d.name, 'xdp')?.id ?? null, tc: sys.net.program(d.name, 'tc')?.id ?? null,
          stats: sys.net.stats(d.name),
        }));
        emit(global(), devs, () => devs.map((d) => [
          `${d.ifindex}: ${d.name}${d.xdp !== null ? `  xdp prog ${d.xdp}` : ''}${d.tc !== null ? `  tc ingress prog ${d.tc}` : ''}`,
          `\t${statsLine(d.name, d.stats).replace(/^[^:]*: /, '')}`,
        ].join('\n')).join('\n'));
      } finally { release(sys); }
    });

  net.command('attach')
    .description('load OBJ and attach PROG (default: its first program of the hook\'s type) to IFACE\'s hook')
    .argument('<iface>').argument('<hook>', 'xdp or tc').argument('<obj>').argument('[prog]')
    .option('--engine <engine>', 'jit or interp', 'jit')
    .action(async (iface: string, hookArg: string, path: string, which: string | undefined, opts: { engine: string }) => {
      const hook = hookOf(hookArg);
      const sys = await session();
      try {
        sys.bpfSys.jitEnabled = opts.engine !== 'interp';
        const l = loadForHook(sys, which ? `${path}:${which}` : path, hook);
        try { attachHook(sys, iface, hook, l.fd); } catch (e) { l.obj.close(); throw e; }
        keepObject(l.obj);
        const id = sys.net.program(iface, hook)!.id;
        emit(global(), { iface, hook, prog: l.name, id }, () => `${iface} ${hook}: prog ${id} (${l.name})`);
        releaseObject(l.obj); // one-shot: the hook holds the program until the machine goes
      } finally { release(sys); }
    });

  net.command('detach')
    .description('detach the program from IFACE\'s hook')
    .argument('<iface>').argument('<hook>', 'xdp or tc')
    .action(async (iface: string, hookArg: string) => {
      const hook = hookOf(hookArg);
      const sys = await session();
      try { attachHook(sys, iface, hook, -1); } finally { release(sys); }
    });

  net.command('rx')
    .description('inject frames (hex bytes each) into IFACE\'s receive path; print the verdicts')
    .argument('<iface>').argument('<hex...>', 'one frame per argument, hex bytes (: and spaces ignored)')
    .option('--xdp <obj>', 'first attach OBJ[:PROG] as the XDP program')
    .option('--tc <obj>', 'first attach OBJ[:PROG] as the TC ingress program')
    .option('--engine <engine>', 'jit or interp', 'jit')
    .action(async (iface: string, hex: string[], opts: { xdp?: string; tc?: string; engine: string }) => {
      const frames = hex.map((h, i) => hexBytes(h, `frame ${i + 1}`));
      const sys = await session();
      const objs: BpfObject[] = [];
      try {
        if (!sys.net.device(iface)) throw new UsageError(`no device ${iface} (devices: ${sys.net.devices().map((d) => d.name).join(', ')})`);
        sys.bpfSys.jitEnabled = opts.engine !== 'interp';
        for (const hook of ['xdp', 'tc'] as const) {
          const spec = opts[hook];
          if (!spec) continue;
          const l = loadForHook(sys, spec, hook);
          objs.push(l.obj);
          attachHook(sys, iface, hook, l.fd);
        }
        const results = frames.map((f) => sys.net.rx(iface, f));
        const stats = sys.net.stats(iface);
        emit(global(), { iface, packets: rxJson(frames, results), stats }, () => [
          ...results.map((r, i) => rxLine(i + 1, frames[i]!.length, r)),
          statsLine(iface, stats),
        ].join('\n'));
      } finally {
        // One-shot: detach what this command attached; in a session it stays.
        for (const o of objs) { keepObject(o); releaseObject(o); }
        release(sys);
      }
    });
}
