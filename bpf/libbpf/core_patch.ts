/**
 * @fileoverview Applying a resolved CO-RE relocation to its instruction, as libbpf's
 * bpf_core_patch_insn does: an ALU immediate, a load/store offset (and size, when the field's
 * size changed in a compatible way), or an ld_imm64 value; a relocation that found no target
 * poisons the instruction with a call to the invalid helper 0xbad2310, so a program that
 * reaches it fails to load with the instruction named.
 */
import { BPF_CLASS, BPF_ALU, BPF_ALU64, BPF_LDX, BPF_ST, BPF_STX, BPF_K, BPF_SRC, BPF_JMP, BPF_CALL } from '../isa/opcodes.ts';
import { isLdImm64, type Insn } from '../isa/insn.ts';
import { resolveCoreRelo, type CoreReloResult } from '../btf/core.ts';
import type { Btf } from '../btf/btf.ts';
import { ObjectError, type CoreReloRec, type ProgramSpec } from './object.ts';

/** libbpf's POISON_CALL_KFUNC_BASE-era marker: `call 0xbad2310` ("bad relo"). */
export const BPF_CORE_POISON = 0xbad2310;
const SIZE_OF_BYTES: Record<number, number> = { 1: 0x10, 2: 0x08, 4: 0x00, 8: 0x18 };

export function patchCoreInsn(prog: ProgramSpec, idx: number, insn: Insn, next: Insn | undefined, res: CoreReloResult): void {
  const where = `program '${prog.name}': insn ${idx}`;
  const poison = (): void => { insn.code = BPF_JMP | BPF_CALL; insn.dst = 0; insn.src = 0; insn.off = 0; insn.imm = BPF_CORE_POISON; };
  if ((res as { poison?: boolean }).poison) { poison(); return; } // no target: libbpf poisons, the load fails there
  const cls = BPF_CLASS(insn.code);
  if ((cls === BPF_ALU || cls === BPF_ALU64) && BPF_SRC(insn.code) === BPF_K) {
    if (res.validate && BigInt(insn.imm) !== BigInt.asIntN(64, res.origValue) && BigInt(insn.imm >>> 0) !== res.origValue)
      throw new ObjectError(`${where}: CO-RE: unexpected immediate ${insn.imm} (expected ${res.origValue})`);
    insn.imm = Number(BigInt.asIntN(32, res.value));
    return;
  }
  if (cls === BPF_LDX || cls === BPF_ST || cls === BPF_STX) {
    if (res.validate && insn.off !== Number(res.origValue)) throw new ObjectError(`${where}: CO-RE: unexpected offset ${insn.off} (expected ${res.origValue})`);
    if (res.value > 0x7fffn) throw new ObjectError(`${where}: CO-RE: offset ${res.value} does not fit`);
    insn.off = Number(res.value);
    if (res.failMemszAdjust) { poison(); return; }
    if (res.newSize !== res.origSize && res.newSize in SIZE_OF_BYTES) insn.code = (insn.code & ~0x18) | SIZE_OF_BYTES[res.newSize]!;
    return;
  }
  if (isLdImm64(insn) && next) {
    insn.imm = Number(BigInt.asIntN(32, res.value));
    next.imm = Number(BigInt.asIntN(32, res.value >> 32n));
    return;
  }
  throw new ObjectError(`${where}: CO-RE relocation on an instruction that cannot hold it (opcode 0x${insn.code.toString(16)})`);
}

/** The CoreResolver the loader calls: resolve against the kernel's BTF, then patch. */
export function coreResolver(target: Btf) {
  return (local: Btf, prog: ProgramSpec, relo: CoreReloRec, insn: Insn, next: Insn | undefined): void => {
    const accessStr = local.strAt(relo.accessStrOff);
    if (accessStr === undefined) throw new ObjectError(`program '${prog.name}': CO-RE relocation at insn ${relo.insnOff}: bad access string offset`);
    const res = resolveCoreRelo(local, { typeId: relo.typeId, accessStr, kind: relo.kind as never, insnOff: relo.insnOff }, target, { progName: prog.name });
    patchCoreInsn(prog, relo.insnOff, insn, next, res);
  };
}
