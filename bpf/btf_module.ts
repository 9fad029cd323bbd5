/**
 * @fileoverview Module BTF (kernel/bpf/btf.c btf_module_notify, 5.11+): when a module comes, its
 * `.BTF` — split BTF made by `pahole -J --btf_base vmlinux`, whose ids continue vmlinux's — is
 * parsed with every btf_parse() check on top of the vmlinux BTF and becomes a BTF object with
 * an id (as /sys/kernel/btf/<module>), so its functions are fentry/fexit targets by their own
 * BTF ids. Which module an id belongs to comes from attach_btf_obj_fd (the BTF object's fd)
 * or, without it, from the one loaded module whose split BTF has that id. A program loaded
 * against a module function holds the module (btf_try_get_module), so the module cannot be
 * unloaded while the program exists; the trampoline key is (btf obj id << 32) | btf_id
 * (bpf_trampoline_compute_key), so two modules' equal ids never share a trampoline.
 */
import type { Btf } from './btf/btf.ts';
import { BtfError } from './btf/btf.ts';
import { validateBtf } from './btf/verifier.ts';
import type { BpfSubsystem } from './syscall/bpf.ts';
import type { BtfObj } from './syscall/objects.ts';
import { modulesOf, ModuleError, type KernelModule, type ModuleNotifier, type Modules } from '../kernel/module.ts';

export interface ModuleBtf {
  readonly mod: KernelModule;
  readonly btf: Btf;
  readonly obj: BtfObj;
}

export class BtfModules implements ModuleNotifier {
  readonly name = 'btf_module_notify';
  readonly modules: Modules;
  private readonly sys: BpfSubsystem;
  private readonly vmlinux: Btf;
  private readonly byMod = new Map<KernelModule, ModuleBtf>();

  constructor(sys: BpfSubsystem, vmlinux: Btf, modules: Modules) {
    this.sys = sys;
    this.vmlinux = vmlinux;
    this.modules = modules;
  }

  /** MODULE_STATE_COMING: parse and register its BTF; a BTF the kernel would refuse refuses the module. */
  coming(mod: KernelModule): void {
    if (!mod.btfData) return;
    let btf: Btf;
    try {
      btf = validateBtf(mod.btfData, { base: this.vmlinux });
    } catch (e) {
      if (e instanceof BtfError)
        throw new ModuleError(e.errno, `failed to validate module [${mod.name}] BTF: ${e.errno} (${e.log.at(-1) ?? e.message}); was it made against this vmlinux (pahole --btf_base)?`);
      throw e;
    }
    const obj: BtfObj = { id: 0, btf, data: mod.btfData, refcnt: 1 }; // the module's reference
    const id = this.sys.btfs.allocCyclic(obj);
    if (id === undefined) throw new ModuleError(28, `module [${mod.name}] BTF: no BTF object id left`);
    obj.id = id;
    this.byMod.set(mod, { mod, btf, obj });
  }

  /** MODULE_STATE_GOING: the module's reference on its BTF object goes. */
  going(mod: KernelModule): void {
    const m = this.byMod.get(mod);
    if (!m) return;
    this.byMod.delete(mod);
    this.sys.btfPut(m.obj);
  }

  /** References the BPF subsystem holds: programs loaded against one of the module's functions. */
  holds(mod: KernelModule): number {
    let n = 0;
    for (const p of this.sys.progs.values()) if (p.trampoline && this.modules.moduleAddress(p.trampoline.func.addr) === mod) n++;
    return n;
  }

  of(mod: KernelModule): ModuleBtf | undefined { return this.byMod.get(mod); }

  /** The split BTF and trampoline key for (attach_btf_id, attach_btf_obj_fd). */
  resolve(btfId: number, objFd: number): { btf: Btf; key: bigint } | undefined {
    let m: ModuleBtf | undefined;
    if (objFd) {
      const obj = this.sys.btfFromFd(objFd);
      m = [...this.byMod.values()].find((x) => x.obj === obj);
    } else {
      const all = [...this.byMod.values()].filter((x) => btfId < x.btf.types.length);
      if (all.length === 1) m = all[0];
    }
    if (!m || btfId >= m.btf.types.length) return undefined;
    return { btf: m.btf, key: (BigInt(m.obj.id) << 32n) | BigInt(btfId) };
  }
}

const installed = new WeakMap<BpfSubsystem, BtfModules>();

/**
 * Module support for a booted system: the kernel's module table with the BPF subsystem's
 * notifier (module BTF, program references) registered. Idempotent.
 */
export function enableModuleBtf(sys: BpfSubsystem, vmlinux: Btf): BtfModules {
  let b = installed.get(sys);
  if (b) return b;
  const modules = modulesOf(sys.kernel);
  b = new BtfModules(sys, vmlinux, modules);
  modules.registerNotifier(b);
  const bm = b;
  sys.moduleBtf = (id, fd) => bm.resolve(id, fd);
  installed.set(sys, b);
  return b;
}
