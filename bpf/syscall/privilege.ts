/**
 * @fileoverview Who may call bpf(): the kernel's capability and sysctl checks, one row per kernel
 * profile (PRIVILEGE_PROFILES), each rule with the kernel version its form comes from and where
 * it is. BpfSubsystem asks BpfPrivilege at the spots the kernel checks (the syscall's entry, the
 * commands), so a refused caller gets -EPERM (or -E2BIG) before anything is created or changed.
 *
 * The three generations:
 *  - 5.5, 5.7: kernel.unprivileged_bpf_disabled (0/1) at __sys_bpf's entry against
 *    CAP_SYS_ADMIN, for every command; CAP_SYS_ADMIN for every program type but socket filters
 *    and cgroup skb, for some map types, ids, BTF, test runs, freezing and the prog info images.
 *  - 5.8 (the 5.12 … 6.1 profiles): CAP_BPF (2c78ee898d8f "bpf: Implement CAP_BPF"):
 *    bpf_capable() = CAP_BPF || CAP_SYS_ADMIN replaces most CAP_SYS_ADMIN checks, networking
 *    program types also want CAP_NET_ADMIN and tracing ones perfmon_capable(); the entry check
 *    becomes `sysctl && !bpf_capable()`. From 5.13 the sysctl may be 2 (kernel/sysctl.ts).
 *  - 6.5 (the 6.6 profile): 1d28635abcf1 "bpf: move unprivileged checks into map_create() and
 *    bpf_prog_load()": no entry check; only creating maps and programs looks at the sysctl, so an
 *    unprivileged task may use an fd it was given (lookups, updates, info). map_create gets one
 *    switch for every map type (6c3eba1c5e28), and MAP_FREEZE drops its check (c4c84f6fb2c4).
 *
 * What unprivileged callers get besides refusals: BPF_MAXINSNS (4096) as the program size limit,
 * prog info without the JIT and xlated images (lengths zeroed), and a verifier that refuses
 * pointer leaks (env->allow_ptr_leaks, bpf/verifier).
 */
import type { Kernel } from '../../kernel/kernel.ts';
import type { KernelVersion } from '../../kernel/profile.ts';
import { atLeast, KERNEL_VERSIONS } from '../../kernel/profile.ts';
import type { Cred } from '../../kernel/task.ts';
import { capable, bpfCapable, perfmonCapable, CAP_SYS_ADMIN, CAP_NET_ADMIN } from '../../kernel/cred.ts';
import {
  BPF_MAP_FREEZE, BPF_PROG_TEST_RUN, BPF_BTF_LOAD, BPF_ENABLE_STATS, BPF_LINK_CREATE,
  BPF_PROG_GET_NEXT_ID, BPF_MAP_GET_NEXT_ID, BPF_BTF_GET_NEXT_ID, BPF_LINK_GET_NEXT_ID,
  BPF_PROG_GET_FD_BY_ID, BPF_MAP_GET_FD_BY_ID, BPF_BTF_GET_FD_BY_ID, BPF_LINK_GET_FD_BY_ID,
} from './attr.ts';
import { mapOps } from '../maps/types.ts';

const EPERM = 1, E2BIG = 7;
/** BPF_MAXINSNS (include/uapi/linux/bpf_common.h): the size limit for unprivileged programs. */
export const BPF_MAXINSNS = 4096;
const BPF_COMPLEXITY_LIMIT_INSNS = 1_000_000;
/** The last map type 6.6 knows: BPF_MAP_TYPE_CGRP_STORAGE (6.2). */
const MAX_MAP_TYPE_6_6 = 32;

/** What a check asks of the caller's effective capabilities. */
export type Need = 'CAP_SYS_ADMIN' | 'bpf_capable' | 'perfmon_capable' | 'CAP_NET_ADMIN' | 'CAP_NET_ADMIN|CAP_SYS_ADMIN';

/** One check: what it needs, the kernel version its form comes from, and where it is. */
export interface Rule { readonly need: Need; readonly since: KernelVersion | '5.8' | '6.5'; readonly source: string }

export interface PrivilegeProfile {
  readonly version: KernelVersion;
  /** __sys_bpf's first check, for every command: `sysctl && !need` → -EPERM (until 6.4). */
  readonly entry: Rule | undefined;
  /** map_create and bpf_prog_load check the sysctl themselves (6.5 on). */
  readonly createChecksSysctl: Rule | undefined;
  /** Map types that need a capability (absent: unprivileged), and where in map_create it is checked. */
  readonly mapTypes: Readonly<Record<number, Rule>>;
  /** 'alloc': in the type's map_alloc_check/map_alloc (before the attr checks of the type); 'switch': after them (6.5). */
  readonly mapCheckAt: 'alloc' | 'switch';
  /** bpf_prog_load: programs beyond SOCKET_FILTER and CGROUP_SKB, and the larger size limit. */
  readonly progAny: Rule;
  /** Program types that also want CAP_NET_ADMIN (is_net_admin_prog_type) or perfmon (is_perfmon_prog_type), 5.8 on. */
  readonly progNetAdmin: { readonly rule: Rule; readonly types: readonly number[] } | undefined;
  readonly progPerfmon: { readonly rule: Rule; readonly types: readonly number[] } | undefined;
  /** Commands with their own capability check. */
  readonly commands: Readonly<Record<number, Rule>>;
  /** bpf_prog_get_info_by_fd: the images and their lengths only for callers with this. */
  readonly progInfoRaw: Rule;
  /** bpf_check: env->allow_ptr_leaks. */
  readonly ptrLeaks: Rule;
}

// Program and map type numbers (include/uapi/linux/bpf.h).
const P = {
  SOCKET_FILTER: 1, KPROBE: 2, SCHED_CLS: 3, SCHED_ACT: 4, TRACEPOINT: 5, XDP: 6, PERF_EVENT: 7, CGROUP_SKB: 8,
  CGROUP_SOCK: 9, LWT_IN: 10, LWT_OUT: 11, LWT_XMIT: 12, SOCK_OPS: 13, SK_SKB: 14, CGROUP_DEVICE: 15, SK_MSG: 16,
  RAW_TRACEPOINT: 17, CGROUP_SOCK_ADDR: 18, LWT_SEG6LOCAL: 19, LIRC_MODE2: 20, SK_REUSEPORT: 21, FLOW_DISSECTOR: 22,
  CGROUP_SYSCTL: 23, RAW_TRACEPOINT_WRITABLE: 24, CGROUP_SOCKOPT: 25, TRACING: 26, STRUCT_OPS: 27, EXT: 28, LSM: 29,
  NETFILTER: 32,
} as const;
const M = {
  STACK_TRACE: 7, LRU_HASH: 9, LRU_PERCPU_HASH: 10, LPM_TRIE: 11, DEVMAP: 14, SOCKMAP: 15, CPUMAP: 16, XSKMAP: 17,
  SOCKHASH: 18, REUSEPORT_SOCKARRAY: 20, QUEUE: 22, STACK: 23, SK_STORAGE: 24, DEVMAP_HASH: 25, STRUCT_OPS: 26,
  INODE_STORAGE: 28, TASK_STORAGE: 29, BLOOM_FILTER: 30, CGRP_STORAGE: 32,
} as const;

/** The map types that need a capability, each with the function that checks it. */
function mapTypeRules(v: KernelVersion): Record<number, Rule> {
  const out: Record<number, Rule> = {};
  const add = (types: number[], rule: Rule): void => { for (const t of types) out[t] = rule; };
  if (atLeast(v, '6.6')) {
    const src = `v${v} kernel/bpf/syscall.c map_create(): "check privileged map type permissions" switch (6c3eba1c5e28, 6.5)`;
    add([M.SK_STORAGE, M.INODE_STORAGE, M.TASK_STORAGE, M.CGRP_STORAGE, M.BLOOM_FILTER, M.LPM_TRIE, M.REUSEPORT_SOCKARRAY,
      M.STACK_TRACE, M.QUEUE, M.STACK, M.LRU_HASH, M.LRU_PERCPU_HASH, M.STRUCT_OPS, M.CPUMAP], { need: 'bpf_capable', since: '6.5', source: src });
    add([M.SOCKMAP, M.SOCKHASH, M.DEVMAP, M.DEVMAP_HASH, M.XSKMAP], { need: 'CAP_NET_ADMIN', since: '6.5', source: src });
    return out;
  }
  const capBpf = atLeast(v, '5.12');
  const sysAdmin: Rule = capBpf
    ? { need: 'bpf_capable', since: '5.8', source: `v${v} the types' map_alloc_check/map_alloc: !bpf_capable() (2c78ee898d8f): stackmap.c, hashtab.c (lru), lpm_trie.c, cpumap.c, reuseport_array.c, queue_stack_maps.c, bpf_sk_storage.c, bpf_struct_ops.c` }
    : { need: 'CAP_SYS_ADMIN', since: '5.5', source: `v${v} the types' map_alloc_check/map_alloc: !capable(CAP_SYS_ADMIN): stackmap.c, hashtab.c (lru), lpm_trie.c, cpumap.c, reuseport_array.c, queue_stack_maps.c, bpf_sk_storage.c` };
  add([M.STACK_TRACE, M.LRU_HASH, M.LRU_PERCPU_HASH, M.LPM_TRIE, M.CPUMAP, M.REUSEPORT_SOCKARRAY, M.QUEUE, M.STACK, M.SK_STORAGE, M.STRUCT_OPS], sysAdmin);
  if (atLeast(v, '5.12')) add([M.INODE_STORAGE, M.TASK_STORAGE], { ...sysAdmin, source: `v${v} kernel/bpf/bpf_local_storage.c bpf_local_storage_map_alloc_check: !bpf_capable()` });
  if (atLeast(v, '5.19')) add([M.BLOOM_FILTER], { ...sysAdmin, source: `v${v} kernel/bpf/bloom_filter.c bloom_map_alloc: !bpf_capable()` });
  add([M.DEVMAP, M.DEVMAP_HASH, M.SOCKMAP, M.SOCKHASH, M.XSKMAP], {
    need: 'CAP_NET_ADMIN', since: '5.5', source: `v${v} devmap.c dev_map_alloc, sock_map.c sock_map_alloc/sock_hash_alloc, xskmap.c xsk_map_alloc: !capable(CAP_NET_ADMIN)`,
  });
  return out;
}

function makeProfile(v: KernelVersion): PrivilegeProfile {
  const capBpf = atLeast(v, '5.12'), perCommand = atLeast(v, '6.6');
  const sc = `v${v} kernel/bpf/syscall.c`;
  // The generation's "may do BPF at all" capability.
  const bpfRule = (where: string): Rule => capBpf
    ? { need: 'bpf_capable', since: '5.8', source: `${sc} ${where}: !bpf_capable() (2c78ee898d8f)` }
    : { need: 'CAP_SYS_ADMIN', since: '5.5', source: `${sc} ${where}: !capable(CAP_SYS_ADMIN)` };
  const sysAdmin = (where: string): Rule => ({ need: 'CAP_SYS_ADMIN', since: '5.5', source: `${sc} ${where}: !capable(CAP_SYS_ADMIN)` });
  const commands: Record<number, Rule> = {};
  for (const cmd of [BPF_PROG_GET_NEXT_ID, BPF_MAP_GET_NEXT_ID, BPF_BTF_GET_NEXT_ID, BPF_LINK_GET_NEXT_ID]) commands[cmd] = sysAdmin('bpf_obj_get_next_id');
  commands[BPF_PROG_GET_FD_BY_ID] = sysAdmin('bpf_prog_get_fd_by_id');
  commands[BPF_MAP_GET_FD_BY_ID] = sysAdmin('bpf_map_get_fd_by_id');
  commands[BPF_BTF_GET_FD_BY_ID] = sysAdmin('bpf_btf_get_fd_by_id');
  commands[BPF_LINK_GET_FD_BY_ID] = { ...sysAdmin('bpf_link_get_fd_by_id'), since: '5.8' };
  commands[BPF_ENABLE_STATS] = { ...sysAdmin('bpf_enable_stats (d46edd671a14)'), since: '5.8' };
  commands[BPF_BTF_LOAD] = bpfRule('bpf_btf_load');
  if (!perCommand) commands[BPF_MAP_FREEZE] = bpfRule('map_freeze, after the -EBUSY checks');
  if (!capBpf) {
    commands[BPF_PROG_TEST_RUN] = sysAdmin('bpf_prog_test_run, before CHECK_ATTR (dropped by 2c78ee898d8f in 5.8)');
    // LINK_CREATE is 5.7's (af6eea57437a); the model offers it on 5.5 too, with 5.7's check.
    commands[BPF_LINK_CREATE] = { need: 'CAP_NET_ADMIN', since: '5.7', source: `v5.7 kernel/bpf/syscall.c link_create: !capable(CAP_NET_ADMIN) first (dropped in 5.8)` };
  }
  const row: PrivilegeProfile = {
    version: v,
    entry: perCommand ? undefined : capBpf
      ? { need: 'bpf_capable', since: '5.8', source: `${sc} SYSCALL_DEFINE3(bpf): if (sysctl_unprivileged_bpf_disabled && !bpf_capable()) return -EPERM;` }
      : { need: 'CAP_SYS_ADMIN', since: '5.5', source: `${sc} SYSCALL_DEFINE3(bpf): if (sysctl_unprivileged_bpf_disabled && !capable(CAP_SYS_ADMIN)) return -EPERM;` },
    createChecksSysctl: perCommand
      ? { need: 'bpf_capable', since: '6.5', source: `${sc} map_create() and bpf_prog_load(): if (sysctl_unprivileged_bpf_disabled && !bpf_capable()) return -EPERM; (1d28635abcf1)` }
      : undefined,
    mapTypes: Object.freeze(mapTypeRules(v)),
    mapCheckAt: perCommand ? 'switch' : 'alloc',
    progAny: bpfRule('bpf_prog_load: type != SOCKET_FILTER && type != CGROUP_SKB, and insn_cnt > BPF_MAXINSNS'),
    progNetAdmin: capBpf ? {
      rule: { need: 'CAP_NET_ADMIN|CAP_SYS_ADMIN', since: '5.8', source: `${sc} bpf_prog_load: is_net_admin_prog_type(type) && !capable(CAP_NET_ADMIN) && !capable(CAP_SYS_ADMIN)` },
      types: [P.SCHED_CLS, P.SCHED_ACT, P.XDP, P.LWT_IN, P.LWT_OUT, P.LWT_XMIT, P.LWT_SEG6LOCAL, P.SK_SKB, P.SK_MSG,
        P.FLOW_DISSECTOR, P.CGROUP_DEVICE, P.CGROUP_SOCK, P.CGROUP_SOCK_ADDR, P.CGROUP_SOCKOPT, P.CGROUP_SYSCTL, P.SOCK_OPS, P.EXT,
        ...(perCommand ? [P.NETFILTER] : [P.LIRC_MODE2])],
    } : undefined,
    progPerfmon: capBpf ? {
      rule: { need: 'perfmon_capable', since: '5.8', source: `${sc} bpf_prog_load: is_perfmon_prog_type(type) && !perfmon_capable()` },
      types: [P.KPROBE, P.TRACEPOINT, P.PERF_EVENT, P.RAW_TRACEPOINT, P.RAW_TRACEPOINT_WRITABLE, P.TRACING, P.LSM, P.STRUCT_OPS, P.EXT],
    } : undefined,
    commands: Object.freeze(commands),
    progInfoRaw: bpfRule('bpf_prog_get_info_by_fd: jited/xlated lengths, ksyms, func/line info zeroed, then goto done'),
    ptrLeaks: capBpf
      ? { need: 'perfmon_capable', since: '5.8', source: `v${v} kernel/bpf/verifier.c bpf_check: env->allow_ptr_leaks = perfmon_capable()` }
      : { need: 'CAP_SYS_ADMIN', since: '5.5', source: `v${v} kernel/bpf/verifier.c bpf_check: env->allow_ptr_leaks = is_priv (capable(CAP_SYS_ADMIN))` },
  };
  return Object.freeze(row);
}

/** The table: one row per profile. */
export const PRIVILEGE_PROFILES: Readonly<Record<KernelVersion, PrivilegeProfile>> = Object.freeze(
  Object.fromEntries(KERNEL_VERSIONS.map((v) => [v, makeProfile(v)])) as Record<KernelVersion, PrivilegeProfile>,
);

/** Whether `cred` has what `need` asks. */
export function hasNeed(cred: Cred, need: Need): boolean {
  switch (need) {
    case 'CAP_SYS_ADMIN': return capable(cred, CAP_SYS_ADMIN);
    case 'CAP_NET_ADMIN': return capable(cred, CAP_NET_ADMIN);
    case 'CAP_NET_ADMIN|CAP_SYS_ADMIN': return capable(cred, CAP_NET_ADMIN) || capable(cred, CAP_SYS_ADMIN);
    case 'bpf_capable': return bpfCapable(cred);
    case 'perfmon_capable': return perfmonCapable(cred);
  }
}

/** The checks for one machine: its profile's row, its sysctl, the current task's cred. */
export class BpfPrivilege {
  readonly rules: PrivilegeProfile;
  private readonly kernel: Kernel;

  constructor(kernel: Kernel) {
    this.kernel = kernel;
    this.rules = PRIVILEGE_PROFILES[kernel.profile.version];
  }

  private has(r: Rule | undefined): boolean { return !r || hasNeed(this.kernel.current.cred, r.need); }
  private get sysctlOn(): boolean { return (this.kernel.sysctl.get('kernel.unprivileged_bpf_disabled') ?? 0) !== 0; }

  /** __sys_bpf's entry: 0, or -EPERM for every command. */
  sysBpfEntry(): number { return this.rules.entry && this.sysctlOn && !this.has(this.rules.entry) ? -EPERM : 0; }

  /** map_create: the type's check where this generation makes it ('alloc' before the type's attr checks, 'switch' after). */
  mapCreate(mapType: number, at: 'alloc' | 'switch'): number {
    // 6.5's switch comes after the type's map_alloc_check; for a type the model does not
    // allocate that check cannot run (createMap says -EINVAL), so the switch answers first.
    const early = at === 'alloc' && this.rules.mapCheckAt === 'switch' && !mapOps(mapType) && mapType >= 1 && mapType <= MAX_MAP_TYPE_6_6;
    if (at !== this.rules.mapCheckAt && !early) return 0;
    const c = this.rules.createChecksSysctl;
    if (c && this.sysctlOn && !this.has(c)) return -EPERM;
    return this.has(this.rules.mapTypes[mapType]) ? 0 : -EPERM;
  }

  /** bpf_prog_load's checks, in its order: the sysctl (6.5), the size limit, the type's capabilities. */
  progLoad(progType: number, insnCnt: number): number {
    const r = this.rules, c = r.createChecksSysctl;
    if (c && this.sysctlOn && !this.has(c)) return -EPERM;
    const privileged = this.has(r.progAny);
    if (insnCnt === 0 || insnCnt > (privileged ? BPF_COMPLEXITY_LIMIT_INSNS : BPF_MAXINSNS)) return -E2BIG;
    if (progType !== P.SOCKET_FILTER && progType !== P.CGROUP_SKB && !privileged) return -EPERM;
    if (r.progNetAdmin?.types.includes(progType) && !this.has(r.progNetAdmin.rule)) return -EPERM;
    if (r.progPerfmon?.types.includes(progType) && !this.has(r.progPerfmon.rule)) return -EPERM;
    return 0;
  }

  /** A command's own capability check (ids, BTF, freeze, test run, stats, link create): 0 or -EPERM. */
  command(cmd: number): number { return this.has(this.rules.commands[cmd]) ? 0 : -EPERM; }

  /** bpf_prog_get_info_by_fd: whether the caller sees the images and their lengths. */
  progInfoRaw(): boolean { return this.has(this.rules.progInfoRaw); }

  /** env->allow_ptr_leaks for a load by the current task. */
  allowPtrLeaks(): boolean { return this.has(this.rules.ptrLeaks); }
}

/** bpf_prog_info fields the unprivileged path zeroes (jited/xlated_prog_len, nr_jited_ksyms, nr_jited_func_lens, nr_func_info, nr_line_info, nr_jited_line_info). */
const INFO_ZEROED = [16, 20, 104, 108, 144, 148, 168];
/** Fields set only past the check: they keep what the user passed in (btf_id, nr_prog_tags). */
const INFO_UNTOUCHED = [128, 180];

/** The unprivileged bpf_prog_info: `info` as filled for a privileged caller, `user` as the user passed it. */
export function hideProgInfo(info: DataView, user: DataView): void {
  for (const off of INFO_ZEROED) if (off + 4 <= info.byteLength) info.setUint32(off, 0, true);
  for (const off of INFO_UNTOUCHED) if (off + 4 <= info.byteLength) info.setUint32(off, user.getUint32(off, true), true);
}

/** The BPF sysctls: the stats static key (a reference like an ENABLE_STATS fd) and the JIT switch. */
export function bindBpfSysctls(sub: { kernel: Kernel; statsEnabled: boolean; jitEnabled: boolean; readonly statsFds: number }): void {
  sub.kernel.sysctl.bind('kernel.bpf_stats_enabled', (v) => { sub.statsEnabled = v === 1 || sub.statsFds > 0; });
  sub.kernel.sysctl.bind('net.core.bpf_jit_enable', (v) => { sub.jitEnabled = v !== 0; });
}
