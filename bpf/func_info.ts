/**
 * @fileoverview A program's BTF function info at load (kernel/bpf/verifier.c, v5.5): check_btf_func
 * (one FUNC record per subprogram, at its first instruction, in order), then
 * btf_check_func_arg_match for each function: do the argument types its BTF prototype declares
 * match what the verifier sees in R1..R5 at its entry? LLVM may drop an argument of a static
 * function without telling BTF (test_pkt_access_subprog2(int val, skb) is called with skb in R1),
 * so a mismatch does not fail the load: the function is marked unreliable
 * (func_info_aux[i].unreliable), logged as "Type info disagrees with actual arguments due to
 * compiler optimizations", and fentry/fexit programs attached to it see five u64 arguments.
 */
import { BTF_KIND, btfKindStr } from './btf/uapi.ts';
import type { Btf } from './btf/btf.ts';
import type { Insn } from './isa/insn.ts';
import { splitFuncs } from './core.ts';
import { RK, type RegState } from './reg_track.ts';
import { CTX_TYPES } from './ctx_convert.ts';

const EINVAL = 22, E2BIG = 7;
/** MIN_BPF_FUNCINFO_SIZE and MAX_FUNCINFO_REC_SIZE (v5.5). */
export const MIN_BPF_FUNCINFO_SIZE = 8, MAX_FUNCINFO_REC_SIZE = 252;
/** btf_check_func_arg_match looks at R1..R5 only. */
const MAX_BPF_FUNC_REG_ARGS = 5;

/** What a loaded program keeps of its func_info (prog->aux->func_info and func_info_aux). */
export interface ProgFuncInfo {
  readonly btf: Btf;
  /** The BTF FUNC id of each function, main program first (func_info[i].type_id). */
  readonly typeIds: readonly number[];
  /** Each function's name in BTF (what kallsyms shows after bpf_prog_<tag>_). */
  readonly names: readonly string[];
  /** func_info_aux[i].unreliable: BTF disagrees with the code; tracing sees 5 u64 args. */
  readonly unreliable: boolean[];
}

export interface FuncInfoError { errno: number; msg: string }

/**
 * check_btf_func: the records (rec_size bytes each, extra bytes must be zero) against the
 * program's functions and BTF. `recs` are the raw bytes the user passed.
 */
export function checkBtfFunc(btf: Btf, insns: readonly Insn[], recs: Uint8Array, cnt: number, recSize: number): ProgFuncInfo | FuncInfoError {
  const starts = splitFuncs(insns);
  if (cnt !== starts.length) return { errno: EINVAL, msg: "number of funcs in func_info doesn't match number of subprogs" };
  if (recSize < MIN_BPF_FUNCINFO_SIZE || recSize > MAX_FUNCINFO_REC_SIZE || recSize % 4) return { errno: EINVAL, msg: `invalid func info rec size ${recSize}` };
  const dv = new DataView(recs.buffer, recs.byteOffset, recs.byteLength);
  const typeIds: number[] = [], names: string[] = [];
  let prev = 0;
  for (let i = 0; i < cnt; i++) {
    const o = i * recSize;
    if (!recs.subarray(o + MIN_BPF_FUNCINFO_SIZE, o + recSize).every((b) => b === 0)) return { errno: E2BIG, msg: 'nonzero tailing record in func info' };
    const insnOff = dv.getUint32(o, true), typeId = dv.getUint32(o + 4, true);
    if (i === 0 && insnOff) return { errno: EINVAL, msg: `nonzero insn_off ${insnOff} for the first func info record` };
    if (i > 0 && insnOff <= prev) return { errno: EINVAL, msg: `same or smaller insn offset (${insnOff}) than previous func info record (${prev})` };
    if (starts[i] !== insnOff) return { errno: EINVAL, msg: "func_info BTF section doesn't match subprog layout in BPF program" };
    const t = btf.types[typeId];
    if (!t || typeId === 0 || t.kind !== BTF_KIND.FUNC) return { errno: EINVAL, msg: `invalid type id ${typeId} in func info` };
    typeIds.push(typeId);
    names.push(t.name);
    prev = insnOff;
  }
  return { btf, typeIds, names, unreliable: typeIds.map(() => false) };
}

/** btf_get_prog_ctx_type: is `ptrId` a pointer to the program type's uAPI context struct? */
function isProgCtxType(btf: Btf, ptrId: number, progType: number, log: (l: string) => void): boolean {
  const t = btf.resolve(btf.type(ptrId).sizeOrType);
  if (t.kind !== BTF_KIND.STRUCT) { log('BPF program ctx type is not a struct'); return false; }
  if (!t.name) { log("BPF program ctx struct doesn't have a name"); return false; }
  const want = CTX_TYPES[progType]?.uapi;
  return want === undefined || want === t.name;
}

/**
 * btf_check_func_arg_match for every function, with the registers at its entry (the main
 * program's initial state, a subprogram's as its callers leave them). Marks mismatches
 * unreliable and logs why; never fails the load.
 */
export function checkFuncArgMatch(info: ProgFuncInfo, insns: readonly Insn[], states: readonly (RegState | undefined)[], progType: number, log: (l: string) => void): void {
  const starts = splitFuncs(insns);
  const btf = info.btf;
  starts.forEach((start, i) => {
    const entry = states[start];
    if (!entry || info.unreliable[i]) return;
    const why = argMismatch(btf, info.typeIds[i]!, entry.regs, progType, log);
    if (why === undefined) return;
    if (why) log(why);
    log('Type info disagrees with actual arguments due to compiler optimizations');
    info.unreliable[i] = true;
  });
}

/** Why the BTF prototype disagrees with the registers ('' when already logged), or undefined. */
function argMismatch(btf: Btf, funcId: number, regs: Int32Array, progType: number, log: (l: string) => void): string | undefined {
  const func = btf.type(funcId), tname = func.name;
  const proto = btf.types[func.sizeOrType];
  if (!proto || proto.kind !== BTF_KIND.FUNC_PROTO) return `Invalid type of func ${tname}`;
  const params = proto.params ?? [];
  if (params.length > MAX_BPF_FUNC_REG_ARGS) return `Function ${tname} has ${params.length} > ${MAX_BPF_FUNC_REG_ARGS} args`;
  for (let i = 0; i < params.length; i++) {
    const k = regs[i + 1]!;
    const t = btf.resolve(params[i]!.type);
    if (t.kind === BTF_KIND.INT || t.kind === BTF_KIND.ENUM) {
      // An unknown register (paths that disagree) is given the benefit of the doubt.
      if (k === RK.SCALAR || k === RK.UNKNOWN) continue;
      return `R${i + 1} is not a scalar`;
    }
    if (t.kind === BTF_KIND.PTR) {
      if (k === RK.SCALAR) return `R${i + 1} is not a pointer`;
      // The context must be declared as the program type's uAPI struct (by name only).
      if (k === RK.CTX && !isProgCtxType(btf, t.id, progType, log)) return '';
      continue;
    }
    return `Unrecognized argument type ${btfKindStr(t.kind)}`;
  }
  return undefined;
}
