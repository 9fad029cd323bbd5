/**
 * @fileoverview The verifier's environment (struct bpf_verifier_env): the program and what it
 * may use (type, maps of its ld_imm64s, BTF for typed pointers and the attach target), the
 * current path's state, the stack of paths still to explore, the explored states per
 * instruction for pruning, per-instruction facts, the log, and the counters the kernel reports.
 */
import { kernelProfile, type KernelProfile } from '../../kernel/profile.ts';
import type { Insn } from '../isa/insn.ts';
import type { Btf } from '../btf/btf.ts';
import type { MapInfo, RegState } from './reg.ts';
import { copyVerifierState, type FuncState, type VerifierState } from './state.ts';
import { VerifierLog } from './log.ts';

export const EPERM = 1, ENOENT = 2, E2BIG = 7, EACCES = 13, EFAULT = 14, EINVAL = 22, ENOSPC = 28, ENOTSUPP = 524;
export const BPF_COMPLEXITY_LIMIT_INSNS = 1_000_000;
export const BPF_COMPLEXITY_LIMIT_JMP_SEQ = 8192;
/** BPF_MAX_VAR_OFF: the largest variable offset a pointer may carry. */
export const BPF_MAX_VAR_OFF = 1 << 29;
/** BPF_MAX_VAR_SIZ: the largest variable size a helper may be given. */
export const BPF_MAX_VAR_SIZ = 1 << 29;
export const MAX_BPF_STACK = 512;
export const MAX_CALL_FRAMES = 8;
export const BPF_MAX_SUBPROGS = 256;

/** What the load path tells the verifier about a tracing program's target. */
export interface AttachTarget {
  /** The BTF holding the target FUNC (vmlinux's, a module's, or a target program's). */
  btf: Btf;
  /** The FUNC's id. */
  funcId: number;
  /** Where typed pointers (PTR_TO_BTF_ID) point; default `btf` (a module's includes vmlinux's). */
  ptrBtf?: Btf;
  /** bpf2bpf: the target program's type (its uAPI ctx pointer is the kernel's struct). */
  tgtProgType?: number;
  /** bpf2bpf on a function whose BTF is unreliable: five u64 arguments, all scalars. */
  conservative?: boolean;
}

export interface SubprogInfo {
  start: number;
  stackDepth: number;
  hasTailCall: boolean;
  hasLdAbs: boolean;
}

export interface InsnAux {
  /** The pointer type a load/store was first checked with ("same insn cannot be used with different pointers"). */
  ptrType: number;
  prunePoint: boolean;
  seen: boolean;
  /** ld_imm64 of a map: the map and, for BPF_PSEUDO_MAP_VALUE, the offset into its value. */
  map?: MapInfo;
  mapOff?: number;
  /** A load through a typed kernel pointer: at run time a fault reads 0 (BPF_PROBE_MEM). */
  probeMem?: boolean;
}

export interface StackElem {
  st: VerifierState;
  insnIdx: number;
  prevInsnIdx: number;
  logPos: number;
}

export interface StateListEntry {
  state: VerifierState;
  hitCnt: number;
  missCnt: number;
}

export class VerifierEnv {
  readonly insns: Insn[];
  readonly progType: number;
  readonly expectedAttachType: number;
  readonly gplCompatible: boolean;
  readonly strictAlignment: boolean;
  readonly attach: AttachTarget | undefined;
  /** vmlinux BTF: PTR_TO_BTF_ID types and the names the log prints. */
  readonly btf: Btf | undefined;
  readonly log: VerifierLog;
  /** Helpers this machine implements (undefined: every helper with a prototype). */
  readonly implementedHelpers: ReadonlySet<number> | undefined;
  /** Accept the v4 ISA and the atomic operations of later kernels (v5.5 has neither). */
  readonly v4Isa: boolean;
  /** The kernel generation whose rules apply (kernel/profile.ts). */
  readonly profile: KernelProfile;

  aux: InsnAux[];
  subprogs: SubprogInfo[] = [];
  cur!: VerifierState;
  head: StackElem[] = [];
  explored = new Map<number, StateListEntry[]>();
  idGen = 0;
  insnIdx = 0;
  prevInsnIdx = -1;
  insnProcessed = 0;
  jmpsProcessed = 0;
  prevJmpsProcessed = 0;
  prevInsnProcessed = 0;
  totalStates = 0;
  peakStates = 0;
  maxStatesPerInsn = 0;
  longestMarkReadWalk = 0;
  /** The highest ctx offset read (+size), for information. */
  maxCtxOffset = 0;
  /** BPF_F_TEST_STATE_FREQ */
  testStateFreq = false;
  /**
   * env->allow_ptr_leaks: a privileged load (CAP_SYS_ADMIN in 5.5, perfmon_capable() from 5.8).
   * Unprivileged, a pointer may not leave the program: not as R0, not stored into a map or ctx.
   */
  allowPtrLeaks = true;
  /** Whether any direct packet write was seen (seen_direct_write). */
  seenDirectWrite = false;
  /** prog->call_get_func_ip (5.15): the program calls bpf_get_func_ip, the trampoline stores the ip. */
  callGetFuncIp = false;

  constructor(o: {
    insns: Insn[]; progType: number; expectedAttachType: number; gplCompatible: boolean; strictAlignment: boolean;
    attach?: AttachTarget; btf?: Btf; log: VerifierLog; implementedHelpers?: ReadonlySet<number>; v4Isa?: boolean;
    profile?: KernelProfile;
  }) {
    this.insns = o.insns;
    this.progType = o.progType;
    this.expectedAttachType = o.expectedAttachType;
    this.gplCompatible = o.gplCompatible;
    this.strictAlignment = o.strictAlignment;
    this.attach = o.attach;
    this.profile = o.profile ?? kernelProfile();
    this.btf = o.btf;
    this.log = o.log;
    this.implementedHelpers = o.implementedHelpers;
    this.v4Isa = o.v4Isa ?? false;
    this.aux = o.insns.map(() => ({ ptrType: 0, prunePoint: false, seen: false }));
  }

  verbose(msg: string): void { this.log.write(msg); }

  get curFunc(): FuncState { return this.cur.frame[this.cur.curframe]!; }
  get regs(): RegState[] { return this.curFunc.regs; }
  /** The frame a (stack) pointer points into. */
  funcOf(reg: RegState): FuncState { return this.cur.frame[reg.frameno]!; }

  /** kernel_type_name(): a vmlinux type's name, for `ptr_task_struct`. */
  typeName(id: number): string {
    try { return this.btf?.type(id).name ?? ''; } catch { return ''; }
  }

  /** push_stack: remember the current state to explore from insnIdx later; undefined when too many. */
  pushStack(insnIdx: number, prevInsnIdx: number): VerifierState | undefined {
    const st = copyVerifierState(this.cur);
    this.head.push({ st, insnIdx, prevInsnIdx, logPos: this.log.pos });
    if (this.head.length > BPF_COMPLEXITY_LIMIT_JMP_SEQ) {
      this.verbose(`The sequence of ${this.head.length} jumps is too complex.\n`);
      return undefined;
    }
    if (st.parent) st.parent.branches++;
    return st;
  }

  /** pop_stack: continue with the last pushed path; false when none is left. */
  popStack(popLog: boolean): boolean {
    const e = this.head.pop();
    if (!e) return false;
    this.cur = e.st;
    if (popLog) this.log.reset(e.logPos);
    this.insnIdx = e.insnIdx;
    this.prevInsnIdx = e.prevInsnIdx;
    return true;
  }
}
