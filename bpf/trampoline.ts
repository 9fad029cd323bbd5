/**
 * @fileoverview The BPF trampoline's policy (kernel/bpf/trampoline.c) for the machine's kernel
 * generation (kernel.profile.trampoline): one trampoline per attach target (key = attach_btf_id),
 * regenerated on every link and unlink; the target's 5-byte nop poked to `call` the live image,
 * and back to the nop after the last program goes. Machine code comes from the architecture
 * (bpf/arch.ts).
 *
 *  - 5.5 – 5.11: one executable page whose two halves are used in turn (`selector`), at most
 *    BPF_MAX_TRAMP_PROGS (40) programs; fentry and fexit (5.7: fmod_ret too) count together.
 *  - 5.12+ (e21aa341785c "bpf: Fix fexit trampoline."): a new page per update, a struct
 *    bpf_tramp_image with a percpu_ref that __bpf_tramp_enter/exit take and drop around the
 *    original call; the old image is retired: its im->ip_after_call poked to `jmp ip_epilogue`
 *    (a task still inside the original function skips the fexit programs, which may be going),
 *    and freed once no call is inside it. 38 programs (BPF_MAX_TRAMP_LINKS from 5.19).
 *
 * The kernel waits with percpu_ref_kill + call_rcu_tasks; here, with one CPU: the image's
 * counter is 0 (nobody between __bpf_tramp_enter and __bpf_tramp_exit) and no guest code is
 * running (RCU-tasks' quiescent state: no task can be in the first or last few instructions).
 * Both hold whenever attach/detach come from TypeScript at the top level, so the old image goes
 * at once; from inside a guest call (a native that detaches) it waits for the next update or
 * put, or for reap().
 */
import type { Kernel } from '../kernel/kernel.ts';
import type { ExecRegion } from '../kernel/execmem.ts';
import { PAGE_SIZE } from '../kernel/layout.ts';
import {
  BPF_TRAMP_F_CALL_ORIG, BPF_TRAMP_F_IP_ARG, BPF_TRAMP_F_RESTORE_REGS, BPF_TRAMP_F_SKIP_FRAME, TRAMP_IMAGE_STANDIN,
  type BpfArchTrampoline, type BtfFuncModel, type TrampProg, type TrampolineInput,
} from './arch.ts';

/** v5.5's limit; a profile's own is kernel.profile.trampoline.maxProgs (38 from 5.12). */
export const BPF_MAX_TRAMP_PROGS = 40;
export const TRAMPOLINE_HASH_BITS = 10;
export const X86_PATCH_SIZE = 5;
const EINVAL = 22, EBUSY = 16, E2BIG = 7, ENOMEM = 12;

/** The hlists of a trampoline: BPF_TRAMP_FENTRY, BPF_TRAMP_FEXIT, BPF_TRAMP_MODIFY_RETURN (5.7). */
export type TrampKind = 'fentry' | 'fexit' | 'fmod_ret';
const KINDS: readonly TrampKind[] = ['fentry', 'fexit', 'fmod_ret'];

/** What the trampoline needs of a linked program. */
export interface TrampLinkable {
  readonly trampProg: TrampProg;
  readonly name: string;
  /**
   * prog->call_get_func_ip (the verifier saw bpf_get_func_ip): from 5.15 the trampoline then
   * stores the traced function's ip on its frame (BPF_TRAMP_F_IP_ARG; bpf_trampoline_get_progs
   * ORs it over every linked program, as later kernels still do).
   */
  readonly callGetFuncIp?: boolean;
}

export interface TrampolineFunc {
  /** The traced function's entry: its ftrace nop (or a BPF program's entry). */
  addr: bigint;
  model: BtfFuncModel;
  name: string;
}

/** 5.12+'s struct bpf_tramp_image: the page, the guest stand-in holding pcref, the ip fields. */
export interface TrampImage {
  readonly region: ExecRegion;
  /** The stand-in `struct bpf_tramp_image *` (TRAMP_IMAGE_STANDIN: pcref a u64 at 0). */
  readonly im: bigint;
  readonly ksym: string;
  ipAfterCall?: bigint;
  ipEpilogue?: bigint;
}

const NO_REGION: ExecRegion = Object.freeze({ start: 0n, size: 0, name: '' });

export class BpfTrampoline {
  readonly key: bigint;
  readonly func: TrampolineFunc;
  refcnt = 1;
  /** u64 on purpose in the kernel: the 0 → 1 transition is the nop → call poke. */
  selector = 0n;
  /** hlist order: newest first (hlist_add_head). */
  readonly progs: Record<TrampKind, TrampLinkable[]> = { fentry: [], fexit: [], fmod_ret: [] };
  /** The half-page generations' page (5.5 – 5.11). */
  readonly page: ExecRegion | undefined;
  /** 5.12+: the live image (tr->cur_image). */
  cur: TrampImage | undefined;
  readonly ksym: string;

  constructor(key: bigint, func: TrampolineFunc, page: ExecRegion | undefined) {
    this.key = key;
    this.func = func;
    this.page = page;
    this.ksym = `bpf_trampoline_${key}`;
  }

  /** The executable region calls go to: the page (5.5), or the live image's page (5.12+; empty without one). */
  get image(): ExecRegion { return this.page ?? this.cur?.region ?? NO_REGION; }

  get progCount(): number { return this.progs.fentry.length + this.progs.fexit.length + this.progs.fmod_ret.length; }
}

/** What a text poke may patch: kernel text or BPF program text (bpf_arch_text_poke's check). */
export interface TextPokeSites {
  isKernelText(ip: bigint): boolean;
  isBpfText(ip: bigint): boolean;
}

/** __bpf_prog_enter/exit and, from 5.12, __bpf_tramp_enter/exit (bpf/prog_enter_install.ts). */
export interface EnterExitAddrs { enter: bigint; exit: bigint; trampEnter?: bigint; trampExit?: bigint }

export class TrampolineManager {
  private kernel: Kernel;
  private arch: BpfArchTrampoline;
  private table = new Map<bigint, BpfTrampoline>();
  private sites: TextPokeSites;
  private enterExit: () => EnterExitAddrs;
  /** 5.12+: images replaced or unregistered, freed once nothing can be inside them. */
  private retired: TrampImage[] = [];

  constructor(kernel: Kernel, arch: BpfArchTrampoline, sites: TextPokeSites, enterExit: () => EnterExitAddrs) {
    this.kernel = kernel;
    this.arch = arch;
    this.sites = sites;
    this.enterExit = enterExit;
  }

  private get gen() { return this.kernel.profile.trampoline; }

  /** BPF_MAX_TRAMP_PROGS / BPF_MAX_TRAMP_LINKS of the machine's generation. */
  get maxProgs(): number { return this.gen.maxProgs; }

  /** bpf_trampoline_lookup: the trampoline of `key`, made on first use (with its page before 5.12). */
  lookup(key: bigint, func: TrampolineFunc): BpfTrampoline {
    const tr = this.table.get(key);
    if (tr) { tr.refcnt++; return tr; }
    const page = this.gen.imagePerUpdate ? undefined : this.kernel.execmem.alloc(PAGE_SIZE, `bpf_trampoline_${key}`);
    const t = new BpfTrampoline(key, func, page);
    this.table.set(key, t);
    return t;
  }

  get(key: bigint): BpfTrampoline | undefined { return this.table.get(key); }
  get count(): number { return this.table.size; }
  /** Retired images not yet freed (5.12+). */
  get retiredImages(): number { return this.retired.length; }

  /** bpf_trampoline_put: the page (5.5) is freed with the last reference; 5.12's images go on their own. */
  put(tr: BpfTrampoline): void {
    if (--tr.refcnt > 0) return;
    if (tr.progCount) throw new Error(`bpf_trampoline_put: ${tr.ksym} still has programs`); // WARN_ON_ONCE
    if (tr.page) {
      this.kernel.ksyms.remove(tr.ksym);
      this.kernel.execmem.free(tr.page.start);
    }
    this.table.delete(tr.key);
    this.reap();
  }

  /**
   * bpf_trampoline_link_prog: -E2BIG past the generation's limit (fentry, fexit and fmod_ret
   * together), -EBUSY if already linked, -EINVAL for fmod_ret before 5.7; undone on error.
   */
  linkProg(tr: BpfTrampoline, p: TrampLinkable, kind: TrampKind): number {
    if (kind === 'fmod_ret' && !this.gen.fmodRet) return -EINVAL;
    if (tr.progCount >= this.gen.maxProgs) return -E2BIG;
    if (KINDS.some((k) => tr.progs[k].includes(p))) return -EBUSY;
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

  /** The flags bpf_trampoline_update passes: CALL_ORIG|SKIP_FRAME with fexit or fmod_ret, IP_ARG (5.15). */
  flagsOf(tr: BpfTrampoline): number {
    let flags = tr.progs.fexit.length || tr.progs.fmod_ret.length
      ? BPF_TRAMP_F_CALL_ORIG | BPF_TRAMP_F_SKIP_FRAME : BPF_TRAMP_F_RESTORE_REGS;
    if (this.gen.ipArg && KINDS.some((k) => tr.progs[k].some((p) => p.callGetFuncIp))) flags |= BPF_TRAMP_F_IP_ARG;
    return flags;
  }

  /** bpf_trampoline_update: regenerate and switch the call site to the new code. */
  update(tr: BpfTrampoline): number {
    const err = this.gen.imagePerUpdate ? this.updateImage(tr) : this.updateHalfPage(tr);
    this.reap();
    return err;
  }

  /** The generator's input for `image`, less what differs between the two schemes. */
  private input(tr: BpfTrampoline, image: bigint, size: number): TrampolineInput {
    const { enter, exit } = this.enterExit();
    const progs = (k: TrampKind): TrampProg[] => tr.progs[k].map((p) => p.trampProg);
    return {
      image, size, model: tr.func.model, flags: this.flagsOf(tr), fentry: progs('fentry'), fexit: progs('fexit'),
      fmodRet: progs('fmod_ret'), origCall: tr.func.addr, bpfProgEnter: enter, bpfProgExit: exit, gen: this.gen,
    };
  }

  /** 5.5 – 5.11: into the idle half of the page. */
  private updateHalfPage(tr: BpfTrampoline): number {
    const page = tr.page!, half = BigInt(PAGE_SIZE / 2);
    const oldImage = page.start + ((tr.selector + 1n) & 1n) * half;
    const newImage = page.start + (tr.selector & 1n) * half;
    if (tr.progCount === 0) {
      const err = this.bpfArchTextPoke(tr.func.addr, oldImage, undefined); // unregister_fentry
      tr.selector = 0n;
      this.kernel.ksyms.remove(tr.ksym);
      return err;
    }
    const code = this.arch.archPrepareBpfTrampoline(this.input(tr, newImage, PAGE_SIZE / 2));
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

  /** 5.12+: a new image (bpf_tramp_image_alloc) per update; the previous one retired. */
  private updateImage(tr: BpfTrampoline): number {
    const old = tr.cur;
    if (tr.progCount === 0) {
      const err = old ? this.bpfArchTextPoke(tr.func.addr, old.region.start, undefined) : 0; // unregister_fentry
      if (old) this.retire(old);
      tr.cur = undefined;
      tr.selector = 0n;
      return err;
    }
    const im = this.allocImage(tr);
    if (typeof im === 'number') return im;
    const { trampEnter, trampExit } = this.enterExit();
    if (trampEnter === undefined || trampExit === undefined) throw new Error('5.12+ trampolines need __bpf_tramp_enter/exit');
    const inp = this.input(tr, im.region.start, PAGE_SIZE);
    const timg = { im: im.im, enter: trampEnter, exit: trampExit } as NonNullable<TrampolineInput['trampImage']>;
    const code = this.arch.archPrepareBpfTrampoline({ ...inp, trampImage: timg });
    if (typeof code === 'number') { this.freeImage(im); return code; }
    im.ipAfterCall = timg.ipAfterCall;
    im.ipEpilogue = timg.ipEpilogue;
    this.kernel.execmem.write(im.region.start, code);
    const err = old ? this.bpfArchTextPoke(tr.func.addr, old.region.start, im.region.start) // modify_fentry
      : this.bpfArchTextPoke(tr.func.addr, undefined, im.region.start);                    // register_fentry
    if (err) { this.freeImage(im); return err; }
    this.kernel.ksyms.add({ name: im.ksym, address: im.region.start, size: code.length, type: 't' });
    if (old) this.retire(old);
    tr.cur = im;
    tr.selector++;
    return 0;
  }

  /** bpf_tramp_image_alloc(key, idx): a page, the stand-in (kzalloc'd), ksym "bpf_trampoline_KEY_IDX". */
  private allocImage(tr: BpfTrampoline): TrampImage | number {
    const ksym = `bpf_trampoline_${tr.key}_${tr.selector}`;
    const im = this.kernel.slab.kzalloc(TRAMP_IMAGE_STANDIN.size);
    if (im === undefined) return -ENOMEM;
    return { region: this.kernel.execmem.alloc(PAGE_SIZE, ksym), im, ksym };
  }

  private freeImage(im: TrampImage): void {
    this.kernel.ksyms.remove(im.ksym);
    this.kernel.execmem.free(im.region.start);
    this.kernel.slab.kfree(im.im);
  }

  /**
   * bpf_tramp_image_put: a task still inside the original function must not come back into
   * fexit programs that may be freed: `jmp ip_epilogue` over them (BPF_MOD_JUMP at ip_after_call).
   */
  private retire(im: TrampImage): void {
    if (im.ipAfterCall !== undefined && im.ipEpilogue !== undefined) {
      const jmp = this.arch.textPokeInsn(im.ipAfterCall, 'jump', im.ipEpilogue);
      if (typeof jmp === 'number') throw new Error(`bpf_tramp_image_put: poke failed ${jmp} (WARN_ON)`);
      this.kernel.machine.writeCode(im.ipAfterCall, jmp);
    }
    this.retired.push(im);
  }

  /** Frees the retired images nobody can be in: pcref 0 (percpu_ref) and no guest code running (RCU tasks). */
  reap(): number {
    if (this.kernel.machine.callDepth > 0) return 0;
    const mem = this.kernel.machine.mem;
    let freed = 0;
    this.retired = this.retired.filter((im) => {
      if (mem.readU64(im.im + BigInt(TRAMP_IMAGE_STANDIN.pcref)) !== 0n) return true;
      this.freeImage(im);
      freed++;
      return false;
    });
    return freed;
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
