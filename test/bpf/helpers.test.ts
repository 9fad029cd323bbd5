/**
 * @fileoverview BPF helpers called from assembled programs on both engines: map access through
 * the map's kaddr (ld_imm64 of a map fd), probe reads of kernel memory with and without faults,
 * the current task's ids and comm, time, random numbers, and bpf_trace_printk's v5.5 format rules
 * with the lines it leaves in the trace pipe.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { boot, type System } from '../../index.ts';
import { assemble } from '../../bpf/asm/assembler.ts';
import { dumpXlated } from '../../bpf/asm/disassembler.ts';
import { BPF_PSEUDO_MAP_FD } from '../../bpf/isa/opcodes.ts';
import type { Insn } from '../../bpf/isa/insn.ts';
import type { BpfProg, Engine } from '../../bpf/prog.ts';
import {
  BpfMap, BPF_ANY, BPF_MAP_TYPE_ARRAY, BPF_MAP_TYPE_HASH, BPF_MAP_TYPE_PERCPU_ARRAY, EEXIST, EFAULT, EINVAL, ENOENT,
  type MapAttr,
} from '../../bpf/maps/map.ts';
import { createMap, freeMap } from '../../bpf/maps/types.ts';
import { BPF_FUNC, BPF_FUNC_NAMES, bpfFuncName, bpfHelpers, type HelperEnv } from '../../bpf/helpers/index.ts';
import { prandomU32State, prandomWarmup, prandomSeedState, type PrandomState } from '../../bpf/helpers/prandom.ts';
import { hashedPointer } from '../../bpf/helpers/printk.ts';

const NR_CPUS = 2;
const ENGINES: Engine[] = ['interp', 'jit'];
let sys: System;
let env: HelperEnv;
const byAddr = new Map<bigint, BpfMap>();
const byFd = new Map<number, BpfMap>();
let nextFd = 3;
const loaded: BpfProg[] = [];

beforeAll(async () => {
  sys = await boot();
  env = { kernel: sys.kernel, mapByAddr: (a) => byAddr.get(a), nrCpus: NR_CPUS };
});
afterAll(() => {
  for (const p of loaded) sys.bpf.free(p);
  for (const m of byFd.values()) freeMap(m);
  sys.close();
});

const mem = () => sys.kernel.machine.mem;
const s64 = (v: bigint): bigint => BigInt.asIntN(64, v);

/** A map and the fd programs name it by. */
function newMap(attr: Partial<MapAttr> & { mapType: number }): { map: BpfMap; fd: number } {
  const m = createMap({ keySize: 4, valueSize: 8, maxEntries: 4, mapFlags: 0, name: 'm', ...attr }, { kernel: sys.kernel, nrCpus: NR_CPUS });
  if (typeof m === 'number') throw new Error(`createMap: ${m}`);
  const fd = nextFd++;
  byAddr.set(m.kaddr, m);
  byFd.set(fd, m);
  return { map: m, fd };
}

/**
 * Assembles and loads a program; every `lddw %r1, <fd>` of a known map fd becomes a
 * BPF_PSEUDO_MAP_FD load, which the loader resolves to the map's kaddr.
 */
function load(text: string): BpfProg {
  const insns: Insn[] = assemble(text);
  for (const i of insns) if (i.code === 0x18 && i.dst === 1 && i.src === 0 && byFd.has(i.imm)) i.src = BPF_PSEUDO_MAP_FD;
  const prog = sys.bpf.load(insns, {
    helpers: bpfHelpers(env),
    resolveLdImm64: (insn) => (insn.src === BPF_PSEUDO_MAP_FD ? byFd.get(insn.imm)?.kaddr ?? -9 /* EBADF */ : -EINVAL),
  });
  loaded.push(prog);
  return prog;
}
const run = (prog: BpfProg, engine: Engine, ctx = 0n): bigint => sys.bpf.run(prog, [ctx], engine).r0;
const buffer = (size: number): bigint => sys.kernel.slab.kzalloc(size)!;
const hex = (v: bigint) => `0x${v.toString(16)}`;

describe('helper table', () => {
  it('has the kernel\'s ids, names and argument counts', () => {
    const defs = bpfHelpers(env);
    expect(defs.map((d) => [d.id, d.name, d.argc])).toEqual([
      [1, 'bpf_map_lookup_elem', 2], [2, 'bpf_map_update_elem', 4], [3, 'bpf_map_delete_elem', 2],
      [4, 'bpf_probe_read', 3], [5, 'bpf_ktime_get_ns', 0], [6, 'bpf_trace_printk', 5], [7, 'bpf_get_prandom_u32', 0],
      [8, 'bpf_get_smp_processor_id', 0], [14, 'bpf_get_current_pid_tgid', 0], [15, 'bpf_get_current_uid_gid', 0],
      [16, 'bpf_get_current_comm', 2], [45, 'bpf_probe_read_str', 3], [112, 'bpf_probe_read_user', 3],
      [113, 'bpf_probe_read_kernel', 3], [114, 'bpf_probe_read_user_str', 3], [115, 'bpf_probe_read_kernel_str', 3],
    ]);
    expect(bpfHelpers(env)).toBe(defs); // one set per environment
    expect(BPF_FUNC_NAMES).toHaveLength(116);
    expect([BPF_FUNC.tail_call, BPF_FUNC.get_current_task, BPF_FUNC.spin_lock, BPF_FUNC.skb_output]).toEqual([12, 35, 93, 111]);
    expect(bpfFuncName(116)).toBeUndefined();
  });

  it('names calls in `prog dump xlated` text', () => {
    const lines = dumpXlated(assemble('call 1\ncall 113\ncall 200\nexit'), { helperName: bpfFuncName });
    expect(lines.slice(0, 3)).toEqual(['0: (85) call bpf_map_lookup_elem#1', '1: (85) call bpf_probe_read_kernel#113', '2: (85) call unknown#200']);
  });
});

describe.each(ENGINES)('map helpers (%s)', (engine) => {
  it('a counter: map_lookup_elem then an atomic add on the value', () => {
    const { map, fd } = newMap({ mapType: BPF_MAP_TYPE_ARRAY, maxEntries: 1 });
    const prog = load(`
      stw [%r10-4], 0
      lddw %r1, ${fd}
      mov %r2, %r10
      add %r2, -4
      call 1
      jeq %r0, 0, miss
      mov %r1, 1
      lock add [%r0+0], %r1
      ldxdw %r0, [%r0+0]
      exit
    miss:
      mov %r0, -1
      exit`);
    expect([1, 2, 3].map(() => run(prog, engine))).toEqual([1n, 2n, 3n]);
    expect(map.impl.lookupSyscall(Uint8Array.of(0, 0, 0, 0))).toEqual(Uint8Array.of(3, 0, 0, 0, 0, 0, 0, 0));
    // The value is where lookup pointed: the program wrote guest memory the map owns.
    expect(mem().readU64(map.impl.lookupElem(new Uint8Array(4))!)).toBe(3n);
  });

  it('lookup of a missing key returns NULL', () => {
    const { fd } = newMap({ mapType: BPF_MAP_TYPE_HASH });
    const prog = load(`
      stw [%r10-4], 77
      lddw %r1, ${fd}
      mov %r2, %r10
      add %r2, -4
      call 1
      exit`);
    expect(run(prog, engine)).toBe(0n);
  });

  it('map_update_elem and map_delete_elem from a program, errnos in R0', () => {
    const { map, fd } = newMap({ mapType: BPF_MAP_TYPE_HASH });
    const update = load(`
      stw [%r10-4], 7
      stdw [%r10-16], 42
      lddw %r1, ${fd}
      mov %r2, %r10
      add %r2, -4
      mov %r3, %r10
      add %r3, -16
      mov %r4, 1
      call 2
      exit`); // BPF_NOEXIST
    const del = load(`
      stw [%r10-4], 7
      lddw %r1, ${fd}
      mov %r2, %r10
      add %r2, -4
      call 3
      exit`);
    expect(s64(run(update, engine))).toBe(0n);
    expect(map.impl.lookupSyscall(Uint8Array.of(7, 0, 0, 0))).toEqual(Uint8Array.of(42, 0, 0, 0, 0, 0, 0, 0));
    expect(s64(run(update, engine))).toBe(BigInt(-EEXIST));
    expect(s64(run(del, engine))).toBe(0n);
    expect(s64(run(del, engine))).toBe(BigInt(-ENOENT));
    expect(map.impl.lookupSyscall(Uint8Array.of(7, 0, 0, 0))).toBe(-ENOENT);
  });

  it('map_update_elem with unknown flags is -EINVAL', () => {
    const { fd } = newMap({ mapType: BPF_MAP_TYPE_ARRAY });
    const prog = load(`
      stw [%r10-4], 0
      stdw [%r10-16], 1
      lddw %r1, ${fd}
      mov %r2, %r10
      add %r2, -4
      mov %r3, %r10
      add %r3, -16
      lddw %r4, 0x100000000
      call 2
      exit`);
    expect(s64(run(prog, engine))).toBe(BigInt(-EINVAL));
  });

  it('per-CPU array: programs update and read CPU 0\'s copy', () => {
    const { map, fd } = newMap({ mapType: BPF_MAP_TYPE_PERCPU_ARRAY, valueSize: 4, maxEntries: 2 });
    expect(map.impl.updateElem(Uint8Array.of(1, 0, 0, 0), Uint8Array.from({ length: 16 }, (_, i) => i + 1), BPF_ANY, true)).toBe(0);
    const prog = load(`
      stw [%r10-4], 1
      lddw %r1, ${fd}
      mov %r2, %r10
      add %r2, -4
      call 1
      jeq %r0, 0, out
      ldxw %r6, [%r0+0]
      stw [%r10-8], 0x55
      lddw %r1, ${fd}
      mov %r2, %r10
      add %r2, -4
      mov %r3, %r10
      add %r3, -8
      mov %r4, 0
      call 2
      mov %r0, %r6
    out:
      exit`);
    expect(run(prog, engine)).toBe(0x04030201n);
    // CPU 0's first 4 bytes replaced; the rest of its slot and CPU 1 untouched.
    expect([...(map.impl.lookupSyscall(Uint8Array.of(1, 0, 0, 0)) as Uint8Array)])
      .toEqual([0x55, 0, 0, 0, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]);
  });

  it('a map helper given something that is not a map stops the program', () => {
    const prog = load(`
      lddw %r1, 0x1234
      mov %r2, %r10
      add %r2, -8
      call 1
      exit`);
    expect(() => run(prog, engine)).toThrow(/bpf_map_lookup_elem: R1 0x1234 is not a map/);
  });
});

describe.each(ENGINES)('probe reads (%s)', (engine) => {
  /** probe(dst = ctx, size, src) with helper `id`; R0 is the result. */
  const prober = (id: number, size: number, src: bigint) => load(`
      mov %r2, ${size}
      lddw %r3, ${hex(src)}
      call ${id}
      exit`);
  const banner = () => sys.kernel.addressOf('bpfemu_banner', 'symbol');
  const bannerText = () => mem().readCString(banner(), 128);
  const UNMAPPED = 0xffffdead00000000n;

  it.each([BPF_FUNC.probe_read_kernel, BPF_FUNC.probe_read])('helper %i copies a kernel global', (id) => {
    const dst = buffer(32);
    expect(run(prober(id, 24, banner()), engine, dst)).toBe(0n);
    expect(Buffer.from(mem().read(dst, 24)).toString('latin1')).toBe(bannerText().slice(0, 24));
    expect(bannerText()).toMatch(/^bpfemu kernel image/);
  });

  it.each([
    { descr: 'unmapped', src: UNMAPPED },
    { descr: 'NULL', src: 0n },
    { descr: 'running off the end of a mapping', src: 0xffff888000100000n + 0x4000n - 8n }, // init stack end
  ])('probe_read_kernel of $descr: -EFAULT and dst zeroed', ({ src }) => {
    const dst = buffer(32);
    mem().write(dst, new Uint8Array(32).fill(0xee));
    expect(s64(run(prober(BPF_FUNC.probe_read_kernel, 16, src), engine, dst))).toBe(BigInt(-EFAULT));
    expect([...mem().read(dst, 32)]).toEqual([...new Array(16).fill(0), ...new Array(16).fill(0xee)]);
  });

  it('probe_read_kernel_str: up to size - 1 bytes and a NUL, the length with the NUL', () => {
    const dst = buffer(128);
    mem().write(dst, new Uint8Array(128).fill(0xee));
    expect(run(prober(BPF_FUNC.probe_read_kernel_str, 8, banner()), engine, dst)).toBe(8n);
    expect([...mem().read(dst, 9)]).toEqual([...Buffer.from(bannerText().slice(0, 7), 'latin1'), 0, 0xee]);
    const len = bannerText().length;
    expect(run(prober(BPF_FUNC.probe_read_kernel_str, 128, banner()), engine, dst)).toBe(BigInt(len + 1));
    expect(mem().readCString(dst, 128)).toBe(bannerText());
    expect(mem().readU8(dst + BigInt(len + 1))).toBe(0xee); // the rest of dst is left alone
  });

  it('probe_read_kernel_str of an unmapped address: -EFAULT and dst zeroed', () => {
    const dst = buffer(16);
    mem().write(dst, new Uint8Array(16).fill(0xee));
    expect(s64(run(prober(BPF_FUNC.probe_read_kernel_str, 16, UNMAPPED), engine, dst))).toBe(BigInt(-EFAULT));
    expect(mem().read(dst, 16).every((b) => b === 0)).toBe(true);
  });

  it('probe_read_user of a kernel address is -EFAULT', () => {
    const dst = buffer(16);
    expect(s64(run(prober(BPF_FUNC.probe_read_user, 8, banner()), engine, dst))).toBe(BigInt(-EFAULT));
    expect(s64(run(prober(BPF_FUNC.probe_read_user_str, 8, banner()), engine, dst))).toBe(BigInt(-EFAULT));
  });
});

describe.each(ENGINES)('current task, time and CPU (%s)', (engine) => {
  it('get_current_comm: NUL-padded, truncated to size - 1', () => {
    const prog = (size: number) => load(`
      mov %r2, ${size}
      call 16
      exit`);
    const dst = buffer(16);
    mem().write(dst, new Uint8Array(16).fill(0xee));
    expect(run(prog(16), engine, dst)).toBe(0n);
    expect([...mem().read(dst, 16)]).toEqual([...Buffer.from('init'), ...new Array(12).fill(0)]);
    mem().write(dst, new Uint8Array(16).fill(0xee));
    expect(run(prog(3), engine, dst)).toBe(0n);
    expect([...mem().read(dst, 4)]).toEqual([0x69, 0x6e, 0, 0xee]);
  });

  it('get_current_pid_tgid and get_current_uid_gid pack two u32s', () => {
    const cur = sys.kernel.current;
    const saved = { pid: cur.pid, tgid: cur.tgid, uid: cur.cred.uid, gid: cur.cred.gid };
    Object.assign(cur, { pid: 4242, tgid: 4240 });
    Object.assign(cur.cred, { uid: 1000, gid: 100 });
    try {
      expect(run(load('call 14\nexit'), engine)).toBe((4240n << 32n) | 4242n);
      expect(run(load('call 15\nexit'), engine)).toBe((100n << 32n) | 1000n);
    } finally {
      Object.assign(cur, { pid: saved.pid, tgid: saved.tgid });
      Object.assign(cur.cred, { uid: saved.uid, gid: saved.gid });
    }
    expect(run(load('call 14\nexit'), engine)).toBe((1n << 32n) | 1n); // init
  });

  it('ktime_get_ns is monotonic within and across runs', () => {
    const prog = load(`
      mov %r6, %r1
      call 5
      stxdw [%r6+0], %r0
      call 5
      stxdw [%r6+8], %r0
      exit`);
    const ctx = buffer(16);
    run(prog, engine, ctx);
    const [a, b] = [mem().readU64(ctx), mem().readU64(ctx + 8n)];
    run(prog, engine, ctx);
    const c = mem().readU64(ctx);
    expect(a).toBeGreaterThanOrEqual(1_000_000_000n); // virtual time starts at 1 s
    expect(b).toBeGreaterThan(a);
    expect(c).toBeGreaterThan(b);
  });

  it('get_smp_processor_id is 0; get_prandom_u32 gives 32-bit values that change', () => {
    expect(run(load('call 8\nexit'), engine)).toBe(0n);
    const prog = load('call 7\nexit');
    const xs = [0, 1, 2, 3].map(() => run(prog, engine));
    expect(new Set(xs).size).toBe(4);
    for (const x of xs) expect(x >> 32n).toBe(0n);
  });
});

describe('bpf_get_prandom_u32', () => {
  it('is the kernel\'s LFSR113 (lib/random32.c self-test vectors)', () => {
    // prandom_seed_very_weak(): an LCG spreads the seed over the four components.
    const weak = (seed: number): PrandomState => {
      const lcg = (x: number) => Math.imul(x, 69069) >>> 0;
      const sd = (x: number, m: number) => (x < m ? x + m : x) >>> 0;
      const s1 = sd(lcg(seed), 2), s2 = sd(lcg(s1), 8), s3 = sd(lcg(s2), 16), s4 = sd(lcg(s3), 128);
      return prandomWarmup({ s1, s2, s3, s4 });
    };
    expect([1, 2, 3, 4].map((s) => prandomU32State(weak(s)))).toEqual([3484351685, 2623130059, 3125133893, 984847254]);
    // test2: taus113 from GSL after `iteration` draws.
    for (const [seed, n, want] of [[931557656, 959, 2975593782], [1339693295, 876, 3887776532], [407983964, 921, 728767059]] as const) {
      const st = weak(seed);
      for (let i = 0; i < n - 1; i++) prandomU32State(st);
      expect(prandomU32State(st)).toBe(want);
    }
  });

  it('is reproducible: the same seed gives the same sequence on both engines', () => {
    const seeded: HelperEnv = { kernel: sys.kernel, mapByAddr: () => undefined, nrCpus: 1, prandomSeed: 1234n };
    const prog = sys.bpf.load(assemble('call 7\nexit'), { helpers: bpfHelpers(seeded) });
    loaded.push(prog);
    const ref = prandomSeedState(1234n);
    const want = [0, 1, 2, 3].map(() => BigInt(prandomU32State(ref)));
    expect([run(prog, 'interp'), run(prog, 'jit'), run(prog, 'interp'), run(prog, 'jit')]).toEqual(want);
  });
});

describe.each(ENGINES)('bpf_trace_printk (%s)', (engine) => {
  // ctx: fmt pointer, fmt_size, arg1..arg3
  let prog: BpfProg | undefined;
  const printk = () => prog ??= load(`
      ldxdw %r2, [%r1+8]
      ldxdw %r3, [%r1+16]
      ldxdw %r4, [%r1+24]
      ldxdw %r5, [%r1+32]
      ldxdw %r1, [%r1+0]
      call 6
      exit`);
  const longStr = 'x'.repeat(70);
  let strAddr = 0n;
  /** Formats `fmt` (bytes as given: add the NUL yourself) with up to 3 args; R0 and the trace lines. */
  const call = (fmt: string | Uint8Array, args: bigint[] = []) => {
    const bytes = typeof fmt === 'string' ? Buffer.from(fmt, 'latin1') : fmt;
    const f = buffer(Math.max(bytes.length, 1));
    mem().write(f, bytes);
    const ctx = buffer(40);
    [f, BigInt(bytes.length), ...args].forEach((v, i) => mem().writeU64(ctx + BigInt(8 * i), BigInt.asUintN(64, v)));
    sys.kernel.trace.read();
    const r0 = s64(run(printk(), engine, ctx));
    return { r0, lines: sys.kernel.trace.read() };
  };
  const BAN = () => sys.kernel.addressOf('bpfemu_banner', 'symbol');

  it('writes a trace_pipe line with the task, CPU and time', () => {
    const { r0, lines } = call('hello %d\n\0', [42n]);
    expect(r0).toBe(9n);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^ {10}init-1 \[000\] d\.\.31 +\d+\.\d{6}: bpf_trace_printk: hello 42$/);
  });

  it.each([
    { descr: 'plain text', fmt: 'abc\0', args: [], text: 'abc' },
    { descr: 'whitespace (tab) is allowed', fmt: 'a\tb\0', args: [], text: 'a\tb' },
    { descr: '%d %u %x take 32 bits', fmt: '%d %u %x\0', args: [-1n, -1n, 0x1234567890n], text: '-1 4294967295 34567890' },
    { descr: '%i of a value above 32 bits', fmt: '%i\0', args: [0x100000005n], text: '5' },
    { descr: '%ld %lu %lx take 64 bits', fmt: '%ld %lu %lx\0', args: [-2n, -1n, 0x1234567890n], text: '-2 18446744073709551615 1234567890' },
    { descr: '%lld %llu %llx', fmt: '%lld %llu %llx\0', args: [-3n, 1n << 40n, 255n], text: '-3 1099511627776 ff' },
    { descr: '%li', fmt: '%li!\0', args: [-(1n << 40n)], text: '-1099511627776!' },
    { descr: '%p of NULL', fmt: '%p\0', args: [0n], text: '0000000000000000' },
    { descr: '%p of an error pointer', fmt: '%p.\0', args: [-22n], text: 'ffffffffffffffea.' },
    { descr: 'an empty format', fmt: '\0', args: [], text: '' },
  ])('$descr', ({ fmt, args, text }) => {
    const { r0, lines } = call(fmt, args);
    expect(lines.map((l) => l.split(': bpf_trace_printk: ')[1])).toEqual([text]);
    expect(r0).toBe(BigInt(Buffer.byteLength(text)));
  });

  it('%p prints a hashed pointer, not the address', () => {
    const p = BAN();
    const { lines } = call('%p\0', [p]);
    const shown = lines[0]!.split(': bpf_trace_printk: ')[1]!;
    expect(shown).toMatch(/^00000000[0-9a-f]{8}$/);
    expect(shown).toBe(hashedPointer(p));
    expect(shown).not.toBe(p.toString(16));
  });

  it('%s reads a kernel string: at most 63 bytes, nothing on a fault', () => {
    strAddr ||= buffer(80);
    mem().write(strAddr, Buffer.from(`${longStr}\0`));
    const banner = mem().readCString(BAN(), 128);
    expect(call('<%s>\0', [BAN()]).lines[0]).toMatch(new RegExp(`: <${banner.replace(/[()]/g, '\\$&')}>$`));
    expect(call('%s\0', [strAddr]).lines[0]!.endsWith(`: ${'x'.repeat(63)}`)).toBe(true);
    expect(call('[%s] %d\0', [0xffffdead00000000n, 5n]).lines[0]!.endsWith(': [] 5')).toBe(true);
  });

  it('three conversions are fine', () => {
    expect(call('%d %s %lx\0', [1n, BAN(), 255n]).lines[0]).toMatch(/: 1 bpfemu kernel image.* ff$/);
  });

  it.each([
    { descr: 'four conversions', fmt: '%d %d %d %d\0' },
    { descr: '%c', fmt: '%c\0' },
    { descr: '%%', fmt: '100%%\0' },
    { descr: 'a width', fmt: '%5d\0' },
    { descr: 'a flag', fmt: '%-d\0' },
    { descr: '%pK (not in v5.5)', fmt: '%pK\0' },
    { descr: '%px', fmt: '%px\0' },
    { descr: '%pS', fmt: '%pS\0' },
    { descr: '%pks (added in 5.7)', fmt: '%pks\0' },
    { descr: 'two %s', fmt: '%s %s\0' },
    { descr: '%s followed by a letter', fmt: '%sx\0' },
    { descr: '%lp', fmt: '%lp\0' },
    { descr: '%ls', fmt: '%ls\0' },
    { descr: '%lllx', fmt: '%lllx\0' },
    { descr: '%z', fmt: '%zu\0' },
    { descr: 'a lone % at the end', fmt: 'abc%\0' },
    { descr: 'no NUL at fmt[fmt_size - 1]', fmt: 'abc' },
    { descr: 'a NUL inside', fmt: 'a\0b\0' },
    { descr: 'a control character', fmt: 'a\x01b\0' },
    { descr: 'a non-ASCII byte', fmt: 'caf\xe9\0' },
    { descr: 'fmt_size 0', fmt: '' },
  ])('-EINVAL for $descr, and no line', ({ fmt }) => {
    const { r0, lines } = call(fmt, [1n, 2n, 3n]);
    expect(r0).toBe(BigInt(-EINVAL));
    expect(lines).toEqual([]);
  });
});
