import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { boot, ArityError, GuestFault, type System } from '../index.ts';

let sys: System;
beforeAll(async () => { sys = await boot(); });
afterAll(() => sys.close());

describe('boot()', () => {
  it('has the image\'s BTF with the traced functions\' prototypes', () => {
    const p = sys.btf.funcProto('bpf_fentry_test3')!;
    expect(p.params!.map((x) => sys.btf.typeName(x.type))).toEqual(['char', 'int', 'u64']);
    expect(sys.btf.typeName(sys.btf.funcProto('eth_type_trans')!.params![0]!.type)).toBe('struct sk_buff *');
  });

  it('callFunc reads the return as its BTF type and checks the arity', () => {
    expect(sys.callFunc('bpfemu_shapes_s32', [BigInt.asUintN(64, -5n), 3n]).ret).toBe(-12n);
    expect(sys.callFunc('bpf_fentry_test1', [BigInt.asUintN(64, -5n)]).ret).toBe(-4n);
    expect(sys.callFunc('bpfemu_next_color', [5n])).toEqual({ ret: -1n, retType: 'enum bpfemu_color' });
    expect(sys.callFunc('bpfemu_set_flag', [sys.kernel.slab.kzalloc(64)!, 1n]).ret).toBeUndefined();
    expect(() => sys.callFunc('bpf_fentry_test2', [1n])).toThrow(ArityError);
    expect(() => sys.callFunc('bpf_fentry_test2', [1n])).toThrow('bpf_fentry_test2 takes 2 arguments (int bpf_fentry_test2(int, u64)), got 1');
  });

  it('a write to rodata from gcc code names the exact instruction and the function', () => {
    let err: GuestFault | undefined;
    try { sys.kernel.call('bpfemu_poke_rodata'); } catch (e) { err = e as GuestFault; }
    expect(err).toBeInstanceOf(GuestFault);
    expect(err!.exact).toBe(true);
    const insn = sys.disasm(err!.rip, 16)[0]!;
    expect(insn.mnemonic).toBe('mov'); // the store itself, not the block start
    expect(err!.symbol).toMatch(/^bpfemu_poke_rodata\+0x[0-9a-f]+$/);
    expect(err!.message).toMatch(/write access to protected memory at 0xffffffff81001[0-9a-f]{3}, rip 0xffffffff8100[0-9a-f]{4} <bpfemu_poke_rodata\+0x/);
    expect(sys.callFunc('bpf_fentry_test1', [1n]).ret).toBe(2n);
  });

  it('disasm of a kernel function shows the ftrace nop and symbolised call targets', () => {
    const text = sys.disasmText('bpf_test_run_fentry');
    expect(text.split('\n')[0]).not.toMatch(/nop\s+dword ptr \[rax \+ rax\]/); // notrace
    expect(text).toMatch(/call\s+0xffffffff8100[0-9a-f]{4} <bpf_fentry_test1>/);
    expect(sys.disasmText('bpf_fentry_test1').split('\n')[0]).toMatch(/^ffffffff8100[0-9a-f]{4}:\t0f 1f 44 00 00 +\tnop {4}dword ptr \[rax \+ rax\]$/);
  });
});
