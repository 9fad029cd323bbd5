/**
 * @fileoverview Sysctls (/proc/sys): the known ones per kernel profile, each with the kernel's
 * handler rules — the range of proc_dointvec_minmax, who may write (the file's 0644 mode, and
 * the handlers that also want CAP_SYS_ADMIN), and the one-way switch of
 * kernel.unprivileged_bpf_disabled — so a write gives the errno the kernel's write(2) gives.
 * `--sysctl NAME=VALUE` (BootOptions.sysctl) writes them as root right after boot; subsystems
 * bind to a value (BPF's stats static key, the JIT switch) and see every later write.
 *
 * kernel.unprivileged_bpf_disabled, per profile:
 *  - 5.5 … 5.12: 0 (default) or 1. proc_dointvec_minmax with extra1 = extra2 = SYSCTL_ONE, "only
 *    handle a transition from default 0 to 1" (kernel/sysctl.c): writing 0 is -EINVAL even
 *    while it is 0, and 1 can never be undone.
 *  - 5.13 on (the 5.15 … 6.6 profiles): 0, 1 or 2 (bpf_unpriv_handler, 08389d888287): 2 refuses
 *    unprivileged bpf() like 1 but may be set back to 0 by CAP_SYS_ADMIN; 1 stays 1 (-EPERM).
 *    The default is 2: CONFIG_BPF_UNPRIV_DEFAULT_OFF=y, the Kconfig default since 5.16 and what
 *    distribution kernels ship (the host this project records against reads 2). A kernel built
 *    without it starts at 0: `--sysctl kernel.unprivileged_bpf_disabled=0` models that.
 */
import { atLeast, type KernelVersion } from './profile.ts';
import { rootCred, type Cred } from './task.ts';
import { capable, CAP_SYS_ADMIN } from './cred.ts';

/** Sysctl writes at boot: NAME → VALUE, or [NAME, VALUE] pairs applied in order. */
export type SysctlValues = Readonly<Record<string, string>> | readonly (readonly [string, string])[];

export const EPERM = 1, ENOENT = 2, EACCES = 13, EINVAL = 22;

/** One sysctl as a profile has it. */
export interface SysctlDef {
  readonly name: string;
  readonly min: number;
  readonly max: number;
  readonly initial: number;
  /** The handler checks capable(CAP_SYS_ADMIN) on write (beyond the file's 0644 mode). */
  readonly writeNeedsSysAdmin: boolean;
  /** Once 1, only 1 may be written (bpf_unpriv_handler's locked_state). */
  readonly lockedAtOne: boolean;
  /** Where the rule is, in the kernel of this profile. */
  readonly source: string;
}

function sysctlTable(v: KernelVersion): SysctlDef[] {
  const unpriv2 = atLeast(v, '5.15'); // 5.13's bpf_unpriv_handler; the 5.12 profile predates it
  return [
    unpriv2
      ? { name: 'kernel.unprivileged_bpf_disabled', min: 0, max: 2, initial: 2, writeNeedsSysAdmin: true, lockedAtOne: true,
        source: `v${v} kernel/bpf/syscall.c (kernel/sysctl.c before 5.17) bpf_unpriv_handler, extra1 = SYSCTL_ZERO, extra2 = SYSCTL_TWO; default IS_BUILTIN(CONFIG_BPF_UNPRIV_DEFAULT_OFF) ? 2 : 0` }
      : { name: 'kernel.unprivileged_bpf_disabled', min: 1, max: 1, initial: 0, writeNeedsSysAdmin: false, lockedAtOne: false,
        source: `v${v} kernel/sysctl.c kern_table: proc_dointvec_minmax, extra1 = extra2 = SYSCTL_ONE ("only handle a transition from default 0 to 1")` },
    {
      name: 'kernel.bpf_stats_enabled', min: 0, max: 1, initial: 0, writeNeedsSysAdmin: true, lockedAtOne: false,
      source: atLeast(v, '5.12') ? `v${v} bpf_stats_handler (d46edd671a14, 5.8): CAP_SYS_ADMIN, 0..1, a static_key_slow_inc/dec reference`
        : `v${v} kernel/sysctl.c proc_do_static_key: CAP_SYS_ADMIN, SYSCTL_ZERO..SYSCTL_ONE`,
    },
    {
      name: 'net.core.bpf_jit_enable', min: 0, max: 2, initial: 1, writeNeedsSysAdmin: true, lockedAtOne: false,
      source: `v${v} net/core/sysctl_net_core.c proc_dointvec_minmax_bpf_enable: CAP_SYS_ADMIN, 0..2 (no CONFIG_BPF_JIT_ALWAYS_ON: the model has an interpreter); initial 1 (CONFIG_BPF_JIT_DEFAULT_ON)`,
    },
  ];
}

/** A sysctl write refused at boot (`--sysctl`): the name, the value and the kernel's errno. */
export class SysctlError extends Error {
  readonly errno: number;
  readonly sysctl: string;
  readonly value: string;
  constructor(sysctl: string, value: string, errno: number, why: string) {
    super(`sysctl ${sysctl}=${value}: ${ERRNO_NAMES[errno] ?? `errno ${errno}`}: ${why}`);
    this.name = 'SysctlError';
    this.errno = errno;
    this.sysctl = sysctl;
    this.value = value;
  }
}
const ERRNO_NAMES: Record<number, string> = { [EPERM]: 'EPERM', [ENOENT]: 'ENOENT', [EACCES]: 'EACCES', [EINVAL]: 'EINVAL' };

/** proc_get_long's grammar for one integer: optional spaces, an optional '-', digits, a newline at most. */
const INT_RE = /^\s*-?\d+\s*$/;

export class Sysctls {
  readonly version: KernelVersion;
  private readonly defs = new Map<string, SysctlDef>();
  private readonly values = new Map<string, number>();
  private readonly listeners = new Map<string, ((v: number) => void)[]>();

  constructor(version: KernelVersion) {
    this.version = version;
    for (const d of sysctlTable(version)) { this.defs.set(d.name, d); this.values.set(d.name, d.initial); }
  }

  /** The sysctls this profile knows. */
  names(): string[] { return [...this.defs.keys()]; }
  def(name: string): SysctlDef | undefined { return this.defs.get(name); }
  /** The current value, or undefined for a sysctl the profile does not have. */
  get(name: string): number | undefined { return this.values.get(name); }

  /** Runs `apply` with the current value now and after every write that changes it. */
  bind(name: string, apply: (v: number) => void): void {
    if (!this.defs.has(name)) throw new Error(`sysctl ${name}: not in the ${this.version} profile`);
    this.listeners.set(name, [...(this.listeners.get(name) ?? []), apply]);
    apply(this.values.get(name)!);
  }

  /** write(2) of `text` to /proc/sys/NAME by a task with `writer`: 0, or the kernel's -errno. */
  write(name: string, text: string, writer: Cred): number {
    return this.check(name, text, writer).errno;
  }

  /** The write's verdict with the reason, and the value stored when allowed. */
  private check(name: string, text: string, writer: Cred): { errno: number; why: string } {
    const d = this.defs.get(name);
    if (!d) return { errno: -ENOENT, why: `the ${this.version} profile has no /proc/sys/${name.replaceAll('.', '/')} (known: ${this.names().join(', ')})` };
    // The file is 0644 root:root: only fsuid 0 (or CAP_DAC_OVERRIDE, not modelled) opens it for writing.
    if (writer.fsuid !== 0) return { errno: -EACCES, why: 'the file is 0644 root:root' };
    if (d.writeNeedsSysAdmin && !capable(writer, CAP_SYS_ADMIN)) return { errno: -EPERM, why: 'the handler wants CAP_SYS_ADMIN' };
    const range = d.min === d.max ? `${d.min}` : `${d.min}..${d.max}`;
    if (!INT_RE.test(text)) return { errno: -EINVAL, why: `not an integer (${range} in ${this.version})` };
    const v = Number(text.trim());
    if (v < d.min || v > d.max) {
      const hint = d.min === 1 && d.max === 1 ? ': only the transition 0 -> 1 can be written (0 is the default)' : '';
      return { errno: -EINVAL, why: `out of range ${range} in ${this.version}${hint}` };
    }
    const cur = this.values.get(name)!;
    if (d.lockedAtOne && cur === 1 && v !== 1) return { errno: -EPERM, why: 'it is 1, which cannot be undone' };
    this.values.set(name, v);
    if (v !== cur) for (const f of this.listeners.get(name) ?? []) f(v);
    return { errno: 0, why: '' };
  }

  /** The boot-time writes (`--sysctl`), in order, as root; the first refused one throws. */
  applyBoot(values: SysctlValues | undefined): void {
    const root = rootCred();
    // In order: `--sysctl X=1 --sysctl X=0` is two writes, the second refused as the kernel does.
    const writes = Array.isArray(values) ? values : Object.entries(values ?? {});
    for (const [name, text] of writes) {
      const r = this.check(name, text, root);
      if (r.errno) throw new SysctlError(name, text, -r.errno, r.why);
    }
  }
}
