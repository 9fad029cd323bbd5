/**
 * @fileoverview The calling-convention harness: a batch of generated cases (gen.ts) is compiled
 * by gcc into one kernel module with split BTF (build.ts), loaded (kernel/module.ts), and each
 * case is run under emulation: first with nothing attached (the baseline), then with fentry
 * only, fexit only, both, and 40 programs (20 + 20) attached through the real trampoline by
 * bpf() (PROG_LOAD with the module's attach_btf_id, RAW_TRACEPOINT_OPEN). Each run must show:
 *  - every program ran once and recorded each argument, cast to its declared type, equal to
 *    the value the caller passed after the C conversion; fexit's return equal to what the
 *    caller received;
 *  - the callee saw the same arguments as in the baseline, and the caller got the same result;
 *  - rbx, rbp, r12-r15 (set to sentinels before the call) and rsp unchanged across the call,
 *    and a value the caller keeps in a callee-saved register across the call intact.
 * What the kernel really does that a program can see but the C contract does not promise (the
 * upper bytes of a narrow argument's u64 slot, the upper bits of a narrow return in rax, the
 * arguments btf_ctx_access refuses, the stack alignment the body runs with) is counted as a
 * finding, never as a failure (docs/ABI.md).
 *
 * Under a kernel profile (boot({ kernel })), a case whose shape the profile cannot trace (a
 * struct by value before 6.1, more than 6 — from 6.6, 12 — argument slots) is skipped, not run:
 * gen_ext.ts's skipReason, from the profile's table row. Everything is compared per ctx slot.
 */
import type { System } from '../../index.ts';
import { encode, type Insn } from '../../bpf/isa/insn.ts';
import { BTF_KIND, type Btf } from '../../bpf/btf/btf.ts';
import { enableModuleBtf, type BtfModules } from '../../bpf/btf_module.ts';
import { bpfCheck } from '../../bpf/verifier/verifier.ts';
import { BPF_MAP_CREATE, BPF_PROG_LOAD, BPF_RAW_TRACEPOINT_OPEN, BPF_BTF_GET_FD_BY_ID } from '../../bpf/syscall/attr.ts';
import { BPF_PROG_TYPE_TRACING, BPF_TRACE_FENTRY, BPF_TRACE_FEXIT } from '../../bpf/prog_types.ts';
import { BPF_MAX_TRAMP_PROGS } from '../../bpf/trampoline.ts';
import type { KernelModule } from '../../kernel/module.ts';
import { buildModule } from './build.ts';
import { callee, caller, emitC, prototype, VOID, MAX_SLOTS, definedBytes, slotLayout, slotsOf, slotWords, type AbiCase, type CType } from './gen.ts';
import { skipReason } from './gen_ext.ts';
import { recordingProgram, directReadProbe, RECORD_SIZE, REC_CAST, REC_HITS, REC_RAW, type SlotSpec } from './progs.ts';

export type Mode = 'fentry' | 'fexit' | 'both' | 'forty';
export const MODES: readonly Mode[] = ['fentry', 'fexit', 'both', 'forty'];
const HALF = BPF_MAX_TRAMP_PROGS / 2;
const BPF_MAP_TYPE_ARRAY = 2;

/** One slot that differed. */
export interface SlotDiff {
  mode: Mode | 'baseline';
  /** `arg2` (what a program recorded), `ret`, `callee arg1`, `caller result`, `rbx`, `rsp`, `hits`, `keep p3` … */
  slot: string;
  /** Which program recorded it (`fentry#0`, `fexit#19`). */
  prog?: string;
  expected: bigint;
  got: bigint;
  /** The live trampoline's disassembly when it happened. */
  trampoline?: string;
  note?: string;
}

/** A kernel behaviour a program can observe (docs/ABI.md): counted, with the first example. */
export interface Finding { kind: FindingKind; count: number; example: string }
export type FindingKind = 'narrow-arg-slot-upper-bytes' | 'narrow-ret-upper-bits' | 'ctx-access-refused' | 'body-rsp-alignment';

export interface CaseResult {
  case: AbiCase;
  failures: SlotDiff[];
  /** Not run: the machine's kernel profile cannot trace this shape (why). */
  skipped?: string;
  /** An error that stopped the case (load refused, guest fault …). */
  error?: string;
  /** With `details`: every finding of this case, and what each program recorded. */
  observed?: { kind: FindingKind; mode: Mode | 'load'; detail: string }[];
  records?: { mode: Mode; prog: string; raw: bigint[]; cast: bigint[]; rawRet?: bigint; castRet?: bigint }[];
}

export interface BatchTimings { gccMs: number; paholeMs: number; loadMs: number; runMs: number }

export interface HarnessOptions {
  modes?: readonly Mode[];
  /** Capture the trampoline's disassembly on a failure (default true). */
  disasmOnFailure?: boolean;
  /** Keep each case's findings and program records in its result (tests). */
  details?: boolean;
}

const SENTINELS = {
  rbx: 0xb0b0b0b0b0b0b0b1n, rbp: 0xbbbbbbbbbbbbbb01n, r12: 0x1212121212121212n,
  r13: 0x1313131313131313n, r14: 0x1414141414141414n, r15: 0x1515151515151515n,
} as const;
type CalleeSaved = keyof typeof SENTINELS;
const CALLEE_SAVED = Object.keys(SENTINELS) as CalleeSaved[];
/** Stack poison below the call (so the trampoline's uninitialised slot bytes are recognisable). */
const POISON = 0x5a;
const POISON_LEN = 2048;
const hex = (v: bigint): string => `0x${v.toString(16)}`;

/** An argument's ctx slot, and which argument it belongs to. */
interface ArgSlot extends SlotSpec { readonly arg: number }

/** `arg3`, or a struct's slots `arg3` and `arg3.1`, by ctx slot (reproducers name these). */
function slotName(c: AbiCase, k: number): string {
  const { first } = slotLayout(c.args);
  let i = first.length - 1;
  while (first[i]! > k) i--;
  return k === first[i] ? `arg${i}` : `arg${i}.${k - first[i]!}`;
}

interface CallOutcome { rax: bigint; regs: Record<CalleeSaved, bigint>; rsp: bigint; spAtEntry: bigint }

export class AbiHarness {
  readonly sys: System;
  readonly mods: BtfModules;
  readonly findings = new Map<FindingKind, Finding>();
  private readonly opts: Required<HarnessOptions>;
  private mapFd: number;
  private mapValue: bigint;
  private license: bigint;
  private logBuf: bigint;
  private batchNo = 0;

  constructor(sys: System, opts: HarnessOptions = {}) {
    this.sys = sys;
    this.opts = { modes: opts.modes ?? MODES, disasmOnFailure: opts.disasmOnFailure ?? true, details: opts.details ?? false };
    this.mods = enableModuleBtf(sys.bpfSys, sys.btf);
    const b = sys.bpfSys;
    this.mapFd = b.call(BPF_MAP_CREATE, { map_type: BPF_MAP_TYPE_ARRAY, key_size: 4, value_size: RECORD_SIZE * BPF_MAX_TRAMP_PROGS, max_entries: 1, map_name: 'abi_records' }).ret;
    if (this.mapFd < 0) throw new Error(`abi-fuzz: BPF_MAP_CREATE failed: ${this.mapFd}`);
    this.mapValue = b.mapFromFd(this.mapFd)!.impl.lookupElem(new Uint8Array(4))!;
    this.license = b.stage(Buffer.from('GPL\0'));
    this.logBuf = b.stage(new Uint8Array(4096));
  }

  close(): void {
    const b = this.sys.bpfSys;
    this.sys.kernel.current.files.close(this.mapFd);
    b.unstage(this.license);
    b.unstage(this.logBuf);
  }

  private note(kind: FindingKind, example: () => string, at?: { res: CaseResult; mode: Mode | 'load' }): void {
    if (at && this.opts.details) (at.res.observed ??= []).push({ kind, mode: at.mode, detail: example() });
    const f = this.findings.get(kind);
    if (f) f.count++;
    else this.findings.set(kind, { kind, count: 1, example: example() });
  }

  /** Compiles the batch into one module, runs every case, unloads. */
  runBatch(all: readonly AbiCase[], modes: readonly Mode[] = this.opts.modes): { results: CaseResult[]; timings: BatchTimings } {
    const profile = this.sys.kernel.profile.trampoline;
    const skipped = new Map<AbiCase, string>();
    for (const c of all) { const why = skipReason(profile, c); if (why) skipped.set(c, why); }
    const cases = all.filter((c) => !skipped.has(c));
    const inOrder = (ran: CaseResult[]): CaseResult[] => all.map((c) => (skipped.has(c) ? { case: c, failures: [], skipped: skipped.get(c)! } : ran.find((r) => r.case === c)!));
    if (!cases.length) return { results: inOrder([]), timings: { gccMs: 0, paholeMs: 0, loadMs: 0, runMs: 0 } };
    const built = buildModule(emitC(cases), { name: `abi_fuzz_${cases[0]!.seed}_${cases[0]!.index}` });
    const t0 = performance.now();
    const name = `abi_fuzz_${this.batchNo++}`;
    const mod = this.mods.modules.load(built.bytes, { name, requireBtf: true });
    const loadMs = performance.now() - t0;
    const t1 = performance.now();
    const btfFd = this.sys.bpfSys.call(BPF_BTF_GET_FD_BY_ID, { start_id: this.mods.of(mod)!.obj.id }).ret;
    const results: CaseResult[] = [];
    try {
      for (const c of cases) results.push(this.runCase(c, mod, btfFd, modes));
    } finally {
      this.sys.kernel.current.files.close(btfFd);
      const err = this.mods.modules.rmmod(name);
      if (err) throw new Error(`abi-fuzz: rmmod ${name} failed: ${err} (a program still holds it?)`);
    }
    return { results: inOrder(results), timings: { gccMs: built.gccMs, paholeMs: built.paholeMs, loadMs, runMs: performance.now() - t1 } };
  }

  private symAddr(mod: KernelModule, name: string): bigint {
    const s = mod.syms.find((x) => x.name === name);
    if (!s) throw new Error(`abi-fuzz: module ${mod.name} has no symbol ${name}`);
    return s.address;
  }

  /** Calls the caller with the params in rdi..r9 and sentinels in the callee-saved registers. */
  private call(addr: bigint, params: readonly bigint[]): CallOutcome {
    const m = this.sys.kernel.machine;
    const sp = m.prepareCall(addr, params);
    m.mem.write(sp - BigInt(POISON_LEN), new Uint8Array(POISON_LEN).fill(POISON));
    for (const r of CALLEE_SAVED) m.regs[r] = SENTINELS[r];
    const stop = m.run({ timeoutUs: 5_000_000 });
    if (stop.kind !== 'exit') throw new Error(`the call did not return (${stop.kind} at ${hex(stop.rip)})`);
    const regs = {} as Record<CalleeSaved, bigint>;
    for (const r of CALLEE_SAVED) regs[r] = m.regs[r];
    return { rax: stop.rax, regs, rsp: m.regs.rsp, spAtEntry: sp };
  }

  private runCase(c: AbiCase, mod: KernelModule, btfFd: number, modes: readonly Mode[]): CaseResult {
    const res: CaseResult = { case: c, failures: [] };
    const fds: number[] = [];
    const files = this.sys.kernel.current.files;
    try {
      const mem = this.sys.kernel.machine.mem;
      const btf = this.mods.of(mod)!.btf;
      const func = btf.findByNameKind(callee(c), BTF_KIND.FUNC);
      if (!func) throw new Error(`no BTF FUNC ${callee(c)} in the module's BTF`);
      const callerAddr = this.symAddr(mod, caller(c));
      const seenAddr = this.symAddr(mod, 'abi_seen') + BigInt(c.index * MAX_SLOTS * 8);
      const spAddr = this.symAddr(mod, 'abi_sp') + BigInt(c.index * 8);
      const keepAddr = this.symAddr(mod, 'abi_keep') + BigInt(c.index * 8);
      const slots = this.slotSpecs(c, btf, func.id, res);

      // The baseline: nothing attached. It must match the generator's C model.
      const base = this.call(callerAddr, c.params);
      const baseSp = mem.readU64(spAddr);
      const words = c.values.flatMap(slotWords);
      const baseSeen = words.map((_, k) => mem.readU64(seenAddr + BigInt(8 * k)));
      this.checkCall('baseline', c, base, c.expectedRet, keepAddr, res);
      words.forEach((w, k) => {
        if (baseSeen[k] !== w) res.failures.push({ mode: 'baseline', slot: `callee ${slotName(c, k)}`, expected: w, got: baseSeen[k]!, note: 'the module as gcc compiled it disagrees with the generator (a harness bug)' });
      });
      if (res.failures.length) return res;

      const load = (kind: 'fentry' | 'fexit', i: number): number => {
        const rec = (kind === 'fentry' ? 0 : HALF) + i;
        const insns = recordingProgram(this.mapFd, rec, kind === 'fentry' ? slots.args : [...slots.args, ...slots.ret]);
        const fd = this.progLoad(insns, func.id, btfFd, kind, `abi_${kind}_${i}`);
        fds.push(fd);
        return fd;
      };
      const progs: Record<'fentry' | 'fexit', number[]> = { fentry: [], fexit: [] };
      const progFd = (kind: 'fentry' | 'fexit', i: number): number => (progs[kind][i] ??= load(kind, i));

      for (const mode of modes) {
        // 'forty': as many as the profile's trampoline takes (BPF_MAX_TRAMP_PROGS 40; 38 from 5.12).
        const n = mode === 'forty' ? Math.floor(this.sys.kernel.profile.trampoline.maxProgs / 2) : 1;
        const kinds: ('fentry' | 'fexit')[] = mode === 'fentry' ? ['fentry'] : mode === 'fexit' ? ['fexit'] : ['fentry', 'fexit'];
        mem.write(this.mapValue, new Uint8Array(RECORD_SIZE * BPF_MAX_TRAMP_PROGS));
        mem.write(seenAddr, new Uint8Array(MAX_SLOTS * 8));
        mem.writeU64(keepAddr, 0n);
        const links: number[] = [];
        const attached: { kind: 'fentry' | 'fexit'; i: number }[] = [];
        try {
          for (const kind of kinds) {
            for (let i = 0; i < n; i++) {
              const l = this.sys.bpfSys.call(BPF_RAW_TRACEPOINT_OPEN, { name: 0, prog_fd: progFd(kind, i) }).ret;
              if (l < 0) throw new Error(`${mode}: attaching ${kind}#${i} failed: ${l}`);
              links.push(l);
              attached.push({ kind, i });
            }
          }
          const before = res.failures.length;
          let out: CallOutcome;
          try {
            out = this.call(callerAddr, c.params);
          } catch (e) {
            res.failures.push({ mode, slot: 'call', expected: 0n, got: 0n, note: e instanceof Error ? e.message : String(e), trampoline: this.trampolineText(progFd(kinds[0]!, 0)) });
            continue;
          }
          this.checkCall(mode, c, out, base.rax, keepAddr, res);
          baseSeen.forEach((w, k) => {
            const got = mem.readU64(seenAddr + BigInt(8 * k));
            if (got !== w) res.failures.push({ mode, slot: `callee ${slotName(c, k)}`, expected: w, got });
          });
          const sp = mem.readU64(spAddr);
          if ((sp - baseSp) % 16n !== 0n) this.note('body-rsp-alignment', () => `${prototype(c)}: with ${mode} the body ran with rsp ${sp - baseSp} bytes from the untraced call's, off the SysV 16-byte alignment (${c.args.length} args)`, { res, mode });
          for (const a of attached) this.checkRecord(c, mode, a.kind, a.i, out.rax, slots, res);
          if (res.failures.length > before && this.opts.disasmOnFailure) {
            const text = this.trampolineText(progFd(kinds[0]!, 0));
            for (const f of res.failures.slice(before)) f.trampoline = text;
          }
        } finally {
          for (const l of links) files.close(l);
        }
      }
    } catch (e) {
      if (!(e instanceof Error)) throw e;
      res.error = e.message; // a refused load or attach, a fault in the baseline …
    } finally {
      for (const fd of fds) files.close(fd);
    }
    return res;
  }

  /** The registers, rsp, the kept value and the caller's result. */
  private checkCall(mode: Mode | 'baseline', c: AbiCase, out: CallOutcome, expectedRax: bigint, keepAddr: bigint, res: CaseResult): void {
    if (out.rax !== expectedRax) res.failures.push({ mode, slot: 'caller result', expected: expectedRax, got: out.rax, note: mode === 'baseline' ? 'gcc and the generator disagree (a harness bug)' : 'differs from the call with nothing attached' });
    for (const r of CALLEE_SAVED) if (out.regs[r] !== SENTINELS[r]) res.failures.push({ mode, slot: r, expected: SENTINELS[r], got: out.regs[r], note: 'callee-saved register changed across the call' });
    if (out.rsp !== out.spAtEntry + 8n) res.failures.push({ mode, slot: 'rsp', expected: out.spAtEntry + 8n, got: out.rsp, note: 'stack pointer not restored' });
    if (c.keep !== undefined) {
      const got = this.sys.kernel.machine.mem.readU64(keepAddr), expected = c.params[c.keep]!;
      if (got !== expected) res.failures.push({ mode, slot: `keep p${c.keep}`, expected, got, note: 'a value the caller kept in a callee-saved register across the call changed' });
    }
  }

  /** One program's record against the values. */
  private checkRecord(c: AbiCase, mode: Mode, kind: 'fentry' | 'fexit', i: number, rax: bigint, slots: { args: ArgSlot[]; ret: SlotSpec[] }, res: CaseResult): void {
    const mem = this.sys.kernel.machine.mem;
    const rec = this.mapValue + BigInt(((kind === 'fentry' ? 0 : HALF) + i) * RECORD_SIZE);
    const prog = `${kind}#${i}`;
    const hits = mem.readU64(rec + BigInt(REC_HITS));
    if (hits !== 1n) { res.failures.push({ mode, slot: 'hits', prog, expected: 1n, got: hits, note: 'the program did not run exactly once' }); return; }
    const { total } = slotLayout(c.args);
    const at = (base: number, k: number): bigint => mem.readU64(rec + BigInt(base + 8 * k));
    const fexit = kind === 'fexit' && slots.ret.length > 0;
    if (this.opts.details) {
      (res.records ??= []).push({
        mode, prog, raw: Array.from({ length: total }, (_, k) => at(REC_RAW, k)), cast: Array.from({ length: total }, (_, k) => at(REC_CAST, k)),
        ...(fexit ? { rawRet: at(REC_RAW, total), castRet: at(REC_CAST, total) } : {}),
      });
    }
    // Per slot: the cast (a struct's defined bytes) must be the value; a raw word that differs
    // only above the type is the kernel's (uninitialised slot bytes, padding, the caller's garbage).
    for (const s of slots.args) {
      const ty = s.type, v = c.values[s.arg]!, want = slotWords(v)[s.index - slotLayout(c.args).first[s.arg]!]!;
      const got = at(REC_CAST, s.index), raw = at(REC_RAW, s.index);
      if (got !== want) res.failures.push({ mode, slot: slotName(c, s.index), prog, expected: want, got });
      else if ((s.defined ?? ty.size) < 8 && raw !== got) {
        this.note('narrow-arg-slot-upper-bytes', () => `${ty.c} a${s.arg} = ${hex(want)}: the program's raw u64 read of ctx[${s.index}] gave ${hex(raw)} (${prog}, ${mode})`, { res, mode });
      }
    }
    if (fexit) {
      const got = at(REC_CAST, total);
      if (got !== rax) res.failures.push({ mode, slot: 'ret', prog, expected: rax, got, note: 'fexit return value differs from what the caller received' });
      const raw = at(REC_RAW, total);
      if (raw !== got && got === rax) this.note('narrow-ret-upper-bits', () => `${c.ret.c} return ${hex(rax)}: the raw u64 ctx[${total}] (rax as the callee left it) was ${hex(raw)} (${prog}, ${mode})`, { res, mode });
    }
  }

  /** Which slots a program may load directly (btf_ctx_access) and which need bpf_probe_read. */
  private slotSpecs(c: AbiCase, btf: Btf, funcId: number, res: CaseResult): { args: ArgSlot[]; ret: SlotSpec[] } {
    // With a struct argument the slots no longer map one-to-one to arguments, which the
    // probe (one slot, the argument of that index) cannot express: read every slot with
    // bpf_probe_read then, whatever the verifier would allow.
    const structs = c.args.some((t) => t.kind === 'struct');
    const direct = (i: number, ty: CType): boolean => {
      if (structs) return false;
      // The verifier of this machine's profile decides (btf_ctx_access), as PROG_LOAD would.
      const ok = bpfCheck(directReadProbe(i), {
        progType: BPF_PROG_TYPE_TRACING, expectedAttachType: BPF_TRACE_FEXIT, attach: { btf, funcId }, btf: this.sys.btf, profile: this.sys.kernel.profile,
      }).errno === 0;
      if (!ok) this.note('ctx-access-refused', () => `${prototype(c)}: a direct load of ctx[${i}] (${ty.c}) is refused by btf_ctx_access; read with bpf_probe_read`, { res, mode: 'load' });
      return ok;
    };
    const { first, total } = slotLayout(c.args);
    const args = c.args.flatMap((ty, i) => Array.from({ length: slotsOf(ty) }, (_, k): ArgSlot => ({
      index: first[i]! + k, arg: i, type: ty, direct: direct(first[i]! + k, ty), ...(ty.kind === 'struct' ? { defined: definedBytes(ty, k) } : {}),
    })));
    const ret = c.ret === VOID ? [] : [{ index: total, type: c.ret, direct: direct(total, c.ret) }];
    return { args, ret };
  }

  private progLoad(insns: Insn[], btfId: number, btfFd: number, kind: 'fentry' | 'fexit', name: string): number {
    const b = this.sys.bpfSys;
    const ui = b.stage(encode(insns));
    try {
      const fd = b.call(BPF_PROG_LOAD, {
        prog_type: BPF_PROG_TYPE_TRACING, expected_attach_type: kind === 'fentry' ? BPF_TRACE_FENTRY : BPF_TRACE_FEXIT,
        attach_btf_id: btfId, attach_prog_fd: btfFd, insns: ui, insn_cnt: insns.length, license: this.license,
        log_level: 1, log_size: 4096, log_buf: this.logBuf, prog_name: name,
      }).ret;
      if (fd < 0) throw new Error(`PROG_LOAD ${name} failed: ${fd}: ${this.sys.kernel.machine.mem.readCString(this.logBuf, 4096).trim()}`);
      return fd;
    } finally {
      b.unstage(ui);
    }
  }

  /** The live trampoline image of a program's target, disassembled. */
  private trampolineText(progFd: number | undefined): string | undefined {
    if (progFd === undefined) return undefined;
    const tr = this.sys.bpfSys.progFromFd(progFd)?.trampoline;
    const sym = tr && this.sys.kernel.ksyms.lookup(tr.ksym);
    if (!sym) return undefined;
    return this.sys.disasmText(sym.address, sym.size);
  }
}
