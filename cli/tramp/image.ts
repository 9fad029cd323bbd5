/**
 * @fileoverview The trampoline a kernel profile generates for one function and one set of
 * programs (`bpfemu trampoline show|diff`): boot a machine with that profile, load the programs
 * through bpf() (an object's fentry/fexit/fmod_ret programs on FUNC, or `r0 = 0; exit`
 * programs of the kinds asked for), attach them (BPF_RAW_TRACEPOINT_OPEN) and read the live
 * image back from guest memory by its `bpf_trampoline_<key>` ksym, disassembled.
 *
 * Each instruction also gets a normalised text, what the alignment compares: branch targets and
 * 64-bit immediates become names (`call <__bpf_prog_enter>`, `movabs rdi, <prog fentry>`,
 * `jne <tramp+0x8c>`), so that two images at different addresses, with programs at different
 * addresses, line up wherever the generators emitted the same instruction.
 */
import { existsSync, readFileSync } from 'node:fs';
import { boot, type System } from '../../index.ts';
import { BTF_KIND } from '../../bpf/btf/btf.ts';
import { BpfObject, errnoName } from '../../bpf/libbpf/load.ts';
import { encode } from '../../bpf/isa/insn.ts';
import { callHelper, exit, mov64Imm } from '../../bpf/isa/build.ts';
import { BPF_PROG_LOAD, BPF_RAW_TRACEPOINT_OPEN } from '../../bpf/syscall/attr.ts';
import { BPF_FUNC_get_func_ip } from '../../bpf/helpers/tracing_func.ts';
import { BPF_MODIFY_RETURN, BPF_PROG_TYPE_TRACING, BPF_TRACE_FENTRY, BPF_TRACE_FEXIT } from '../../bpf/prog_types.ts';
import { branchTarget, type Insn } from '../../emulator/capstone.ts';
import { getBootOptions } from '../session.ts';
import { UsageError } from '../output.ts';
import type { KernelVersion } from '../../kernel/profile.ts';
import type { KSym } from '../../kernel/kallsyms.ts';
import type { BpfTrampoline } from '../../bpf/trampoline.ts';

export type TraceKind = 'fentry' | 'fexit' | 'fmod_ret';
export const TRACE_KINDS: readonly TraceKind[] = ['fentry', 'fexit', 'fmod_ret'];
const ATTACH_TYPE: Record<TraceKind, number> = { fentry: BPF_TRACE_FENTRY, fexit: BPF_TRACE_FEXIT, fmod_ret: BPF_MODIFY_RETURN };

/** A failed bpf() on the way to the image: the kernel's errno (and log), under one profile. */
export class TraceError extends Error {
  readonly errno: number;
  constructor(kernel: string, what: string, errno: number, log = '') {
    // The log's reason: its last line but the verifier's statistics ("processed N insns …").
    const why = log.trim().split('\n').filter((l) => l && !/^processed \d+ insns/.test(l)).at(-1);
    super(`kernel ${kernel}: ${what}: ${errnoName(errno)} (${errno})${why ? `: ${why}` : ''}`);
    this.name = 'TraceError';
    this.errno = errno;
  }
}

export interface TrampInsn {
  offset: number;
  bytes: string;
  /** Capstone's text with targets and known immediates as `<names>`. */
  text: string;
  /** What the alignment compares: `text` with any remaining kernel heap address as `<addr>`. */
  norm: string;
}

export interface TrampImage {
  kernel: KernelVersion;
  func: string;
  /** The ksym of the live image and its address. */
  symbol: string;
  address: bigint;
  size: number;
  progs: { name: string; kind: TraceKind }[];
  insns: TrampInsn[];
}

export interface TraceRequest {
  kernel: KernelVersion;
  func: string;
  /** A clang-built object whose fentry/fexit/fmod_ret programs on `func` are attached. */
  obj?: string;
  /** Without an object: one `r0 = 0; exit` program of each kind, in this order. */
  kinds?: readonly TraceKind[];
  /** The default programs call bpf_get_func_ip first (5.15+: the trampoline stores the ip). */
  funcIp?: boolean;
}

/** BPF_FUNC_get_func_ip (5.15). */

/** A program of `kind` on `func`, `r0 = 0; exit`, loaded through bpf() with its log kept (a TraceError names a refusal). */
export function loadTiny(sys: System, kernel: string, func: string, btfId: number, kind: TraceKind, funcIp = false): number {
  const b = sys.bpfSys;
  const insns = [...(funcIp ? [callHelper(BPF_FUNC_get_func_ip)] : []), mov64Imm(0, 0), exit()];
  const ui = b.stage(encode(insns)), lic = b.stage(Buffer.from('GPL\0')), log = b.stage(new Uint8Array(1024));
  try {
    const fd = b.call(BPF_PROG_LOAD, {
      prog_type: BPF_PROG_TYPE_TRACING, expected_attach_type: ATTACH_TYPE[kind], attach_btf_id: btfId,
      insns: ui, insn_cnt: insns.length, license: lic, log_level: 1, log_size: 1024, log_buf: log, prog_name: kind,
    }).ret;
    if (fd < 0) throw new TraceError(kernel, `loading ${kind} on ${func}`, fd, sys.kernel.machine.mem.readCString(log, 1024));
    return fd;
  } finally { b.unstage(ui); b.unstage(lic); b.unstage(log); }
}

/** The programs of an object on `func`, loaded (the whole object is, as libbpf does). */
function loadObject(sys: System, kernel: string, func: string, path: string): { fd: number; name: string; kind: TraceKind }[] {
  if (!existsSync(path)) throw new UsageError(`object file ${path} not found`);
  let obj: BpfObject;
  try {
    obj = BpfObject.open(new Uint8Array(readFileSync(path)), path, sys.objectLoadOptions).load(sys.bpfSys, sys.objectLoadOptions);
  } catch (e) {
    const errno = (e as { errno?: number }).errno;
    if (typeof errno === 'number' && errno < 0) throw new TraceError(kernel, `loading ${path}`, errno, (e as { log?: string }).log ?? '');
    throw e;
  }
  const out: { fd: number; name: string; kind: TraceKind }[] = [];
  for (const p of obj.programs.values()) {
    const m = /^(fentry|fexit|fmod_ret)\/(.+)$/.exec(p.spec.secName);
    if (m && m[2] === func) out.push({ fd: p.fd, name: p.spec.name, kind: m[1] as TraceKind });
  }
  if (!out.length) throw new UsageError(`${path} has no fentry/fexit/fmod_ret program on ${func}`);
  return out;
}

/** `call 0x…`/`movabs r, 0x…` with the address named; a hex address left over becomes `<addr>` in norm. */
function describe(sys: System, insn: Insn, image: bigint, size: number, known: Map<bigint, string>): { text: string; norm: string } {
  const name = (a: bigint): string | undefined => {
    if (a >= image && a < image + BigInt(size)) return `tramp+0x${(a - image).toString(16)}`;
    const p = known.get(a);
    if (p) return p;
    return sys.kernel.symbolize(a);
  };
  let ops = insn.opStr;
  const target = branchTarget(insn);
  if (target !== undefined) ops = `<${name(target) ?? `0x${target.toString(16)}`}>`;
  else {
    // 64-bit immediates (movabs) and 32-bit sign-extended kernel addresses: a known address by name.
    ops = ops.replace(/\b0x[0-9a-f]{9,16}\b/g, (h) => { const n = name(BigInt(h)); return n ? `<${n}>` : h; });
  }
  const text = ops ? `${insn.mnemonic} ${ops}` : insn.mnemonic;
  // A jump inside the image compares as `<tramp>`: where it lands moves with everything before it.
  return { text, norm: text.replace(/\b0xffff[0-9a-f]{12}\b/g, '<addr>').replace(/<tramp\+0x[0-9a-f]+>/g, '<tramp>') };
}

/**
 * The ksym of a trampoline's live image: `bpf_trampoline_<key>` (the half-page generations), or
 * from 5.12 the current bpf_tramp_image's `bpf_trampoline_<key>_<idx>`.
 */
export function liveTrampolineSym(sys: System, tr: BpfTrampoline): KSym | undefined {
  return sys.kernel.ksyms.lookup(tr.cur?.ksym ?? tr.ksym);
}

/** Boots `req.kernel`, attaches the programs to `req.func` and reads the trampoline back. */
export async function traceImage(req: TraceRequest): Promise<TrampImage> {
  const sys = await boot({ ...getBootOptions(), kernel: req.kernel });
  try {
    const { kernel, func } = req;
    const fn = sys.btf.findByNameKind(func, BTF_KIND.FUNC);
    if (!fn || !sys.kernel.ksyms.lookup(func)) throw new UsageError(`unknown kernel function: ${func} (no BTF FUNC of that name)`);
    const progs = req.obj ? loadObject(sys, kernel, func, req.obj)
      : (req.kinds ?? ['fentry', 'fexit']).map((kind) => ({ fd: loadTiny(sys, kernel, func, fn.id, kind, req.funcIp), name: kind, kind }));
    for (const p of progs) {
      const l = sys.bpfSys.call(BPF_RAW_TRACEPOINT_OPEN, { name: 0, prog_fd: p.fd }).ret;
      if (l < 0) throw new TraceError(kernel, `attaching ${p.kind} program ${p.name} to ${func}`, l);
    }
    const tr = sys.bpfSys.progFromFd(progs[0]!.fd)?.trampoline;
    const sym = tr && liveTrampolineSym(sys, tr);
    if (!sym) throw new Error(`kernel ${kernel}: no live trampoline image for ${func} after attaching`);
    // Addresses the image holds as immediates: each `struct bpf_prog *`, and (5.12+) its bpf_tramp_image.
    const known = new Map<bigint, string>();
    for (const p of progs) known.set(sys.bpfSys.progFromFd(p.fd)!.progAddr, `prog ${p.name}`);
    if (tr.cur) known.set(tr.cur.im, 'bpf_tramp_image');
    const insns = sys.disassembler.disasm(sys.kernel.machine.mem.read(sym.address, sym.size), sym.address).map((i) => ({
      offset: Number(i.address - sym.address),
      bytes: Buffer.from(i.bytes).toString('hex'),
      ...describe(sys, i, sym.address, sym.size, known),
    }));
    return { kernel, func, symbol: sym.name, address: sym.address, size: sym.size, progs: progs.map(({ name, kind }) => ({ name, kind })), insns };
  } finally {
    sys.close();
  }
}
