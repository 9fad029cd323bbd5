/**
 * @fileoverview Credentials (kernel/cred.ts, kernel/syscalls_cred.ts) and sysctls (kernel/sysctl.ts):
 * the setuid family with cap_task_fix_setuid's rules, capget/capset, the capability prctls, each
 * through the syscall table with the kernel's errnos; the sysctl writes per profile and what
 * the BPF ones switch.
 */
import { describe, it, expect, beforeAll, afterAll, afterEach } from 'vitest';
import { boot, type System } from '../../index.ts';
import { rootCred, type Cred } from '../../kernel/task.ts';
import {
  CAP_SYS_ADMIN, CAP_SETUID, CAP_BPF, CAP_SETPCAP, capFullSet, capLastCap, capRaised, PR_CAPBSET_READ, PR_CAPBSET_DROP,
  PR_SET_KEEPCAPS, PR_GET_KEEPCAPS, LINUX_CAPABILITY_VERSION_3, LINUX_CAPABILITY_VERSION_1,
} from '../../kernel/cred.ts';
import { __NR_CRED } from '../../kernel/syscalls_cred.ts';
import { Sysctls } from '../../kernel/sysctl.ts';
import { BPF_PROG_LOAD } from '../../bpf/syscall/attr.ts';
import { encode } from '../../bpf/isa/insn.ts';
import { mov64Imm, exit } from '../../bpf/isa/build.ts';

const EPERM = 1, ESRCH = 3, EACCES = 13, EINVAL = 22, ENOENT = 2;
const U = 0xffffffffn; // (uid_t)-1

let sys: System;
let saved: Cred;
beforeAll(async () => { sys = await boot({ kernel: '6.6' }); saved = sys.kernel.current.cred; });
afterAll(() => sys.close());
afterEach(() => { sys.kernel.current.cred = saved; });

const call = (nr: number, ...args: bigint[]): number => Number(BigInt.asIntN(64, sys.kernel.syscall(nr, args)));
const cred = (): Cred => sys.kernel.current.cred;
const ids = (): string => { const c = cred(); return `${c.uid}/${c.euid}/${c.suid}/${c.fsuid}`; };
const has = (set: bigint, cap: number): boolean => capRaised(set, cap);

describe('the setuid family (kernel/sys.c + cap_task_fix_setuid)', () => {
  it('root: setresuid to all non-zero clears permitted and effective; there is no way back', () => {
    expect(call(__NR_CRED.setresuid, 1000n, 1000n, 1000n)).toBe(0);
    expect(ids()).toBe('1000/1000/1000/1000');
    expect([cred().capPermitted, cred().capEffective, cred().capAmbient]).toEqual([0n, 0n, 0n]);
    expect(call(__NR_CRED.setuid, 0n)).toBe(-EPERM);
    expect(call(__NR_CRED.setresuid, 0n, U, U)).toBe(-EPERM);
    expect(ids()).toBe('1000/1000/1000/1000'); // a refused change changes nothing
  });

  it('a saved uid of 0 keeps permitted: euid 0 -> 1000 clears effective, back to 0 restores it', () => {
    expect(call(__NR_CRED.setresuid, 1000n, 1000n, 0n)).toBe(0);
    expect(cred().capEffective).toBe(0n);
    expect(has(cred().capPermitted, CAP_SYS_ADMIN)).toBe(true);
    expect(call(__NR_CRED.setresuid, U, 0n, U)).toBe(0); // an unprivileged task may take its saved uid
    expect(cred().capEffective).toBe(cred().capPermitted);
    expect(ids()).toBe('1000/0/0/0');
  });

  it('PR_SET_KEEPCAPS keeps permitted (not effective, not ambient) across the drop', () => {
    expect(call(__NR_CRED.prctl, BigInt(PR_SET_KEEPCAPS), 1n)).toBe(0);
    expect(call(__NR_CRED.prctl, BigInt(PR_GET_KEEPCAPS))).toBe(1);
    expect(call(__NR_CRED.setuid, 1000n)).toBe(0);
    expect(cred().capPermitted).toBe(saved.capPermitted);
    expect(cred().capEffective).toBe(0n);
    expect(call(__NR_CRED.prctl, BigInt(PR_SET_KEEPCAPS), 2n)).toBe(-EINVAL);
  });

  it('setuid without CAP_SETUID: only e/fs, and only to the real or saved uid', () => {
    sys.kernel.current.cred = { ...saved, uid: 1000, euid: 1000, suid: 2000, fsuid: 1000, capEffective: 0n, capPermitted: 0n };
    expect(call(__NR_CRED.setuid, 2000n)).toBe(0);
    expect(ids()).toBe('1000/2000/2000/2000');
    expect(call(__NR_CRED.setuid, 3000n)).toBe(-EPERM);
    expect(call(__NR_CRED.setuid, U)).toBe(-EINVAL);
  });

  it('setreuid: the saved uid follows a new effective one; setfsuid returns the old fsuid', () => {
    expect(call(__NR_CRED.setreuid, U, 500n)).toBe(0);
    expect(ids()).toBe('0/500/500/500');
    // euid 0 -> 500 cleared the effective set: no CAP_SETUID, so fsuid 7 is refused, quietly.
    expect(call(__NR_CRED.setfsuid, 7n)).toBe(500);
    expect(cred().fsuid).toBe(500);
  });

  it('setresgid / setgid / setgroups need CAP_SETGID for new ids; getresuid/getresgid write three ids', () => {
    expect(call(__NR_CRED.setresgid, 10n, 20n, 30n)).toBe(0);
    const buf = sys.bpfSys.stage(new Uint8Array(12));
    expect(call(__NR_CRED.getresgid, buf, buf + 4n, buf + 8n)).toBe(0);
    expect([0n, 4n, 8n].map((o) => sys.kernel.machine.mem.readU32(buf + o))).toEqual([10, 20, 30]);
    expect(call(__NR_CRED.getresuid, buf, 0x10n, buf)).toBe(-14); // an unmapped pointer: -EFAULT
    const groups = sys.bpfSys.stage(Uint8Array.of(9, 0, 0, 0, 3, 0, 0, 0));
    expect(call(__NR_CRED.setgroups, 2n, groups)).toBe(0);
    expect(cred().groups).toEqual([3, 9]);
    expect(call(__NR_CRED.getgroups, 0n, 0n)).toBe(2);
    expect(call(__NR_CRED.getgroups, 1n, buf)).toBe(-EINVAL);
    sys.kernel.current.cred = { ...cred(), capEffective: 0n };
    expect(call(__NR_CRED.setgid, 99n)).toBe(-EPERM);
    expect(call(__NR_CRED.setgid, 10n)).toBe(0); // the real gid
    expect(call(__NR_CRED.setgroups, 0n, 0n)).toBe(-EPERM);
  });
});

describe('capget / capset / the bounding set', () => {
  const hdr = (version: number, pid = 0): bigint => sys.bpfSys.stage(new Uint8Array([...u32(version), ...u32(pid)]));
  const u32 = (v: number): number[] => [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff];
  const data = (e: bigint, p: bigint, i = 0n): bigint => sys.bpfSys.stage(new Uint8Array([
    ...u32(Number(e & 0xffffffffn)), ...u32(Number(p & 0xffffffffn)), ...u32(Number(i & 0xffffffffn)),
    ...u32(Number(e >> 32n)), ...u32(Number(p >> 32n)), ...u32(Number(i >> 32n))]));

  it('capget reads the three sets; an unknown version is -EINVAL with version 3 written back', () => {
    const d = data(0n, 0n);
    expect(call(__NR_CRED.capget, hdr(LINUX_CAPABILITY_VERSION_3), d)).toBe(0);
    const mem = sys.kernel.machine.mem;
    expect(BigInt(mem.readU32(d)) | (BigInt(mem.readU32(d + 12n)) << 32n)).toBe(capFullSet(capLastCap('6.6')));
    const h = hdr(0x1234);
    expect(call(__NR_CRED.capget, h, d)).toBe(-EINVAL);
    expect(mem.readU32(h)).toBe(LINUX_CAPABILITY_VERSION_3);
    expect(call(__NR_CRED.capget, hdr(0x1234), 0n)).toBe(0); // NULL data: a version probe
    expect(call(__NR_CRED.capget, hdr(LINUX_CAPABILITY_VERSION_1, 4242), d)).toBe(-ESRCH);
  });

  it('capset: permitted only shrinks, effective within permitted, only the caller itself', () => {
    const full = saved.capPermitted, noAdmin = full & ~(1n << BigInt(CAP_SYS_ADMIN));
    expect(call(__NR_CRED.capset, hdr(LINUX_CAPABILITY_VERSION_3), data(noAdmin, noAdmin))).toBe(0);
    expect(call(__NR_CRED.capset, hdr(LINUX_CAPABILITY_VERSION_3), data(full, full))).toBe(-EPERM);
    expect(call(__NR_CRED.capset, hdr(LINUX_CAPABILITY_VERSION_3), data(noAdmin, noAdmin & ~1n))).toBe(-EPERM); // e not within p
    expect(call(__NR_CRED.capset, hdr(LINUX_CAPABILITY_VERSION_3, 4242), data(0n, 0n))).toBe(-EPERM);
    expect(has(cred().capEffective, CAP_SYS_ADMIN)).toBe(false);
  });

  it('PR_CAPBSET_DROP needs CAP_SETPCAP, and a dropped bit is gone for good', () => {
    expect(call(__NR_CRED.prctl, BigInt(PR_CAPBSET_READ), BigInt(CAP_SYS_ADMIN))).toBe(1);
    expect(call(__NR_CRED.prctl, BigInt(PR_CAPBSET_DROP), BigInt(CAP_SYS_ADMIN))).toBe(0);
    expect(call(__NR_CRED.prctl, BigInt(PR_CAPBSET_READ), BigInt(CAP_SYS_ADMIN))).toBe(0);
    expect(has(cred().capEffective, CAP_SYS_ADMIN)).toBe(true); // the bounding set limits exec only
    expect(call(__NR_CRED.prctl, BigInt(PR_CAPBSET_READ), 41n)).toBe(-EINVAL); // past CAP_LAST_CAP (40)
    sys.kernel.current.cred = { ...cred(), capEffective: cred().capEffective & ~(1n << BigInt(CAP_SETPCAP)) };
    expect(call(__NR_CRED.prctl, BigInt(PR_CAPBSET_DROP), BigInt(CAP_SETUID))).toBe(-EPERM);
  });

  it('5.5 has no CAP_BPF: reading it from the bounding set is -EINVAL; root\'s sets stop at 37', async () => {
    const s55 = await boot({ kernel: '5.5' });
    try {
      expect(Number(s55.kernel.syscall(__NR_CRED.prctl, [BigInt(PR_CAPBSET_READ), BigInt(CAP_BPF)]))).toBe(-EINVAL);
      expect(s55.kernel.current.cred.capEffective).toBe((1n << 38n) - 1n);
    } finally { s55.close(); }
  });
});

describe('sysctls (kernel/sysctl.ts)', () => {
  const root = rootCred(40);
  it('5.5: kernel.unprivileged_bpf_disabled only goes 0 -> 1', () => {
    const s = new Sysctls('5.5');
    expect(s.get('kernel.unprivileged_bpf_disabled')).toBe(0);
    expect(s.write('kernel.unprivileged_bpf_disabled', '0', root)).toBe(-EINVAL);
    expect(s.write('kernel.unprivileged_bpf_disabled', '2', root)).toBe(-EINVAL);
    expect(s.write('kernel.unprivileged_bpf_disabled', '1\n', root)).toBe(0);
    expect(s.write('kernel.unprivileged_bpf_disabled', '0', root)).toBe(-EINVAL);
    expect(s.get('kernel.unprivileged_bpf_disabled')).toBe(1);
    // No capability check in proc_dointvec_minmax: a uid-0 writer without CAP_SYS_ADMIN may.
    expect(new Sysctls('5.5').write('kernel.unprivileged_bpf_disabled', '1', { ...root, capEffective: 0n })).toBe(0);
  });

  it('6.6: 0/1/2, default 2, CAP_SYS_ADMIN to write, 1 is locked', () => {
    const s = new Sysctls('6.6');
    expect(s.get('kernel.unprivileged_bpf_disabled')).toBe(2);
    expect(s.write('kernel.unprivileged_bpf_disabled', '0', { ...root, capEffective: 0n })).toBe(-EPERM);
    expect(s.write('kernel.unprivileged_bpf_disabled', '0', { ...root, fsuid: 1000 })).toBe(-EACCES);
    expect(s.write('kernel.unprivileged_bpf_disabled', '3', root)).toBe(-EINVAL);
    expect(s.write('kernel.unprivileged_bpf_disabled', 'two', root)).toBe(-EINVAL);
    expect(s.write('kernel.unprivileged_bpf_disabled', '0', root)).toBe(0);
    expect(s.write('kernel.unprivileged_bpf_disabled', '1', root)).toBe(0);
    expect(s.write('kernel.unprivileged_bpf_disabled', '2', root)).toBe(-EPERM);
    expect(s.write('kernel.unprivileged_bpf_disabled', '0', root)).toBe(-EPERM);
    expect(s.write('kernel.unprivileged_bpf_disabled', '1', root)).toBe(0);
    expect(s.write('kernel.nope', '1', root)).toBe(-ENOENT);
  });

  it('boot: --sysctl values are applied, a refused one fails the boot', async () => {
    await expect(boot({ kernel: '6.6', sysctl: { 'kernel.unprivileged_bpf_disabled': '7' } })).rejects.toThrow(/EINVAL: out of range 0\.\.2 in 6\.6/);
    const s = await boot({ kernel: '6.6', sysctl: { 'kernel.bpf_stats_enabled': '1', 'net.core.bpf_jit_enable': '0' } });
    try {
      expect(s.bpfSys.statsEnabled).toBe(true); // the static key in __bpf_prog_enter/exit is on
      expect(s.bpfSys.jitEnabled).toBe(false);
      const b = s.bpfSys;
      const fd = b.call(BPF_PROG_LOAD, { prog_type: 1, insn_cnt: 2, insns: b.stage(encode([mov64Imm(0, 0), exit()])), license: b.stage(Buffer.from('GPL\0')) }).ret;
      expect(b.progFromFd(fd)!.prog.jit).toBeUndefined(); // interpreted
      expect(s.kernel.sysctl.write('net.core.bpf_jit_enable', '1', s.kernel.current.cred)).toBe(0);
      expect(b.jitEnabled).toBe(true);
      expect(s.kernel.sysctl.write('kernel.bpf_stats_enabled', '0', s.kernel.current.cred)).toBe(0);
      expect(b.statsEnabled).toBe(false);
    } finally { s.close(); }
  });
});
