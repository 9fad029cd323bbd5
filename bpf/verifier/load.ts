/**
 * @fileoverview The verifier as BPF_PROG_LOAD calls it (bpf_check in bpf_prog_load): the
 * attributes and the objects the program refers to — maps by fd, the kernel's BTF, a tracing
 * program's target (a kernel or module function, or a function of another BPF program) — turned
 * into bpfCheck's options. The result's log goes to log_buf with the rest of the load's.
 */
import type { KernelProfile } from '../../kernel/profile.ts';
import type { Btf } from '../btf/btf.ts';
import type { Insn } from '../isa/insn.ts';
import type { BpfMap } from '../maps/map.ts';
import { BPF_PROG_TYPE_TRACING } from '../prog_types.ts';
import { bpfCheck, type VerifyResult } from './verifier.ts';
import type { AttachTarget } from './env.ts';
import type { MapInfo } from './reg.ts';

const BPF_F_STRICT_ALIGNMENT = 1, BPF_F_TEST_STATE_FREQ = 1 << 3;

/** What the load path knows when it calls the verifier. */
export interface ProgLoadVerify {
  insns: readonly Insn[];
  progType: number;
  expectedAttachType: number;
  progFlags: number;
  logLevel: number;
  logSize: number;
  gplCompatible: boolean;
  mapFromFd: (fd: number) => BpfMap | undefined;
  vmlinuxBtf: Btf | undefined;
  /** A tracing program's target: the FUNC's BTF and id, or a BPF program's. */
  attachBtfId?: number;
  attachBtf?: Btf;
  /** bpf2bpf: the target program's type and whether its function's BTF is unreliable. */
  tgtProgType?: number;
  conservative?: boolean;
  /** Helper ids this machine implements. */
  helperIds?: readonly number[];
  /** The machine's kernel generation. */
  profile?: KernelProfile;
  /** env->allow_ptr_leaks: the loader's privilege (bpf/syscall/privilege.ts). */
  allowPtrLeaks?: boolean;
}

const infoCache = new WeakMap<BpfMap, MapInfo>();

/** The verifier's view of a live map (value reads of frozen read-only arrays included). */
export function mapInfo(map: BpfMap): MapInfo {
  let info = infoCache.get(map);
  if (!info) {
    info = {
      type: map.type, keySize: map.keySize, valueSize: map.valueSize, maxEntries: map.maxEntries, flags: map.flags,
      name: map.name, kaddr: map.kaddr,
      get frozen() { return map.frozen; },
    };
    infoCache.set(map, info);
  }
  return info;
}

/** bpf_check for PROG_LOAD. */
export function verifyProgLoad(p: ProgLoadVerify): VerifyResult {
  let attach: AttachTarget | undefined;
  if (p.progType === BPF_PROG_TYPE_TRACING && p.attachBtf && p.attachBtfId) {
    attach = p.tgtProgType !== undefined
      ? { btf: p.attachBtf, funcId: p.attachBtfId, ptrBtf: p.vmlinuxBtf, tgtProgType: p.tgtProgType, conservative: p.conservative }
      : { btf: p.attachBtf, funcId: p.attachBtfId };
  }
  return bpfCheck(p.insns, {
    progType: p.progType, expectedAttachType: p.expectedAttachType, logLevel: p.logLevel, logSize: p.logLevel ? p.logSize : undefined,
    gplCompatible: p.gplCompatible, strictAlignment: (p.progFlags & BPF_F_STRICT_ALIGNMENT) !== 0,
    testStateFreq: (p.progFlags & BPF_F_TEST_STATE_FREQ) !== 0, allowPtrLeaks: p.allowPtrLeaks,
    resolveMap: (insn) => { const m = p.mapFromFd(insn.imm); return m && { map: mapInfo(m) }; },
    attach, btf: p.vmlinuxBtf, implementedHelpers: p.helperIds ? new Set(p.helperIds) : undefined, profile: p.profile,
  });
}

/** What verifyForLoad needs of the bpf() subsystem. */
export interface LoadEnv {
  mapFromFd(fd: number): BpfMap | undefined;
  readonly vmlinuxBtf: Btf | undefined;
  readonly moduleBtf: ((btfId: number, objFd: number) => { btf: Btf } | undefined) | undefined;
  readonly helpers: readonly { readonly id: number }[];
  readonly kernel: { readonly profile: KernelProfile };
  /** The loader's privilege; absent: privileged. */
  readonly privilege?: { allowPtrLeaks(): boolean };
}

/** The tracing target as the load path resolved it (bpf2bpf: the target program). */
export interface LoadTracing {
  tgt?: { readonly type: number; readonly btf?: { readonly btf: Btf } };
  conservative?: boolean;
}

/** bpf_check from progLoad: `f` is PROG_LOAD's attr, `tracing` what check_attach_btf_id resolved. */
export function verifyForLoad(sub: LoadEnv, f: Readonly<Record<string, number | bigint | string>>, insns: readonly Insn[],
  gplCompatible: boolean, resolved: object | undefined): VerifyResult {
  const tracing = resolved as LoadTracing | undefined;
  const btfId = f.attach_btf_id as number;
  const vmlinux = sub.vmlinuxBtf;
  const attachBtf = tracing?.tgt ? tracing.tgt.btf?.btf
    : vmlinux && btfId >= vmlinux.types.length ? sub.moduleBtf?.(btfId, f.attach_prog_fd as number)?.btf : vmlinux;
  return verifyProgLoad({
    insns, progType: f.prog_type as number, expectedAttachType: f.expected_attach_type as number, progFlags: f.prog_flags as number,
    logLevel: f.log_level as number, logSize: f.log_size as number, gplCompatible, mapFromFd: (fd) => sub.mapFromFd(fd),
    vmlinuxBtf: vmlinux, attachBtfId: btfId, attachBtf, tgtProgType: tracing?.tgt?.type, conservative: tracing?.conservative,
    helperIds: sub.helpers.map((h) => h.id), profile: sub.kernel.profile, allowPtrLeaks: sub.privilege?.allowPtrLeaks(),
  });
}
