/**
 * @fileoverview ftrace call sites: the 5-byte nops gcc put at each traceable function's entry
 * (-pg -mfentry -mnop-mcount), listed by -mrecord-mcount in __mcount_loc. A function is
 * attachable when its address is a site (ftrace_location(ip) == ip).
 */
import type { GuestMemory } from '../emulator/memory.ts';
import type { Kallsyms } from './kallsyms.ts';

/** `nopl 0x0(%rax,%rax,1)`: the 5-byte nop at every traced function's entry (ideal_nops[NOP_ATOMIC5]). */
export const X86_NOP5 = Uint8Array.of(0x0f, 0x1f, 0x44, 0x00, 0x00);
export const X86_PATCH_SIZE = 5;

export interface FtraceSite {
  readonly ip: bigint;
  readonly func: string;
}

export class FtraceSites {
  private byIp = new Map<bigint, FtraceSite>();
  private byFunc = new Map<string, FtraceSite>();

  /** Reads the 8-byte addresses of the __mcount_loc table and names each site. */
  static fromMcountLoc(table: Uint8Array, ksyms: Kallsyms, mem: GuestMemory): FtraceSites {
    const sites = new FtraceSites();
    const dv = new DataView(table.buffer, table.byteOffset, table.byteLength);
    for (let o = 0; o + 8 <= table.length; o += 8) {
      const ip = dv.getBigUint64(o, true);
      const sym = ksyms.find(ip);
      if (!sym || sym.address !== ip) throw new Error(`__mcount_loc: site 0x${ip.toString(16)} is not a function entry`);
      const bytes = mem.read(ip, X86_PATCH_SIZE);
      if (!bytes.every((b, i) => b === X86_NOP5[i]))
        throw new Error(`__mcount_loc: ${sym.name} does not begin with the 5-byte nop`);
      sites.add({ ip, func: sym.name });
    }
    return sites;
  }

  add(site: FtraceSite): void {
    this.byIp.set(site.ip, site);
    this.byFunc.set(site.func, site);
  }

  /** Drops a site (ftrace_release_mod: a module going away). */
  remove(ip: bigint): void {
    const s = this.byIp.get(ip);
    if (!s) return;
    this.byIp.delete(ip);
    if (this.byFunc.get(s.func) === s) this.byFunc.delete(s.func);
  }

  /** ftrace_location(): the site at `ip`, if `ip` is one. */
  location(ip: bigint): FtraceSite | undefined { return this.byIp.get(ip); }
  forFunc(name: string): FtraceSite | undefined { return this.byFunc.get(name); }
  list(): FtraceSite[] { return [...this.byIp.values()].sort((a, b) => (a.func < b.func ? -1 : 1)); }
  get size(): number { return this.byIp.size; }
}
