/**
 * @fileoverview The machine a command runs on. One invocation boots a fresh machine and closes
 * it after the command; a batch file (or the shell) shares one machine across its commands, so
 * objects loaded by one line are there for the next (`prog load` then `prog show`).
 */
import { boot, type System } from '../index.ts';
import type { BootOptions } from '../kernel/kernel.ts';
import type { BpfObject } from '../bpf/libbpf/load.ts';
import { Sysctls, SysctlError } from '../kernel/sysctl.ts';
import { kernelProfile } from '../kernel/profile.ts';
import { UsageError } from './output.ts';

let shared: System | undefined;
/** The machine's boot options from the global flags (`--kernel`, `--sysctl`): every command's boot uses them. */
let bootOptions: Omit<BootOptions, 'faultLocator'> = {};

/**
 * The global flags' boot options. `--sysctl` values are written to the profile's sysctl table
 * here already (as at boot), so a refused one is a usage error (exit 2) before any machine boots.
 */
export function setBootOptions(o: Omit<BootOptions, 'faultLocator'>): void {
  try {
    new Sysctls(kernelProfile(o.kernel).version).applyBoot(o.sysctl);
  } catch (e) {
    if (e instanceof SysctlError) throw new UsageError(`--sysctl ${e.message.replace(/^sysctl /, '')}`);
    throw e;
  }
  bootOptions = o;
}
export const getBootOptions = (): Omit<BootOptions, 'faultLocator'> => bootOptions;

/** Boots a machine with the global flags' options (for commands that manage their own machine). */
export const bootMachine = (): Promise<System> => boot(bootOptions);
let sharing = false;
/** Objects loaded in this session (kept while sharing), for `prog show`, `map dump id N`… */
export const loadedObjects: BpfObject[] = [];

/** Starts sharing one machine between commands (batch files, the shell). */
export function beginShared(): void { sharing = true; }

export async function endShared(): Promise<void> {
  sharing = false;
  for (const o of loadedObjects.splice(0)) o.close();
  shared?.close();
  shared = undefined;
}

export const isShared = (): boolean => sharing;

/** The machine for this command: the shared one, or a fresh boot. */
export async function session(): Promise<System> {
  if (!sharing) return boot(bootOptions);
  shared ??= await boot(bootOptions);
  return shared;
}

/** After a command: a fresh machine is closed; the shared one lives on. */
export function release(sys: System): void {
  if (!sharing || sys !== shared) sys.close();
}

export function keepObject(obj: BpfObject): void {
  if (sharing) loadedObjects.push(obj);
}

export function releaseObject(obj: BpfObject): void {
  if (!sharing) obj.close();
}
