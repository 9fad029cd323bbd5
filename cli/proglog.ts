/**
 * @fileoverview The verifier's side of `bpfemu prog load OBJ [--section NAME] [--log [LEVEL]]`:
 * which programs to load (bpf_program__set_autoload by section or function name), the log level
 * passed to PROG_LOAD, each program's log as the kernel wrote it to log_buf, and that log printed
 * when a program is rejected (libbpf's `-- BEGIN DUMP LOG ---` … `-- END LOG --`).
 */
import type { ObjectLoadOptions } from '../bpf/libbpf/load.ts';
import type { ProgramSpec } from '../bpf/libbpf/object.ts';
import { parseInteger, UsageError } from './output.ts';

export interface ProgLog { name: string; section: string; log: string }

/** `--log` alone is level 1 (the failing path); 2 adds every state; 4 the statistics' extras. */
export function parseLogLevel(v: string | true | undefined): number | undefined {
  if (v === undefined) return undefined;
  if (v === true) return 1;
  const n = Number(parseInteger(v, '--log'));
  if (n < 1 || n > 7) throw new UsageError(`--log ${v}: expected a log level 1..7 (1 the instructions walked, 2 every state, 4 statistics)`);
  return n;
}

/** The load options for the command, and where the logs go. */
export function progLoadOptions(section: string | undefined, level: number | undefined, logs: ProgLog[]): ObjectLoadOptions {
  const wanted = (p: ProgramSpec): boolean => section === undefined || p.secName === section || p.name === section;
  return {
    ...(section !== undefined ? { autoload: wanted } : {}),
    // Without --log, libbpf's level 1: a rejected program's log still names the reason.
    logLevel: level ?? 1,
    onLog: (p, log) => { logs.push({ name: p.name, section: p.secName, log: log.trimEnd() }); },
  };
}

/** The logs as text: each program's under a header naming it. */
export function progLogText(logs: readonly ProgLog[]): string {
  return logs.map((l) => `-- BEGIN DUMP LOG: ${l.name} (${l.section}) ---\n${l.log}${l.log ? '\n' : ''}-- END LOG --`).join('\n');
}
