/**
 * @fileoverview Selftests of the context rules: __sk_buff fields readable and writable per
 * program type, narrow loads, cb[], and one instruction used with two kinds of pointer
 * (verifier/ctx_skb.c), plus xdp_md's and the tracing types' rules.
 */
import {
  prog, BPF_ST_MEM, BPF_STX_MEM, BPF_LDX_MEM, BPF_EXIT_INSN, BPF_MOV64_REG, BPF_MOV64_IMM, BPF_ALU64_IMM,
  BPF_LD_MAP_FD, BPF_JMP_IMM, BPF_JMP_A, BPF_EMIT_CALL, BPF_FUNC,
  BPF_DW, BPF_W, BPF_H, BPF_B, BPF_ADD, BPF_JGE, BPF_JNE,
  type VCase, R0, R1, R2, R10,
} from './harness.ts';

const SOCKET_FILTER = 1, KPROBE = 2, SCHED_CLS = 3, TRACEPOINT = 5, XDP = 6, PERF_EVENT = 7, RAW_TRACEPOINT = 17;
const O = {
  len: 0, pkt_type: 4, mark: 8, queue_mapping: 12, protocol: 16, vlan_present: 20, vlan_tci: 24, priority: 32, tc_index: 44,
  cb: 48, hash: 68, tc_classid: 72, napi_id: 84, family: 88, remote_ip4: 92, local_ip4: 96, remote_ip6: 100, local_ip6: 116,
  remote_port: 132, local_port: 136, tstamp: 152, wire_len: 160, sk: 168,
} as const;
const lookupBody = prog(BPF_ST_MEM(BPF_DW, R10, -8, 0), BPF_MOV64_REG(R2, R10), BPF_ALU64_IMM(BPF_ADD, R2, -8), BPF_LD_MAP_FD(R1, 0),
  BPF_EMIT_CALL(BPF_FUNC.map_lookup_elem), BPF_JMP_IMM(BPF_JNE, R0, 0, 1), BPF_EXIT_INSN(), BPF_MOV64_REG(R1, R0));
const ld = (size: number, off: number, progType = SOCKET_FILTER) => ({ insns: prog(BPF_LDX_MEM(size, R0, R1, off), BPF_EXIT_INSN()), progType });
const st = (size: number, off: number, progType = SOCKET_FILTER) => ({ insns: prog(BPF_MOV64_IMM(R0, 0), BPF_STX_MEM(size, R1, R0, off), BPF_EXIT_INSN()), progType });
const cbAll = (op: 'st' | 'ld') => Array.from({ length: 20 }, (_, i) => (op === 'st' ? BPF_STX_MEM(BPF_B, R1, R0, O.cb + i) : BPF_LDX_MEM(BPF_B, R0, R1, O.cb + i)));
const bad = 'invalid bpf_context access';

export const CTX: VCase[] = [
  {
    descr: 'access skb fields ok',
    insns: prog(...[O.len, O.mark, O.pkt_type, O.queue_mapping, O.protocol, O.vlan_present, O.vlan_tci, O.napi_id]
      .flatMap((off, i) => [BPF_LDX_MEM(BPF_W, R0, R1, off), BPF_JMP_IMM(BPF_JGE, R0, 0, i < 3 ? 1 : 0)]).slice(0, -1), BPF_JMP_IMM(BPF_JGE, R0, 0, 0), BPF_EXIT_INSN()),
    result: 'accept',
  },
  { descr: 'access skb fields bad1', insns: prog(BPF_LDX_MEM(BPF_W, R0, R1, -4), BPF_EXIT_INSN()), result: 'reject', errstr: bad },
  {
    descr: 'access skb fields bad2',
    insns: prog(BPF_JMP_IMM(BPF_JGE, R1, 0, 9), lookupBody, BPF_LDX_MEM(BPF_W, R0, R1, O.pkt_type), BPF_EXIT_INSN()),
    fixup: { map_hash_8b: [4] }, result: 'reject', errstr: 'different pointers',
  },
  {
    descr: 'access skb fields bad3',
    insns: prog(BPF_JMP_IMM(BPF_JGE, R1, 0, 2), BPF_LDX_MEM(BPF_W, R0, R1, O.pkt_type), BPF_EXIT_INSN(), lookupBody, BPF_JMP_A(-12)),
    fixup: { map_hash_8b: [6] }, result: 'reject', errstr: 'different pointers',
  },
  {
    descr: 'access skb fields bad4',
    insns: prog(BPF_JMP_IMM(BPF_JGE, R1, 0, 3), BPF_LDX_MEM(BPF_W, R1, R1, O.len), BPF_MOV64_IMM(R0, 0), BPF_EXIT_INSN(), lookupBody, BPF_JMP_A(-13)),
    fixup: { map_hash_8b: [7] }, result: 'reject', errstr: 'different pointers',
  },
  ...(['family', 'remote_ip4', 'local_ip4', 'remote_ip6', 'local_ip6', 'remote_port', 'local_port'] as const).map((f): VCase =>
    ({ descr: `invalid access __sk_buff ${f}`, ...ld(BPF_W, O[f]), result: 'reject', errstr: bad })),
  { descr: 'check skb->mark is not writeable by sockets', insns: prog(BPF_STX_MEM(BPF_W, R1, R1, O.mark), BPF_EXIT_INSN()), result: 'reject', errstr: bad },
  { descr: 'check skb->tc_index is not writeable by sockets', insns: prog(BPF_STX_MEM(BPF_W, R1, R1, O.tc_index), BPF_EXIT_INSN()), result: 'reject', errstr: bad },
  { descr: 'check cb access: byte', insns: prog(BPF_MOV64_IMM(R0, 0), ...cbAll('st'), ...cbAll('ld'), BPF_EXIT_INSN()), result: 'accept' },
  { descr: '__sk_buff->hash, offset 0, byte store not permitted', ...st(BPF_B, O.hash), result: 'reject', errstr: bad },
  { descr: '__sk_buff->tc_index, offset 3, byte store not permitted', ...st(BPF_B, O.tc_index + 3), result: 'reject', errstr: bad },
  { descr: 'check skb->hash byte load permitted', ...ld(BPF_B, O.hash), result: 'accept' },
  { descr: 'check skb->hash byte load permitted 1', ...ld(BPF_B, O.hash + 1), result: 'accept' },
  { descr: 'check skb->hash byte load permitted 2', ...ld(BPF_B, O.hash + 2), result: 'accept' },
  { descr: 'check skb->hash byte load permitted 3', ...ld(BPF_B, O.hash + 3), result: 'accept' },
  { descr: 'check skb->hash half load permitted', ...ld(BPF_H, O.hash), result: 'accept' },
  { descr: 'check skb->hash half load not permitted, unaligned', ...ld(BPF_H, O.hash + 1), result: 'reject', errstr: bad },
  { descr: 'check skb->hash dword load not permitted', ...ld(BPF_DW, O.hash), result: 'reject', errstr: bad },
  { descr: 'check cb access: word, unaligned', ...st(BPF_W, O.cb + 2), result: 'reject', errstr: bad },
  { descr: 'check cb access: dword', insns: prog(BPF_MOV64_IMM(R0, 0), BPF_STX_MEM(BPF_DW, R1, R0, O.cb), BPF_STX_MEM(BPF_DW, R1, R0, O.cb + 8), BPF_LDX_MEM(BPF_DW, R0, R1, O.cb + 8), BPF_EXIT_INSN()), result: 'accept' },
  { descr: 'check cb access: dword, unaligned', ...st(BPF_DW, O.cb + 4), result: 'reject', errstr: bad },
  { descr: 'check cb access: dword, past cb[4]', ...st(BPF_DW, O.cb + 16), result: 'reject', errstr: bad },
  { descr: 'check out of range skb->cb access', ...ld(BPF_W, O.cb + 256), result: 'reject', errstr: bad },
  { descr: 'check skb->tc_classid is not readable by socket filters', ...ld(BPF_W, O.tc_classid), result: 'reject', errstr: bad },
  { descr: 'check skb->tc_classid is writeable by tc', ...st(BPF_W, O.tc_classid, SCHED_CLS), result: 'accept' },
  { descr: 'check skb->mark is writeable by tc', ...st(BPF_W, O.mark, SCHED_CLS), result: 'accept' },
  { descr: 'check skb->len is not writeable by tc', ...st(BPF_W, O.len, SCHED_CLS), result: 'reject', errstr: 'invalid bpf_context access off=0 size=4' },
  { descr: 'check __sk_buff->tstamp, dword read by tc', ...ld(BPF_DW, O.tstamp, SCHED_CLS), result: 'accept' },
  { descr: 'check __sk_buff->tstamp, word read is not permitted', ...ld(BPF_W, O.tstamp, SCHED_CLS), result: 'reject', errstr: bad },
  { descr: 'check wire_len is not readable by sockets', ...ld(BPF_W, O.wire_len), result: 'reject', errstr: bad },
  { descr: 'check wire_len is readable by tc classifier', ...ld(BPF_W, O.wire_len, SCHED_CLS), result: 'accept' },
  { descr: 'check wire_len is not writable by tc classifier', ...st(BPF_W, O.wire_len, SCHED_CLS), result: 'reject', errstr: 'invalid bpf_context access off=160 size=4' },
  { descr: '__sk_buff->sk: a dword read gives sock_common_or_null', insns: prog(BPF_LDX_MEM(BPF_DW, R1, R1, O.sk), BPF_MOV64_IMM(R0, 0), BPF_EXIT_INSN()), progType: SCHED_CLS, result: 'accept' },
  { descr: '__sk_buff->sk: no dereference before a NULL check', insns: prog(BPF_LDX_MEM(BPF_DW, R1, R1, O.sk), BPF_LDX_MEM(BPF_W, R0, R1, 0), BPF_EXIT_INSN()), progType: SCHED_CLS, result: 'reject', errstr: "R1 invalid mem access 'sock_common_or_null'" },
  { descr: 'past the end of __sk_buff', ...ld(BPF_W, 176, SCHED_CLS), result: 'reject', errstr: 'invalid bpf_context access off=176 size=4' },
  { descr: 'ST into ctx', insns: prog(BPF_ST_MEM(BPF_W, R1, O.mark, 0), BPF_MOV64_IMM(R0, 0), BPF_EXIT_INSN()), progType: SCHED_CLS, result: 'reject', errstr: 'BPF_ST stores into R1 ctx is not allowed' },
  { descr: 'ctx pointer plus a constant cannot be dereferenced', insns: prog(BPF_ALU64_IMM(BPF_ADD, R1, 4), BPF_LDX_MEM(BPF_W, R0, R1, 0), BPF_EXIT_INSN()), progType: SCHED_CLS, result: 'reject', errstr: 'dereference of modified ctx ptr R1 off=4 disallowed' },
  // xdp_md (v5.5: data, data_end, data_meta, ingress_ifindex, rx_queue_index)
  { descr: 'xdp: ingress_ifindex read', ...ld(BPF_W, 12, XDP), result: 'accept' },
  { descr: 'xdp: rx_queue_index read', ...ld(BPF_W, 16, XDP), result: 'accept' },
  { descr: 'xdp: egress_ifindex is past v5.5 xdp_md', ...ld(BPF_W, 20, XDP), result: 'reject', errstr: 'invalid bpf_context access off=20 size=4' },
  { descr: 'xdp: narrow read of data refused', ...ld(BPF_H, 0, XDP), result: 'reject', errstr: 'invalid bpf_context access off=0 size=2' },
  { descr: 'xdp: ctx is read-only', ...st(BPF_W, 12, XDP), result: 'reject', errstr: 'invalid bpf_context access off=12 size=4' },
  // kprobe: struct pt_regs (168 bytes), tracepoint: past the 8-byte common header, perf_event, raw_tracepoint
  { descr: 'kprobe: pt_regs->di', ...ld(BPF_DW, 112, KPROBE), result: 'accept' },
  { descr: 'kprobe: past pt_regs', ...ld(BPF_DW, 168, KPROBE), result: 'reject', errstr: 'invalid bpf_context access off=168 size=8' },
  { descr: 'kprobe: pt_regs is read-only', ...st(BPF_DW, 0, KPROBE), result: 'reject', errstr: bad },
  { descr: 'tracepoint: the common header is not readable', ...ld(BPF_DW, 0, TRACEPOINT), result: 'reject', errstr: 'invalid bpf_context access off=0 size=8' },
  { descr: 'tracepoint: a field past the header', ...ld(BPF_W, 8, TRACEPOINT), result: 'accept' },
  { descr: 'perf_event: sample_period', ...ld(BPF_DW, 168, PERF_EVENT), result: 'accept' },
  { descr: 'perf_event: narrow read of a pt_regs slot', ...ld(BPF_W, 0, PERF_EVENT), result: 'reject', errstr: bad },
  { descr: 'raw_tracepoint: args[11]', ...ld(BPF_DW, 88, RAW_TRACEPOINT), result: 'accept' },
  { descr: 'raw_tracepoint: args[12] is past MAX_BPF_FUNC_ARGS', ...ld(BPF_DW, 96, RAW_TRACEPOINT), result: 'reject', errstr: 'invalid bpf_context access off=96 size=8' },
];
