/**
 * @fileoverview `bpfemu link show` (as bpftool link show) and `bpfemu feature` (what this kernel
 * model supports: program and map types, helpers, bpf() commands).
 */
import type { Command } from 'commander';
import { session, release } from '../session.ts';
import { emit, type OutputOptions } from '../output.ts';
import { PROG_TYPES } from '../../bpf/prog_types.ts';
import { MAP_TYPES } from '../../bpf/maps/types.ts';
import { BPF_FUNC_NAMES } from '../../bpf/helpers/index.ts';
import { parseId } from './prog.ts';

const ATTACH_TYPE: Record<number, string> = { 24: 'trace_fentry', 25: 'trace_fexit' };

export function register(program: Command, global: () => OutputOptions): void {
  program.command('link').description('BPF links (as bpftool link)')
    .command('show').alias('list')
    .description('show the links of this machine (all, or `id N`)')
    .argument('[sel...]', 'id N')
    .action(async (sel: string[]) => {
      const id = parseId(sel, 'link show');
      const sys = await session();
      try {
        const links = [...sys.bpfSys.links.values()].filter((l) => id === undefined || l.id === id).sort((a, b) => a.id - b.id);
        const shown = links.map((l) => ({ id: l.id, type: 'tracing', prog_id: l.prog.id, attach_type: ATTACH_TYPE[l.prog.expectedAttachType] ?? String(l.prog.expectedAttachType) }));
        emit(global(), shown, () => shown.map((l) => `${l.id}: ${l.type}  prog ${l.prog_id}\\n\\tattach_type ${l.attach_type}`).join('\\n'));
      } finally { release(sys); }
    });

  program.command('feature')
    .description('list what this kernel model supports')
    .action(async () => {
      const data = {
        program_types: Object.values(PROG_TYPES).map((t) => t.name),
        map_types: Object.keys(MAP_TYPES).map((t) => ({ 1: 'hash', 2: 'array', 6: 'percpu_array' } as Record<string, string>)[t] ?? t),
        helpers: Object.entries(BPF_FUNC_NAMES).filter(([id]) => id !== "0").map(([id, n]) => `${n}#${id}`),
        attach: ['fentry', 'fexit'],
      };
      emit(global(), data, () => [
        `program types: ${data.program_types.join(', ')}`,
        `map types: ${data.map_types.join(', ')}`,
        `helpers: ${data.helpers.join(', ')}`,
        `attach: ${data.attach.join(', ')} (through the BPF trampoline)`,
      ].join('\n'));
    });
}
