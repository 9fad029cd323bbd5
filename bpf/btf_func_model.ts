/**
 * @fileoverview btf_distill_func_proto (kernel/bpf/btf.c, v5.5): the function model the
 * trampoline needs — return size, argument count and each argument's size — from a FUNC's
 * FUNC_PROTO. Ints, pointers and enums are accepted (typedefs and modifiers skipped), void is
 * size 0 for the return; a struct or union by value, an array, a vararg, or MAX_BPF_FUNC_ARGS
 * arguments or more are refused with the kernel's message and -EINVAL.
 */
import { BTF_KIND, type Btf } from './btf/btf.ts';
import type { BtfFuncModel } from './arch.ts';

export const MAX_BPF_FUNC_ARGS = 12;
const EINVAL = 22;

export class FuncModelError extends Error {
  readonly errno = -EINVAL;
  constructor(msg: string) { super(msg); this.name = 'FuncModelError'; }
}

/** __get_type_size: 8 for a pointer, t->size for an int or enum, 0 for void, else -EINVAL. */
function getTypeSize(btf: Btf, id: number): { size: number; name: string } | undefined {
  const name = btf.typeName(id);
  if (id === 0) return { size: 0, name };
  const t = btf.resolve(id);
  if (t.kind === BTF_KIND.PTR) return { size: 8, name };
  if (t.kind === BTF_KIND.INT || t.kind === BTF_KIND.ENUM || t.kind === BTF_KIND.ENUM64) return { size: t.sizeOrType, name };
  return undefined;
}

/** Builds the model of FUNC `funcId` (its name is used in messages, as the kernel's log does). */
export function btfDistillFuncProto(btf: Btf, funcId: number): BtfFuncModel {
  const func = btf.type(funcId);
  const tname = func.name;
  const proto = btf.type(func.sizeOrType);
  if (func.kind !== BTF_KIND.FUNC || proto.kind !== BTF_KIND.FUNC_PROTO) throw new FuncModelError(`[${funcId}] is not a function`);
  const params = proto.params ?? [];
  // A trailing (unnamed, type 0) parameter is the `...` of a vararg function.
  const nargs = params.length;
  if (nargs > 0 && params[nargs - 1]!.type === 0) throw new FuncModelError(`The function ${tname} with variable args is unsupported.`);
  if (nargs >= MAX_BPF_FUNC_ARGS) throw new FuncModelError(`The function ${tname} has ${nargs} arguments. Too many.`);
  const ret = getTypeSize(btf, proto.sizeOrType);
  if (!ret) throw new FuncModelError(`The function ${tname} return type ${btf.typeName(proto.sizeOrType)} is unsupported.`);
  const argSize: number[] = [];
  params.forEach((p, i) => {
    const a = p.type === 0 ? undefined : getTypeSize(btf, p.type);
    if (!a || a.size === 0) throw new FuncModelError(`The function ${tname} arg${i} type ${p.type === 0 ? 'void' : btf.typeName(p.type)} is unsupported.`);
    argSize.push(a.size);
  });
  return { retSize: ret.size, nrArgs: nargs, argSize };
}
