/**
 * @fileoverview What BPF_PROG_LOAD does between the structural check and the JIT, in the
 * kernel's order (bpf_check, v5.5): check_btf_info's func_info records, the register walk that
 * btf_check_func_arg_match uses to mark functions whose BTF disagrees with the code, and
 * convert_ctx_accesses for the networking program types. The tag is the program's as the user
 * loaded it (bpf_prog_calc_tag runs before any rewrite).
 */
import type { GuestMemory } from '../../emulator/memory.ts';
import type { Btf } from '../btf/btf.ts';
import type { Insn } from '../isa/insn.ts';
import type { Attr } from './attr.ts';
import { bpfProgCalcTag } from '../core.ts';
import { checkBtfFunc, checkFuncArgMatch, type ProgFuncInfo } from '../func_info.ts';
import { convertCtxAccesses, ctxLoadKind } from '../ctx_convert.ts';
import { trackRegs } from '../reg_track.ts';

const EINVAL = 22;

export interface CheckedProg {
  /** The instructions to JIT/interpret: context accesses rewritten. */
  insns: Insn[];
  /** bpf_prog_calc_tag of the instructions as loaded. */
  tag: string;
  funcInfo?: ProgFuncInfo;
}

/**
 * `fail(errno, msg)` logs a line and gives -errno (errno 0: only logs). Returns the checked
 * program or a negative errno.
 */
export function checkProg(mem: GuestMemory, f: Attr, type: number, insns: readonly Insn[], progBtf: Btf | undefined,
  vmlinux: Btf | undefined, fail: (errno: number, msg: string) => number): CheckedProg | number {
  const tag = bpfProgCalcTag(insns);
  let funcInfo: ProgFuncInfo | undefined;
  const cnt = f.func_info_cnt as number;
  if (cnt) {
    if (!progBtf) return -EINVAL;
    const recSize = f.func_info_rec_size as number;
    const recs = mem.read(f.func_info as bigint, cnt * Math.max(recSize, 0));
    const r = checkBtfFunc(progBtf, insns, recs, cnt, recSize);
    if ('errno' in r) return fail(r.errno, r.msg);
    funcInfo = r;
  }
  const kindOf = ctxLoadKind(type, vmlinux);
  if (!funcInfo && !kindOf) return { insns: insns.slice(), tag }; // nothing to match or rewrite
  const states = trackRegs(insns, kindOf ? { load: (_b, off) => kindOf(off) } : {});
  if (funcInfo) checkFuncArgMatch(funcInfo, insns, states, type, (l) => { fail(0, l); });
  const conv = convertCtxAccesses(type, insns, vmlinux, states);
  if ('errno' in conv) return fail(conv.errno, conv.msg);
  return { insns: conv, tag, ...(funcInfo ? { funcInfo } : {}) };
}
