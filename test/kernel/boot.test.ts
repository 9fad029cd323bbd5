import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { Kernel, UnknownSymbolError } from '../../kernel/kernel.ts';
import { X86_NOP5 } from '../../kernel/ftrace.ts';
import { STT_FUNC } from '../../kernel/elf.ts';
import { GuestFault } from '../../emulator/faults.ts';
import { KERNEL_TEXT_START } from '../../kernel/layout.ts';

let k: Kernel;
beforeAll(() => { k = new Kernel(); });
afterAll(() => k.close());

const s64 = (v: bigint): bigint => BigInt.asIntN(64, v);
const s32 = (v: bigint): bigint => BigInt.asIntN(32, v);

describe('bpf_fentry_testN with the selftests\' values (net/bpf/test_run.c)', () => {
  // Arguments and expected returns of the kernel's bpf_test_init / fentry_test selftest.
  const cases: [string, (bigint | number)[], number][] = [
    ['bpf_fentry_test1', [1], 2],
    ['bpf_fentry_test2', [2, 3], 5],
    ['bpf_fentry_test3', [4, 5, 6], 15],
    ['bpf_fentry_test4', [7, 8, 9, 10], 34],
    ['bpf_fentry_test5', [11, 12, 13, 14, 15], 65],
    ['bpf_fentry_test6', [16, 17, 18, 19, 20, 21], 111],
    ['bpf_fentry_test7', [0], 0],
  ];
  it.each(cases)('%s%j returns %d', (fn, args, want) => {
    expect(s32(k.call(fn, args))).toBe(BigInt(want));
  });

  it('bpf_fentry_test8(&arg) with arg.a = NULL returns 0, and reads arg.a', () => {
    const arg = k.slab.kzalloc(8)!;
    expect(k.call('bpf_fentry_test8', [arg])).toBe(0n);
    k.machine.mem.writeU64(arg, 0x1234n);
    expect(k.call('bpf_fentry_test8', [arg])).toBe(0x1234n);
    k.slab.kfree(arg);
  });

  it('bpf_fentry_test9(&retval) returns *retval (u32)', () => {
    const p = k.slab.kzalloc(4)!;
    expect(k.call('bpf_fentry_test9', [p])).toBe(0n);
    k.machine.mem.writeU32(p, 0xfffffffe);
    expect(k.call('bpf_fentry_test9', [p])).toBe(0xfffffffen);
    k.slab.kfree(p);
  });

  it('bpf_modify_return_test(1, &b=2) returns 4 and b becomes 3', () => {
    const b = k.slab.kzalloc(4)!;
    k.machine.mem.writeU32(b, 2);
    expect(k.call('bpf_modify_return_test', [1, b])).toBe(4n);
    expect(k.machine.mem.readU32(b)).toBe(3);
    k.slab.kfree(b);
  });

  it('the image\'s own caller (v5.5 bpf_test_init check) sees all six results right', () => {
    expect(k.call('bpf_test_run_fentry')).toBe(0n);
  });
});

describe('ftrace sites (__mcount_loc)', () => {
  it('every listed function begins with the 5-byte nop 0f 1f 44 00 00', () => {
    expect(k.ftrace.size).toBeGreaterThanOrEqual(20);
    for (const site of k.ftrace.list()) {
      expect([...k.machine.mem.read(site.ip, 5)], site.func).toEqual([...X86_NOP5]);
      expect(k.ksyms.lookup(site.func)?.address).toBe(site.ip);
    }
  });

  it('no notrace function is attachable, and none begins with the nop', () => {
    const funcs = k.elf.symbols().filter((s) => s.type === STT_FUNC && s.size > 0);
    const notrace = funcs.filter((f) => !k.ftrace.location(f.value));
    expect(notrace.map((f) => f.name)).toEqual(expect.arrayContaining(['bpfemu_notrace_add', 'start_kernel', 'memset', 'bpf_test_run_fentry']));
    for (const f of notrace) {
      expect(k.ftrace.forFunc(f.name), f.name).toBeUndefined();
      expect([...k.machine.mem.read(f.value, 5)], f.name).not.toEqual([...X86_NOP5]);
    }
    // A notrace function still runs.
    expect(k.call('bpfemu_notrace_add', [40, 2])).toBe(42n);
  });
});

describe('kallsyms', () => {
  it('looks up both ways', () => {
    const a = k.addressOf('bpf_fentry_test1');
    expect(a >= KERNEL_TEXT_START).toBe(true);
    expect(k.symbolize(a)).toBe('bpf_fentry_test1');
    expect(k.symbolize(a + 5n)).toBe('bpf_fentry_test1+0x5');
    expect(k.ksyms.lookup('bpfemu_banner')?.type).toBe('R');
    expect(k.ksyms.lookup('bpfemu_counter')?.type).toMatch(/[Bb]/);
  });

  it('an unknown function is a clear error', () => {
    expect(() => k.call('no_such_function')).toThrow(UnknownSymbolError);
    expect(() => k.call('bpfemu_banner')).toThrow(/unknown kernel function: bpfemu_banner/);
  });
});

describe('System V calling convention against gcc-compiled code', () => {
  it('8 integer args: 6 in registers, 7 and 8 on the stack (bpfemu_sum8 weights 1..8)', () => {
    const args = [1n, 2n, 3n, 4n, 5n, 6n, 7n, 8n].map((v) => v * 0x100000001n);
    const want = args.reduce((acc, v, i) => acc + v * BigInt(i + 1), 0n);
    expect(k.call('bpfemu_sum8', args)).toBe(BigInt.asUintN(64, want));
  });

  it('narrow and signed args are truncated by the callee as gcc compiled it', () => {
    // bpfemu_shapes_narrow(u8 a, s8 b, u16 c, s16 d) = (s16)(a*3 + b*5 + c*7 + d*11).
    const narrow = (a: number, b: number, c: number, d: number): bigint => {
      const v = (a & 0xff) * 3 + ((b << 24) >> 24) * 5 + (c & 0xffff) * 7 + ((d << 16) >> 16) * 11;
      return BigInt((v << 16) >> 16);
    };
    for (const [a, b, c, d] of [[1, 2, 3, 4], [0x1ff, -1, 0x1ffff, -2], [255, -128, 65535, -32768]] as const) {
      // The callee sees only the low bits: pass garbage above them.
      const ret = k.call('bpfemu_shapes_narrow', [BigInt(a) | 0xab00n, BigInt.asUintN(64, BigInt(b)), BigInt(c), BigInt.asUintN(64, BigInt(d))]);
      expect(BigInt.asIntN(16, ret)).toBe(narrow(a, b, c, d));
    }
  });

  it('a gcc-compiled caller passes 6 and 8 args to a TypeScript function (native call round trip)', () => {
    const seen: bigint[][] = [];
    const f8 = k.defineNative('test_native8', (...a) => { seen.push(a); return 0x1000n; }, 8);
    const f6 = k.defineNative('test_native6', (...a) => { seen.push(a); return 0x2000n; }, 6);
    const MIX = 0x5a5a5a5a5a5a5a5an;
    const consts = [1n, 2n, 3n, 4n, 5n, 6n, 7n, 8n].map((i) => i * 0x1111111111111111n);
    expect(k.call('bpfemu_call_fn8', [f8.address])).toBe(0x1000n ^ MIX);
    expect(seen.pop()).toEqual(consts);
    expect(k.call('bpfemu_call_fn6', [f6.address])).toBe(0x2000n ^ MIX);
    expect(seen.pop()).toEqual(consts.slice(0, 6));
    expect(f8.calls).toBe(1);
    expect(k.symbolize(f8.address)).toBe('test_native8');
  });

  it('narrow args from gcc: int-sized values zero-extended in 32-bit registers, long sign-extended', () => {
    let got: bigint[] = [];
    const fn = k.defineNative('test_native_narrow', (...a) => { got = a; return BigInt.asUintN(64, -7n); }, 4);
    expect(s64(k.call('bpfemu_call_fn_narrow', [fn.address]))).toBe(-7n);
    // char -2, short -3, int -4 as gcc loads them (movl: the upper half is zero); long -5 whole.
    expect(got.map((v) => BigInt.asIntN(32, v))).toEqual([-2n, -3n, -4n, -5n]);
    expect(got[3]).toBe(BigInt.asUintN(64, -5n));
  });

  it('a native function can call back into guest code (nested run)', () => {
    const fn = k.defineNative('test_native_nested', (x) => k.call('bpf_fentry_test1', [x]) * 10n, 1);
    expect(k.call('bpfemu_call_fn6', [fn.address])).toBe(BigInt.asUintN(32, 0x11111111n + 1n) * 10n ^ 0x5a5a5a5a5a5a5a5an);
  });
});

describe('sections and faults', () => {
  it('.data is writable from guest code; rodata is not; the machine recovers', () => {
    const before = k.call('bpfemu_counter_inc');
    expect(k.call('bpfemu_counter_inc')).toBe(before + 1n);
    let err: unknown;
    try { k.call('bpfemu_poke_rodata'); } catch (e) { err = e; }
    expect(err).toBeInstanceOf(GuestFault);
    const f = err as GuestFault;
    expect(f.kind).toBe('write-prot');
    expect(f.address).toBe(k.addressOf('bpfemu_banner', 'symbol'));
    expect(f.symbol).toMatch(/^bpfemu_poke_rodata/);
    // Still usable; the store before the faulting one in the same block did happen.
    expect(k.call('bpf_fentry_test1', [1])).toBe(2n);
    expect(k.call('bpfemu_counter_inc')).toBe(before + 3n);
  });

  it('a call through a NULL function pointer is a fetch fault at 0', () => {
    expect(() => k.call('bpfemu_call_fn6', [0])).toThrow(/fetch access to unmapped memory at 0x0/);
    expect(k.call('bpf_fentry_test2', [2, 3])).toBe(5n);
  });
});
