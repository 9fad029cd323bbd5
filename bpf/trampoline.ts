/**
 * @fileoverview The BPF trampoline's policy (kernel/bpf/trampoline.c, v5.5): one trampoline per
 * attach target (key = attach_btf_id), one executable page whose two halves are used in turn
 * (`selector`), regenerated on every link and unlink; at most BPF_MAX_TRAMP_PROGS programs;
 * the target's 5-byte nop poked to `call` the live half, and back to the nop after the last
 * program goes. Machine code comes from the architecture (bpf/arch.ts).
 */
import type { Kernel } from '../kernel/kernel.ts';
import type { ExecRegion } from '../kernel/execmem.ts';
import { PAGE_SIZE } from '../kernel/layout.ts';
import {
  BPF_TRAMP_F_CALL_ORIG, BPF_TRAMP_F_RESTORE_REGS, BPF_TRAMP_F_SKIP_FRAME,
  type BpfArchTrampoline, type BtfFuncModel, type TrampProg,
} from './arch.ts';

export const BPF_MAX_TRAMP_PROGS = 40;
export const TRAMPOLINE_HASH_BITS = 10;
export const X86_PATCH_SIZE = 5;
const EINVAL = 22, EBUSY = 16, E2BIG = 7;

export type TrampKind = 'fentry' | 'fexit';

/** What the trampoline needs of a linked program. */
export interface TrampLinkable {
  readonly trampProg: TrampProg;
  readonly name: string;
}

export interface TrampolineFunc {
  /** The traced function's entry: its ftrace nop (or a BPF program's entry). */
  addr: bigint;
  model: BtfFuncModel;
  name: string;
}

export class BpfTrampoline {
  readonly key: bigint;
  readonly func: TrampolineFunc;
  readonly image: ExecRegion;
  refcnt = 1;
  /** u64 on purpose in the kernel: the 0 → 1 transition is the nop → call poke. */
  selector = 0n;
  /** hlist order: newest first (hlist_add_head). */
  readonly progs: Record<TrampKind, TrampLinkable[]> = { fentry: [], fexit: [] };
  readonly ksym: string;

  constructor(key: bigint, func: TrampolineFunc, image: ExecRegion) {
    this.key = key;
    this.func = func;
    this.image = image;
    this.ksym = `bpf_trampoline_${key}`;
  }

  get progCount(): number { return this.progs.fentry.length + this.progs.fexit.length; }
}

/** What a text poke may patch: kernel text or BPF program text (bpf_arch_text_poke's check). */
export interface TextPokeSites {
  isKernelText(ip: bigint): boolean;
  isBpfText(ip: bigint): boolean;
}

export class TrampolineManager {
  private kernel: Kernel;
  private arch: BpfArchTrampoline;
  private table = new Map<bigint, BpfTrampoline>();
  private sites: TextPokeSites;
  private enterExit: () => { enter: bigint; exit: bigint };

  constructor(kernel: Kernel, arch: BpfArchTrampoline, sites: TextPokeSites, enterExit: () => { enter: bigint; exit: bigint }) {
    this.kernel = kernel;
    this.arch = arch;
    this.sites = sites;
    this.enterExit = enterExit;
  }

  /** bpf_trampoline_lookup: the trampoline of `key`, made (with its page) on first use. */
  lookup(key: bigint, func: TrampolineFunc): BpfTrampoline {
    const tr = this.table.get(key);
    if (tr) { tr.refcnt++; return tr; }
    const image = this.kernel.execmem.alloc(PAGE_SIZE, `bpf_trampoline_${key}`);
    const t = new BpfTrampoline(key, func, image);
    this.table.set(key, t);
    return t;
  }

  get(key: bigint): BpfTrampoline | undefined { return this.table.get(key); }
  get count(): number { return this.table.size; }

  /** bpf_trampoline_put: the page is freed with the last reference. */
  put(tr: BpfTrampoline): void {
    if (--tr.refcnt > 0) return;
    if (tr.progCount) throw new Error(`bpf_trampoline_put: ${tr.ksym} still has programs`); // WARN_ON_ONCE
    this.kernel.ksyms.remove(tr.ksym);
    this.kernel.execmem.free(tr.image.start);
    this.table.delete(tr.key);
  }

  /** bpf_trampoline_link_prog: -E2BIG past 40 programs, -EBUSY if already linked; undone on error. */
  linkProg(tr: BpfTrampoline, p: TrampLinkable, kind: TrampKind): number {
    if (tr.progCount >= BPF_MAX_TRAMP_PROGS) return -E2BIG;
    if (tr.progs.fentry.includes(p) || tr.progs.fexit.includes(p)) return -EBUSY;
    tr.progs[kind].unshift(p);
    const err = this.update(tr);
    if (err) tr.progs[kind].shift();
    return err;
  }

  /** bpf_trampoline_unlink_prog: never fails (an error here is a bug in the model, thrown). */
  unlinkProg(tr: BpfTrampoline, p: TrampLinkable, kind: TrampKind): void {
    const i = tr.progs[kind].indexOf(p);
    if (i < 0) throw new Error(`unlink: ${p.name} is not linked to ${tr.ksym}`);
    tr.progs[kind].splice(i, 1);
    const err = this.update(tr);
    if (err) throw new Error(`bpf_trampoline_update on unlink failed: ${err} (WARN_ON_ONCE)`);
  }

  /** bpf_trampoline_update: regenerate into the idle half and switch the call site to it. */
  update(tr: BpfTrampoline): number {
    const half = BigInt(PAGE_SIZE / 2);
    const oldImage = tr.image.start + ((tr.selector + 1n) & 1n) * half;
    const newImage = tr.image.start + (tr.selector & 1n) * half;
    if (tr.progCount === 0) {
      const err = this.bpfArchTextPoke(tr.func.addr, oldImage, undefined); // unregister_fentry
      tr.selector = 0n;
      this.kernel.ksyms.remove(tr.ksym);
      return err;
    }
    const flags = tr.progs.fexit.length ? BPF_TRAMP_F_CALL_ORIG | BPF_TRAMP_F_SKIP_FRAME : BPF_TRAMP_F_RESTORE_REGS;
    const { enter, exit } = this.enterExit();
    const code = this.arch.archPrepareBpfTrampoline({
      image: newImage, size: PAGE_SIZE / 2, model: tr.func.model, flags,
      fentry: tr.progs.fentry.map((p) => p.trampProg), fexit: tr.progs.fexit.map((p) => p.trampProg),
      origCall: tr.func.addr, bpfProgEnter: enter, bpfProgExit: exit,
    });
    if (typeof code === 'number') return code;
    this.kernel.execmem.write(newImage, code);
    const err = tr.selector ? this.bpfArchTextPoke(tr.func.addr, oldImage, newImage) // modify_fentry
      : this.bpfArchTextPoke(tr.func.addr, undefined, newImage);                     // register_fentry
    if (err) return err;
    tr.selector++;
    this.kernel.ksyms.remove(tr.ksym);
    this.kernel.ksyms.add({ name: tr.ksym, address: newImage, size: code.length, type: 't' });
    return 0;
  }

  /**
   * bpf_arch_text_poke(ip, BPF_MOD_CALL, old, new): the site must be kernel or BPF text (-EINVAL)
   * and hold exactly the old instruction (-EBUSY, nothing written); undefined means the nop.
   */
  bpfArchTextPoke(ip: bigint, oldAddr: bigint | undefined, newAddr: bigint | undefined): number {
    if (!this.sites.isKernelText(ip) && !this.sites.isBpfText(ip)) return -EINVAL;
    const oldInsn = this.arch.textPokeInsn(ip, 'call', oldAddr);
    const newInsn = this.arch.textPokeInsn(ip, 'call', newAddr);
    if (typeof oldInsn === 'number') return oldInsn;
    if (typeof newInsn === 'number') return newInsn;
    const mem = this.kernel.machine.mem;
    const cur = mem.read(ip, X86_PATCH_SIZE);
    if (!cur.every((b, i) => b === oldInsn[i])) return -EBUSY;
    this.kernel.machine.writeCode(ip, newInsn); // text_poke_bp; drops the stale translation
    return 0;
  }
}
