/**
 * @fileoverview `bpfemu link show [id N]` and `link detach id N` (as bpftool link; the links come
 * from `prog attach`, cli/commands/attach.ts) and `bpfemu feature` (what this kernel model
 * supports: program and map types, helpers, bpf() commands).
 */
import type { Command } from 'commander';
import { session, release } from '../session.ts';
import { emit, UsageError, type OutputOptions } from '../output.ts';
import { PROG_TYPES } from '../../bpf/prog_types.ts';
import { MAP_TYPES } from '../../bpf/maps/types.ts';
import { BPF_FUNC_NAMES } from '../../bpf/helpers/index.ts';
import { detachLink, linkText, parseIdWords, showLinks } from './attach.ts';

export function register(program: Command, global: () => OutputOptions): void {
  const link = program.command('link').description('BPF links (as bpftool link)');
  link.command('show').alias('list')
    .description('show the links of this machine (all, or `id N`)')
    .argument('[sel...]', 'id N')
    .action(async (sel: string[]) => {
      const id = sel.length ? parseIdWords(sel, 'link show') : undefined;
      if (id?.rest.length) throw new UsageError(`what is '${id.rest[0]}'?`);
      const sys = await session();
      try {
        const shown = showLinks(sys, id?.id);
        emit(global(), id ? shown[0] : shown, () => shown.map(linkText).join('\n'));
      } finally { release(sys); }
    });
  link.command('detach')
    .description('detach a link (BPF_LINK_DETACH) and close the session\'s fd on it: link detach id N')
    .argument('<sel...>', 'id N')
    .action(async (sel: string[]) => {
      const { id, rest } = parseIdWords(sel, 'link detach');
      if (rest.length) throw new UsageError(`what is '${rest[0]}'?`);
      const sys = await session();
      try {
        detachLink(sys, id);
        emit(global(), null, () => '');
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
