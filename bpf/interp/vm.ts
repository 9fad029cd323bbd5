/**
 * @fileoverview The interpreter's run-time state: the register file, the guest-memory access
 * cache, call frames with their stacks, and helper calls. Instruction handlers (alu.ts, jmp.ts,
 * mem.ts) are closures compiled once per program; they get the register file and this state.
 *
 * Registers are 32-bit halves in an Int32Array (`r[2n]` low, `r[2n+1]` high of Rn), which V8
 * keeps as unboxed int32 arithmetic. BigInt is used only at the edges (helper arguments, R0 at
 * exit, R10) and for 64-bit division of operands that do not fit 32 bits. Measured on Node 20
 * against a BigUint64Array register file (same closure structure): V8 lowers some truncated
 * BigInt ops to int64, so a pure ALU loop ran 115-210 M insns/s there (depending on whether
 * values exceed 2^63) against 100-150 M with halves; but a load/store loop ran 36 M/s there
 * (every address needs BigInt compares and a BigInt-to-Number offset) against 70-110 M with
 * halves, and programs are mostly memory accesses and compares.
 */
import {
  PROT_R, PROT_W, PROT_X, permString, type GuestMemory, type HostRegion,
} from '../../emulator/memory.ts';
import { BPF_REG_FP, MAX_BPF_REG, MAX_BPF_STACK, MAX_CALL_FRAMES } from '../isa/opcodes.ts';
import type { Insn } from '../isa/insn.ts';
import type { InterpEnv, BpfHelper } from './interpreter.ts';

/** One compiled instruction: runs it and returns the next pc (-1: the main frame exited). */
export type Step = (r: Int32Array, vm: Vm) => number;
/** Where an instruction sits, for its compiler. */
export interface Site { readonly pc: number; readonly insns: readonly Insn[] }
/** Compiles one instruction of a given OpName into its Step (may throw a VmTrap: see prepare). */
export type Compile = (i: Insn, site: Site) => Step;

export type TrapKind =
  | 'fault'          // guest memory access outside a mapping or against its permissions
  | 'budget'         // env.maxInsns executed
  | 'call-depth'     // more than MAX_CALL_FRAMES frames
  | 'unknown-helper' // call of a helper/kfunc id the env does not provide
  | 'helper'         // a helper (TypeScript) threw
  | 'bad-insn'       // no ISA row describes the instruction, or lddw's second slot reached
  | 'bad-jump'       // jump or call target outside the program, or fell off its end
  | 'ld-imm64';      // pseudo LD_IMM64 without env.resolveLdImm64

/** Raised inside a Step; the run loop adds the instruction index (BpfRuntimeError). */
export class VmTrap extends Error {
  readonly kind: TrapKind;
  constructor(kind: TrapKind, message: string, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'VmTrap';
    this.kind = kind;
  }
}

const TWO32 = 0x1_0000_0000;
const hex = (v: bigint): string => `0x${v.toString(16)}`;

/** Rn as u64. `i` is the index of the low half (2n). */
export const getU64 = (r: Int32Array, i: number): bigint => (BigInt(r[i + 1] >>> 0) << 32n) | BigInt(r[i] >>> 0);
/** Rn as s64. */
export const getS64 = (r: Int32Array, i: number): bigint => (BigInt(r[i + 1]) << 32n) | BigInt(r[i] >>> 0);
/** Rn = v mod 2^64. */
export const setU64 = (r: Int32Array, i: number, v: bigint): void => {
  r[i] = Number(BigInt.asIntN(32, v));
  r[i + 1] = Number(BigInt.asIntN(32, v >> 32n));
};
/** Rn = q, a safe integer (|q| < 2^53), sign-extended to 64 bits. */
export const setNum = (r: Int32Array, i: number, q: number): void => {
  const hi = Math.floor(q / TWO32);
  r[i] = q - hi * TWO32;
  r[i + 1] = hi;
};

/** Access kinds, as the mapping permissions they need. */
export const ACC_R = PROT_R, ACC_W = PROT_W, ACC_RW = PROT_R | PROT_W;

/** A mapping's part inside one 4 GiB window (`hi` = the address's upper 32 bits). */
interface Entry {
  hi: number;
  lo: number;    // first low address covered
  end: number;   // exclusive, at most 2^32
  delta: number; // region offset = low address + delta
  perms: number;
  dv: DataView;
  region: HostRegion;
  post: number;  // 1: an executable mapping shows this region (stores drop translated code)
}

const CACHE_ENTRIES = 4;

/** `write of 4 bytes at 0x… faults: rodata is r--`. */
const fault = (acc: number, size: number, addr: bigint, why: string): VmTrap =>
  new VmTrap('fault', `${acc === ACC_R ? 'read' : acc === ACC_W ? 'write' : 'read-modify-write'} of ${size} bytes at ${hex(addr)} faults: ${why}`);
const NO_BYTES = new Uint8Array(0), NO_VIEW = new DataView(NO_BYTES.buffer);

/**
 * Guest memory as seen by the instructions: `at()` turns base register halves + offset into an
 * offset in `dv` (a mapping's zero-copy host view), checking the mapping's permissions. The last
 * few mappings touched are cached by their 4 GiB window; a miss asks GuestMemory.find().
 * After a store the Step calls `commit()` when `post` is set: code translated from the written
 * bytes is dropped (an executable alias), or an access that straddles two mappings (done in a
 * scratch buffer) is written back.
 */
export class MemCache {
  dv: DataView;
  post = 0;
  private mem: GuestMemory;
  private entries: Entry[] = [];
  private victim = 0;
  private cur: Entry | undefined;
  /** For accesses that straddle two mappings; made on first use (up to a frame being zeroed). */
  private scratchBytes: Uint8Array = NO_BYTES;
  private pending = 0n;

  constructor(mem: GuestMemory) {
    this.mem = mem;
    this.dv = NO_VIEW;
  }

  /** The `dv` offset of [base + off, +size), where base is a register (low, high halves). */
  at(blo: number, bhi: number, off: number, size: number, acc: number): number {
    let lo = (blo >>> 0) + off, hi = bhi;
    if (lo >= TWO32) { lo -= TWO32; hi = (hi + 1) | 0; } else if (lo < 0) { lo += TWO32; hi = (hi - 1) | 0; }
    const es = this.entries;
    for (let k = 0; k < es.length; k++) {
      const e = es[k];
      if (e.hi === hi && lo >= e.lo && lo + size <= e.end && (e.perms & acc) === acc) {
        this.dv = e.dv;
        this.post = e.post;
        this.cur = e;
        return lo + e.delta;
      }
    }
    return this.miss(lo, hi, size, acc);
  }

  /** After a store of `size` bytes at `o` (from at()) when `post` is set. */
  commit(o: number, size: number): void {
    if (this.post === 1) this.mem.invalidateCode(this.cur!.region, o, size);
    else if (this.post === 2) this.mem.write(this.pending, this.scratchBytes.subarray(0, size));
  }

  /** Zeroes `size` bytes at `o` (from at()). */
  fill0(o: number, size: number): void {
    if (this.post === 2) { this.mem.write(this.pending, new Uint8Array(size)); return; } // straddles two mappings
    this.cur!.region.bytes.fill(0, o, o + size);
    if (this.post === 1) this.mem.invalidateCode(this.cur!.region, o, size);
  }

  /**
   * Forget every cached mapping: a helper may have mapped or unmapped memory, and between runs
   * a region may have been freed (its view must not be touched again).
   */
  reset(mem: GuestMemory = this.mem): void {
    this.mem = mem;
    this.entries.length = 0;
    this.victim = 0;
    this.cur = undefined;
  }

  private miss(lo: number, hi: number, size: number, acc: number): number {
    const win = BigInt(hi >>> 0) << 32n;
    const addr = win | BigInt(lo);
    const m = this.mem.find(addr);
    if (!m) throw fault(acc, size, addr, 'not mapped');
    if ((m.perms & acc) !== acc) throw fault(acc, size, addr, `${m.name} is ${permString(m.perms)}`);
    if (addr + BigInt(size) > m.end) return this.straddle(addr, size, acc);
    const start = m.start > win ? m.start : win;
    const winEnd = win + BigInt(TWO32);
    const end = m.end < winEnd ? m.end : winEnd;
    const e: Entry = {
      hi, lo: Number(start - win), end: Number(end - win), delta: m.offset + Number(start - m.start) - Number(start - win),
      perms: m.perms, dv: m.region.view, region: m.region,
      post: this.mem.mappings().some((x) => x.region === m.region && (x.perms & PROT_X) !== 0) ? 1 : 0,
    };
    if (this.entries.length < CACHE_ENTRIES) this.entries.push(e);
    else { this.entries[this.victim] = e; this.victim = (this.victim + 1) % CACHE_ENTRIES; }
    this.dv = e.dv;
    this.post = e.post;
    this.cur = e;
    return lo + e.delta;
  }

  /** An access across the end of one mapping into the next: done in a scratch buffer. */
  private straddle(addr: bigint, size: number, acc: number): number {
    const end = addr + BigInt(size);
    for (let a = addr; a < end;) {
      const m = this.mem.find(a);
      if (!m) throw fault(acc, size, addr, `${hex(a)} is not mapped`);
      if ((m.perms & acc) !== acc) throw fault(acc, size, addr, `${m.name} is ${permString(m.perms)}`);
      a = m.end;
    }
    if (this.scratchBytes.length < size) this.scratchBytes = new Uint8Array(MAX_BPF_STACK);
    if (acc & ACC_R) this.scratchBytes.set(this.mem.read(addr, size));
    this.pending = addr;
    this.dv = new DataView(this.scratchBytes.buffer);
    this.post = 2;
    return 0;
  }
}

interface Frame {
  ret: number;            // pc to return to
  readonly saved: Int32Array; // the caller's R1-R10
  stack: bigint;          // the callee's stack (R10 - MAX_BPF_STACK)
}

const FP = 2 * BPF_REG_FP;

/**
 * The state of one run of a program. Runs reuse idle Vms (see interpreter.ts): begin() resets
 * everything a previous run left.
 */
export class Vm {
  /** R0-R10 and AX (R11, the verifier's scratch register in its rewrites): `2 * MAX_BPF_REG + 2` halves. */
  readonly r = new Int32Array(2 * (MAX_BPF_REG + 1));
  readonly m: MemCache;
  env: InterpEnv;
  /** Frames above the main one. */
  depth = 0;
  private frames: Frame[] = [];
  private mainStack: bigint | undefined;

  constructor(env: InterpEnv) {
    this.env = env;
    this.m = new MemCache(env.mem);
  }

  /** A run in `env`: registers zeroed, the memory cache emptied, the main frame's stack and R10. */
  begin(env: InterpEnv): void {
    this.env = env;
    this.r.fill(0);
    this.depth = 0;
    this.mainStack = undefined;
    this.m.reset(env.mem);
    this.mainStack = this.pushStack(this.r);
  }

  /** Frees every stack still held (normal exit or an error mid-call), innermost first. */
  end(): void {
    while (this.depth > 0) this.env.stack.free(this.frames[--this.depth].stack);
    if (this.mainStack !== undefined) this.env.stack.free(this.mainStack);
    this.mainStack = undefined;
    this.m.reset(); // hold no view of a region that may be freed before the next run
  }

  /**
   * bpf-to-bpf call: a new frame with its own stack and R10; R1-R5 are passed as they are. The
   * kernel's interpreter runs the callee with a fresh register file, so the caller's R1-R10 are
   * all its own again after the return (R6-R9 callee-saved as the ABI says; R1-R5 unreadable to
   * the verifier anyway). Only R0 comes back.
   */
  enter(r: Int32Array, target: number, ret: number): number {
    if (this.depth + 1 >= MAX_CALL_FRAMES)
      throw new VmTrap('call-depth', `the call would make ${this.depth + 2} frames (MAX_CALL_FRAMES ${MAX_CALL_FRAMES})`);
    const f = this.frames[this.depth] ??= { ret: 0, saved: new Int32Array(2 * BPF_REG_FP), stack: 0n };
    const saved = f.saved;
    for (let k = 0; k < 2 * BPF_REG_FP; k++) saved[k] = r[k + 2];
    f.stack = this.pushStack(r);
    f.ret = ret;
    this.depth++;
    return target;
  }

  /** exit from a subprogram: the caller's registers back, R0 kept. */
  leave(r: Int32Array): number {
    const f = this.frames[--this.depth], saved = f.saved;
    for (let k = 0; k < 2 * BPF_REG_FP; k++) r[k + 2] = saved[k];
    this.env.stack.free(f.stack);
    return f.ret;
  }

  /**
   * call imm: R0 = helper(R1..R5). R1-R5 keep their values, as in the kernel's interpreter (the
   * verifier treats them as clobbered, so a program cannot tell).
   */
  callHelper(r: Int32Array, id: number, table: 'helper' | 'kfunc' = 'helper'): void {
    const fn: BpfHelper | undefined = (table === 'helper' ? this.env.helpers : this.env.kfuncs)?.get(id);
    if (!fn) throw new VmTrap('unknown-helper', `unknown ${table} ${id}`);
    let v: bigint;
    try {
      v = fn(getU64(r, 2), getU64(r, 4), getU64(r, 6), getU64(r, 8), getU64(r, 10));
    } catch (e) {
      throw new VmTrap('helper', `${table} ${id} threw: ${e instanceof Error ? e.message : String(e)}`, e);
    } finally {
      this.m.reset(); // the helper may have changed the memory map
    }
    if (typeof v !== 'bigint') throw new VmTrap('helper', `${table} ${id} returned ${typeof v}, not a bigint`);
    setU64(r, 0, v);
  }

  /** The value of a pseudo LD_IMM64 (map fd, map value, BTF id, subprog address …). */
  ldImm64(i: Insn, pc: number, next: Insn): bigint {
    const resolve = this.env.resolveLdImm64;
    if (!resolve) throw new VmTrap('ld-imm64', `lddw with src=${i.src} (a pseudo form) needs env.resolveLdImm64`);
    return resolve(i, pc, next);
  }

  /** A MAX_BPF_STACK-byte frame from env.stack, zeroed (the kernel leaves it uninitialised; zero is one such value); R10 = its top. */
  private pushStack(r: Int32Array): bigint {
    const base = this.env.stack.alloc(MAX_BPF_STACK);
    setU64(r, FP, base + BigInt(MAX_BPF_STACK));
    try {
      this.m.fill0(this.m.at(r[FP], r[FP + 1], -MAX_BPF_STACK, MAX_BPF_STACK, ACC_RW), MAX_BPF_STACK);
    } catch (e) {
      this.env.stack.free(base);
      if (e instanceof VmTrap) throw new VmTrap(e.kind, `stack frame at ${hex(base)}: ${e.message}`, e.cause);
      throw e;
    }
    return base;
  }
}
