/**
 * @fileoverview The interface between the architecture-independent BPF subsystem and an
 * architecture's code generator (bpf_int_jit_compile, later arch_prepare_bpf_trampoline and
 * bpf_arch_text_poke). arch/x86_64 implements it; index.ts hands it to the subsystem.
 */
import type { Insn } from './isa/insn.ts';
import type { TrampolineBehaviour } from '../kernel/profile.ts';

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
  /**
   * BPF_PROBE_MEM loads (through typed kernel pointers): which instructions, and a function
   * `u64 load(addr, size)` that reads or gives 0 on a fault (the exception table's fixup).
   */
  probeMem?: { has(pc: number): boolean; load: bigint };
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
  /** The BPF trampoline's machine code (absent: fentry/fexit cannot attach). */
  readonly trampoline?: BpfArchTrampoline;
  /**
   * __bpf_prog_enter/exit as guest code with the stats static key (see arch/x86_64/prog_enter.ts),
   * as the generation `opts.gen` has them (v5.5's when absent); 5.19+ needs `opts.bpfCtx`, the
   * guest address of the u64 standing for current->bpf_ctx.
   */
  readonly progEnterExit?: (base: bigint, nativeEnter: bigint, nativeExit: bigint,
    opts?: { gen?: TrampolineBehaviour; bpfCtx?: bigint }) => ProgEnterExitCode;
  readonly staticKeyInsn?: (site: bigint, target: bigint | undefined) => Uint8Array;
}

export interface ProgEnterExitCode {
  bytes: Uint8Array;
  enter: number;
  enterKey: number;
  enterStats: number;
  exit: number;
  exitKey: number;
  exitStats: number;
  /** 5.12+: __bpf_tramp_enter(im) / __bpf_tramp_exit(im) (offsets in `bytes`). */
  trampEnter?: number;
  trampExit?: number;
}

/** struct btf_func_model: what the trampoline needs to know of the traced function. */
export interface BtfFuncModel {
  retSize: number;
  nrArgs: number;
  argSize: number[];
  /** 6.1+: per argument, BTF_FMODEL_STRUCT_ARG when it is a struct passed by value (absent: none). */
  argFlags?: number[];
}

/** btf_func_model.arg_flags[i] (6.1, include/linux/bpf.h): the argument is a struct by value. */
export const BTF_FMODEL_STRUCT_ARG = 1 << 0;

/** BPF_TRAMP_F_* (include/linux/bpf.h): v5.5's three, then the later ones with their version. */
export const BPF_TRAMP_F_RESTORE_REGS = 1 << 0;
export const BPF_TRAMP_F_CALL_ORIG = 1 << 1;
export const BPF_TRAMP_F_SKIP_FRAME = 1 << 2;
/** 5.15: store the traced function's ip on the trampoline's frame (bpf_get_func_ip). */
export const BPF_TRAMP_F_IP_ARG = 1 << 3;

/**
 * The `struct bpf_prog` stand-in at TrampProg.progAddr (a kzalloc'd block of PROG_STANDIN.size
 * bytes): guest code (__bpf_prog_enter/exit of 5.12+) and the BPF subsystem agree on these
 * offsets. `active` is prog->active (one CPU: a plain int), `misses` is the
 * recursion_misses counter bpf_prog_info reports (5.12+).
 */
export const PROG_STANDIN = { id: 0, active: 8, misses: 16, size: 64 } as const;

/**
 * The `struct bpf_tramp_image` stand-in of 5.12+ (TrampolineInput.trampImage.im): its percpu_ref
 * as a plain u64 counter at offset 0, which __bpf_tramp_enter increments and __bpf_tramp_exit
 * decrements; the manager frees an old image only when it reads 0.
 */
export const TRAMP_IMAGE_STANDIN = { pcref: 0, size: 64 } as const;

/** A program as the trampoline calls it. */
export interface TrampProg {
  /** bpf_func: the JIT image's entry (or, not JITed, the interpreter entry point). */
  bpfFunc: bigint;
  /** The guest address standing for `struct bpf_prog *` (passed to __bpf_prog_exit). */
  progAddr: bigint;
  /** Not JITed: the address of its instructions, passed in rsi to the interpreter entry. */
  insnsi?: bigint;
  /** 5.19+: the link's BPF cookie, stored in struct bpf_tramp_run_ctx on the frame. */
  cookie?: bigint;
}

export interface TrampolineInput {
  /** Where the image will run (rel32 calls are computed from it). */
  image: bigint;
  /** Bytes available (half a page). */
  size: number;
  model: BtfFuncModel;
  flags: number;
  fentry: readonly TrampProg[];
  fexit: readonly TrampProg[];
  /** The traced function's entry (its 5-byte nop site). */
  origCall: bigint;
  bpfProgEnter: bigint;
  bpfProgExit: bigint;
  /**
   * The kernel generation whose generator runs (kernel/profile.ts's trampoline row); absent: 5.5.
   * It decides the frame layout, the enter/exit calling convention, restore rules and limits.
   */
  gen?: TrampolineBehaviour;
  /** 5.7+: BPF_MODIFY_RETURN programs, run after fentry; a non-zero return skips the original call. */
  fmodRet?: readonly TrampProg[];
  /**
   * 5.12+, with CALL_ORIG: the image's `struct bpf_tramp_image *` (guest stand-in) and
   * __bpf_tramp_enter/exit. The generator fills `ipAfterCall` (the 5-byte nop after the original
   * call) and `ipEpilogue` (the __bpf_tramp_exit call) with guest addresses, as the kernel fills
   * im->ip_after_call and im->ip_epilogue; the manager pokes the first to `jmp` the second when
   * the image is retired.
   */
  trampImage?: { im: bigint; enter: bigint; exit: bigint; ipAfterCall?: bigint; ipEpilogue?: bigint };
}

export type BPF_MOD = 'call' | 'jump';

export interface BpfArchTrampoline {
  /** arch_prepare_bpf_trampoline: the image bytes, or a negative errno. */
  archPrepareBpfTrampoline(input: TrampolineInput): Uint8Array | number;
  /** The 5-byte instruction bpf_arch_text_poke writes: `call`/`jmp target` at ip, or the nop (target undefined). */
  textPokeInsn(ip: bigint, type: BPF_MOD, target: bigint | undefined): Uint8Array | number;
}
