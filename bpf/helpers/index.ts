/**
 * @fileoverview The BPF helpers a program may call, with the kernel's ids (func_ids.ts):
 * bpfHelpers(env) gives their definitions for BpfRuntime.load's `helpers`. The definitions are
 * made once per environment, so each helper becomes one native entry point and one kallsyms
 * symbol however many programs are loaded with them.
 */
import type { HelperDef } from '../prog.ts';
import { mapHelpers, taskHelpers, type HelperEnv } from './helpers.ts';
import { traceHelpers } from './bpf_trace.ts';

export type { HelperEnv } from './helpers.ts';
export { BpfHelperError } from './helpers.ts';
export { BPF_FUNC, BPF_FUNC_LIST, BPF_FUNC_MAX_ID, BPF_FUNC_NAMES, bpfFuncName, type BpfFuncName } from './func_ids.ts';

const made = new WeakMap<HelperEnv, readonly HelperDef[]>();

/** Every implemented helper, sorted by id. */
export function bpfHelpers(env: HelperEnv): readonly HelperDef[] {
  let defs = made.get(env);
  if (!defs) {
    defs = [...mapHelpers(env), ...taskHelpers(env), ...traceHelpers(env)].sort((a, b) => a.id - b.id);
    made.set(env, defs);
  }
  return defs;
}
