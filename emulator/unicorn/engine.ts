/**
 * @fileoverview The typed face of Unicorn: every call's status is checked and turned into a
 * UcError naming the call and Unicorn's error string; addresses and register values are bigint.
 * Hook callbacks never throw through native frames: the wrapper catches, stashes the first error,
 * stops emulation, and emuStart() rethrows it once uc_emu_start has returned.
 * Hooks are compiled into translated blocks: whoever adds or removes one must drop the
 * translations of the range it covers (Machine does).
 */
import * as ffi from './ffi.ts';
import {
  UC_ARCH_X86, UC_MODE_64, UC_HOOK_CODE, UC_HOOK_BLOCK, UC_HOOK_INTR, UC_HOOK_INSN_INVALID, UC_HOOK_INSN, UC_X86_INS_SYSCALL, UC_QUERY_TIMEOUT,
  UC_CTL_TB_REMOVE_CACHE_W, UC_CTL_TB_FLUSH_W, X86_REG, type RegName,
} from './consts.ts';

const { koffi } = ffi;

/** A failed Unicorn call: `code` is the uc_err value. */
export class UcError extends Error {
  readonly code: number;
  readonly call: string;
  constructor(call: string, code: number) {
    super(`${call}: ${ffi.uc_strerror(code) as string} (uc_err ${code})`);
    this.name = 'UcError';
    this.code = code;
    this.call = call;
  }
}

function check(call: string, status: number): void {
  if (status !== 0) throw new UcError(call, status);
}

/** koffi hands back uint64 as Number below 2^53, as BigInt above, and signed: normalise. */
export const u64 = (v: number | bigint): bigint => BigInt.asUintN(64, BigInt(v));

export type CodeHook = (address: bigint, size: number) => void;
export type MemHook = (type: number, address: bigint, size: number, value: bigint) => void;
/** Return true when the fault was handled (memory mapped) and emulation may go on. */
export type MemInvalidHook = (type: number, address: bigint, size: number, value: bigint) => boolean;
export type IntrHook = (intno: number) => void;

export interface HookHandle {
  readonly id: bigint;
  readonly type: number;
  readonly begin: bigint;
  readonly end: bigint;
}

interface HookRecord extends HookHandle {
  callback: unknown; // the registered koffi callback, unregistered on delete
}

export class UcEngine {
  private handle: unknown;
  private hooks = new Map<bigint, HookRecord>();
  private stashed: unknown = undefined;
  private regBuf = new BigUint64Array(1);
  private ctxs: unknown[] = [];

  constructor() {
    const out: unknown[] = [null];
    check('uc_open', ffi.uc_open(UC_ARCH_X86, UC_MODE_64, out) as number);
    this.handle = out[0];
  }

  static version(): string {
    const v = ffi.uc_version(null, null) as number;
    return `${(v >> 24) & 0xff}.${(v >> 16) & 0xff}.${(v >> 8) & 0xff}`;
  }

  get closed(): boolean { return this.handle === null; }

  close(): void {
    if (this.handle === null) return;
    for (const id of [...this.hooks.keys()]) this.hookDel(id);
    for (const c of this.ctxs) ffi.uc_context_free(c);
    this.ctxs = [];
    check('uc_close', ffi.uc_close(this.handle) as number);
    this.handle = null;
  }

  // --- registers -------------------------------------------------------------------------

  regRead(reg: RegName): bigint {
    check(`uc_reg_read(${reg})`, ffi.uc_reg_read(this.handle, X86_REG[reg], this.regBuf) as number);
    return this.regBuf[0]!;
  }

  regWrite(reg: RegName, value: bigint): void {
    this.regBuf[0] = BigInt.asUintN(64, value);
    check(`uc_reg_write(${reg})`, ffi.uc_reg_write(this.handle, X86_REG[reg], this.regBuf) as number);
  }

  /** A register wider than 64 bits (xmm: 16 bytes) by its Unicorn id, as bytes. */
  regReadBytes(id: number, size: number): Uint8Array {
    const out = new Uint8Array(Math.max(size, 8));
    check(`uc_reg_read(${id})`, ffi.uc_reg_read(this.handle, id, out) as number);
    return out.subarray(0, size);
  }

  regWriteBytes(id: number, bytes: Uint8Array): void {
    const buf = new Uint8Array(Math.max(bytes.length, 8));
    buf.set(bytes);
    check(`uc_reg_write(${id})`, ffi.uc_reg_write(this.handle, id, buf) as number);
  }

  /** Prepares a batch reader: one FFI call reads all `regs` into the returned array. */
  regReader(regs: readonly RegName[]): () => BigUint64Array {
    const ids = Int32Array.from(regs, (r) => X86_REG[r]);
    const vals = new BigUint64Array(regs.length);
    const ptrs = new BigUint64Array(regs.length);
    const base = u64(koffi.address(vals) as bigint);
    for (let i = 0; i < regs.length; i++) ptrs[i] = base + BigInt(8 * i);
    return () => {
      check('uc_reg_read_batch', ffi.uc_reg_read_batch(this.handle, ids, ptrs, regs.length) as number);
      return vals;
    };
  }

  /** Prepares a batch writer: one FFI call writes all `regs` from `values`. */
  regWriter(regs: readonly RegName[]): (values: readonly bigint[]) => void {
    const ids = Int32Array.from(regs, (r) => X86_REG[r]);
    const vals = new BigUint64Array(regs.length);
    const ptrs = new BigUint64Array(regs.length);
    const base = u64(koffi.address(vals) as bigint);
    for (let i = 0; i < regs.length; i++) ptrs[i] = base + BigInt(8 * i);
    return (values) => {
      for (let i = 0; i < regs.length; i++) vals[i] = BigInt.asUintN(64, values[i] ?? 0n);
      check('uc_reg_write_batch', ffi.uc_reg_write_batch(this.handle, ids, ptrs, regs.length) as number);
    };
  }

  // --- memory ------------------------------------------------------------------------------

  memMapPtr(address: bigint, size: number, perms: number, hostAddress: bigint): void {
    check(`uc_mem_map_ptr(0x${address.toString(16)}, 0x${size.toString(16)})`,
      ffi.uc_mem_map_ptr(this.handle, address, size, perms, hostAddress) as number);
  }

  memUnmap(address: bigint, size: number): void {
    check(`uc_mem_unmap(0x${address.toString(16)}, 0x${size.toString(16)})`,
      ffi.uc_mem_unmap(this.handle, address, size) as number);
  }

  memProtect(address: bigint, size: number, perms: number): void {
    check(`uc_mem_protect(0x${address.toString(16)}, 0x${size.toString(16)})`,
      ffi.uc_mem_protect(this.handle, address, size, perms) as number);
  }

  /** Reads through Unicorn (the slow path; host-backed memory is read through its view). */
  memRead(address: bigint, size: number): Uint8Array {
    const out = new Uint8Array(size);
    check(`uc_mem_read(0x${address.toString(16)})`, ffi.uc_mem_read(this.handle, address, out, size) as number);
    return out;
  }

  memWrite(address: bigint, bytes: Uint8Array): void {
    check(`uc_mem_write(0x${address.toString(16)})`, ffi.uc_mem_write(this.handle, address, bytes, bytes.length) as number);
  }

  // --- translation cache ---------------------------------------------------------------------

  /** Drops translated code for [start, end): needed after every code write or hook change. */
  removeCache(start: bigint, end: bigint): void {
    check('uc_ctl(UC_CTL_TB_REMOVE_CACHE)', ffi.uc_ctl(this.handle, UC_CTL_TB_REMOVE_CACHE_W,
      'uint64_t', start, 'uint64_t', end) as number);
  }

  /**
   * Drops all translated code. Measured slow on 2.0.1 (1.7 s the first time, ~50 ms after):
   * prefer removeCache over the ranges that changed.
   */
  flushCache(): void {
    check('uc_ctl(UC_CTL_TB_FLUSH)', ffi.uc_ctl(this.handle, UC_CTL_TB_FLUSH_W) as number);
  }

  // --- emulation -----------------------------------------------------------------------------

  /**
   * Runs from `begin` until `until` (0n: no stop address), a timeout in µs (0: none) or `count`
   * instructions (0: no limit). Rethrows the first error a hook stashed.
   */
  emuStart(begin: bigint, until: bigint, timeoutUs = 0, count = 0): void {
    this.stashed = undefined;
    const status = ffi.uc_emu_start(this.handle, begin, until, timeoutUs, count) as number;
    const stashed = this.stashed;
    this.stashed = undefined;
    if (stashed !== undefined) throw stashed;
    check('uc_emu_start', status);
  }

  /** Whether the last emuStart() ended on its timeout (uc_query UC_QUERY_TIMEOUT). */
  timedOut(): boolean {
    const out = [0n];
    check('uc_query(UC_QUERY_TIMEOUT)', ffi.uc_query(this.handle, UC_QUERY_TIMEOUT, out) as number);
    return BigInt(out[0]!) !== 0n;
  }

  emuStop(): void {
    check('uc_emu_stop', ffi.uc_emu_stop(this.handle) as number);
  }

  /** Records the first error raised inside a hook and stops the run (see emuStart). */
  stash(err: unknown): void {
    if (this.stashed === undefined) this.stashed = err;
    ffi.uc_emu_stop(this.handle);
  }

  // --- hooks ---------------------------------------------------------------------------------

  private addHook(type: number, proto: unknown, fn: (...a: never[]) => unknown, begin: bigint, end: bigint, insn?: number): HookHandle {
    const cb = koffi.register(fn, koffi.pointer(proto as never));
    const out = [0n];
    const status = (insn === undefined
      ? ffi.uc_hook_add(this.handle, out, type, cb, null, begin, end)
      : ffi.uc_hook_add_insn(this.handle, out, type, cb, null, begin, end, 'int', insn)) as number;
    if (status !== 0) {
      koffi.unregister(cb);
      throw new UcError(`uc_hook_add(type 0x${type.toString(16)})`, status);
    }
    const id = u64(out[0]!);
    const rec: HookRecord = { id, type, begin, end, callback: cb };
    this.hooks.set(id, rec);
    return rec;
  }

  /** A code hook over [begin, end] (inclusive; begin > end means everywhere). */
  hookCode(fn: CodeHook, begin = 1n, end = 0n, block = false): HookHandle {
    return this.addHook(block ? UC_HOOK_BLOCK : UC_HOOK_CODE, ffi.CodeHookProto, (_uc: unknown, addr: number | bigint, size: number) => {
      try { fn(u64(addr), size); } catch (e) { this.stash(e); }
    }, begin, end);
  }

  hookMem(types: number, fn: MemHook, begin = 1n, end = 0n): HookHandle {
    return this.addHook(types, ffi.MemHookProto, (_uc: unknown, type: number, addr: number | bigint, size: number, value: number | bigint) => {
      try { fn(type, u64(addr), size, u64(value)); } catch (e) { this.stash(e); }
    }, begin, end);
  }

  hookMemInvalid(types: number, fn: MemInvalidHook, begin = 1n, end = 0n): HookHandle {
    return this.addHook(types, ffi.MemInvalidHookProto, (_uc: unknown, type: number, addr: number | bigint, size: number, value: number | bigint) => {
      try { return fn(type, u64(addr), size, u64(value)); } catch (e) { this.stash(e); return false; }
    }, begin, end);
  }

  hookIntr(fn: IntrHook): HookHandle {
    return this.addHook(UC_HOOK_INTR, ffi.IntrHookProto, (_uc: unknown, intno: number) => {
      try { fn(intno); } catch (e) { this.stash(e); }
    }, 1n, 0n);
  }

  /**
   * The `syscall` instruction over [begin, end]: Unicorn runs the hook instead of the SYSCALL
   * transition (no rcx/r11 update, no jump to LSTAR) and goes on after the instruction; rip
   * reads as the `syscall` itself inside the hook. An emuStop() there stops after it.
   */
  hookSyscall(fn: () => void, begin = 1n, end = 0n): HookHandle {
    return this.addHook(UC_HOOK_INSN, ffi.InsnSyscallHookProto, () => {
      try { fn(); } catch (e) { this.stash(e); }
    }, begin, end, UC_X86_INS_SYSCALL);
  }

  /** Invalid opcode; return true to go on (the hook moved rip), false to stop with UC_ERR_INSN_INVALID. */
  hookInsnInvalid(fn: () => boolean): HookHandle {
    return this.addHook(UC_HOOK_INSN_INVALID, ffi.InsnInvalidHookProto, () => {
      try { return fn(); } catch (e) { this.stash(e); return false; }
    }, 1n, 0n);
  }

  hookDel(h: HookHandle | bigint): void {
    const id = typeof h === 'bigint' ? h : h.id;
    const rec = this.hooks.get(id);
    if (!rec) throw new Error(`uc_hook_del: no hook with id ${id}`);
    check('uc_hook_del', ffi.uc_hook_del(this.handle, id) as number);
    koffi.unregister(rec.callback as never);
    this.hooks.delete(id);
  }

  get hookCount(): number { return this.hooks.size; }

  // --- register contexts -----------------------------------------------------------------------

  /** Saves all registers into a new context (freed with contextFree or on close). */
  contextSave(): unknown {
    const out: unknown[] = [null];
    check('uc_context_alloc', ffi.uc_context_alloc(this.handle, out) as number);
    check('uc_context_save', ffi.uc_context_save(this.handle, out[0]) as number);
    this.ctxs.push(out[0]);
    return out[0];
  }

  contextRestore(ctx: unknown): void {
    check('uc_context_restore', ffi.uc_context_restore(this.handle, ctx) as number);
  }

  contextFree(ctx: unknown): void {
    const i = this.ctxs.indexOf(ctx);
    if (i < 0) return;
    this.ctxs.splice(i, 1);
    check('uc_context_free', ffi.uc_context_free(ctx) as number);
  }
}
