/**
 * @fileoverview One instruction as the verifier log prints it (`(b7) r0 = 0`, helper calls by
 * name, a map's ld_imm64 by the map's kernel address), for the walk and for backtracking.
 */
import { isLdImm64 } from '../isa/insn.ts';
import { dumpXlated } from '../asm/disassembler.ts';
import { profileFuncName } from '../helpers/tracing_func.ts';
import type { VerifierEnv } from './env.ts';

/** The instruction as the log prints it (`(b7) r0 = 0`). */
export function insnText(env: VerifierEnv, idx: number): string {
  const insn = env.insns[idx]!;
  const slice = env.insns.slice(idx, idx + (isLdImm64(insn) ? 2 : 1));
  const aux = env.aux[idx]!;
  const line = dumpXlated(slice, {
    helperName: (id) => profileFuncName(env.profile, id),
    immName: (_i, imm) => (aux.map?.kaddr !== undefined ? `0x${(aux.map.kaddr + BigInt(aux.mapOff ?? 0)).toString(16)}` : `0x${imm.toString(16)}`),
  })[0]!;
  return line.slice(line.indexOf(' ') + 1);
}
