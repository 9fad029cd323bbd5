/**
 * @fileoverview What the object commands share: boot, open a clang-built BPF object and load it
 * through bpf() with the kernel image's BTF for CO-RE and attach targets.
 */
import { session, release, keepObject } from './session.ts';
import { readFileSync, existsSync } from 'node:fs';
import { type System } from '../index.ts';
import { BpfObject, type ObjectLoadOptions } from '../bpf/libbpf/load.ts';
import { UsageError } from './output.ts';

export interface LoadedObject { sys: System; obj: BpfObject }

export async function bootAndLoad(path: string, engine = 'jit', extra: ObjectLoadOptions = {}): Promise<LoadedObject> {
  if (engine !== 'jit' && engine !== 'interp') throw new UsageError(`--engine ${engine}: expected jit or interp`);
  if (!existsSync(path)) throw new UsageError(`object file ${path} not found`);
  const sys = await session();
  try {
    sys.bpfSys.jitEnabled = engine === 'jit';
    const obj = BpfObject.open(new Uint8Array(readFileSync(path)), path, sys.objectLoadOptions).load(sys.bpfSys, { ...sys.objectLoadOptions, ...extra });
    keepObject(obj);
    return { sys, obj };
  } catch (e) {
    release(sys);
    throw e;
  }
}

/** A program by section name (`xdp`, `fentry/bpf_fentry_test1`) or by function name. */
export function findProgram(obj: BpfObject, which: string) {
  for (const p of obj.programs.values()) if (p.spec.secName === which || p.spec.name === which) return p;
  throw new UsageError(`no program '${which}' in ${obj.name} (programs: ${[...obj.programs.values()].map((p) => `${p.spec.secName} (${p.spec.name})`).join(', ')})`);
}

export const hexBytes = (s: string, what: string): Uint8Array => {
  const clean = s.replace(/[\s:]/g, '');
  if (!/^([0-9a-fA-F]{2})*$/.test(clean)) throw new UsageError(`${what} '${s}' is not hex bytes`);
  return Uint8Array.from(Buffer.from(clean, 'hex'));
};
