/**
 * @fileoverview The objects bpf() hands out as fds: programs, maps and BTF, each with an id from
 * its idr and a reference count. An object lives while an fd, a program (for maps), a link or
 * an attachment holds it; when the last reference goes its id is freed and its memory returned.
 */
import type { BpfProg } from '../prog.ts';
import type { BpfMap } from '../maps/map.ts';
import type { Btf } from '../btf/btf.ts';
import type { BpfTrampoline } from '../trampoline.ts';
import type { ProgFuncInfo } from '../func_info.ts';

export interface BpfProgObj {
  id: number;
  readonly type: number;
  readonly expectedAttachType: number;
  readonly attachBtfId: number;
  readonly prog: BpfProg;
  /** Maps the program uses (each holds a reference). */
  readonly maps: BpfMap[];
  readonly btf: BtfObj | undefined;
  readonly gplCompatible: boolean;
  readonly loadTime: bigint;
  readonly uid: number;
  refcnt: number;
  /** bpf_prog_stats (kept only while kernel.bpf_stats_enabled). */
  runCnt: bigint;
  runTimeNs: bigint;
  /** The guest address standing for `struct bpf_prog *` (what __bpf_prog_exit receives). */
  progAddr: bigint;
  /** Not JIT-compiled: its instructions in guest memory (insnsi, passed to the interpreter). */
  insnsi?: bigint;
  /** fentry/fexit: the trampoline of its target, from load time (as v5.5's check_attach_btf_id). */
  trampoline?: BpfTrampoline;
  /** Linked to its trampoline (through a raw tracepoint fd or a link). */
  linked: boolean;
  /** Its func_info (BTF FUNC per function, which ones are unreliable), when loaded with BTF. */
  funcInfo?: ProgFuncInfo;
  /** fentry/fexit on another program (attach_prog_fd): the target, held until this one is freed. */
  linkedProg?: BpfProgObj;
  /** prog->call_get_func_ip (5.15): it calls bpf_get_func_ip, its trampoline stores the ip (BPF_TRAMP_F_IP_ARG). */
  callGetFuncIp?: boolean;
}

export interface BtfObj {
  id: number;
  readonly btf: Btf;
  readonly data: Uint8Array;
  refcnt: number;
}

/** File names of the anon inodes, as /proc/PID/fdinfo and ls -l /proc/PID/fd show them. */
export const ANON_PROG = 'bpf-prog', ANON_MAP = 'bpf-map', ANON_BTF = 'btf', ANON_LINK = 'bpf-link';
export const ANON_TRACING = 'bpf-tracing-prog', ANON_STATS = 'bpf-stats';
export type { BpfMap };

/** struct bpf_link (5.7+): a program attached to a hook, owning the attachment; its fd or id holds it. */
export interface BpfLinkObj {
  id: number;
  /** BPF_LINK_TYPE_TRACING = 2 (enum bpf_link_type). */
  readonly type: number;
  readonly prog: BpfProgObj;
  refcnt: number;
  /** Undoes the attachment (once): detach, or the last reference going. */
  release: (() => void) | undefined;
}
export const BPF_LINK_TYPE_TRACING = 2;
