/**
 * @fileoverview The BPF JIT for x86-64 (the kernel's do_jit / bpf_int_jit_compile): every
 * instruction of the ISA compiled, multi-pass until the image stops shrinking, a final pass at
 * the image's address. Each function (main program and subprograms) is a SysV function
 * `u64 f(void *ctx)` that begins with the 5-byte nop a trampoline can be patched into:
 *
 *   0f 1f 44 00 00          nop dword ptr [rax+rax]     ; X86_PATCH_SIZE
 *   55                      push rbp
 *   48 89 e5                mov rbp, rsp                ; R10 = rbp, the stack grows below
 *   48 81 ec NN NN NN NN    sub rsp, round_up(stack_depth, 8)
 *   53 41 55 41 56 41 57    push rbx; push r13; push r14; push r15   ; R6..R9
 *   6a 00                   push 0                      ; tail_call_cnt
 *   ...body...
 *   5b 41 5f 41 5e 41 5d 5b pop rbx (tail_call_cnt); pop r15; pop r14; pop r13; pop rbx
 *   c9 c3                   leave; ret
 *
 * (PROLOGUE_SIZE 25, v5.5.) Helpers and subprograms are direct `call rel32`.
 */
import {
  BPF_ALU, BPF_ALU64, BPF_JMP, BPF_JMP32, BPF_LD, BPF_LDX, BPF_ST, BPF_STX, BPF_X, BPF_K,
  BPF_CLASS, BPF_OP, BPF_SRC, BPF_SIZE, BPF_MODE, BPF_MEMSX, BPF_ATOMIC, BPF_FETCH, BPF_XCHG, BPF_CMPXCHG,
  BPF_ADD, BPF_SUB, BPF_MUL, BPF_DIV, BPF_OR, BPF_AND, BPF_LSH, BPF_RSH, BPF_NEG, BPF_MOD, BPF_XOR, BPF_MOV,
  BPF_ARSH, BPF_END, BPF_TO_BE, BPF_JA, BPF_JEQ, BPF_JGT, BPF_JGE, BPF_JSET, BPF_JNE, BPF_JSGT, BPF_JSGE,
  BPF_JLT, BPF_JLE, BPF_JSLT, BPF_JSLE, BPF_CALL, BPF_EXIT, BPF_PSEUDO_CALL, BPF_W, BPF_DW, BPF_REG_AX,
  SIZE_BYTES,
} from '../../bpf/isa/opcodes.ts';
import { isLdImm64 } from '../../bpf/isa/insn.ts';
import type { BpfArch, JitFunc, JitImage, JitInput } from '../../bpf/arch.ts';
import {
  Emitter, AUX_REG, NOP5, SIMPLE_ALU_OPCODES, add1mod, add2mod, add1reg, add2reg, isEreg, isImm8, isSimm32,
  emitMov, emitMovReg, emitMovImm32, emitMovImm64, emitLdx, emitLdsx, emitStx, emitSt, emitAtomic,
  emitMovsxReg, maybeEmitMod, maybeEmit1mod,
  X86_JB, X86_JAE, X86_JE, X86_JNE, X86_JBE, X86_JA, X86_JL, X86_JGE, X86_JLE, X86_JG,
} from './jit_emit.ts';

export const PROLOGUE_SIZE = 25;
/** The kernel gives up after this many passes without convergence. */
const MAX_PASSES = 20;

/** A program the JIT cannot compile: -EINVAL/-EFAULT in the kernel, with the index. */
export class JitError extends Error {
  readonly errno: number;
  readonly insn: number;
  constructor(insn: number, msg: string, errno = -22) {
    super(`JIT: insn ${insn}: ${msg}`);
    this.name = 'JitError';
    this.errno = errno;
    this.insn = insn;
  }
}

const JMP_COND: Readonly<Record<number, number>> = {
  [BPF_JEQ]: X86_JE, [BPF_JSET]: X86_JNE, [BPF_JNE]: X86_JNE, [BPF_JGT]: X86_JA, [BPF_JLT]: X86_JB,
  [BPF_JGE]: X86_JAE, [BPF_JLE]: X86_JBE, [BPF_JSGT]: X86_JG, [BPF_JSLT]: X86_JL, [BPF_JSGE]: X86_JGE, [BPF_JSLE]: X86_JLE,
};

const roundUp8 = (n: number): number => (n + 7) & ~7;

/** One pass over one function: emits at image offset `base`; reads and writes addrs[]. */
function doJit(input: JitInput, f: JitFunc, e: Emitter, base: number, addrs: Int32Array, image: bigint | undefined,
  funcOffsets: number[]): void {
  const insns = input.insns;
  const here = (): number => base + e.length;
  // Prologue (emit_prologue).
  e.emit(...NOP5);
  e.emit(0x55);             // push rbp
  e.emit(0x48, 0x89, 0xe5); // mov rbp, rsp
  e.emit(0x48, 0x81, 0xec); // sub rsp, rounded_stack_depth
  e.emitOff32(roundUp8(f.stackDepth));
  e.emit(0x53);             // push rbx
  e.emit(0x41, 0x55);       // push r13
  e.emit(0x41, 0x56);       // push r14
  e.emit(0x41, 0x57);       // push r15
  e.emit(0x6a, 0x00);       // push 0: tail_call_cnt
  let cleanupAddr = -1;
  /** Image offset where instruction t starts, from the previous pass (as the kernel's addrs[]). */
  const startOf = (t: number): number => (t === f.start ? base + PROLOGUE_SIZE : addrs[t - 1]!);
  const callRel32 = (i: number, target: bigint): void => {
    if (image === undefined) { e.emit(0xe8); e.emitOff32(0); return; } // size only
    const off = Number(target - (image + BigInt(here() + 5)));
    if (!isSimm32(off)) throw new JitError(i, `call target 0x${target.toString(16)} out of rel32 range`);
    e.emit(0xe8); e.emitOff32(off); // call target
  };
  const emitJmp = (jmpOffset: number): void => {
    if (isImm8(jmpOffset)) e.emit(0xeb, jmpOffset);      // jmp rel8
    else { e.emit(0xe9); e.emitOff32(jmpOffset); }       // jmp rel32
  };

  for (let i = f.start; i < f.end; i++) {
    const insn = insns[i]!;
    const { code, dst, src, off, imm } = insn;
    const cls = BPF_CLASS(code), op = BPF_OP(code);
    const is64 = cls === BPF_ALU64 || cls === BPF_JMP;
    switch (cls) {
      case BPF_ALU: case BPF_ALU64: {
        const alu64 = cls === BPF_ALU64;
        if (op === BPF_MOV) {
          if (BPF_SRC(code) === BPF_X) {
            if (off === 0) emitMovReg(e, alu64, dst, src);
            else emitMovsxReg(e, off, alu64, dst, src);
          } else emitMovImm32(e, alu64, dst, imm);
        } else if (op === BPF_NEG) {
          maybeEmit1mod(e, dst, alu64);
          e.emit(0xf7, add1reg(0xd8, dst)); // neg dst
        } else if (op === BPF_ADD || op === BPF_SUB || op === BPF_AND || op === BPF_OR || op === BPF_XOR) {
          if (BPF_SRC(code) === BPF_X) {
            maybeEmitMod(e, dst, src, alu64);
            e.emit(SIMPLE_ALU_OPCODES[op]!, add2reg(0xc0, dst, src)); // op dst, src
          } else {
            maybeEmit1mod(e, dst, alu64);
            // (b3: the /digit ModRM base of 83/81; b2: the short rax form)
            const [b3, b2] = op === BPF_ADD ? [0xc0, 0x05] : op === BPF_SUB ? [0xe8, 0x2d] : op === BPF_AND ? [0xe0, 0x25]
              : op === BPF_OR ? [0xc8, 0x0d] : [0xf0, 0x35];
            if (isImm8(imm)) e.emit(0x83, add1reg(b3, dst), imm);       // op dst, imm8
            else if (dst === 0) { e.emit(b2); e.emitOff32(imm); }       // op eax/rax, imm32
            else { e.emit(0x81, add1reg(b3, dst)); e.emitOff32(imm); }  // op dst, imm32
          }
        } else if (op === BPF_MUL) {
          // v5.5: mul through rax:rdx, saving both around it.
          if (dst !== 0) e.emit(0x50); // push rax
          if (dst !== 3) e.emit(0x52); // push rdx
          emitMov(e, AUX_REG, dst);    // mov r11, dst
          if (BPF_SRC(code) === BPF_X) emitMovReg(e, alu64, 0, src); // mov rax, src
          else emitMovImm32(e, alu64, 0, imm);                        // mov rax, imm32
          maybeEmit1mod(e, AUX_REG, alu64);
          e.emit(0xf7, add1reg(0xe0, AUX_REG)); // mul r11
          if (dst !== 3) e.emit(0x5a);          // pop rdx
          if (dst !== 0) { emitMov(e, dst, 0); e.emit(0x58); } // mov dst, rax; pop rax
        } else if (op === BPF_DIV || op === BPF_MOD) {
          // Divisors 0 and (signed) -1 were patched away by doMiscFixups.
          e.emit(0x50); // push rax
          e.emit(0x52); // push rdx
          if (BPF_SRC(code) === BPF_X) emitMov(e, AUX_REG, src); // mov r11, src
          else { e.emit(0x49, 0xc7, 0xc3); e.emitOff32(imm); }  // mov r11, imm32
          emitMov(e, 0, dst);                                     // mov rax, dst
          if (off === 0) {
            e.emit(0x31, 0xd2); // xor edx, edx
            if (alu64) e.emit(0x49, 0xf7, 0xf3); else e.emit(0x41, 0xf7, 0xf3); // div r11 / div r11d
          } else {
            if (alu64) e.emit(0x48, 0x99); else e.emit(0x99); // cqo / cdq
            if (alu64) e.emit(0x49, 0xf7, 0xfb); else e.emit(0x41, 0xf7, 0xfb); // idiv r11 / idiv r11d
          }
          if (op === BPF_MOD) e.emit(0x49, 0x89, 0xd3); // mov r11, rdx
          else e.emit(0x49, 0x89, 0xc3);                // mov r11, rax
          e.emit(0x5a); // pop rdx
          e.emit(0x58); // pop rax
          emitMov(e, dst, AUX_REG); // mov dst, r11
        } else if (op === BPF_LSH || op === BPF_RSH || op === BPF_ARSH) {
          const b3 = op === BPF_LSH ? 0xe0 : op === BPF_RSH ? 0xe8 : 0xf8;
          if (BPF_SRC(code) === BPF_K) {
            maybeEmit1mod(e, dst, alu64);
            const n = imm & (alu64 ? 63 : 31); // the CPU masks the count the same way
            if (n === 1) e.emit(0xd1, add1reg(b3, dst)); // shl/shr/sar dst, 1
            else e.emit(0xc1, add1reg(b3, dst), n);      // shl/shr/sar dst, imm8
          } else {
            let d = dst;
            if (dst === 4) { emitMov(e, AUX_REG, dst); d = AUX_REG; } // mov r11, rcx: rcx is the count
            if (src !== 4) { e.emit(0x51); emitMov(e, 4, src); }     // push rcx; mov rcx, src
            maybeEmit1mod(e, d, alu64);
            e.emit(0xd3, add1reg(b3, d));                             // shl/shr/sar d, cl
            if (src !== 4) e.emit(0x59);                              // pop rcx
            if (dst === 4) emitMov(e, dst, AUX_REG);                  // mov rcx, r11
          }
        } else if (op === BPF_END) {
          const swap = cls === BPF_ALU64 || BPF_SRC(code) === BPF_TO_BE; // bswap, or to/from BE
          if (swap) {
            if (imm === 16) {
              e.emit(0x66); if (isEreg(dst)) e.emit(0x41);
              e.emit(0xc1, add1reg(0xc8, dst), 8);                        // ror dst16, 8
              if (isEreg(dst)) e.emit(0x45, 0x0f, 0xb7); else e.emit(0x0f, 0xb7);
              e.emit(add2reg(0xc0, dst, dst));                            // movzx dst32, dst16
            } else if (imm === 32) {
              if (isEreg(dst)) e.emit(0x41, 0x0f); else e.emit(0x0f);
              e.emit(add1reg(0xc8, dst));                                 // bswap dst32
            } else e.emit(add1mod(0x48, dst), 0x0f, add1reg(0xc8, dst));  // bswap dst
          } else if (imm === 16) {
            if (isEreg(dst)) e.emit(0x45, 0x0f, 0xb7); else e.emit(0x0f, 0xb7);
            e.emit(add2reg(0xc0, dst, dst));                              // movzx dst32, dst16
          } else if (imm === 32) {
            if (isEreg(dst)) e.emit(0x45);
            e.emit(0x89, add2reg(0xc0, dst, dst));                        // mov dst32, dst32
          } // le64: nothing
        } else throw new JitError(i, `unknown ALU opcode 0x${code.toString(16)}`);
        break;
      }
      case BPF_LD: {
        if (!isLdImm64(insn) || i + 1 >= f.end) throw new JitError(i, `unsupported LD opcode 0x${code.toString(16)}`);
        const v = src !== 0 && input.ldImm64 ? BigInt.asUintN(64, input.ldImm64(insn, i))
          : (BigInt(insns[i + 1]!.imm >>> 0) << 32n) | BigInt(imm >>> 0);
        emitMovImm64(e, dst, Number(v >> 32n), Number(v & 0xffffffffn));
        addrs[i] = here();
        i++;
        break;
      }
      case BPF_LDX:
        if (input.probeMem?.has(i)) emitProbeLdx(e, SIZE_BYTES[BPF_SIZE(code)]!, dst, src, off, () => callRel32(i, input.probeMem!.load));
        else if (BPF_MODE(code) === BPF_MEMSX) emitLdsx(e, SIZE_BYTES[BPF_SIZE(code)] as 1 | 2 | 4, dst, src, off);
        else emitLdx(e, SIZE_BYTES[BPF_SIZE(code)]!, dst, src, off);
        break;
      case BPF_ST:
        emitSt(e, SIZE_BYTES[BPF_SIZE(code)]!, dst, off, imm);
        break;
      case BPF_STX: {
        if (BPF_MODE(code) !== BPF_ATOMIC) { emitStx(e, SIZE_BYTES[BPF_SIZE(code)]!, dst, src, off); break; }
        const w64 = BPF_SIZE(code) === BPF_DW;
        if (BPF_SIZE(code) !== BPF_W && !w64) throw new JitError(i, 'atomic of size other than 4 or 8');
        if (imm === (BPF_AND | BPF_FETCH) || imm === (BPF_OR | BPF_FETCH) || imm === (BPF_XOR | BPF_FETCH)) {
          // No single x86 instruction: a cmpxchg loop, with R0 kept in AX meanwhile.
          const realSrc = src === 0 ? BPF_REG_AX : src, realDst = dst === 0 ? BPF_REG_AX : dst;
          emitMov(e, BPF_REG_AX, 0);                         // mov r10, rax
          const loop = e.length;
          emitLdx(e, w64 ? 8 : 4, 0, realDst, off);          // rax = old value
          emitMovReg(e, w64, AUX_REG, 0);                    // r11 = old
          maybeEmitMod(e, AUX_REG, realSrc, w64);
          e.emit(SIMPLE_ALU_OPCODES[imm & 0xf0]!, add2reg(0xc0, AUX_REG, realSrc)); // r11 op= src
          emitAtomic(e, BPF_CMPXCHG, realDst, AUX_REG, off, w64); // lock cmpxchg [dst+off], r11
          e.emit(X86_JNE, -(e.length - loop) - 2);           // jne loop: lost the race
          emitMovReg(e, w64, realSrc, 0);                    // src = old value
          emitMov(e, 0, BPF_REG_AX);                         // restore rax
        } else if (imm === BPF_ADD || imm === BPF_AND || imm === BPF_OR || imm === BPF_XOR ||
          imm === (BPF_ADD | BPF_FETCH) || imm === BPF_XCHG || imm === BPF_CMPXCHG) {
          emitAtomic(e, imm, dst, src, off, w64);
          // x86 cmpxchg32 leaves rax's upper half on success: BPF's R0 is the zero-extended old value.
          if (imm === BPF_CMPXCHG && !w64) e.emit(0x89, 0xc0); // mov eax, eax
        } else throw new JitError(i, `unknown atomic op 0x${imm.toString(16)}`);
        break;
      }
      case BPF_JMP: case BPF_JMP32: {
        if (op === BPF_EXIT) {
          if (cleanupAddr >= 0) { emitJmp(cleanupAddr - addrs[i]!); break; } // jmp to the one epilogue
          cleanupAddr = here();
          e.emit(0x5b);       // pop rbx: drop tail_call_cnt
          e.emit(0x41, 0x5f); // pop r15
          e.emit(0x41, 0x5e); // pop r14
          e.emit(0x41, 0x5d); // pop r13
          e.emit(0x5b);       // pop rbx
          e.emit(0xc9);       // leave
          e.emit(0xc3);       // ret
          break;
        }
        if (op === BPF_CALL) {
          if (cls === BPF_JMP32) throw new JitError(i, 'JMP32 call');
          if (BPF_SRC(code) === BPF_X) { emitCallx(input, e, i, dst); break; }
          if (src === BPF_PSEUDO_CALL) {
            const target = i + 1 + imm;
            const fi = input.funcs.findIndex((g) => g.start === target);
            if (fi < 0) throw new JitError(i, `call to insn ${target}, which starts no function`);
            const t = funcOffsets[fi]!;
            const callOff = t - (here() + 5);
            e.emit(0xe8); e.emitOff32(image === undefined ? 0 : callOff); // call subprog (image-relative)
            break;
          }
          const addr = input.helperAddr(imm);
          if (addr === undefined) throw new JitError(i, `invalid func unknown#${imm}`);
          callRel32(i, addr);
          break;
        }
        if (op === BPF_JA) {
          const rel = cls === BPF_JMP32 ? imm : off;
          // A jump to itself is `jmp $` (eb fe); a jump to the next instruction is optimised out.
          const jmpOffset = rel === -1 ? -2 : startOf(i + 1 + rel) - addrs[i]!;
          if (jmpOffset === 0) break;
          emitJmp(jmpOffset);
          break;
        }
        const cond = JMP_COND[op];
        if (cond === undefined) throw new JitError(i, `unknown jump opcode 0x${code.toString(16)}`);
        if (BPF_SRC(code) === BPF_X) {
          maybeEmitMod(e, dst, src, is64);
          e.emit(op === BPF_JSET ? 0x85 : 0x39, add2reg(0xc0, dst, src)); // test/cmp dst, src
        } else if (op === BPF_JSET) {
          maybeEmit1mod(e, dst, is64);
          e.emit(0xf7, add1reg(0xc0, dst)); e.emitOff32(imm); // test dst, imm32
        } else if (imm === 0) {
          maybeEmitMod(e, dst, dst, is64);
          e.emit(0x85, add2reg(0xc0, dst, dst)); // test dst, dst: a byte shorter than cmp dst, 0
        } else {
          maybeEmit1mod(e, dst, is64);
          if (isImm8(imm)) e.emit(0x83, add1reg(0xf8, dst), imm);     // cmp dst, imm8
          else { e.emit(0x81, add1reg(0xf8, dst)); e.emitOff32(imm); } // cmp dst, imm32
        }
        const jmpOffset = startOf(i + 1 + off) - addrs[i]!;
        if (isImm8(jmpOffset)) e.emit(cond, jmpOffset);                       // jcc rel8
        else { e.emit(0x0f, cond + 0x10); e.emitOff32(jmpOffset); }           // jcc rel32
        break;
      }
      default:
        throw new JitError(i, `unknown opcode 0x${code.toString(16)}`);
    }
    addrs[i] = here();
  }
}

/**
 * BPF_PROBE_MEM: the kernel emits the load with an exception table entry whose fixup zeroes dst;
 * here the load is a call of a function that reads or gives 0, with R0-R5 (caller-saved) kept:
 *   push R0..R5 but dst ; mov r11, src ; lea rdi, [r11 + off] ; mov esi, size ; call load
 *   mov dst, rax ; pop
 */
function emitProbeLdx(e: Emitter, size: number, dst: number, src: number, off: number, call: () => void): void {
  const saved = [0, 1, 2, 3, 4, 5].filter((r) => r !== dst);
  for (const r of saved) { if (isEreg(r)) e.emit(0x41); e.emit(add1reg(0x50, r)); } // push
  emitMov(e, AUX_REG, src);                       // mov r11, src
  e.emit(0x49, 0x8d, 0xbb); e.emitOff32(off);     // lea rdi, [r11 + off32]
  e.emit(0xbe); e.emitOff32(size);                // mov esi, size
  call();                                         // call load
  if (dst !== 0) emitMov(e, dst, 0);              // mov dst, rax
  for (const r of saved.reverse()) { if (isEreg(r)) e.emit(0x41); e.emit(add1reg(0x58, r)); } // pop
}

/**
 * callx dst: call the helper whose id is in dst, through the table (a conformance-suite
 * extension; the kernel has no such instruction):
 *   cmp dst, count ; jae bad ; movabs r11, table ; call [r11 + dst*8] ; jmp done
 *   bad: movabs r11, bad_helper ; call r11 ; done:
 */
function emitCallx(input: JitInput, e: Emitter, i: number, dst: number): void {
  const cx = input.callx;
  if (!cx) throw new JitError(i, 'callx without a helper table');
  const movabsR11 = (v: bigint): void => {
    e.emit(0x49, 0xbb); e.emitImm(Number(v & 0xffffffffn), 4); e.emitImm(Number(v >> 32n), 4); // movabs r11, imm64
  };
  maybeEmit1mod(e, dst, true);
  e.emit(0x81, add1reg(0xf8, dst)); e.emitOff32(cx.count); // cmp dst, count
  e.emit(X86_JAE, 16);                                     // jae bad
  movabsR11(cx.table);
  e.emit(isEreg(dst) ? 0x43 : 0x41, 0xff, 0x14, 0xc0 | (add1reg(0, dst) << 3) | 3); // call [r11 + dst*8]
  e.emit(0xeb, 13);                                        // jmp done
  movabsR11(cx.bad);                                       // bad:
  e.emit(0x41, 0xff, 0xd3);                                // call r11
}                                                          // done:

/**
 * bpf_int_jit_compile: passes until the size converges, then `place(size)` gives the image
 * address and a final pass emits there (its size must not change: the kernel's fatal check).
 */
export function bpfIntJitCompile(input: JitInput, place: (size: number) => bigint): JitImage {
  const n = input.insns.length;
  const addrs = new Int32Array(n);
  // Start from a generous estimate (64 bytes an instruction), as the kernel does.
  let funcOffsets = input.funcs.map((f) => f.start * 64 + PROLOGUE_SIZE);
  for (let i = 0, len = 0; i < n; i++) { len += 64; addrs[i] = len; }
  let oldLen = -1, passes = 0;
  let code: Uint8Array = new Uint8Array(0);
  for (; passes < MAX_PASSES; passes++) {
    const { bytes, offsets } = jitPass(input, addrs, funcOffsets, undefined);
    funcOffsets = offsets;
    if (bytes.length === oldLen) { code = bytes; break; }
    oldLen = bytes.length;
  }
  if (passes === MAX_PASSES) throw new JitError(0, `image did not converge in ${MAX_PASSES} passes`, -14);
  const image = place(code.length);
  const final = jitPass(input, addrs, funcOffsets, image);
  if (final.bytes.length !== code.length) throw new JitError(0, `bpf_jit: proglen=${final.bytes.length} != oldproglen=${code.length}`, -14);
  return { code: final.bytes, funcOffsets: final.offsets, addrs, passes: passes + 2, image };
}

function jitPass(input: JitInput, addrs: Int32Array, funcOffsets: number[], image: bigint | undefined): { bytes: Uint8Array; offsets: number[] } {
  const parts: Uint8Array[] = [];
  const offsets: number[] = [];
  let base = 0;
  for (const f of input.funcs) {
    offsets.push(base);
    const e = new Emitter();
    doJit(input, f, e, base, addrs, image, funcOffsets);
    const b = e.bytes();
    parts.push(b);
    base += b.length;
  }
  const bytes = new Uint8Array(base);
  let o = 0;
  for (const p of parts) { bytes.set(p, o); o += p.length; }
  return { bytes, offsets };
}

/** The x86-64 implementation of the BPF subsystem's architecture interface. */
export const x86_64: BpfArch = { name: 'x86_64', jitCompile: bpfIntJitCompile };
