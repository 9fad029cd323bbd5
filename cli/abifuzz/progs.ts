/**
 * @fileoverview The recording BPF programs of the calling-convention harness, generated as
 * instructions (bpf/isa/build.ts). A program for a prototype stores, into its own record of an
 * array map's value (addressed directly, ld_imm64 BPF_PSEUDO_MAP_VALUE), each ctx slot as the
 * raw u64 and cast to the slot's declared C type, the fexit return value likewise, and counts
 * its runs:
 *
 *   r6 = r1                                  ctx: the trampoline's u64 array
 *   r7 = map_value(fd) + record             ld_imm64 src=BPF_PSEUDO_MAP_VALUE
 *   *(u64 *)(r7 + 0) += 1                    hits
 *   r1 = *(u64 *)(r6 + 8*i)                  a slot btf_ctx_access allows (int, void *, struct *)
 *     or bpf_probe_read(r10 - 8, 8, r6 + 8*i) one it refuses in v5.5 (enum, other pointers)
 *   *(u64 *)(r7 + RAW + 8*i) = r1
 *   r1 <<= 64 - bits; r1 s>>= 64 - bits      the cast: sign- or zero-extension, & 0xff for _Bool
 *   *(u64 *)(r7 + CAST + 8*i) = r1
 *   r0 = 0; exit
 */
import {
  BPF_ADD, BPF_AND, BPF_ARSH, BPF_DW, BPF_LSH, BPF_MOV, BPF_PSEUDO_MAP_VALUE, BPF_RSH,
} from '../../bpf/isa/opcodes.ts';
import { alu32Reg, alu64Imm, callHelper, exit, ldImm64, ldxMem, mov64Imm, mov64Reg, stxMem } from '../../bpf/isa/build.ts';
import type { Insn } from '../../bpf/isa/insn.ts';
import type { CType } from './gen.ts';

/** One record: hits, 13 cast slots (12 argument slots + ret), 13 raw slots; 256 bytes apart. */
export const RECORD_SIZE = 256;
export const REC_HITS = 0, REC_CAST = 8, REC_RAW = 128;
/** BPF_FUNC_probe_read (v5.5: kernel memory on x86-64). */
const BPF_FUNC_probe_read = 4;

export interface SlotSpec {
  /** ctx index: the argument's slot (a struct has one per eightbyte), or the slot count for the return value. */
  readonly index: number;
  readonly type: CType;
  /** A struct's slot: the bytes that hold members (the cast keeps only those, zero-extended). */
  readonly defined?: number;
  /** btf_ctx_access lets the program load the slot directly. */
  readonly direct: boolean;
}

/** The cast of r1 to `ty`, as `(T)slot` in C would read it from the slot's u64 (a struct's: its defined bytes). */
function cast(ty: CType, defined = 8): Insn[] {
  if (ty.kind === 'struct') return defined >= 8 ? [] : [alu64Imm(BPF_LSH, 1, 64 - 8 * defined), alu64Imm(BPF_RSH, 1, 64 - 8 * defined)];
  if (ty.kind === 'bool') return [alu64Imm(BPF_AND, 1, 0xff)];
  if (ty.size === 8) return [];
  if (ty.size === 4 && !ty.signed) return [alu32Reg(BPF_MOV, 1, 1)]; // w1 = w1: zero-extends
  const sh = 64 - ty.size * 8;
  return [alu64Imm(BPF_LSH, 1, sh), alu64Imm(ty.signed ? BPF_ARSH : BPF_RSH, 1, sh)];
}

/** The program recording `slots` into record `rec` of the map `mapFd`'s value. */
export function recordingProgram(mapFd: number, rec: number, slots: readonly SlotSpec[]): Insn[] {
  const base = rec * RECORD_SIZE;
  const out: Insn[] = [
    mov64Reg(6, 1), //                                             r6 = ctx
    ...ldImm64(7, (BigInt(base) << 32n) | BigInt(mapFd), BPF_PSEUDO_MAP_VALUE), // r7 = &value[base]
    ldxMem(BPF_DW, 1, 7, REC_HITS), alu64Imm(BPF_ADD, 1, 1), stxMem(BPF_DW, 7, 1, REC_HITS),
  ];
  for (const s of slots) {
    if (s.direct) out.push(ldxMem(BPF_DW, 1, 6, 8 * s.index)); // r1 = ctx[i]
    else {
      out.push(
        mov64Reg(1, 10), alu64Imm(BPF_ADD, 1, -8), //            r1 = fp - 8
        mov64Imm(2, 8), //                                       r2 = 8
        mov64Reg(3, 6), alu64Imm(BPF_ADD, 3, 8 * s.index), //    r3 = ctx + 8*i
        callHelper(BPF_FUNC_probe_read),
        ldxMem(BPF_DW, 1, 10, -8), //                            r1 = *(u64 *)(fp - 8)
      );
    }
    out.push(stxMem(BPF_DW, 7, 1, REC_RAW + 8 * s.index), ...cast(s.type, s.defined), stxMem(BPF_DW, 7, 1, REC_CAST + 8 * s.index));
  }
  out.push(mov64Imm(0, 0), exit());
  return out;
}

/** A program that loads ctx[i] directly (to ask the verifier whether the slot is readable). */
export const directReadProbe = (index: number): Insn[] => [ldxMem(BPF_DW, 0, 1, 8 * index), exit()];
