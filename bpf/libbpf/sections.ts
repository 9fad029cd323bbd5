/**
 * @fileoverview libbpf's section names (section_defs[] in libbpf.c): which program type and
 * attach type a SEC() name means, and whether bpfemu can attach it yet. One table, used by the
 * ELF loader and the CLI.
 */
import {
  BPF_PROG_TYPE_SOCKET_FILTER, BPF_PROG_TYPE_KPROBE, BPF_PROG_TYPE_SCHED_CLS, BPF_PROG_TYPE_SCHED_ACT,
  BPF_PROG_TYPE_TRACEPOINT, BPF_PROG_TYPE_XDP, BPF_PROG_TYPE_RAW_TRACEPOINT, BPF_PROG_TYPE_TRACING,
  BPF_TRACE_FENTRY, BPF_TRACE_FEXIT, BPF_MODIFY_RETURN, BPF_TRACE_RAW_TP,
} from '../prog_types.ts';

export interface SecDef {
  /** The name, or its prefix when it ends in '/' (the rest is the attach target). */
  readonly sec: string;
  readonly progType: number;
  readonly expectedAttachType: number;
  /** Needs the BTF id of the attach target (fentry/fexit/fmod_ret/tp_btf). */
  readonly attachBtf?: boolean;
  /** Attach is not modelled yet: loading works, attaching says so. */
  readonly attachUnsupported?: string;
  /** Attached through the BPF trampoline (BPF_RAW_TRACEPOINT_OPEN): fentry, fexit, fmod_ret. */
  readonly trampoline?: boolean;
}

export const SECTION_DEFS: readonly SecDef[] = [
  { sec: 'socket', progType: BPF_PROG_TYPE_SOCKET_FILTER, expectedAttachType: 0, attachUnsupported: 'sockets are not modelled' },
  { sec: 'kprobe/', progType: BPF_PROG_TYPE_KPROBE, expectedAttachType: 0, attachUnsupported: 'kprobes are not modelled' },
  { sec: 'kretprobe/', progType: BPF_PROG_TYPE_KPROBE, expectedAttachType: 0, attachUnsupported: 'kretprobes are not modelled' },
  { sec: 'tracepoint/', progType: BPF_PROG_TYPE_TRACEPOINT, expectedAttachType: 0, attachUnsupported: 'tracepoints are not modelled' },
  { sec: 'tp/', progType: BPF_PROG_TYPE_TRACEPOINT, expectedAttachType: 0, attachUnsupported: 'tracepoints are not modelled' },
  { sec: 'raw_tracepoint/', progType: BPF_PROG_TYPE_RAW_TRACEPOINT, expectedAttachType: 0, attachUnsupported: 'raw tracepoints are not modelled' },
  { sec: 'raw_tp/', progType: BPF_PROG_TYPE_RAW_TRACEPOINT, expectedAttachType: 0, attachUnsupported: 'raw tracepoints are not modelled' },
  { sec: 'tp_btf/', progType: BPF_PROG_TYPE_TRACING, expectedAttachType: BPF_TRACE_RAW_TP, attachBtf: true, attachUnsupported: 'BTF tracepoints are not modelled' },
  { sec: 'fentry/', progType: BPF_PROG_TYPE_TRACING, expectedAttachType: BPF_TRACE_FENTRY, attachBtf: true, trampoline: true },
  { sec: 'fexit/', progType: BPF_PROG_TYPE_TRACING, expectedAttachType: BPF_TRACE_FEXIT, attachBtf: true, trampoline: true },
  { sec: 'fmod_ret/', progType: BPF_PROG_TYPE_TRACING, expectedAttachType: BPF_MODIFY_RETURN, attachBtf: true, trampoline: true }, // 5.7+: the kernel refuses the load before
  { sec: 'xdp', progType: BPF_PROG_TYPE_XDP, expectedAttachType: 0, attachUnsupported: 'an XDP program needs an interface: NetStack.setXdp (bpfemu net attach IFACE xdp)' },
  { sec: 'tc', progType: BPF_PROG_TYPE_SCHED_CLS, expectedAttachType: 0, attachUnsupported: 'a tc program needs an interface: NetStack.setTcIngress (bpfemu net attach IFACE tc)' },
  { sec: 'classifier', progType: BPF_PROG_TYPE_SCHED_CLS, expectedAttachType: 0, attachUnsupported: 'a tc program needs an interface: NetStack.setTcIngress (bpfemu net attach IFACE tc)' },
  { sec: 'action', progType: BPF_PROG_TYPE_SCHED_ACT, expectedAttachType: 0, attachUnsupported: 'tc actions (act_bpf) are not modelled' },
];

/** The definition a section name matches: exact, or by prefix for `prefix/target` names. */
export function findSecDef(secName: string): { def: SecDef; target: string | undefined } | undefined {
  for (const def of SECTION_DEFS) {
    if (def.sec.endsWith('/')) {
      if (secName.startsWith(def.sec)) return { def, target: secName.slice(def.sec.length) || undefined };
    } else if (secName === def.sec || secName.startsWith(`${def.sec}/`)) return { def, target: undefined };
  }
  return undefined;
}
