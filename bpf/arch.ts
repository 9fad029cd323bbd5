/**
 * @fileoverview The interface between the architecture-independent BPF subsystem and an
 * architecture's code generator (bpf_int_jit_compile, later arch_prepare_bpf_trampoline and
 * bpf_arch_text_poke). arch/x86_64 implements it; index.ts hands it to the subsystem.
 */
import type { Insn } from './isa/insn.ts';

/** One function of a program: a range of the (fixed-up) instructions. */
export interface JitFunc {
  start: number;
  end: number; // exclusive
  stackDepth: number;
}

export interface JitInput {
  insns: readonly Insn[];
  funcs: readonly JitFunc[];
  /** The address a helper call `call imm` goes to (native or guest code). */
  helperAddr(id: number): bigint | undefined;
  /** callx: a table of `count` helper addresses in guest memory, and where bad ids go. */
  callx?: { table: bigint; count: number; bad: bigint };
  /** The value of an LD_IMM64 with a pseudo source (map fd → map address …). */
  ldImm64?(insn: Insn, pc: number): bigint;
}

export interface JitImage {
  code: Uint8Array;
  /** The image's guest address (what `place` returned). */
  image: bigint;
  /** Image offset of each function's entry. */
  funcOffsets: number[];
  /** addrs[i]: image offset just past instruction i (the kernel's addrs[]). */
  addrs: Int32Array;
  passes: number;
}

export interface BpfArch {
  readonly name: string;
  /** Compiles; `place(size)` gives the address the final pass emits for. */
  jitCompile(input: JitInput, place: (size: number) => bigint): JitImage;
}
