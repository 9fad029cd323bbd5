/**
 * @fileoverview BPF_OBJ_GET_INFO_BY_FD: struct bpf_prog_info / bpf_map_info / bpf_btf_info in
 * their uAPI layouts (v5.5). The user's info_len bounds what is read and written; a larger
 * info_len whose tail is not zero is -E2BIG; arrays the user asks for (insns, map ids) are
 * copied up to the length the user gave, and the real lengths written back.
 */
import type { BpfSubsystem } from './bpf.ts';
import type { BpfProgObj, BtfObj, BpfLinkObj } from './objects.ts';
import type { BpfMap } from '../maps/map.ts';
import { encode } from '../isa/insn.ts';
import { PROG_STANDIN } from '../arch.ts';
import { atLeast, type KernelProfile } from '../../kernel/profile.ts';
import { BPF_PSEUDO_MAP_FD, BPF_PSEUDO_MAP_VALUE } from '../isa/opcodes.ts';
import { hideProgInfo } from './privilege.ts';

const E2BIG = 7;
export const PROG_INFO_SIZE = 208, MAP_INFO_SIZE = 80, BTF_INFO_SIZE = 16;

/** Reads the user's info (for the buffers it offers), lets `fill` complete it, writes it back. */
function exchange(sub: BpfSubsystem, uinfo: bigint, ulen: number, size: number, fill: (dv: DataView, bytes: Uint8Array) => void): number {
  const mem = sub.kernel.machine.mem;
  if (ulen > size) {
    const tail = mem.read(uinfo + BigInt(size), ulen - size);
    if (!tail.every((b) => b === 0)) return -E2BIG;
  }
  const len = Math.min(ulen, size);
  const bytes = new Uint8Array(size);
  bytes.set(mem.read(uinfo, len));
  const dv = new DataView(bytes.buffer);
  fill(dv, bytes);
  mem.write(uinfo, bytes.subarray(0, len));
  return len;
}

const putName = (bytes: Uint8Array, off: number, name: string): void => {
  bytes.fill(0, off, off + 16);
  bytes.set(Buffer.from(name, 'latin1').subarray(0, 15), off);
};

/**
 * sizeof(struct bpf_prog_info) per generation: v5.5 ends with run_cnt (208); 5.12 adds
 * `__u64 recursion_misses` at 208 (216); 5.16 `__u32 verified_insns` (224 with padding); 6.0
 * `attach_btf_obj_id`, `attach_btf_id` (232). The fields after recursion_misses read 0 here.
 */
export function progInfoSize(profile: KernelProfile): number {
  const v = profile.version;
  if (atLeast(v, '6.1')) return 232;
  if (atLeast(v, '5.19')) return 224;
  return profile.trampoline.enterSkips ? 216 : PROG_INFO_SIZE;
}
/** bpf_prog_info.recursion_misses (5.12+), from the prog stand-in's counter. */
const RECURSION_MISSES_OFF = 208;

export function progInfo(sub: BpfSubsystem, p: BpfProgObj, uinfo: bigint, ulen: number): number {
  const mem = sub.kernel.machine.mem;
  const size = progInfoSize(sub.kernel.profile);
  return exchange(sub, uinfo, ulen, size, (dv, bytes) => {
    const ulenJited = dv.getUint32(16, true), ulenXlated = dv.getUint32(20, true);
    const uJited = dv.getBigUint64(24, true), uXlated = dv.getBigUint64(32, true);
    const uNrMaps = dv.getUint32(52, true), uMapIds = dv.getBigUint64(56, true);
    // !capable(CAP_SYS_ADMIN) (5.5) / !bpf_capable() (5.8): no images, lengths zeroed (privilege.ts).
    const raw = sub.privilege.progInfoRaw(), user = new DataView(bytes.slice().buffer);
    const jited = p.prog.jit?.image.code ?? new Uint8Array(0);
    // The xlated dump: after fixups, with map pointers shown as map ids (bpf_insn_prepare_dump).
    const xl = p.prog.patched.insns.map((i) => ({ ...i }));
    for (let i = 0; i < xl.length; i++) {
      const ins = xl[i]!;
      if (ins.code === 0x18 && (ins.src === BPF_PSEUDO_MAP_FD || ins.src === BPF_PSEUDO_MAP_VALUE)) {
        const orig = p.prog.insns[p.prog.patched.newToOrig[i]!]!;
        const map = sub.mapFromFd(orig.imm);
        ins.imm = map ? map.id : orig.imm;
        i++;
      }
    }
    const xlated = encode(xl);
    dv.setUint32(0, p.type, true);
    dv.setUint32(4, p.id, true);
    bytes.set(Buffer.from(p.prog.tag, 'hex'), 8);
    dv.setUint32(16, jited.length, true);
    dv.setUint32(20, xlated.length, true);
    if (raw && ulenJited && uJited) mem.write(uJited, jited.subarray(0, Math.min(ulenJited, jited.length)));
    if (raw && ulenXlated && uXlated) mem.write(uXlated, xlated.subarray(0, Math.min(ulenXlated, xlated.length)));
    dv.setBigUint64(40, p.loadTime, true);
    dv.setUint32(48, p.uid, true);
    dv.setUint32(52, p.maps.length, true);
    if (uNrMaps && uMapIds) p.maps.slice(0, uNrMaps).forEach((m, k) => mem.writeU32(uMapIds + BigInt(4 * k), m.id));
    putName(bytes, 64, p.prog.name);
    dv.setUint32(84, p.gplCompatible ? 1 : 0, true);
    dv.setUint32(104, p.prog.jit ? p.prog.jit.funcAddrs.length : 0, true);
    dv.setUint32(108, p.prog.jit ? p.prog.jit.funcAddrs.length : 0, true);
    dv.setUint32(128, p.btf?.id ?? 0, true);
    dv.setBigUint64(192, p.runTimeNs, true);
    dv.setBigUint64(200, p.runCnt, true);
    // 5.12: the misses __bpf_prog_enter counted in prog->active's guard (the stand-in's PROG_STANDIN.misses).
    if (size > RECURSION_MISSES_OFF) dv.setBigUint64(RECURSION_MISSES_OFF, mem.readU64(p.progAddr + BigInt(PROG_STANDIN.misses)), true);
    if (!raw) hideProgInfo(dv, user);
  });
}

export function mapInfo(sub: BpfSubsystem, m: BpfMap, uinfo: bigint, ulen: number): number {
  return exchange(sub, uinfo, ulen, MAP_INFO_SIZE, (dv, bytes) => {
    dv.setUint32(0, m.type, true);
    dv.setUint32(4, m.id, true);
    dv.setUint32(8, m.keySize, true);
    dv.setUint32(12, m.valueSize, true);
    dv.setUint32(16, m.maxEntries, true);
    dv.setUint32(20, m.flags, true);
    putName(bytes, 24, m.name);
    dv.setUint32(64, m.btfId, true);
    dv.setUint32(68, m.attr.btfKeyTypeId ?? 0, true);
    dv.setUint32(72, m.attr.btfValueTypeId ?? 0, true);
  });
}

export function btfInfo(sub: BpfSubsystem, b: BtfObj, uinfo: bigint, ulen: number): number {
  const mem = sub.kernel.machine.mem;
  return exchange(sub, uinfo, ulen, BTF_INFO_SIZE, (dv) => {
    const ubtf = dv.getBigUint64(0, true), usize = dv.getUint32(8, true);
    if (ubtf && usize) mem.write(ubtf, b.data.subarray(0, Math.min(usize, b.data.length)));
    dv.setUint32(8, b.data.length, true);
    dv.setUint32(12, b.id, true);
  });
}

/** struct bpf_link_info: type, id, prog_id, then for tracing links attach_type (5.8+ layout). */
export const LINK_INFO_SIZE = 24;
export function linkInfo(sub: BpfSubsystem, l: BpfLinkObj, uinfo: bigint, ulen: number): number {
  return exchange(sub, uinfo, ulen, LINK_INFO_SIZE, (dv) => {
    dv.setUint32(0, l.type, true);
    dv.setUint32(4, l.id, true);
    dv.setUint32(8, l.prog.id, true);
    dv.setUint32(16, l.prog.expectedAttachType, true);
  });
}
