/**
 * @fileoverview The real `bpfemu` binary for CLI tests: run it in a child process (a fresh
 * machine per invocation, as users run it) with its log silenced, and the built objects' paths.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const BIN = fileURLToPath(new URL('../../bin/bpfemu.js', import.meta.url));

export interface CliRun { code: number | null; out: string; err: string }

/** `bpfemu ARGS…` with optional stdin; its exit status, stdout and stderr. */
export function runCli(args: readonly string[], opts: { input?: string } = {}): CliRun {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    encoding: 'utf8', env: { ...process.env, BPFEMU_LOG: 'silent' }, ...(opts.input !== undefined ? { input: opts.input } : {}),
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/** `bpfemu ARGS…` (the usual shape: arguments only). */
export const run = (...args: string[]): CliRun => runCli(args);

/** A BPF object built by images/Makefile: images/build/bpf/NAME.bpf.o. */
export const bpfObj = (name: string): string => fileURLToPath(new URL(`../../images/build/bpf/${name}.bpf.o`, import.meta.url));

/** A batch file of `text` in a fresh temporary directory; its path. */
export function batchFile(text: string): string {
  const f = join(mkdtempSync(join(tmpdir(), 'bpfemu-batch-')), 'cmds');
  writeFileSync(f, text);
  return f;
}

/** `bpfemu [GLOBAL…] batch file F` with `text` as F: one machine for every line. */
export const batch = (text: string, global: readonly string[] = []): CliRun => runCli([...global, 'batch', 'file', batchFile(text)]);
