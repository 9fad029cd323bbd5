import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { Machine, GuestFault } from '../../emulator/machine.ts';
import { PROT_R, PROT_W, PROT_X, PAGE_SIZE } from '../../emulator/memory.ts';
import { loadDisassembler } from '../../emulator/capstone.ts';
import { makeFaultLocator } from '../../emulator/faultloc.ts';

const TEXT = 0xffffffff81000000n;
const RODATA = TEXT + 0x1000n;
const STACK = 0xffff888000000000n;
let m: Machine;

beforeAll(async () => {
  m = new Machine({ stackTop: STACK + 0x4000n, faultLocator: makeFaultLocator(await loadDisassembler()) });
  m.mem.map(TEXT, PAGE_SIZE, PROT_R | PROT_X, { name: 'text' });
  m.mem.map(RODATA, PAGE_SIZE, PROT_R, { name: 'rodata' });
  m.mem.map(STACK, 0x4000, PROT_R | PROT_W, { name: 'stack' });
});
afterAll(() => m.close());

// Each case: code whose instruction at `at` faults on `addr`, after earlier instructions in the
// same block changed registers and memory (so re-running the block could not tell).
const cases: { name: string; code: number[]; args: bigint[]; at: number; kind: string; addr: bigint }[] = [
  { name: 'store through rdi after an add', code: [0x48, 0xc7, 0xc0, 1, 0, 0, 0, 0x48, 0x83, 0xc3, 5, 0x48, 0x89, 0x07, 0xc3],
    args: [0x10n], at: 11, kind: 'write-unmapped', addr: 0x10n },
  { name: 'indexed load [rdi + rsi*8 + 0x10]', code: [0x48, 0xff, 0xc6, 0x48, 0x8b, 0x44, 0xf7, 0x10, 0xc3],
    args: [0x1000n, 2n], at: 3, kind: 'read-unmapped', addr: 0x1000n + 3n * 8n + 0x10n },
  { name: 'negative displacement byte store', code: [0x90, 0xc6, 0x47, 0xf0, 0x07, 0xc3],
    args: [0x2000n], at: 1, kind: 'write-unmapped', addr: 0x2000n - 0x10n },
  { name: 'rip-relative store into read-only data', code: [0x48, 0xff, 0xc0, 0x48, 0x89, 0x05, 0xf6, 0x0f, 0x00, 0x00, 0xc3],
    args: [], at: 3, kind: 'write-prot', addr: RODATA },
  { name: 'push onto an unmapped stack', code: [0x48, 0x89, 0xfc, 0x50, 0xc3],
    args: [0x3008n], at: 3, kind: 'write-unmapped', addr: 0x3000n },
  { name: 'read after a successful store to the same page', code: [0x48, 0x89, 0x3e, 0x48, 0x8b, 0x07, 0xc3],
    args: [0x5000n, STACK], at: 3, kind: 'read-unmapped', addr: 0x5000n },
];

describe('exact faulting instruction', () => {
  it.each(cases)('$name', ({ code, args, at, kind, addr }) => {
    m.writeCode(TEXT, Uint8Array.from(code));
    let err: GuestFault | undefined;
    try { m.call(TEXT, args); } catch (e) { err = e as GuestFault; }
    expect(err).toBeInstanceOf(GuestFault);
    expect(err!.kind).toBe(kind);
    expect(err!.address).toBe(addr);
    expect(err!.rip).toBe(TEXT + BigInt(at));
    expect(err!.exact).toBe(true);
    // The machine goes on.
    m.writeCode(TEXT, Uint8Array.from([0xb8, 9, 0, 0, 0, 0xc3]));
    expect(m.call(TEXT)).toBe(9n);
  });
});
