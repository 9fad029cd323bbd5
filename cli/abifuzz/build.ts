/**
 * @fileoverview Building a kernel module at run time as the image is built: gcc with the image's
 * own KCFLAGS (read from images/Makefile, so the flags cannot drift: fentry nops, -mcmodel=kernel,
 * no SSE …), then `pahole -J --btf_base vmlinux` with the image's PAHOLE_FLAGS, which writes the
 * module's split BTF into its `.BTF` section as Linux's Makefile.modfinal does for a `.ko`.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const IMAGES = fileURLToPath(new URL('../../images', import.meta.url));
export const VMLINUX = join(IMAGES, 'build/vmlinux');

/** A command that failed: its stderr, trimmed to what a person reads first. */
export class BuildError extends Error {
  readonly stderr: string;
  constructor(what: string, stderr: string) {
    super(`${what} failed: ${stderr.split('\n').filter(Boolean).slice(0, 6).join('\n')}`);
    this.name = 'BuildError';
    this.stderr = stderr;
  }
}

let flags: { kcflags: string[]; pahole: string[] } | undefined;

/** KCFLAGS and PAHOLE_FLAGS as images/Makefile defines them (asked of make, once per process). */
export function imageFlags(): { kcflags: string[]; pahole: string[] } {
  if (flags) return flags;
  const ask = (v: string): string[] => execFileSync('make', ['-s', '--no-print-directory', '-C', IMAGES,
    `--eval=bpfemu-print-${v}: ; @echo $(${v})`, `bpfemu-print-${v}`], { encoding: 'utf8' }).trim().split(/\s+/).filter(Boolean);
  flags = { kcflags: ask('KCFLAGS'), pahole: ask('PAHOLE_FLAGS') };
  return flags;
}

export interface BuiltModule {
  /** The relocatable object with its `.BTF`. */
  bytes: Uint8Array;
  gccMs: number;
  paholeMs: number;
}

/**
 * Modules built in this process, by name, flags and source: a campaign under several kernel
 * profiles builds the same batch once per profile (the cases a profile skips aside), and gcc is
 * most of a batch's time. A hit reports 0 ms of gcc and pahole. A few dozen entries of ~50 KB.
 */
const built = new Map<string, BuiltModule>();
const BUILT_MAX = 32;

/** Compiles C source into a module object with split BTF. `btf: false` skips pahole. */
export function buildModule(source: string, opts: { name?: string; btf?: boolean; extraFlags?: string[] } = {}): BuiltModule {
  const key = JSON.stringify([opts.name, opts.btf, opts.extraFlags, source]);
  const hit = built.get(key);
  if (hit) return { bytes: hit.bytes, gccMs: 0, paholeMs: 0 };
  const m = compile(source, opts);
  if (built.size >= BUILT_MAX) built.delete(built.keys().next().value!);
  built.set(key, m);
  return m;
}

function compile(source: string, opts: { name?: string; btf?: boolean; extraFlags?: string[] }): BuiltModule {
  const { kcflags, pahole } = imageFlags();
  const dir = mkdtempSync(join(tmpdir(), 'bpfemu-mod-'));
  try {
    const name = opts.name ?? 'mod';
    const c = join(dir, `${name}.c`), o = join(dir, `${name}.o`);
    writeFileSync(c, source);
    const run = (cmd: string, args: string[]): number => {
      const t0 = performance.now();
      try {
        execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
      } catch (e) {
        const err = e as { stderr?: string; message: string };
        throw new BuildError(cmd, err.stderr || err.message);
      }
      return performance.now() - t0;
    };
    const gccMs = run('gcc', [...kcflags, ...(opts.extraFlags ?? []), '-c', '-o', o, c]);
    const paholeMs = opts.btf === false ? 0 : run('pahole', ['-J', '--btf_base', VMLINUX, ...pahole, o]);
    return { bytes: new Uint8Array(readFileSync(o)), gccMs, paholeMs };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
