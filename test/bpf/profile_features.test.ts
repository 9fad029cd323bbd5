/**
 * @fileoverview Bad input per kernel profile: each feature a later kernel added, used under every
 * profile, gives what that kernel gives — the load or attach refused with its errno and log line
 * where the feature is missing, accepted where it exists — and the machine is usable after,
 * with no fd, id, link, trampoline, page or kmalloc byte left behind.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { boot, type System } from '../../index.ts';
import { KERNEL_VERSIONS, atLeast, type KernelVersion } from '../../kernel/profile.ts';
import { BPF_OBJ_GET_INFO_BY_FD } from '../../bpf/syscall/attr.ts';
import { FENTRY, FEXIT, FMOD_RET, loadTracing, linkCreate, rawTpOpen, snapshot, expectUsable } from './profile_util.ts';

const EINVAL = -22, ENOTSUPP = -524;
const OK = 'ok';
type Expect = typeof OK | { errno: number; log?: string; at?: 'load' | 'attach' };

interface Row {
  name: string;
  fn: string;
  asm: string;
  eat: number;
  /** What the profile gives; the first version whose answer differs starts a new entry. */
  expect: (v: KernelVersion) => Expect;
  /** Attach as well (through RAW_TRACEPOINT_OPEN, or LINK_CREATE with a cookie). */
  attach?: 'raw_tp' | { cookie: bigint };
}

const ret0 = 'mov %r0, 0\nexit';
const from = (since: KernelVersion, before: Expect, after: Expect = OK) => (v: KernelVersion): Expect => (atLeast(v, since) ? after : before);
/** check_helper_call's answer for an id this generation has not got yet / has but not for tracing. */
const invalid = (id: number): Expect => ({ errno: EINVAL, log: `invalid func unknown#${id}` });
const unknown = (name: string, id: number): Expect => ({ errno: EINVAL, log: `unknown func bpf_${name}#${id}` });

const ROWS: Row[] = [
  { name: 'fmod_ret on bpf_modify_return_test', fn: 'bpf_modify_return_test', asm: ret0, eat: FMOD_RET,
    expect: from('5.7', { errno: EINVAL }), attach: 'raw_tp' },
  { name: 'fmod_ret on a function not on the error-injection list', fn: 'bpf_fentry_test1', asm: ret0, eat: FMOD_RET,
    expect: from('5.7', { errno: EINVAL }, { errno: EINVAL, log: 'bpf_fentry_test1() is not modifiable' }) },
  { name: 'fmod_ret reading its return slot', fn: 'bpf_modify_return_test', asm: 'ldxdw %r0, [%r1+16]\nexit', eat: FMOD_RET,
    expect: from('5.7', { errno: EINVAL }) },
  { name: 'fmod_ret reading past its return slot', fn: 'bpf_modify_return_test', asm: 'ldxdw %r0, [%r1+24]\nexit', eat: FMOD_RET,
    expect: from('5.7', { errno: EINVAL }, { errno: -13, log: "func 'bpf_modify_return_test' doesn't have 4-th argument" }) },
  { name: 'bpf_get_func_ip from fentry', fn: 'bpf_fentry_test1', asm: 'call 173\nmov %r0, 0\nexit', eat: FENTRY,
    expect: from('5.15', invalid(173)) },
  { name: 'bpf_get_func_arg_cnt from fexit', fn: 'bpf_fentry_test2', asm: 'call 185\nmov %r0, 0\nexit', eat: FEXIT,
    expect: from('5.19', invalid(185)) },
  { name: 'bpf_get_func_arg from fentry', fn: 'bpf_fentry_test2',
    asm: 'mov %r6, %r1\nstdw [%r10-8], 0\nmov %r3, %r10\nadd %r3, -8\nmov %r2, 0\nmov %r1, %r6\ncall 183\nmov %r0, 0\nexit', eat: FENTRY,
    expect: from('5.19', invalid(183)) },
  { name: 'bpf_get_attach_cookie from fentry', fn: 'bpf_fentry_test1', asm: 'call 174\nmov %r0, 0\nexit', eat: FENTRY,
    expect: (v) => (atLeast(v, '5.19') ? OK : atLeast(v, '5.15') ? unknown('get_attach_cookie', 174) : invalid(174)) },
  { name: 'bpf_get_func_ip from a non-GPL program', fn: 'bpf_fentry_test1', asm: 'call 173\nmov %r0, 0\nexit', eat: FENTRY,
    expect: from('5.15', invalid(173), { errno: EINVAL, log: 'cannot call GPL-restricted function from non-GPL compatible program' }) },
  { name: 'a struct argument by value (16 bytes)', fn: 'bpfemu_struct_by_value', asm: 'ldxdw %r0, [%r1+8]\nexit', eat: FENTRY,
    expect: from('6.1', { errno: EINVAL, log: 'The function bpfemu_struct_by_value arg0 type STRUCT is unsupported.' }) },
  { name: 'a struct argument of 24 bytes', fn: 'bpfemu_struct_too_big', asm: ret0, eat: FENTRY,
    expect: from('6.1', { errno: EINVAL, log: 'arg0 type STRUCT is unsupported.' },
      { errno: EINVAL, log: 'The function bpfemu_struct_too_big arg0 type STRUCT is unsupported.' }) },
  { name: '12 arguments', fn: 'bpfemu_sum12', asm: 'ldxdw %r0, [%r1+88]\nexit', eat: FENTRY,
    expect: from('5.19', { errno: EINVAL, log: 'The function bpfemu_sum12 has 12 arguments. Too many.' }) },
  { name: '13 arguments', fn: 'bpfemu_sum13', asm: ret0, eat: FENTRY,
    expect: () => ({ errno: EINVAL, log: 'The function bpfemu_sum13 has 13 arguments. Too many.' }) },
  { name: '7 arguments: loads, the trampoline takes them from 6.6', fn: 'bpf_modify_return_test2', asm: ret0, eat: FENTRY,
    expect: from('6.6', { errno: ENOTSUPP, at: 'attach' }), attach: 'raw_tp' },
  { name: 'LINK_CREATE with a tracing cookie', fn: 'bpf_fentry_test1', asm: ret0, eat: FENTRY,
    expect: from('5.19', { errno: EINVAL, at: 'attach' }), attach: { cookie: 0x10000000000000n } },
];

describe.each(KERNEL_VERSIONS.map((v) => [v]))('kernel %s', (v) => {
  let sys: System;
  beforeAll(async () => { sys = await boot({ kernel: v }); });
  afterAll(() => sys.close());

  it.each(ROWS.map((r) => [r.name, r] as const))('%s', (_n, row) => {
    const want = row.expect(v);
    const before = snapshot(sys);
    const license = row.name.includes('non-GPL') ? 'Dual BSD' : 'GPL';
    const r = loadTracing(sys, row.fn, row.asm, row.eat, license);
    if (want !== OK && want.at !== 'attach') {
      expect(r.fd, r.log).toBe(want.errno);
      if (want.log) expect(r.log).toContain(want.log);
    } else {
      expect(r.fd, r.log).toBeGreaterThan(0);
      if (row.attach) {
        const l = row.attach === 'raw_tp' ? rawTpOpen(sys, r.fd) : linkCreate(sys, r.fd, row.eat, row.attach.cookie);
        if (want === OK) {
          expect(l).toBeGreaterThan(0);
          expectUsable(sys); // a traced call through the trampoline
          expect(sys.kernel.current.files.close(l)).toBe(0);
        } else {
          expect(l).toBe(want.errno);
          expect(sys.bpfSys.progFromFd(r.fd)!.linked).toBe(false);
        }
      }
      sys.kernel.current.files.close(r.fd);
    }
    sys.bpfSys.trampolines!.reap(); // 5.12+: retired images go once nothing runs in them
    expect(snapshot(sys)).toEqual(before);
    expectUsable(sys);
  });

  it('bpf_prog_info: info_len and recursion_misses as this kernel has them', () => {
    const r = loadTracing(sys, 'bpf_fentry_test1', ret0, FENTRY);
    const b = sys.bpfSys, mem = sys.kernel.machine.mem;
    const buf = b.stage(new Uint8Array(256));
    const size = { '5.5': 208, '5.7': 208, '5.12': 216, '5.15': 216, '5.19': 224, '6.1': 232, '6.6': 232 }[v];
    const q = b.call(BPF_OBJ_GET_INFO_BY_FD, { bpf_fd: r.fd, info_len: 256, info: buf });
    expect(q.ret).toBe(0);
    expect(q.attr.info_len).toBe(size);
    // The counter lives in the prog stand-in; what info reports is what is there.
    const p = b.progFromFd(r.fd)!;
    mem.writeU64(p.progAddr + 16n, 3n);
    b.call(BPF_OBJ_GET_INFO_BY_FD, { bpf_fd: r.fd, info_len: 256, info: buf });
    expect(mem.readU64(buf + 208n)).toBe(size > 208 ? 3n : 0n);
    mem.writeU64(p.progAddr + 16n, 0n);
    b.unstage(buf);
    sys.kernel.current.files.close(r.fd);
  });
});
