/**
 * @fileoverview The verifier's context rule for fentry/fexit programs (tracing_prog_is_valid_access
 * and btf_ctx_access, v5.5): ctx is an array of u64 arguments; a program may only read it, at
 * offsets that are multiples of 8 (and of the load size), of argument i < nr_args — or, for
 * fexit, i == nr_args, the return value; an argument must be an int, a pointer to void or a
 * pointer to a struct. Which registers hold ctx is tracked along every path (R1 at entry,
 * copies by 64-bit mov), so accesses through a copy are checked too.
 */
import { BTF_KIND, type Btf } from './btf/btf.ts';
import {
  BPF_CLASS, BPF_ALU64, BPF_ALU, BPF_LDX, BPF_ST, BPF_STX, BPF_JMP, BPF_JMP32, BPF_OP, BPF_SRC, BPF_X, BPF_MOV,
  BPF_CALL, BPF_EXIT, BPF_JA, BPF_SIZE, SIZE_BYTES, BPF_PSEUDO_CALL, BPF_MODE, BPF_ATOMIC, BPF_FETCH, BPF_CMPXCHG,
} from './isa/opcodes.ts';
import { isLdImm64, type Insn } from './isa/insn.ts';
import { BPF_TRACE_FEXIT } from './prog_types.ts';
import { MAX_BPF_FUNC_ARGS } from './btf_func_model.ts';

const EACCES = 13;

export interface CtxViolation { errno: number; log: string[] }

/** btf_ctx_access: undefined when the read is fine, else the kernel's log line. */
function btfCtxAccess(btf: Btf, funcId: number, off: number, fexit: boolean): string | undefined {
  const func = btf.type(funcId), tname = func.name;
  const proto = btf.type(func.sizeOrType);
  if (off % 8) return `func '${tname}' offset ${off} is not multiple of 8`;
  const arg = off / 8;
  const nrArgs = proto.params?.length ?? 0;
  if (arg > nrArgs || (arg === nrArgs && !fexit)) return `func '${tname}' doesn't have ${arg + 1}-th argument`;
  const typeId = arg === nrArgs ? proto.sizeOrType : proto.params![arg]!.type;
  const t = btf.resolve(typeId);
  if (t.kind === BTF_KIND.INT) return undefined;
  if (t.kind !== BTF_KIND.PTR) return `func '${tname}' arg${arg} '${arg === nrArgs ? '' : proto.params![arg]!.name}' has type ${t.kind === 0 ? 'void' : btf.typeName(typeId)}. Only pointer access is allowed`;
  if (t.sizeOrType === 0) return undefined; // a pointer to void is a scalar to the verifier
  const target = btf.resolve(t.sizeOrType);
  if (target.kind !== BTF_KIND.STRUCT) return `func '${tname}' arg${arg} type ${btf.typeName(t.sizeOrType)} is not a struct`;
  return undefined;
}

/** Registers written by an instruction (for ctx tracking). */
function dstWritten(i: Insn): number[] {
  const cls = BPF_CLASS(i.code);
  if (cls === BPF_ALU || cls === BPF_ALU64 || cls === BPF_LDX || isLdImm64(i)) return [i.dst];
  if (cls === BPF_STX && BPF_MODE(i.code) === BPF_ATOMIC) return i.imm === BPF_CMPXCHG ? [0] : i.imm & BPF_FETCH ? [i.src] : [];
  if ((cls === BPF_JMP) && BPF_OP(i.code) === BPF_CALL) return [0, 1, 2, 3, 4, 5];
  return [];
}

/** Checks every ctx access of a tracing program; undefined when all are allowed. */
export function checkTracingCtx(insns: readonly Insn[], btf: Btf, funcId: number, expectedAttachType: number): CtxViolation | undefined {
  const fexit = expectedAttachType === BPF_TRACE_FEXIT;
  // Main program only: subprograms get R1 from their caller (not tracked, as 5.5's
  // btf_ctx_access only applies to the main program's ctx).
  const seen = new Map<number, number>(); // pc → ctx-register mask already explored
  const work: [number, number][] = [[0, 1 << 1]];
  while (work.length) {
    const [pc0, mask0] = work.pop()!;
    let pc = pc0, mask = mask0;
    for (;;) {
      if (pc < 0 || pc >= insns.length) break;
      const prev = seen.get(pc);
      if (prev !== undefined && (prev | mask) === prev) break;
      seen.set(pc, (prev ?? 0) | mask);
      const i = insns[pc]!;
      const cls = BPF_CLASS(i.code);
      const size = SIZE_BYTES[BPF_SIZE(i.code)] ?? 8;
      if (cls === BPF_LDX && mask & (1 << i.src)) {
        const off = i.off;
        if (off < 0 || off >= 8 * MAX_BPF_FUNC_ARGS || off % size) return { errno: EACCES, log: [`invalid bpf_context access off=${off} size=${size}`] };
        const why = btfCtxAccess(btf, funcId, off, fexit);
        if (why) return { errno: EACCES, log: [why, `invalid bpf_context access off=${off} size=${size}`] };
      }
      if ((cls === BPF_ST || cls === BPF_STX) && mask & (1 << i.dst))
        return { errno: EACCES, log: [`invalid bpf_context access off=${i.off} size=${size}`] };
      let next = mask;
      for (const r of dstWritten(i)) next &= ~(1 << r);
      if (cls === BPF_ALU64 && BPF_OP(i.code) === BPF_MOV && BPF_SRC(i.code) === BPF_X && i.off === 0 && mask & (1 << i.src)) next |= 1 << i.dst;
      mask = next;
      if (isLdImm64(i)) { pc += 2; continue; }
      if (cls === BPF_JMP || cls === BPF_JMP32) {
        const op = BPF_OP(i.code);
        if (op === BPF_EXIT) break;
        if (op === BPF_CALL) { if (i.src === BPF_PSEUDO_CALL) { /* callee not tracked */ } pc++; continue; }
        const rel = cls === BPF_JMP32 && op === BPF_JA ? i.imm : i.off;
        if (op === BPF_JA) { pc += 1 + rel; continue; }
        work.push([pc + 1 + rel, mask]);
      }
      pc++;
    }
  }
  return undefined;
}
