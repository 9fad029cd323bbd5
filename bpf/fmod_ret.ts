/**
 * @fileoverview BPF_MODIFY_RETURN (fmod_ret, 5.7, KP Singh's "Introduce BPF_MODIFY_RET tracing
 * progs" series): the attach-side rules the verifier adds for it, and its test run.
 *
 *  - check_attach_btf_id takes expected_attach_type 26 only from 5.7; before, its switch has no
 *    case for it and the load fails with -EINVAL and no message.
 *  - check_attach_modify_return: the target must be on the error-injection list
 *    (ALLOW_ERROR_INJECTION, within_error_injection_list) or a security_* LSM hook, else
 *    "%s() is not modifiable" and -EINVAL.
 *  - the trampoline runs fmod_ret programs after fentry, each with the previous one's return
 *    in the return slot; a non-zero return skips the original function (bpf/trampoline.ts, kind
 *    'fmod_ret'; the machine code is the architecture's).
 *  - bpf_prog_test_run_tracing calls bpf_modify_return_test(1, &b) — and from 6.x
 *    bpf_modify_return_test2 too — and reports ((u32)side_effect << 16) | ret.
 */
import type { Kernel } from '../kernel/kernel.ts';
import type { KernelProfile } from '../kernel/profile.ts';
import { BPF_TRACE_FENTRY, BPF_TRACE_FEXIT, BPF_MODIFY_RETURN } from './prog_types.ts';

const EINVAL = 22;
/** sizeof(struct error_injection_entry) on x86-64: { unsigned long addr; int etype; } padded. */
const EI_ENTRY_SIZE = 16;
const SECURITY_PREFIX = 'security_';

/** The trampoline list a tracing program goes on. */
export type TracingKind = 'fentry' | 'fexit' | 'fmod_ret';

/** The attach types check_attach_btf_id takes under `profile` (fentry/fexit always, fmod_ret from 5.7). */
export function tracingKindOf(profile: KernelProfile, eat: number): TracingKind | undefined {
  switch (eat) {
    case BPF_TRACE_FENTRY: return 'fentry';
    case BPF_TRACE_FEXIT: return 'fexit';
    case BPF_MODIFY_RETURN: return profile.verifier.fmodRet ? 'fmod_ret' : undefined;
    default: return undefined;
  }
}

/** within_error_injection_list(): `addr` is in the image's _error_injection_whitelist table. */
export function withinErrorInjectionList(k: Kernel, addr: bigint): boolean {
  const start = k.ksyms.lookup('__start_error_injection_whitelist'), stop = k.ksyms.lookup('__stop_error_injection_whitelist');
  if (!start || !stop) return false;
  const mem = k.machine.mem;
  for (let a = start.address; a + BigInt(EI_ENTRY_SIZE) <= stop.address; a += BigInt(EI_ENTRY_SIZE)) {
    if (mem.readU64(a) === addr) return true;
  }
  return false;
}

/**
 * check_attach_modify_return (5.7): 0, or the log line and -EINVAL when the function's return
 * may not be modified.
 */
export function checkAttachModifyReturn(k: Kernel, addr: bigint, funcName: string): { errno: number; msg: string } | undefined {
  if (withinErrorInjectionList(k, addr) || funcName.startsWith(SECURITY_PREFIX)) return undefined;
  return { errno: EINVAL, msg: `${funcName}() is not modifiable` };
}

/**
 * bpf_prog_test_run_tracing's BPF_MODIFY_RETURN case: the retval the kernel reports (the image's
 * bpfemu_test_run_modify_return does the calls; 6.x, which has bpf_modify_return_test2, adds it).
 */
export function fmodRetTestRun(k: Kernel): number {
  const withTest2 = k.profile.trampoline.maxArgs > 6 ? 1 : 0;
  return Number(BigInt.asUintN(32, k.call('bpfemu_test_run_modify_return', [withTest2])));
}
