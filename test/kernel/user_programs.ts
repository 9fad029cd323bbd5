/**
 * @fileoverview The user programs of images/user/ (static x86-64 ELF, built by `make -C images`)
 * for the tests: their paths, built on demand if a machine was set up before they existed.
 */
import { existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const USER_DIR = join(ROOT, 'images/build/user');

/** The path of a user program, built first when missing. */
export function userProgram(name: string): string {
  const path = join(USER_DIR, name);
  if (!existsSync(path)) {
    const r = spawnSync('make', ['-s', '-C', join(ROOT, 'images'), path], { encoding: 'utf8' });
    if (r.status !== 0 || !existsSync(path)) throw new Error(`${path} is missing and make could not build it: ${(r.stderr || '').trim()}`);
  }
  return path;
}
