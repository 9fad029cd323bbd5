/**
 * @fileoverview UserCpu (emulator/user_cpu.ts) on hand-made code, no kernel: the `syscall` hook
 * (rip is the instruction inside it; the CPU goes on after it; stop() ends the run there), a
 * kernel address unmapped in its own engine, traps, `hlt`, the timeout, and the register state
 * fork copies (xmm included).
 */
import { describe, it, expect, afterEach } from 'vitest';
import { UserCpu } from '../../emulator/user_cpu.ts';
import { HostRegion, PAGE_SIZE, PROT_R, PROT_W, PROT_X } from '../../emulator/memory.ts';

const CODE = 0x400000n, DATA = 0x600000n;
let cpus: UserCpu[] = [];
afterEach(() => { cpus.forEach((c) => c.close()); cpus = []; });

function cpu(code: number[], onSyscall: (c: UserCpu) => void = () => {}): UserCpu {
  let self: UserCpu | undefined;
  const c = new UserCpu({ onSyscall: () => onSyscall(self!) });
  self = c;
  cpus.push(c);
  c.mem.map(CODE, PAGE_SIZE, PROT_R | PROT_X, { name: 'text' });
  c.mem.map(DATA, PAGE_SIZE, PROT_R | PROT_W, { name: 'data' });
  c.mem.write(CODE, Uint8Array.from(code));
  c.setReg('rip', CODE);
  c.setReg('rsp', DATA + 0x800n);
  return c;
}

// mov ebx, 3; loop: mov eax, 39; syscall; dec ebx; jnz loop; hlt
const LOOP = [0xbb, 3, 0, 0, 0, 0xb8, 39, 0, 0, 0, 0x0f, 0x05, 0xff, 0xcb, 0x75, 0xf5, 0xf4];

describe('UserCpu', () => {
  it('calls the hook for each `syscall`, with rip at the instruction, and goes on after it', () => {
    const seen: bigint[] = [];
    const c = cpu(LOOP, (x) => {
      const r = x.readSyscallRegs();
      seen.push(r[7]!); // rip
      x.writeSyscallResult([100n + BigInt(seen.length), r[7]! + 2n, r[8]!]);
    });
    expect(c.run()).toEqual({ kind: 'halted', rip: CODE + 16n });
    expect(seen).toEqual([CODE + 10n, CODE + 10n, CODE + 10n]);
    expect([c.reg('rax'), c.reg('rcx'), c.syscalls]).toEqual([103n, CODE + 12n, 3]);
  });

  it('stop() in the hook ends the run after the syscall; run() resumes there', () => {
    const c = cpu(LOOP, (x) => x.stop());
    expect(c.run()).toEqual({ kind: 'stopped' });
    expect(c.reg('rip')).toBe(CODE + 12n);
    expect(c.run()).toEqual({ kind: 'stopped' });
    expect(c.reg('rbx')).toBe(2n);
  });

  it('a kernel address is not mapped in a user address space: a fault, with the exact instruction', () => {
    // nop; mov rax, 0xffffffff81000000; mov rax, [rax]
    const c = cpu([0x90, 0x48, 0xb8, 0, 0, 0, 0x81, 0xff, 0xff, 0xff, 0xff, 0x48, 0x8b, 0x00]);
    const s = c.run();
    expect(s.kind).toBe('fault');
    if (s.kind !== 'fault') return;
    expect([s.fault.kind, s.fault.address]).toEqual(['read-unmapped', 0xffffffff81000000n]);
  });

  it('traps stop the run with their vector: int3 (3), #DE (0)', () => {
    expect(cpu([0x90, 0xcc]).run()).toMatchObject({ kind: 'trap', intno: 3 });
    // xor ecx, ecx; mov eax, 1; cltd; idiv ecx
    expect(cpu([0x31, 0xc9, 0xb8, 1, 0, 0, 0, 0x99, 0xf7, 0xf9]).run()).toMatchObject({ kind: 'trap', intno: 0 });
  });

  it('the timeout ends a loop as a timeout, not a halt', () => {
    const c = cpu([0xeb, 0xfe]); // jmp $
    expect(c.run(20_000)).toEqual({ kind: 'timeout' });
    expect(c.reg('rip')).toBe(CODE);
  });

  it('saveRegs/loadRegs carry the general registers, flags, fs base and the SSE state', () => {
    // movq xmm3, rax (66 48 0f 6e d8); hlt
    const a = cpu([0x66, 0x48, 0x0f, 0x6e, 0xd8, 0xf4]);
    a.setReg('rax', 0x1122334455667788n);
    a.setReg('r12', 42n);
    a.setReg('fs_base', 0x7000n);
    a.run();
    const s = a.saveRegs();
    expect(Buffer.from(s.xmm[3]!).readBigUInt64LE(0)).toBe(0x1122334455667788n);
    const b = cpu([0xf4]);
    b.loadRegs(s);
    expect([b.reg('r12'), b.reg('fs_base'), b.reg('rax')]).toEqual([42n, 0x7000n, 0x1122334455667788n]);
    expect(Buffer.from(b.saveRegs().xmm[3]!).readBigUInt64LE(0)).toBe(0x1122334455667788n);
  });

  it('one host page in two address spaces: each CPU\'s store is the other\'s', () => {
    const page = new HostRegion(PAGE_SIZE);
    // mov qword [0x700000], 7 ; hlt   and   mov rax, [0x800000] ; hlt
    const w = cpu([0x48, 0xc7, 0x04, 0x25, 0x00, 0x00, 0x70, 0x00, 7, 0, 0, 0, 0xf4]);
    const r = cpu([0x48, 0x8b, 0x04, 0x25, 0x00, 0x00, 0x80, 0x00, 0xf4]);
    w.mem.map(0x700000n, PAGE_SIZE, PROT_R | PROT_W, { region: page });
    r.mem.map(0x800000n, PAGE_SIZE, PROT_R, { region: page });
    w.run();
    r.run();
    expect(r.reg('rax')).toBe(7n);
    expect(page.view.getBigUint64(0, true)).toBe(7n);
    w.mem.unmap(0x700000n);
    r.mem.unmap(0x800000n);
    page.free();
  });
});
