/**
 * @fileoverview convert_ctx_accesses (kernel/bpf/verifier.c) for the networking program types:
 * a program reads `struct xdp_md` / `struct __sk_buff` (the uAPI context), but what the hook
 * passes in R1 is the kernel's `struct xdp_buff` / `struct sk_buff`. Each load and store through
 * the context register is rewritten into accesses of the kernel structure, at the offsets the
 * kernel image's BTF gives (xdp_convert_ctx_access, bpf_convert_ctx_access in net/core/filter.c):
 * `r2 = *(u32 *)(r1 + 4)` (xdp_md.data_end) becomes `r2 = *(u64 *)(r1 + 8)` (xdp_buff.data_end);
 * `xdp_md.ingress_ifindex` becomes three loads (xdp->rxq->dev->ifindex).
 *
 * Which accesses are allowed comes from each type's is_valid_access (v5.5): xdp_md is read-only
 * and every field is 4 bytes; __sk_buff allows narrow reads of its scalar fields, writes of a few
 * (only cb[] for socket filters), and direct packet access (data, data_end, data_meta) only to tc
 * programs. Anything else is the verifier's "invalid bpf_context access off=%d size=%d" (-EACCES).
 */
import type { Btf } from './btf/btf.ts';
import { BTF_KIND } from './btf/btf.ts';
import {
  BPF_CLASS, BPF_LDX, BPF_ST, BPF_STX, BPF_JMP, BPF_JMP32, BPF_OP, BPF_SIZE, BPF_MODE, BPF_MEM, BPF_ATOMIC,
  BPF_B, BPF_H, BPF_W, BPF_DW, SIZE_BYTES, BPF_RSH, BPF_AND, BPF_JEQ, BPF_JGE, BPF_JA, BPF_CALL, BPF_EXIT,
  BPF_PSEUDO_CALL,
} from './isa/opcodes.ts';
import { alu32Imm, jmpImm, ldxMem, stxMem, mov32Imm } from './isa/build.ts';
import { isLdImm64, type Insn } from './isa/insn.ts';
import {
  BPF_PROG_TYPE_SOCKET_FILTER, BPF_PROG_TYPE_SCHED_CLS, BPF_PROG_TYPE_SCHED_ACT, BPF_PROG_TYPE_XDP,
} from './prog_types.ts';
import { RK, trackRegs, type RegState } from './reg_track.ts';

const EACCES = 13, EINVAL = 22;
const SIZE_CODE: Readonly<Record<number, number>> = { 1: BPF_B, 2: BPF_H, 4: BPF_W, 8: BPF_DW };

/** The uAPI context type of each program type and the kernel type behind it (bpf_types.h). */
export const CTX_TYPES: Readonly<Record<number, { uapi: string; kernel: string }>> = {
  [BPF_PROG_TYPE_SOCKET_FILTER]: { uapi: '__sk_buff', kernel: 'sk_buff' },
  [BPF_PROG_TYPE_SCHED_CLS]: { uapi: '__sk_buff', kernel: 'sk_buff' },
  [BPF_PROG_TYPE_SCHED_ACT]: { uapi: '__sk_buff', kernel: 'sk_buff' },
  [BPF_PROG_TYPE_XDP]: { uapi: 'xdp_md', kernel: 'xdp_buff' },
};

/** A kernel struct member's byte offset and size, from the image's BTF. */
interface KField { off: number; size: number }

/** One uAPI context field: where it is, and the instructions that replace an access to it. */
interface CtxField {
  name: string;
  off: number;
  size: number;
  /** A packet pointer (data, data_end, data_meta): full-size reads only, tc/xdp only. */
  pkt?: boolean;
  /** Converted read into dst from the kernel struct at src; `size` is the final load's width. */
  read(dst: number, src: number): { insns: Insn[]; size: number };
  /** Converted write of src into the kernel struct at dst (writable fields only). */
  write?(dst: number, src: number): Insn[];
}

/** A member of a kernel struct (`path` may go through nested members: `qdisc_cb.tc_classid`). */
export function kernelField(btf: Btf, struct: string, path: string): KField {
  const s = btf.findByNameKind(struct, BTF_KIND.STRUCT);
  if (!s) throw new Error(`ctx conversion: the kernel image has no struct ${struct}`);
  let off = 0, id = s.id, size = 0;
  for (const name of path.split('.')) {
    const m = btf.findMember(id, name);
    if (!m) throw new Error(`ctx conversion: struct ${struct} has no member ${path}`);
    off += m.bitOffset / 8;
    id = m.member.type;
    size = btf.resolveSize(id);
  }
  return { off, size };
}

const load = (f: KField) => (dst: number, src: number) => ({ insns: [ldxMem(SIZE_CODE[f.size]!, dst, src, f.off)], size: f.size });
const store = (f: KField) => (dst: number, src: number) => [stxMem(SIZE_CODE[f.size]!, dst, src, f.off)];

/** xdp_md → xdp_buff (xdp_convert_ctx_access). */
function xdpFields(btf: Btf): CtxField[] {
  const k = (p: string): KField => kernelField(btf, 'xdp_buff', p);
  const rxq = k('rxq');
  const dev = kernelField(btf, 'xdp_rxq_info', 'dev'), qi = kernelField(btf, 'xdp_rxq_info', 'queue_index');
  const ifindex = kernelField(btf, 'net_device', 'ifindex');
  return [
    { name: 'data', off: 0, size: 4, pkt: true, read: load(k('data')) },
    { name: 'data_end', off: 4, size: 4, pkt: true, read: load(k('data_end')) },
    { name: 'data_meta', off: 8, size: 4, pkt: true, read: load(k('data_meta')) },
    { name: 'ingress_ifindex', off: 12, size: 4, read: (d, s) => ({ size: 4, insns: [
      ldxMem(BPF_DW, d, s, rxq.off),           // d = xdp->rxq
      ldxMem(BPF_DW, d, d, dev.off),           // d = rxq->dev
      ldxMem(BPF_W, d, d, ifindex.off),        // d = dev->ifindex
    ] }) },
    { name: 'rx_queue_index', off: 16, size: 4, read: (d, s) => ({ size: 4, insns: [
      ldxMem(BPF_DW, d, s, rxq.off),           // d = xdp->rxq
      ldxMem(BPF_W, d, d, qi.off),             // d = rxq->queue_index
    ] }) },
  ];
}

/** __sk_buff → sk_buff (bpf_convert_ctx_access), the fields this kernel's sk_buff has. */
function skbFields(btf: Btf): CtxField[] {
  const k = (p: string): KField => kernelField(btf, 'sk_buff', p);
  const cb = k('cb');
  const inCb = (struct: string, p: string): KField => { const f = kernelField(btf, struct, p); return { off: cb.off + f.off, size: f.size }; };
  const qdata = inCb('qdisc_skb_cb', 'data');
  const dev = k('dev'), ifindex = kernelField(btf, 'net_device', 'ifindex');
  const vlanProto = k('vlan_proto'), queueMapping = k('queue_mapping');
  const rw = (name: string, off: number, f: KField): CtxField => ({ name, off, size: 4, read: load(f), write: store(f) });
  const ro = (name: string, off: number, f: KField): CtxField => ({ name, off, size: 4, read: load(f) });
  const fields: CtxField[] = [
    ro('len', 0, k('len')),
    ro('pkt_type', 4, k('pkt_type')),
    rw('mark', 8, k('mark')),
    { name: 'queue_mapping', off: 12, size: 4, read: load(queueMapping), write: (d, s) => [
      jmpImm(BPF_JGE, s, 0xffff, 1),             // NO_QUEUE_MAPPING: leave it
      stxMem(BPF_H, d, s, queueMapping.off),
    ] },
    ro('protocol', 16, k('protocol')),
    { name: 'vlan_present', off: 20, size: 4, read: (d, s) => ({ size: 4, insns: [
      ldxMem(BPF_H, d, s, vlanProto.off),        // no VLAN offload: present iff a proto was set
      jmpImm(BPF_JEQ, d, 0, 1),
      mov32Imm(d, 1),
    ] }) },
    ro('vlan_tci', 24, k('vlan_tci')),
    ro('vlan_proto', 28, vlanProto),
    rw('priority', 32, k('priority')),
    ro('ingress_ifindex', 36, k('skb_iif')),
    { name: 'ifindex', off: 40, size: 4, read: (d, s) => ({ size: 4, insns: [
      ldxMem(BPF_DW, d, s, dev.off),             // d = skb->dev
      jmpImm(BPF_JEQ, d, 0, 1),                  // no device: 0
      ldxMem(BPF_W, d, d, ifindex.off),          // d = dev->ifindex
    ] }) },
    rw('tc_index', 44, k('tc_index')),
    ...[0, 1, 2, 3, 4].map((i) => rw(`cb[${i}]`, 48 + 4 * i, { off: qdata.off + 4 * i, size: 4 })),
    ro('hash', 68, k('hash')),
    rw('tc_classid', 72, inCb('qdisc_skb_cb', 'tc_classid')),
    { name: 'data', off: 76, size: 4, pkt: true, read: load(k('data')) },
    { name: 'data_end', off: 80, size: 4, pkt: true, read: load(inCb('bpf_skb_data_end', 'data_end')) },
    { name: 'data_meta', off: 140, size: 4, pkt: true, read: load(inCb('bpf_skb_data_end', 'data_meta')) },
    ro('wire_len', 160, inCb('qdisc_skb_cb', 'pkt_len')),
  ];
  return fields;
}

/** sk_filter_is_valid_access / tc_cls_act_is_valid_access / xdp_is_valid_access (v5.5). */
function allowed(type: number, f: CtxField, write: boolean): boolean {
  if (type === BPF_PROG_TYPE_SOCKET_FILTER) {
    if (f.pkt || f.name === 'tc_classid' || f.name === 'wire_len') return false;
    return !write || f.name.startsWith('cb[');
  }
  return !write || f.write !== undefined;
}

const fieldCache = new WeakMap<Btf, Map<string, CtxField[]>>();
function fieldsOf(btf: Btf, uapi: string): CtxField[] {
  let m = fieldCache.get(btf);
  if (!m) { m = new Map(); fieldCache.set(btf, m); }
  let f = m.get(uapi);
  if (!f) { f = uapi === 'xdp_md' ? xdpFields(btf) : skbFields(btf); m.set(uapi, f); }
  return f;
}

export interface CtxConvertError { errno: number; msg: string }

/** The kind a load from the context gives (for the register tracker): packet pointers, else scalars. */
export function ctxLoadKind(type: number, btf: Btf | undefined): ((off: number) => number) | undefined {
  const ct = CTX_TYPES[type];
  if (!ct || !btf) return undefined;
  const fields = fieldsOf(btf, ct.uapi);
  return (off) => (fields.find((f) => off >= f.off && off < f.off + f.size)?.pkt ? RK.PTR : RK.SCALAR);
}

/**
 * Rewrites every context access of a networking program. Returns the new instructions (jumps and
 * calls adjusted), or the verifier's refusal. Program types without a converted context are
 * returned as they are.
 */
export function convertCtxAccesses(type: number, insns: readonly Insn[], btf: Btf | undefined, states?: readonly (RegState | undefined)[]): Insn[] | CtxConvertError {
  const ct = CTX_TYPES[type];
  if (!ct || !btf) return insns.slice();
  const fields = fieldsOf(btf, ct.uapi);
  const kindOf = ctxLoadKind(type, btf)!;
  const st = states ?? trackRegs(insns, { load: (_b, off) => kindOf(off) });
  const patches = new Map<number, Insn[]>();
  for (let pc = 0; pc < insns.length; pc++) {
    const i = insns[pc]!, s = st[pc];
    if (isLdImm64(i)) { pc++; continue; }
    if (!s) continue;
    const cls = BPF_CLASS(i.code);
    if (cls !== BPF_LDX && cls !== BPF_STX && cls !== BPF_ST) continue;
    const base = cls === BPF_LDX ? i.src : i.dst;
    const kind = s.regs[base]!;
    const size = SIZE_BYTES[BPF_SIZE(i.code)]!;
    if (kind === RK.MIXED) return { errno: EINVAL, msg: 'same insn cannot be used with different pointers' };
    if (kind === RK.CTX_MOD) return { errno: EACCES, msg: `dereference of modified ctx ptr R${base} off=${i.off} disallowed` };
    if (kind !== RK.CTX) continue;
    if (cls === BPF_ST) return { errno: EACCES, msg: `BPF_ST stores into R${base} ctx is not allowed` };
    if (BPF_MODE(i.code) === BPF_ATOMIC) return { errno: EACCES, msg: `BPF_XADD stores into R${base} ctx is not allowed` };
    const bad: CtxConvertError = { errno: EACCES, msg: `invalid bpf_context access off=${i.off} size=${size}` };
    if (BPF_MODE(i.code) !== BPF_MEM || i.off < 0 || i.off % size) return bad;
    const f = fields.find((x) => i.off >= x.off && i.off < x.off + x.size);
    const write = cls === BPF_STX;
    if (!f || !allowed(type, f, write)) return bad;
    if (size !== f.size) {
      // Narrow reads of scalar fields only (bpf_ctx_narrow_access_ok); never of xdp_md.
      if (write || f.pkt || ct.uapi === 'xdp_md' || size > f.size) return bad;
    } else if (i.off !== f.off) return bad;
    if (write) { patches.set(pc, f.write!(i.dst, i.src)); continue; }
    const r = f.read(i.dst, i.src);
    const out = [...r.insns];
    if (size < f.size) {
      // The whole field is loaded, then the bytes asked for are shifted down and masked.
      const shift = (i.off - f.off) * 8;
      if (shift) out.push(alu32Imm(BPF_RSH, i.dst, shift));
      out.push(alu32Imm(BPF_AND, i.dst, size === 1 ? 0xff : 0xffff));
    }
    patches.set(pc, out);
  }
  return patches.size ? patchInsns(insns, patches) : insns.slice();
}

const isJumpOrCall = (i: Insn): boolean => {
  const cls = BPF_CLASS(i.code);
  if (cls !== BPF_JMP && cls !== BPF_JMP32) return false;
  const op = BPF_OP(i.code);
  return op !== BPF_EXIT && (op !== BPF_CALL || (cls === BPF_JMP && i.src === BPF_PSEUDO_CALL));
};

/**
 * bpf_patch_insn_data: each patched instruction replaced by its sequence; jumps and bpf-to-bpf
 * calls re-aimed at where their target now starts (jumps inside a sequence are relative to it).
 */
export function patchInsns(orig: readonly Insn[], patches: ReadonlyMap<number, Insn[]>): Insn[] {
  const start = new Int32Array(orig.length + 1);
  let n = 0;
  for (let k = 0; k < orig.length; k++) { start[k] = n; n += patches.get(k)?.length ?? 1; }
  start[orig.length] = n;
  const out: Insn[] = [];
  for (let k = 0; k < orig.length; k++) {
    const p = patches.get(k);
    if (p) { out.push(...p); continue; }
    const ins = orig[k]!;
    if (isJumpOrCall(ins) && !(k > 0 && isLdImm64(orig[k - 1]!))) {
      const usesImm = ins.code === (BPF_JMP32 | BPF_JA) || BPF_OP(ins.code) === BPF_CALL;
      const target = k + 1 + (usesImm ? ins.imm : ins.off);
      if (target >= 0 && target <= orig.length) {
        const rel = start[target]! - (out.length + 1);
        out.push(usesImm ? { ...ins, imm: rel } : { ...ins, off: rel });
        continue;
      }
    }
    out.push(ins);
  }
  return out;
}
