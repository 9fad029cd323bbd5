/**
 * @fileoverview Who may call bpf(), per kernel profile (bpf/syscall/privilege.ts, kernel/cred.ts,
 * kernel/sysctl.ts):
 *
 *  (a) The table: profiles × kernel.unprivileged_bpf_disabled × credentials × commands, each cell
 *      the kernel's answer with its source, written here from the kernel sources (not from the
 *      model's table). Every refused call leaves the counts of maps, programs, links, BTF objects
 *      and fds as they were.
 *  (b) images/user/priv_drop (a gcc-built program that starts as root and drops to uid 1000 with
 *      setresuid): under 6.6 it prints what the host's kernel printed (the fixture of
 *      scripts/record-host-priv.ts), under 5.5 with the sysctl at 0 and 1 it differs from the host
 *      only in the listed lines, each with its reason. The `bset` run: a capability dropped from
 *      the bounding and permitted sets does not come back with setuid(0).
 *  (c) The verifier refuses pointer leaks for unprivileged loaders; audit records carry the acting
 *      task's credentials.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import { boot, type System } from '../../index.ts';
import type { Cred } from '../../kernel/task.ts';
import { KERNEL_VERSIONS, type KernelVersion } from '../../kernel/profile.ts';
import { capFullSet, capLastCap, CAP_BPF, CAP_NET_ADMIN, CAP_PERFMON } from '../../kernel/cred.ts';
import {
  BPF_MAP_CREATE, BPF_PROG_LOAD, BPF_MAP_LOOKUP_ELEM, BPF_MAP_GET_NEXT_ID, BPF_MAP_GET_FD_BY_ID, BPF_OBJ_GET_INFO_BY_FD,
  BPF_PROG_TEST_RUN, BPF_BTF_LOAD, BPF_MAP_FREEZE, BPF_ENABLE_STATS,
} from '../../bpf/syscall/attr.ts';
import { encode } from '../../bpf/isa/insn.ts';
import { mov64Imm, mov64Reg, alu64Imm, stMem, stxMem, ldImm64, callHelper, jmpImm, exit } from '../../bpf/isa/build.ts';
import { BPF_ADD, BPF_JEQ, BPF_W, BPF_DW, BPF_PSEUDO_MAP_FD } from '../../bpf/isa/opcodes.ts';
import type { Insn } from '../../bpf/isa/insn.ts';
import { userProgram } from './user_programs.ts';
import { PRIV_FIXTURE, type PrivFixture } from '../../scripts/record-host-priv.ts';

const EPERM = 1, E2BIG = 7, EACCES = 13, EINVAL = 22;

// --- credentials ---------------------------------------------------------------------------------

const CREDS = ['root', 'user', 'bpf', 'bpf+net', 'bpf+perfmon'] as const;
type CredName = (typeof CREDS)[number];
const bit = (c: number): bigint => 1n << BigInt(c);
/** The effective (and permitted) set of each column; capabilities a profile lacks (CAP_BPF in 5.5) drop out. */
const CAPS: Record<CredName, (full: bigint) => bigint> = {
  root: (full) => full, user: () => 0n, bpf: () => bit(CAP_BPF),
  'bpf+net': () => bit(CAP_BPF) | bit(CAP_NET_ADMIN), 'bpf+perfmon': () => bit(CAP_BPF) | bit(CAP_PERFMON),
};
function credOf(name: CredName, v: KernelVersion): Cred {
  const full = capFullSet(capLastCap(v)), caps = CAPS[name](full) & full, id = name === 'root' ? 0 : 1000;
  return {
    uid: id, euid: id, suid: id, fsuid: id, gid: id, egid: id, sgid: id, fsgid: id, groups: [],
    capEffective: caps, capPermitted: caps, capInheritable: 0n, capBset: full, capAmbient: 0n, securebits: 0,
  };
}

// --- the table ----------------------------------------------------------------------------------

/**
 * Generations: A = 5.5, 5.7 (CAP_SYS_ADMIN everywhere); B = 5.12 … 6.1 (CAP_BPF split, entry
 * check with bpf_capable()); C = 6.6 (the sysctl only in map_create / bpf_prog_load).
 */
const gen = (v: KernelVersion): 'A' | 'B' | 'C' => (v === '5.5' || v === '5.7' ? 'A' : v === '6.6' ? 'C' : 'B');

/**
 * One row per command; per generation two strings of one code per credential column (root, user,
 * bpf, bpf+net, bpf+perfmon): with the sysctl 0, and with it non-zero. Codes: '.' succeeds, 'P'
 * -EPERM, 'B' -E2BIG, 'I' -EINVAL, 'h' succeeds with the images hidden (jited/xlated_prog_len 0),
 * 'X' the kernel succeeds but the model has no such map type (-EINVAL from find_and_alloc_map).
 */
interface Row { cmd: string; A: [string, string]; B: [string, string]; C: [string, string]; why: string }
const ROWS: Row[] = [
  {
    cmd: 'map create (array)', A: ['.....', '.PPPP'], B: ['.....', '.P...'], C: ['.....', '.P...'],
    why: 'array maps need no capability; the sysctl: 5.5 SYSCALL_DEFINE3(bpf) `sysctl && !capable(CAP_SYS_ADMIN)`, 5.8 `!bpf_capable()`, 6.5 map_create()',
  },
  {
    cmd: 'map create (lru_hash)', A: ['XPPPP', 'XPPPP'], B: ['XPXXX', 'XPXXX'], C: ['XPXXX', 'XPXXX'],
    why: 'htab_map_alloc_check: `lru && !capable(CAP_SYS_ADMIN)` (5.5), `!bpf_capable()` (5.8); 6.5 map_create switch: bpf_capable',
  },
  {
    cmd: 'prog load (socket filter)', A: ['.....', '.PPPP'], B: ['.....', '.P...'], C: ['.....', '.P...'],
    why: 'bpf_prog_load: SOCKET_FILTER and CGROUP_SKB need no capability; the sysctl as for maps',
  },
  {
    cmd: 'prog load (xdp)', A: ['.PPPP', '.PPPP'], B: ['.PP.P', '.PP.P'], C: ['.PP.P', '.PP.P'],
    why: '5.5: other types `!capable(CAP_SYS_ADMIN)`; 5.8: `!bpf_capable()`, then is_net_admin_prog_type && !capable(CAP_NET_ADMIN) && !capable(CAP_SYS_ADMIN)',
  },
  {
    cmd: 'prog load (kprobe)', A: ['.PPPP', '.PPPP'], B: ['.PPP.', '.PPP.'], C: ['.PPP.', '.PPP.'],
    why: '5.8: is_perfmon_prog_type && !perfmon_capable()',
  },
  {
    cmd: 'prog load (4097 insns)', A: ['.BBBB', '.PPPP'], B: ['.B...', '.P...'], C: ['.B...', '.P...'],
    why: 'insn_cnt > (capable(CAP_SYS_ADMIN) / bpf_capable() ? BPF_COMPLEXITY_LIMIT_INSNS : BPF_MAXINSNS); 6.5 checks the sysctl first',
  },
  {
    cmd: "lookup in root's map", A: ['.....', '.PPPP'], B: ['.....', '.P...'], C: ['.....', '.....'],
    why: 'map_lookup_elem has no capability check; until 6.4 the entry check refuses it, 6.5 lets an fd be used',
  },
  {
    cmd: 'map get next id', A: ['.PPPP', '.PPPP'], B: ['.PPPP', '.PPPP'], C: ['.PPPP', '.PPPP'],
    why: 'bpf_obj_get_next_id: `!capable(CAP_SYS_ADMIN)` in every version',
  },
  {
    cmd: 'map get fd by id', A: ['.PPPP', '.PPPP'], B: ['.PPPP', '.PPPP'], C: ['.PPPP', '.PPPP'],
    why: 'bpf_map_get_fd_by_id: `!capable(CAP_SYS_ADMIN)` in every version',
  },
  {
    cmd: "info of root's prog", A: ['.hhhh', '.PPPP'], B: ['.h...', '.P...'], C: ['.h...', '.h...'],
    why: 'bpf_prog_get_info_by_fd: `!capable(CAP_SYS_ADMIN)` (5.5), `!bpf_capable()` (5.8) zero jited_prog_len, xlated_prog_len…',
  },
  {
    cmd: "test run of root's prog", A: ['.PPPP', '.PPPP'], B: ['.....', '.P...'], C: ['.....', '.....'],
    why: 'bpf_prog_test_run: `!capable(CAP_SYS_ADMIN)` first in 5.5, dropped by 2c78ee898d8f (5.8)',
  },
  {
    cmd: 'btf load (no types)', A: ['IPPPP', 'IPPPP'], B: ['IPIII', 'IPIII'], C: ['IPIII', 'IPIII'],
    why: 'bpf_btf_load: CHECK_ATTR, then `!capable(CAP_SYS_ADMIN)` (5.5) / `!bpf_capable()` (5.8), then btf_parse: "No type found" -EINVAL',
  },
  {
    cmd: "freeze of a root's map", A: ['.PPPP', '.PPPP'], B: ['.P...', '.P...'], C: ['.....', '.....'],
    why: 'map_freeze: `!capable(CAP_SYS_ADMIN)` (5.5), `!bpf_capable()` (5.8), no check from 6.5 (c4c84f6fb2c4)',
  },
  {
    cmd: 'enable stats', A: ['IIIII', 'IPPPP'], B: ['.PPPP', '.PPPP'], C: ['.PPPP', '.PPPP'],
    why: 'bpf_enable_stats (5.8): `!capable(CAP_SYS_ADMIN)`; 5.5/5.7 have no such command (the switch\'s default, -EINVAL, after the entry check)',
  },
];

/** The sysctl values each profile accepts (5.5 … 5.12: 0 and 1; from 5.13: 0, 1, 2). */
const SYSCTL_VALUES = (v: KernelVersion): number[] => (gen(v) === 'A' || v === '5.12' ? [0, 1] : [0, 1, 2]);

interface Fx { map: number; mapId: number; prog: number; key: bigint; value: bigint; gpl: bigint; ret0: bigint; big: bigint; info: bigint; pkt: bigint; btf: bigint }

/** Runs one command as the current task: the code of its result. */
function runCell(sys: System, fx: Fx, cmd: string): string {
  const b = sys.bpfSys, mem = sys.kernel.machine.mem;
  const created = (r: number): number => { if (r >= 0) sys.kernel.current.files.close(r); return r; };
  const load = (type: number, cnt = 2, insns = fx.ret0): number => created(b.call(BPF_PROG_LOAD, { prog_type: type, insn_cnt: cnt, insns, license: fx.gpl }).ret);
  let r: number;
  switch (cmd) {
    case 'map create (array)': r = created(b.call(BPF_MAP_CREATE, { map_type: 2, key_size: 4, value_size: 8, max_entries: 4 }).ret); break;
    case 'map create (lru_hash)': r = created(b.call(BPF_MAP_CREATE, { map_type: 9, key_size: 4, value_size: 8, max_entries: 4 }).ret); break;
    case 'prog load (socket filter)': r = load(1); break;
    case 'prog load (xdp)': r = load(6); break;
    case 'prog load (kprobe)': r = load(2); break;
    case 'prog load (4097 insns)': r = load(1, 4097, fx.big); break;
    case "lookup in root's map": r = b.call(BPF_MAP_LOOKUP_ELEM, { map_fd: fx.map, key: fx.key, value: fx.value }).ret; break;
    case 'map get next id': r = b.call(BPF_MAP_GET_NEXT_ID, { start_id: 0 }).ret; break;
    case 'map get fd by id': r = created(b.call(BPF_MAP_GET_FD_BY_ID, { start_id: fx.mapId }).ret); break;
    case "info of root's prog": {
      mem.write(fx.info, new Uint8Array(232));
      r = b.call(BPF_OBJ_GET_INFO_BY_FD, { bpf_fd: fx.prog, info_len: 232, info: fx.info }).ret;
      if (r === 0 && mem.readU32(fx.info + 16n) === 0 && mem.readU32(fx.info + 20n) === 0) return 'h';
      break;
    }
    case "test run of root's prog": r = b.call(BPF_PROG_TEST_RUN, { prog_fd: fx.prog, data_in: fx.pkt, data_size_in: 64 }).ret; break;
    case 'btf load (no types)': r = created(b.call(BPF_BTF_LOAD, { btf: fx.btf, btf_size: 24 }).ret); break;
    case "freeze of a root's map": {
      // A fresh map, made by root, for each cell: a frozen one answers -EBUSY before the capability.
      const cur = sys.kernel.current, cred = cur.cred;
      cur.cred = credOf('root', sys.kernel.profile.version);
      const m = b.call(BPF_MAP_CREATE, { map_type: 2, key_size: 4, value_size: 8, max_entries: 1 }).ret;
      cur.cred = cred;
      r = b.call(BPF_MAP_FREEZE, { map_fd: m }).ret;
      cur.files.close(m);
      break;
    }
    case 'enable stats': r = created(b.call(BPF_ENABLE_STATS, { type: 0 }).ret); break;
    default: throw new Error(`no command ${cmd}`);
  }
  return r >= 0 ? '.' : r === -EPERM ? 'P' : r === -E2BIG ? 'B' : r === -EINVAL ? 'I' : `errno ${-r}`;
}

const counts = (sys: System): Record<string, number> => {
  const b = sys.bpfSys;
  return { maps: b.maps.size, progs: b.progs.size, links: b.links.size, btfs: b.btfs.size, fds: sys.kernel.current.files.count };
};

const SCENARIOS = KERNEL_VERSIONS.flatMap((v) => SYSCTL_VALUES(v).map((s) => [v, s] as const));

describe.each(SCENARIOS)('kernel %s, kernel.unprivileged_bpf_disabled=%i', (v, sysctl) => {
  let sys: System;
  let fx: Fx;
  beforeAll(async () => {
    // Each profile's default is left alone: 5.5 … 5.12 refuse writing 0 (only 0 -> 1 can be written).
    const dflt = SYSCTL_VALUES(v).length === 2 ? 0 : 2;
    sys = await boot({ kernel: v, ...(sysctl !== dflt ? { sysctl: { 'kernel.unprivileged_bpf_disabled': String(sysctl) } } : {}) });
    expect(sys.kernel.sysctl.get('kernel.unprivileged_bpf_disabled')).toBe(sysctl);
    const b = sys.bpfSys;
    const big = encode([...Array.from({ length: 4096 }, () => mov64Imm(0, 0)), exit()]);
    const map = b.call(BPF_MAP_CREATE, { map_type: 2, key_size: 4, value_size: 8, max_entries: 4 }).ret;
    fx = {
      map, mapId: b.mapFromFd(map)!.id, prog: 0, key: b.stage(new Uint8Array(4)), value: b.stage(new Uint8Array(8)),
      gpl: b.stage(Buffer.from('GPL\0')), ret0: b.stage(encode([mov64Imm(0, 0), exit()])), big: b.stage(big),
      info: b.stage(new Uint8Array(232)), pkt: b.stage(new Uint8Array(64)),
      // struct btf_header: magic 0xeb9f, version 1, flags 0, hdr_len 24, no types, no strings.
      btf: b.stage(Uint8Array.of(0x9f, 0xeb, 1, 0, 24, 0, 0, 0, ...new Array(16).fill(0))),
    };
    fx.prog = b.call(BPF_PROG_LOAD, { prog_type: 1, insn_cnt: 2, insns: fx.ret0, license: fx.gpl }).ret;
    expect(fx.map).toBeGreaterThan(0);
    expect(fx.prog).toBeGreaterThan(0);
  });
  afterAll(() => sys.close());

  const cells = ROWS.flatMap((row) => CREDS.map((c, i) => [row.cmd, c, row[gen(v)][sysctl ? 1 : 0][i]!, row.why] as const));
  it.each(cells)('%s as %s: %s', (cmd, credName, want, why) => {
    const cur = sys.kernel.current, root = cur.cred;
    const before = counts(sys);
    cur.cred = credOf(credName, v);
    let got: string;
    try { got = runCell(sys, fx, cmd); } finally { cur.cred = root; }
    expect(got, why).toBe(want === 'X' ? 'I' : want);
    // Whatever the outcome, every object made was closed: a refused call in particular changed nothing.
    expect(counts(sys)).toEqual(before);
  });
});

// --- the program ---------------------------------------------------------------------------------

const fixture = existsSync(PRIV_FIXTURE) ? JSON.parse(readFileSync(PRIV_FIXTURE, 'utf8')) as PrivFixture : undefined;

/** A line the model prints differently from the host (6.18, sysctl 2): the host's line, the model's, why. */
interface LineDifference { host: string; model: string; why: string }
const V55_SYSCTL0: LineDifference[] = [
  { host: 'user map create (array): EPERM', model: 'user map create (array): ok', why: 'v5.5 with the sysctl 0: array maps are unprivileged' },
  { host: 'user map create (hash): EPERM', model: 'user map create (hash): ok', why: 'hash maps too' },
  { host: 'user prog load (socket filter): EPERM', model: 'user prog load (socket filter): ok', why: 'socket filters are unprivileged' },
  { host: "user test run of root's prog: ok", model: "user test run of root's prog: EPERM", why: 'v5.5 bpf_prog_test_run: !capable(CAP_SYS_ADMIN)' },
  { host: "user map freeze of root's map: ok", model: "user map freeze of root's map: EPERM", why: 'v5.5 map_freeze: !capable(CAP_SYS_ADMIN) (gone in 6.5)' },
];
const V55_SYSCTL1: LineDifference[] = [
  { host: "user lookup in root's map: ok", model: "user lookup in root's map: EPERM", why: 'v5.5: the sysctl refuses every command at the entry' },
  { host: "user update of root's map: ok", model: "user update of root's map: EPERM", why: 'the entry check' },
  { host: "user info of root's prog: ok, type 1, jited_prog_len 0, xlated_prog_len 0, nr_map_ids 0", model: "user info of root's prog: EPERM", why: 'the entry check' },
  { host: "user test run of root's prog: ok", model: "user test run of root's prog: EPERM", why: 'the entry check' },
  { host: "user map freeze of root's map: ok", model: "user map freeze of root's map: EPERM", why: 'the entry check' },
];
const V55_BSET_SYSCTL1: LineDifference[] = [
  { host: 'uid 0 without CAP_SYS_ADMIN: map create (array): ok', model: 'uid 0 without CAP_SYS_ADMIN: map create (array): EPERM', why: 'v5.5: no CAP_BPF; the sysctl wants CAP_SYS_ADMIN, whatever the uid' },
  { host: 'uid 0 without CAP_SYS_ADMIN: prog load (xdp): ok', model: 'uid 0 without CAP_SYS_ADMIN: prog load (xdp): EPERM', why: 'the entry check (and XDP wants CAP_SYS_ADMIN)' },
];

function expected(host: string, diffs: readonly LineDifference[]): string {
  const lines = host.split('\n');
  for (const d of diffs) {
    const i = lines.indexOf(d.host);
    if (i < 0) throw new Error(`the host output has no line "${d.host}": a stale entry`);
    lines[i] = d.model;
  }
  return lines.join('\n');
}

const RUNS: [string, KernelVersion, Record<string, string>, string, LineDifference[]][] = [
  ['6.6, sysctl 2 (its default): as the host', '6.6', {}, 'drop', []],
  ['5.5, sysctl 0 (its default)', '5.5', {}, 'drop', V55_SYSCTL0],
  ['5.5, sysctl 1', '5.5', { 'kernel.unprivileged_bpf_disabled': '1' }, 'drop', V55_SYSCTL1],
  ['6.6 bset: as the host', '6.6', {}, 'bset', []],
  ['5.5 bset, sysctl 1', '5.5', { 'kernel.unprivileged_bpf_disabled': '1' }, 'bset', V55_BSET_SYSCTL1],
];

describe('priv_drop: root, then uid 1000, against the host kernel\'s answers', () => {
  const reason = !fixture ? `no fixture ${PRIV_FIXTURE}: run scripts/record-host-priv.ts as root`
    : fixture.unprivilegedBpfDisabled !== 2 ? `the fixture's host had unprivileged_bpf_disabled=${fixture.unprivilegedBpfDisabled}, the 6.6 profile's default is 2: re-record on a host with 2`
    : undefined;
  it.skipIf(reason !== undefined).each(RUNS)(`%s${reason ? ` (skipped: ${reason})` : ''}`, async (_name, v, sysctl, mode, diffs) => {
    const sys = await boot({ kernel: v, sysctl });
    try {
      const before = counts(sys);
      const r = sys.procs.runProgram(userProgram('priv_drop'), { argv: ['priv_drop', mode] });
      const host = fixture!.results[mode]!;
      expect(r.status).toBe(host.status);
      expect(r.stdout).toBe(expected(host.stdout, diffs));
      expect(counts(sys)).toEqual(before); // the process's objects went with its fds
    } finally { sys.close(); }
  });

  it('the lines that differ say why', () => {
    for (const d of [...V55_SYSCTL0, ...V55_SYSCTL1, ...V55_BSET_SYSCTL1]) expect(d.why.length, d.host).toBeGreaterThan(10);
  });
});

// --- what unprivileged loads and records look like -------------------------------------------------

describe('unprivileged loads: the verifier refuses pointer leaks', () => {
  // r2 = fp - 4; *(u32 *)r2 = 0; r1 = map; r0 = bpf_map_lookup_elem(); if r0 == 0 goto out; *(u64 *)r0 = STORED; out: r0 = 0; exit
  const storeInto = (map: number, stored: number): Insn[] => [
    mov64Reg(2, 10), alu64Imm(BPF_ADD, 2, -4), stMem(BPF_W, 2, 0, 0), ...ldImm64(1, BigInt(map), BPF_PSEUDO_MAP_FD),
    callHelper(1), jmpImm(BPF_JEQ, 0, 0, 1), stxMem(BPF_DW, 0, stored, 0), mov64Imm(0, 0), exit(),
  ];
  const CASES: [string, KernelVersion, CredName, (map: number) => Insn[], number, string | undefined][] = [
    ['R0 = the frame pointer, as root', '5.5', 'root', () => [mov64Reg(0, 10), exit()], 0, undefined],
    ['R0 = the frame pointer, unprivileged', '5.5', 'user', () => [mov64Reg(0, 10), exit()], EACCES, 'R0 leaks addr as return value'],
    ['R0 = the ctx, CAP_BPF without CAP_PERFMON (6.6)', '6.6', 'bpf', () => [mov64Reg(0, 1), exit()], EACCES, 'R0 leaks addr as return value'],
    ['R0 = the ctx, CAP_BPF and CAP_PERFMON (6.6)', '6.6', 'bpf+perfmon', () => [mov64Reg(0, 1), exit()], 0, undefined],
    ['the frame pointer stored into a map value, as root', '5.5', 'root', (m) => storeInto(m, 10), 0, undefined],
    ['the frame pointer stored into a map value, unprivileged', '5.5', 'user', (m) => storeInto(m, 10), EACCES, 'R10 leaks addr into map'],
    ['a constant stored into a map value, unprivileged', '5.5', 'user', (m) => storeInto(m, 10).map((i, k) => (k === 7 ? stMem(BPF_DW, 0, 0, 7) : i)), 0, undefined],
  ];
  it.each(CASES)('%s', async (_n, v, credName, prog, errno, msg) => {
    const sys = await boot({ kernel: v });
    try {
      const b = sys.bpfSys, cur = sys.kernel.current, root = cur.cred;
      const map = b.call(BPF_MAP_CREATE, { map_type: 2, key_size: 4, value_size: 8, max_entries: 1 }).ret;
      const insns = prog(map);
      const log = b.stage(new Uint8Array(4096));
      cur.cred = credOf(credName, v);
      const r = b.call(BPF_PROG_LOAD, {
        prog_type: 1, insn_cnt: insns.length, insns: b.stage(encode(insns)), license: b.stage(Buffer.from('GPL\0')),
        log_level: 1, log_size: 4096, log_buf: log,
      }).ret;
      cur.cred = root;
      if (errno === 0) expect(r).toBeGreaterThan(0);
      else {
        expect(r).toBe(-errno);
        expect(sys.kernel.machine.mem.readCString(log, 4096)).toContain(`${msg}\n`);
      }
    } finally { sys.close(); }
  });
});


describe('audit records carry the acting task\'s credentials', () => {
  it('the SYSCALL records of priv_drop\'s bpf() calls: uid 0 before the drop, 1000 after; LOAD records the program ids', async () => {
    const sys = await boot({ kernel: '6.6' });
    try {
      const { auditctl } = await import('../../cli/auditctl.ts');
      const a = sys.kernel.audit;
      a.bpfFormat = 'v5.6';
      auditctl(a, ['-e', '1']);
      auditctl(a, ['-a', 'always,exit', '-F', 'arch=x86_64', '-S', 'bpf']);
      sys.procs.runProgram(userProgram('priv_drop'), { argv: ['priv_drop'] });
      const syscalls = a.log.filter((r) => r.type === 1300).map((r) => r.body);
      const ids = syscalls.map((s) => / uid=(\d+) gid=\d+ euid=(\d+) suid=(\d+) fsuid=(\d+)/.exec(s)!.slice(1).join(' '));
      // 12 bpf() calls as root (2, then round_of's 10), then 10 as uid 1000 and the freeze.
      expect(ids.length).toBe(23);
      expect(ids.slice(0, 12)).toEqual(new Array(12).fill('0 0 0 0'));
      expect(ids.slice(12)).toEqual(new Array(11).fill('1000 1000 1000 1000'));
      // The refused ones (2 map creates, 2 loads, 2 next ids) fail with EPERM (exit=-1) as uid 1000.
      expect(syscalls.slice(12).filter((s) => s.includes('success=no exit=-1 ')).length).toBe(6);
      expect(syscalls.slice(0, 12).filter((s) => s.includes('success=no')).length).toBe(0);
      // AUDIT_BPF op=LOAD for root's three loads, none for the refused ones.
      expect(a.log.filter((r) => r.type === 1334 && r.body.endsWith('op=LOAD')).length).toBe(3);
    } finally { sys.close(); }
  });
});
