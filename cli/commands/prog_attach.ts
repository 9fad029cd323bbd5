/**
 * @fileoverview `prog attach id N [fentry|fexit]` (BPF_LINK_CREATE, prints the link; before 5.10
 * BPF_RAW_TRACEPOINT_OPEN, an fd without a link id) and
 * `prog detach id N` (detaches every link of the program): meaningful in a batch file or the
 * shell, where the machine and the attachment outlive the line (cli/commands/attach.ts).
 */
import type { Command } from 'commander';
import { session, release, isShared } from '../session.ts';
import { emit, UsageError, type OutputOptions } from '../output.ts';
import { attachProg, detachProg, parseIdWords } from './attach.ts';

export function registerAttach(prog: Command, global: () => OutputOptions): void {
  prog.command('attach')
    .description('attach a fentry/fexit program through a bpf_link: prog attach id N [fentry|fexit]')
    .argument('<sel...>', 'id N [fentry|fexit]')
    .action(async (sel: string[]) => {
      const { id, rest } = parseIdWords(sel, 'prog attach');
      if (rest.length > 1) throw new UsageError(`what is '${rest[1]}'?`);
      const sys = await session();
      try {
        const a = attachProg(sys, id, rest[0]);
        const what = a.link_id === null ? 'raw tracepoint fd (no bpf_link before 5.10)' : `link ${a.link_id}`;
        emit(global(), a, () => `${what}: prog ${a.prog_id} attached (${a.attach_type} ${a.func})${isShared() ? '' : ' — until this command ends: use a batch file or the shell'}`);
      } finally { release(sys); }
    });
  prog.command('detach')
    .description('detach a fentry/fexit program (BPF_LINK_DETACH on each of its links): prog detach id N')
    .argument('<sel...>', 'id N')
    .action(async (sel: string[]) => {
      const { id, rest } = parseIdWords(sel, 'prog detach');
      if (rest.length) throw new UsageError(`what is '${rest[0]}'?`);
      const sys = await session();
      try {
        const links = detachProg(sys, id);
        void links;
        emit(global(), null, () => ''); // bpftool prints nothing on success
      } finally { release(sys); }
    });
}
