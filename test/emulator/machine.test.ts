import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import { Machine, GuestFault } from '../../emulator/machine.ts';
import { PROT_R, PROT_W, PROT_X, PAGE_SIZE, GuestMemoryError } from '../../emulator/memory.ts';
import { UcError } from '../../emulator/unicorn/engine.ts';

// A bare machine, no kernel: code at a kernel-text address, a stack in the direct map.
const TEXT = 0xffffffff81000000n;
const STACK = 0xffff888000000000n;
const USER = 0x400000n;
const le64 = (v: bigint): number[] => [...new Uint8Array(new BigUint64Array([v]).buffer)];

let m: Machine;
beforeEach(() => {
  m = new Machine({ stackTop: STACK + 0x4000n });
  m.mem.map(TEXT, PAGE_SIZE, PROT_R | PROT_X, { name: 'text' });
  m.mem.map(STACK, 0x4000, PROT_R | PROT_W, { name: 'stack' });
});
afterEach(() => m.close());

const code = (addr: bigint, bytes: number[]): bigint => { m.writeCode(addr, Uint8Array.from(bytes)); return addr; };

describe('calls and registers', () => {
  it('call() returns rax; registers are named bigints', () => {
    // lea rax, [rdi + rsi*1]; ret
    const f = code(TEXT, [0x48, 0x8d, 0x04, 0x37, 0xc3]);
    expect(m.call(f, [40, 2])).toBe(42n);
    expect(m.call(f, [0xffffffffffffffffn, 2n])).toBe(1n);
    m.regs.r12 = 0x1234n;
    expect(m.regs.r12).toBe(0x1234n);
  });

  it('stack arguments are 16-byte aligned at the call, 7th at [rsp+8] on entry', () => {
    // mov rax, [rsp+8]; add rax, [rsp+16]; ret   (arg7 + arg8)
    const f = code(TEXT, [0x48, 0x8b, 0x44, 0x24, 0x08, 0x48, 0x03, 0x44, 0x24, 0x10, 0xc3]);
    expect(m.call(f, [0, 0, 0, 0, 0, 0, 100, 23])).toBe(123n);
    // mov rax, rsp; ret: rsp at entry is 8 mod 16 (the return address was pushed).
    const g = code(TEXT + 0x40n, [0x48, 0x89, 0xe0, 0xc3]);
    for (const n of [0, 7, 8, 9]) expect(m.call(g, new Array(n).fill(1)) % 16n).toBe(8n);
  });
});

describe('memory', () => {
  it('one host page at two guest addresses and in TypeScript, all three see each other', () => {
    const kernelAlias = 0xffffc90000000000n;
    const a = m.mem.map(kernelAlias, PAGE_SIZE, PROT_R | PROT_W, { name: 'vmalloc' });
    m.mem.map(USER, PAGE_SIZE, PROT_R | PROT_W, { name: 'user', region: a.region });
    // mov [rdi], rsi; mov rax, [rdx]; ret — store through one alias, load through the other.
    const f = code(TEXT, [0x48, 0x89, 0x37, 0x48, 0x8b, 0x02, 0xc3]);
    expect(m.call(f, [kernelAlias + 8n, 0xfeedn, USER + 8n])).toBe(0xfeedn);
    expect(a.region.view.getBigUint64(8, true)).toBe(0xfeedn); // TypeScript sees the guest store
    a.region.view.setBigUint64(16, 0xbeefn, true); // and the guest sees TypeScript's
    expect(m.call(f, [kernelAlias + 24n, 0n, USER + 16n])).toBe(0xbeefn);
    expect(m.mem.readU64(kernelAlias + 16n)).toBe(0xbeefn);
  });

  it('patched code runs the new bytes: without invalidation Unicorn keeps running the stale block', () => {
    const f = code(TEXT, [0xb8, 1, 0, 0, 0, 0xc3]); // mov eax, 1; ret
    expect(m.call(f)).toBe(1n);
    // Writing behind Unicorn's back (the raw host view) leaves the translated block in place...
    m.mem.find(TEXT)!.region.bytes[1] = 2;
    expect(m.call(f)).toBe(1n);
    // ...a write through the machine drops it.
    m.writeCode(TEXT, Uint8Array.from([0xb8, 3, 0, 0, 0, 0xc3]));
    expect(m.call(f)).toBe(3n);
    // mem.write into an executable mapping invalidates as well, through an alias too.
    m.mem.write(TEXT + 1n, Uint8Array.of(4));
    expect(m.call(f)).toBe(4n);
  });

  it('TypeScript access to unmapped memory is a GuestMemoryError naming the address', () => {
    expect(() => m.mem.readU64(0x1000n)).toThrow(GuestMemoryError);
    expect(() => m.mem.write(STACK + 0x3ffcn, new Uint8Array(8))).toThrow(/0xffff888000004000/);
  });

  it('mapping bad ranges is refused; unmap frees the pages', () => {
    expect(() => m.mem.map(TEXT + 1n, PAGE_SIZE, PROT_R)).toThrow(/not page-aligned/);
    expect(() => m.mem.map(TEXT, PAGE_SIZE, PROT_R)).toThrow(/overlaps text/);
    const before = m.mem.ownedBytes;
    m.mem.map(USER, 2 * PAGE_SIZE, PROT_R);
    expect(m.mem.ownedBytes).toBe(before + 2 * PAGE_SIZE);
    m.mem.unmap(USER);
    expect(m.mem.ownedBytes).toBe(before);
    expect(() => m.mem.unmap(USER)).toThrow(/no mapping/);
  });
});

describe('faults', () => {
  it('an unmapped store names the address and the exact instruction, then the machine goes on', () => {
    // mov rax, 1; add rbx, 5 (state changes before the fault); mov [rdi], rax; ret
    const f = code(TEXT, [0x48, 0xc7, 0xc0, 1, 0, 0, 0, 0x48, 0x83, 0xc3, 5, 0x48, 0x89, 0x07, 0xc3]);
    let err: GuestFault | undefined;
    try { m.call(f, [0x10]); } catch (e) { err = e as GuestFault; }
    expect(err).toBeInstanceOf(GuestFault);
    expect(err!.kind).toBe('write-unmapped');
    expect(err!.address).toBe(0x10n);
    // Without a locator the block start is reported, and says so.
    expect(err!.rip).toBe(TEXT);
    expect(err!.exact).toBe(false);
    const ok = code(TEXT + 0x100n, [0xb8, 7, 0, 0, 0, 0xc3]);
    expect(m.call(ok)).toBe(7n);
  });

  it('invalid opcode: exact rip', () => {
    const f = code(TEXT, [0x90, 0x90, 0x0f, 0x0b]); // nop; nop; ud2
    expect(() => m.call(f)).toThrow(GuestFault);
    try { m.call(f); } catch (e) { expect((e as GuestFault).kind).toBe('invalid-insn'); expect((e as GuestFault).rip).toBe(TEXT + 2n); }
  });

  it('an error thrown in a hook stops the run and is rethrown, not lost in native frames', () => {
    const f = code(TEXT, [0x90, 0xb8, 5, 0, 0, 0, 0xc3]);
    const h = m.hookCode(() => { throw new Error('boom in hook'); }, TEXT + 1n, TEXT + 1n);
    expect(() => m.call(f)).toThrow('boom in hook');
    m.removeHook(h);
    expect(m.call(f)).toBe(5n);
  });
});

describe('stepping, breakpoints, snapshots', () => {
  // mov eax, 1; add eax, 2; add eax, 3; ret
  const body = [0xb8, 1, 0, 0, 0, 0x83, 0xc0, 2, 0x83, 0xc0, 3, 0xc3];

  it('step executes one instruction at a time, even over code already translated', () => {
    const f = code(TEXT, body);
    expect(m.call(f)).toBe(6n); // the block is now translated without counting
    m.prepareCall(f, []);
    const rips: bigint[] = [];
    for (let i = 0; i < 3; i++) { m.step(); rips.push(m.regs.rip); }
    expect(rips).toEqual([TEXT + 5n, TEXT + 8n, TEXT + 11n]);
    expect(m.regs.rax).toBe(6n);
    expect(m.run()).toEqual({ kind: 'exit', rax: 6n });
    expect(m.call(f)).toBe(6n); // and a normal run still works afterwards
  });

  it('a breakpoint stops before its instruction; run resumes past it', () => {
    const f = code(TEXT, body);
    m.addBreakpoint(TEXT + 5n);
    m.prepareCall(f, []);
    expect(m.run()).toEqual({ kind: 'breakpoint', rip: TEXT + 5n });
    expect(m.regs.rax).toBe(1n);
    expect(m.run()).toEqual({ kind: 'exit', rax: 6n });
    expect(() => m.call(f)).toThrow(/stopped before returning \(breakpoint/);
    expect(m.removeBreakpoint(TEXT + 5n)).toBe(true);
    expect(m.call(f)).toBe(6n);
  });

  it('snapshot and restore bring back registers and memory, including code', () => {
    const f = code(TEXT, body);
    m.mem.writeU64(STACK, 111n);
    m.regs.r15 = 5n;
    const s = m.snapshot();
    m.mem.writeU64(STACK, 222n);
    m.regs.r15 = 6n;
    m.writeCode(TEXT + 1n, Uint8Array.of(10));
    expect(m.call(f)).toBe(15n);
    m.restore(s);
    expect(m.mem.readU64(STACK)).toBe(111n);
    expect(m.regs.r15).toBe(5n);
    expect(m.call(f)).toBe(6n);
    m.mem.map(USER, PAGE_SIZE, PROT_R);
    expect(() => m.restore(s)).toThrow(/layout changed/);
    m.dropSnapshot(s);
  });
});

describe('native calls', () => {
  it('guest `call` into TypeScript and back, counted; an unregistered slot traps', () => {
    const nf = m.defineNative('add3', (a, b, c) => a + b + c, 3);
    // movabs rax, nf; call rax; add rax, 1; ret
    const f = code(TEXT, [0x48, 0xb8, ...le64(nf.address), 0xff, 0xd0, 0x48, 0x83, 0xc0, 1, 0xc3]);
    const c0 = m.crossings;
    expect(m.call(f, [1, 2, 3])).toBe(7n);
    expect(m.crossings - c0).toBe(1);
    expect(nf.calls).toBe(1);
    // A slot nobody registered holds int3.
    const g = code(TEXT + 0x100n, [0x48, 0xb8, ...le64(m.nativePage + 0x800n), 0xff, 0xd0, 0xc3]);
    expect(() => m.call(g)).toThrow(GuestFault);
    expect(m.call(f, [0, 0, 0])).toBe(1n);
  });

  it('an exception in a native function reaches the caller of call()', () => {
    const nf = m.defineNative('thrower', () => { throw new RangeError('native failed'); }, 0);
    const f = code(TEXT, [0x48, 0xb8, ...le64(nf.address), 0xff, 0xd0, 0xc3]);
    expect(() => m.call(f)).toThrow(RangeError);
    expect(() => m.defineNative('bad', () => 0, 17)).toThrow(/argc 17/);
  });
});

describe('the engine', () => {
  it('failed Unicorn calls are UcErrors naming the call and Unicorn\'s error string', () => {
    let err: unknown;
    try { m.uc.memMapPtr(TEXT, PAGE_SIZE, PROT_R, 0x1000n); } catch (e) { err = e; }
    expect(err).toBeInstanceOf(UcError);
    expect((err as UcError).message).toMatch(/^uc_mem_map_ptr\(0xffffffff81000000, 0x1000\): Invalid memory mapping \(UC_ERR_MAP\)/);
  });

  it('hooks are released: count before and after', () => {
    const n = m.uc.hookCount;
    const hs = [1, 2, 3].map((i) => m.hookCode(() => {}, TEXT + BigInt(i), TEXT + BigInt(i)));
    expect(m.uc.hookCount).toBe(n + 3);
    hs.forEach((h) => m.removeHook(h));
    expect(m.uc.hookCount).toBe(n);
  });
});
