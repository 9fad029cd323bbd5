/**
 * @fileoverview `bpfemu link show [id N]` and `link detach id N` (as bpftool link; the links come
 * from `prog attach`, cli/commands/attach.ts) and `bpfemu feature` (what this kernel model
 * supports: program and map types, helpers, bpf() commands).
 */
import type { Command } from 'commander';
import { session, release } from '../session.ts';
import { emit, UsageError, type OutputOptions } from '../output.ts';
import { PROG_TYPES, BPF_PROG_TYPE_TRACING, BPF_TRACE_FENTRY } from '../../bpf/prog_types.ts';
import { profileFuncName, tracingFuncProto, TRACING_FUNC_IDS } from '../../bpf/helpers/tracing_func.ts';
import { MAP_TYPES } from '../../bpf/maps/types.ts';
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
    .description('list what this kernel model supports under the machine\'s kernel profile (--kernel)')
    .action(async () => {
      const sys = await session();
      try {
        const profile = sys.kernel.profile;
        // The helpers the machine implements and this kernel knows (its last id), plus the
        // trampoline-frame helpers the profile gives tracing programs (inlined, no native body).
        const ids = new Set(sys.bpfSys.helpers.map((h) => h.id).filter((id) => profileFuncName(profile, id) !== undefined));
        for (const id of TRACING_FUNC_IDS) {
          if (tracingFuncProto(profile, BPF_PROG_TYPE_TRACING, BPF_TRACE_FENTRY, id)) ids.add(id);
        }
        const data = {
          kernel: profile.version,
          program_types: Object.values(PROG_TYPES).map((t) => t.name),
          map_types: Object.keys(MAP_TYPES).map((t) => ({ 1: 'hash', 2: 'array', 6: 'percpu_array' } as Record<string, string>)[t] ?? t),
          helpers: [...ids].sort((a, b) => a - b).map((id) => `${profileFuncName(profile, id)!}#${id}`),
          attach: ['fentry', 'fexit', ...(profile.trampoline.fmodRet ? ['fmod_ret'] : [])],
          max_trampoline_progs: profile.trampoline.maxProgs,
          max_trampoline_args: profile.trampoline.maxArgs,
        };
        emit(global(), data, () => [
          `program types: ${data.program_types.join(', ')}`,
          `map types: ${data.map_types.join(', ')}`,
          `helpers: ${data.helpers.join(', ')}`,
          `attach: ${data.attach.join(', ')} (through the BPF trampoline: at most ${data.max_trampoline_progs} programs, ${data.max_trampoline_args} arguments)`,
          `kernel profile: ${data.kernel}`,
        ].join('\n'));
      } finally { release(sys); }
    });
}
