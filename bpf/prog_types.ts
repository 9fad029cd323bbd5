/**
 * @fileoverview Program types (enum bpf_prog_type) and what each allows, registered in one table:
 * a new type is one entry. `testRun` is the type's BPF_PROG_TEST_RUN (net/bpf/test_run.c).
 */

export const BPF_PROG_TYPE_UNSPEC = 0, BPF_PROG_TYPE_SOCKET_FILTER = 1, BPF_PROG_TYPE_KPROBE = 2;
export const BPF_PROG_TYPE_SCHED_CLS = 3, BPF_PROG_TYPE_SCHED_ACT = 4, BPF_PROG_TYPE_TRACEPOINT = 5;
export const BPF_PROG_TYPE_XDP = 6, BPF_PROG_TYPE_PERF_EVENT = 7, BPF_PROG_TYPE_RAW_TRACEPOINT = 17;
export const BPF_PROG_TYPE_TRACING = 26;

// enum bpf_attach_type (the ones tracing uses)
export const BPF_TRACE_RAW_TP = 23, BPF_TRACE_FENTRY = 24, BPF_TRACE_FEXIT = 25, BPF_MODIFY_RETURN = 26;

export type TestRunKind = 'xdp' | 'skb' | 'tracing' | 'none';

export interface ProgTypeInfo {
  readonly name: string;
  /** How BPF_PROG_TEST_RUN runs it; 'none': -ENOTSUPP. */
  readonly testRun: TestRunKind;
  /** Whether PROG_LOAD accepts attach_btf_id / expected_attach_type for it. */
  readonly tracing?: boolean;
}

export const PROG_TYPES: Readonly<Record<number, ProgTypeInfo>> = {
  [BPF_PROG_TYPE_SOCKET_FILTER]: { name: 'socket_filter', testRun: 'skb' },
  [BPF_PROG_TYPE_KPROBE]: { name: 'kprobe', testRun: 'none' },
  [BPF_PROG_TYPE_SCHED_CLS]: { name: 'sched_cls', testRun: 'skb' },
  [BPF_PROG_TYPE_SCHED_ACT]: { name: 'sched_act', testRun: 'skb' },
  [BPF_PROG_TYPE_TRACEPOINT]: { name: 'tracepoint', testRun: 'none' },
  [BPF_PROG_TYPE_XDP]: { name: 'xdp', testRun: 'xdp' },
  [BPF_PROG_TYPE_RAW_TRACEPOINT]: { name: 'raw_tracepoint', testRun: 'none' },
  [BPF_PROG_TYPE_TRACING]: { name: 'tracing', testRun: 'tracing', tracing: true },
};
