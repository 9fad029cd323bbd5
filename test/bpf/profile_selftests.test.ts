/**
 * @fileoverview The kernel selftests of the features later kernels added to the BPF trampoline,
 * ported with their values and run under every profile that has the feature, on the JIT and the
 * interpreter: modify_return (5.7, + bpf_modify_return_test2 in 6.6), get_func_ip_test (5.15,
 * fentry/fexit/fmod_ret parts), get_func_args_test (5.17; the 5.19 profile), and bpf_cookie's
 * tracing part (5.19). The BPF objects are images/bpf/*.bpf.c; the programs attach through
 * BPF_RAW_TRACEPOINT_OPEN, or BPF_LINK_CREATE with tracing.cookie.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { boot, type System } from '../../index.ts';
import { KERNEL_VERSIONS, atLeast, type KernelVersion } from '../../kernel/profile.ts';
import { BPF_PROG_TEST_RUN } from '../../bpf/syscall/attr.ts';
import type { BpfObject } from '../../bpf/libbpf/load.ts';
import { FENTRY, FEXIT, FMOD_RET, linkCreate, openObject, rawTpOpen, readGlobals, writeGlobal32, writeGlobal, snapshot, expectUsable } from './profile_util.ts';

const EINVAL = 22;
const since = (v: KernelVersion): KernelVersion[] => KERNEL_VERSIONS.filter((k) => atLeast(k, v));
const LOWER = (x: number): number => (x & 0xffff) << 16 >> 16; // __s16
const UPPER = (x: number): number => x >>> 16;

/** Boots each profile once for a describe block; `engine` picks JIT or interpreter for loads. */
function machine(v: KernelVersion): () => System {
  let sys: System;
  beforeAll(async () => { sys = await boot({ kernel: v }); });
  afterAll(() => sys.close());
  return () => sys;
}

/** bpf_object__attach_skeleton's part: every fentry/fexit/fmod_ret program through libbpf's attach (the object's close detaches). */
function attachAll(_sys: System, o: BpfObject): number[] {
  expect(o.attachTracing().sort()).toEqual([...o.programs.keys()].sort());
  return [];
}

function testRun(sys: System, fd: number): { ret: number; retval: number } {
  const r = sys.bpfSys.call(BPF_PROG_TEST_RUN, { prog_fd: fd });
  return { ret: r.ret, retval: Number(r.attr.retval) };
}

describe.each(since('5.7').flatMap((v) => [[v, 'jit'], [v, 'interp']] as const))('modify_return (kernel %s, %s)', (v, engine) => {
  const sys = machine(v);
  const test2 = atLeast(v, '6.6');

  /** prog_tests/modify_return.c run_test(input_retval, want_side_effect, want_ret). */
  function runTest(inputRetval: number, wantSideEffect: number, wantRet: number): void {
    const s = sys();
    const before = snapshot(s);
    s.bpfSys.jitEnabled = engine === 'jit';
    const objs = [openObject(s, 'modify_return'), ...(test2 ? [openObject(s, 'modify_return2')] : [])];
    try {
      const links = objs.flatMap((o) => attachAll(s, o));
      objs.forEach((o) => writeGlobal32(s, o, 'input_retval', inputRetval));
      const r = testRun(s, objs[0]!.programs.get('fmod_ret_test')!.fd);
      expect(r.ret).toBe(0);
      expect(LOWER(r.retval)).toBe(wantRet);
      expect(UPPER(r.retval)).toBe(wantSideEffect);
      expect(readGlobals(s, objs[0]!, ['fentry_result', 'fexit_result', 'fmod_ret_result'])).toEqual([1n, 1n, 1n]);
      if (test2) expect(readGlobals(s, objs[1]!, ['fentry_result2', 'fexit_result2', 'fmod_ret_result2'])).toEqual([1n, 1n, 1n]);
      links.forEach((l) => s.kernel.current.files.close(l));
    } finally {
      objs.forEach((o) => o.close());
      s.bpfSys.jitEnabled = true;
    }
    s.bpfSys.trampolines!.reap();
    expect(snapshot(s)).toEqual(before);
    expectUsable(s);
  }

  it(`input_retval 0: the body runs (side effect ${test2 ? 2 : 1}), ret ${test2 ? 33 : 4}`, () => {
    runTest(0, test2 ? 2 : 1, test2 ? 33 : 4);
  });
  it('input_retval -EINVAL: the body is skipped, ret is -EINVAL (each function)', () => {
    runTest(-EINVAL, 0, test2 ? -EINVAL * 2 : -EINVAL);
  });
});

describe.each(since('5.15').flatMap((v) => [[v, 'jit'], [v, 'interp']] as const))('get_func_ip_test (kernel %s, %s)', (v, engine) => {
  const sys = machine(v);
  it('fentry, fexit and fmod_ret see the traced function\'s address', () => {
    const s = sys();
    s.bpfSys.jitEnabled = engine === 'jit';
    const o = openObject(s, 'get_func_ip_test');
    try {
      expect([...o.programs.values()].every((p) => s.bpfSys.progFromFd(p.fd)!.callGetFuncIp)).toBe(true);
      const links = attachAll(s, o);
      expect(testRun(s, o.programs.get('test1')!.fd).ret).toBe(0);
      // test5 returns ret (0): the bodies run; 6.6's test run adds bpf_modify_return_test2 (29, side effect 2).
      expect(testRun(s, o.programs.get('test5')!.fd)).toEqual({ ret: 0, retval: atLeast(v, '6.6') ? 0x20021 : 0x10004 });
      const addr = (f: string): bigint => s.kernel.addressOf(f);
      expect(readGlobals(s, o, ['test1_ip', 'test2_ip', 'test5_ip']))
        .toEqual([addr('bpf_fentry_test1'), addr('bpf_fentry_test2'), addr('bpf_modify_return_test')]);
      links.forEach((l) => s.kernel.current.files.close(l));
    } finally {
      o.close();
      s.bpfSys.jitEnabled = true;
    }
  });
});

describe.each(since('5.19').flatMap((v) => [[v, 'jit'], [v, 'interp']] as const))('get_func_args_test (kernel %s, %s)', (v, engine) => {
  const sys = machine(v);
  it('arg count, args, ret and the errors, from fentry, fexit and fmod_ret', () => {
    const s = sys();
    s.bpfSys.jitEnabled = engine === 'jit';
    const o = openObject(s, 'get_func_args_test');
    try {
      const links = attachAll(s, o);
      expect(testRun(s, o.programs.get('test1')!.fd)).toEqual({ ret: 0, retval: 0 });
      // fmod_ret returns 1234: the body is skipped (no side effect) and 1234 is the return. 6.6's
      // test run adds bpf_modify_return_test2 (not traced here: 29, side effect 1), as its selftest expects.
      expect(testRun(s, o.programs.get('fmod_ret_test')!.fd))
        .toEqual({ ret: 0, retval: atLeast(v, '6.6') ? (1 << 16) | (1234 + 29) : 1234 });
      expect(readGlobals(s, o, ['test1_result', 'test2_result', 'test3_result', 'test4_result'])).toEqual([1n, 1n, 1n, 1n]);
      links.forEach((l) => s.kernel.current.files.close(l));
    } finally {
      o.close();
      s.bpfSys.jitEnabled = true;
    }
  });
});

describe.each(since('5.19').flatMap((v) => [[v, 'jit'], [v, 'interp']] as const))('bpf_cookie tracing_subtest (kernel %s, %s)', (v, engine) => {
  const sys = machine(v);
  it('each program reads the cookie of the link that attached it', () => {
    const s = sys();
    s.bpfSys.jitEnabled = engine === 'jit';
    const o = openObject(s, 'test_bpf_cookie');
    try {
      writeGlobal32(s, o, 'my_tid', s.kernel.current.pid);
      writeGlobal(s, o, 'fentry_res', 0n);
      const fd = (n: string): number => o.programs.get(n)!.fd;
      const links = [
        linkCreate(s, fd('fentry_test1'), FENTRY, 0x10000000000000n),
        linkCreate(s, fd('fexit_test1'), FEXIT, 0x20000000000000n),
        linkCreate(s, fd('fmod_ret_test'), FMOD_RET, 0x30000000000000n),
      ];
      expect(links.every((l) => l > 0), `links ${links}`).toBe(true);
      testRun(s, fd('fentry_test1'));
      testRun(s, fd('fmod_ret_test'));
      expect(readGlobals(s, o, ['fentry_res', 'fexit_res', 'fmod_ret_res']))
        .toEqual([0x10000000000000n, 0x20000000000000n, 0x30000000000000n]);
      links.forEach((l) => s.kernel.current.files.close(l));
    } finally {
      o.close();
      s.bpfSys.jitEnabled = true;
    }
  });
});
