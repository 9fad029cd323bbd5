/**
 * @fileoverview btf_distill_func_proto (kernel/bpf/btf.c, v5.5): the function model the
 * trampoline needs — return size, argument count and each argument's size — from a FUNC's
 * FUNC_PROTO. Ints, pointers and enums are accepted (typedefs and modifiers skipped), void is
 * size 0 for the return; a struct or union by value, an array, a vararg, or MAX_BPF_FUNC_ARGS
 * arguments or more are refused with the kernel's message and -EINVAL.
 *
 * Later generations (the profile's verifier row, FuncModelRules): 12 arguments allowed once the
 * limit check became `nargs > MAX_BPF_FUNC_ARGS`; from 6.1 a struct (or union) by value of at
 * most 16 bytes is an argument of its size, flagged BTF_FMODEL_STRUCT_ARG in arg_flags — larger
 * ones, and a struct return, are "... type STRUCT is unsupported." (btf_type_str, the kind).
 */
import { BTF_KIND, type Btf } from './btf/btf.ts';
import { BTF_FMODEL_STRUCT_ARG, type BtfFuncModel } from './arch.ts';
import { btfKindStr } from './btf/uapi.ts';

/** What differs between generations (kernel/profile.ts's verifier row); default v5.5. */
export interface FuncModelRules {
  /** The most arguments accepted: 11 (`nargs >= 12` refused) or 12. */
  readonly maxArgs: number;
  /** Struct arguments by value of at most 16 bytes (6.1). */
  readonly structArgs: boolean;
}

export const MAX_BPF_FUNC_ARGS = 12;
/** v5.5 refuses `nargs >= MAX_BPF_FUNC_ARGS`. */
const MAX_BPF_FUNC_ARGS_V55 = MAX_BPF_FUNC_ARGS - 1;
const EINVAL = 22;
export const V5_5_FUNC_MODEL: FuncModelRules = { maxArgs: MAX_BPF_FUNC_ARGS_V55, structArgs: false };

export class FuncModelError extends Error {
  readonly errno = -EINVAL;
  constructor(msg: string) { super(msg); this.name = 'FuncModelError'; }
}

/**
 * __get_type_size: 8 for a pointer, t->size for an int or enum, 0 for void, else -EINVAL with
 * the bad type's kind, which the messages print (btf_kind_str: "STRUCT", "ARRAY" …).
 */
function getTypeSize(btf: Btf, id: number): { size: number } | { kind: string } {
  if (id === 0) return { size: 0 };
  const t = btf.resolve(id);
  if (t.kind === BTF_KIND.PTR) return { size: 8 };
  if (t.kind === BTF_KIND.INT || t.kind === BTF_KIND.ENUM || t.kind === BTF_KIND.ENUM64) return { size: t.sizeOrType };
  return { kind: btfKindStr(t.kind) };
}

/** 6.1's __get_type_size: a struct or union by value has its size (the caller limits it to 16). */
function getTypeSize61(btf: Btf, id: number): { size: number; struct: boolean; kind: string } {
  if (id === 0) return { size: 0, struct: false, kind: 'void' };
  const t = btf.resolve(id);
  const kind = btfKindStr(t.kind);
  if (t.kind === BTF_KIND.PTR) return { size: 8, struct: false, kind };
  if (t.kind === BTF_KIND.INT || t.kind === BTF_KIND.ENUM || t.kind === BTF_KIND.ENUM64) return { size: t.sizeOrType, struct: false, kind };
  if (t.kind === BTF_KIND.STRUCT || t.kind === BTF_KIND.UNION) return { size: t.sizeOrType, struct: true, kind };
  return { size: -EINVAL, struct: false, kind };
}

/** Builds the model of FUNC `funcId` (its name is used in messages, as the kernel's log does). */
export function btfDistillFuncProto(btf: Btf, funcId: number, rules: FuncModelRules = V5_5_FUNC_MODEL): BtfFuncModel {
  const func = btf.type(funcId);
  const tname = func.name;
  const proto = btf.type(func.sizeOrType);
  if (func.kind !== BTF_KIND.FUNC || proto.kind !== BTF_KIND.FUNC_PROTO) throw new FuncModelError(`[${funcId}] is not a function`);
  const params = proto.params ?? [];
  // A trailing (unnamed, type 0) parameter is the `...` of a vararg function.
  const nargs = params.length;
  if (nargs > rules.maxArgs) throw new FuncModelError(`The function ${tname} has ${nargs} arguments. Too many.`);
  if (rules.structArgs) return distill61(btf, tname, proto.sizeOrType, params.map((p) => p.type));
  if (nargs > 0 && params[nargs - 1]!.type === 0) throw new FuncModelError(`The function ${tname} with variable args is unsupported.`);
  const ret = getTypeSize(btf, proto.sizeOrType);
  if ('kind' in ret) throw new FuncModelError(`The function ${tname} return type ${ret.kind} is unsupported.`);
  const argSize: number[] = [];
  params.forEach((p, i) => {
    const a = getTypeSize(btf, p.type);
    if ('kind' in a) throw new FuncModelError(`The function ${tname} arg${i} type ${a.kind} is unsupported.`);
    argSize.push(a.size);
  });
  return { retSize: ret.size, nrArgs: nargs, argSize };
}

/** The 6.1 body: struct args up to 16 bytes with BTF_FMODEL_STRUCT_ARG; no struct return. */
function distill61(btf: Btf, tname: string, retId: number, argIds: readonly number[]): BtfFuncModel {
  const ret = getTypeSize61(btf, retId);
  if (ret.size < 0 || ret.struct) throw new FuncModelError(`The function ${tname} return type ${ret.kind} is unsupported.`);
  const argSize: number[] = [], argFlags: number[] = [];
  argIds.forEach((id, i) => {
    if (i === argIds.length - 1 && id === 0) throw new FuncModelError(`The function ${tname} with variable args is unsupported.`);
    const a = getTypeSize61(btf, id);
    // No struct argument larger than 16 bytes: two registers at most.
    if (a.size < 0 || a.size > 16) throw new FuncModelError(`The function ${tname} arg${i} type ${a.kind} is unsupported.`);
    if (a.size === 0) throw new FuncModelError(`The function ${tname} has malformed void argument.`);
    argSize.push(a.size);
    argFlags.push(a.struct ? BTF_FMODEL_STRUCT_ARG : 0);
  });
  return { retSize: ret.size, nrArgs: argIds.length, argSize, argFlags };
}

/** The profile's rules for the function model. */
export const funcModelRules = (v: { readonly modelMaxArgs: number; readonly structArgs: boolean }): FuncModelRules =>
  ({ maxArgs: v.modelMaxArgs, structArgs: v.structArgs });
