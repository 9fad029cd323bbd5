/**
 * @fileoverview Guest memory: host-backed regions mapped at guest addresses with uc_mem_map_ptr.
 * TypeScript reads and writes through the regions' views (no FFI call); one region may be mapped
 * at several guest addresses (an alias), and a write into executable memory drops the stale
 * translated code of every guest range that shows those bytes.
 */
import { HostRegion, PAGE_SIZE } from './hostmem.ts';
import type { UcEngine } from './unicorn/engine.ts';
import { UC_PROT_EXEC, UC_PROT_READ, UC_PROT_WRITE } from './unicorn/consts.ts';

export { PAGE_SIZE, HostRegion };
export const PROT_R = UC_PROT_READ, PROT_W = UC_PROT_WRITE, PROT_X = UC_PROT_EXEC;

export interface Mapping {
  readonly start: bigint;
  readonly end: bigint; // exclusive
  readonly size: number;
  perms: number;
  readonly region: HostRegion;
  readonly offset: number; // into region
  readonly name: string;
}

export interface MapOptions {
  name?: string;
  /** Back the mapping with an existing region (an alias) instead of fresh zeroed pages. */
  region?: HostRegion;
  offset?: number;
}

/** An access TypeScript made to guest memory that no mapping covers. */
export class GuestMemoryError extends Error {
  readonly address: bigint;
  constructor(op: string, address: bigint, length: number) {
    super(`${op}: guest address 0x${address.toString(16)} (+${length}) is not mapped`);
    this.name = 'GuestMemoryError';
    this.address = address;
  }
}

const hex = (v: bigint): string => `0x${v.toString(16)}`;
export const permString = (p: number): string =>
  `${p & PROT_R ? 'r' : '-'}${p & PROT_W ? 'w' : '-'}${p & PROT_X ? 'x' : '-'}`;

export class GuestMemory {
  private maps: Mapping[] = []; // sorted by start
  private owned = new Set<HostRegion>();
  private uc: UcEngine;

  constructor(uc: UcEngine) {
    this.uc = uc;
  }

  /** Maps `size` bytes at `start` (both page-aligned). */
  map(start: bigint, size: number, perms: number, opts: MapOptions = {}): Mapping {
    if (start % BigInt(PAGE_SIZE) !== 0n || size <= 0 || size % PAGE_SIZE !== 0)
      throw new RangeError(`map ${opts.name ?? ''} ${hex(start)}+0x${size.toString(16)}: not page-aligned`);
    const end = start + BigInt(size);
    for (const m of this.maps)
      if (start < m.end && m.start < end)
        throw new RangeError(`map ${opts.name ?? ''} ${hex(start)}..${hex(end)} overlaps ${m.name} ${hex(m.start)}..${hex(m.end)}`);
    const offset = opts.offset ?? 0;
    let region = opts.region;
    if (region) {
      if (offset % PAGE_SIZE !== 0 || offset + size > region.size)
        throw new RangeError(`map ${opts.name ?? ''}: offset 0x${offset.toString(16)}+0x${size.toString(16)} outside its region`);
    } else {
      region = new HostRegion(size);
      this.owned.add(region);
    }
    this.uc.memMapPtr(start, size, perms, region.hostAddress(offset));
    const m: Mapping = { start, end, size, perms, region, offset, name: opts.name ?? hex(start) };
    this.maps.push(m);
    this.maps.sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
    return m;
  }

  /** Unmaps the mapping that starts at `start`; its pages are freed when no mapping shows them. */
  unmap(start: bigint): void {
    const i = this.maps.findIndex((m) => m.start === start);
    if (i < 0) throw new RangeError(`unmap ${hex(start)}: no mapping starts there`);
    const m = this.maps[i]!;
    this.uc.memUnmap(m.start, m.size);
    this.uc.removeCache(m.start, m.end);
    this.maps.splice(i, 1);
    if (this.owned.has(m.region) && !this.maps.some((o) => o.region === m.region)) {
      m.region.free();
      this.owned.delete(m.region);
    }
  }

  /** Changes the permissions of a whole mapping. */
  protect(start: bigint, perms: number): void {
    const m = this.maps.find((x) => x.start === start);
    if (!m) throw new RangeError(`protect ${hex(start)}: no mapping starts there`);
    this.uc.memProtect(m.start, m.size, perms);
    m.perms = perms;
    this.uc.removeCache(m.start, m.end);
  }

  mappings(): readonly Mapping[] { return this.maps; }

  /** Pages currently owned (allocated by map()), for leak checks. */
  get ownedBytes(): number {
    let n = 0;
    for (const r of this.owned) n += r.size;
    return n;
  }

  find(addr: bigint): Mapping | undefined {
    let lo = 0, hi = this.maps.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const m = this.maps[mid]!;
      if (addr < m.start) hi = mid - 1;
      else if (addr >= m.end) lo = mid + 1;
      else return m;
    }
    return undefined;
  }

  /** A zero-copy view of [addr, addr+len); the range must lie in one mapping. */
  view(addr: bigint, len: number): Uint8Array {
    const m = this.find(addr);
    if (!m || addr + BigInt(len) > m.end) throw new GuestMemoryError('view', addr, len);
    const off = m.offset + Number(addr - m.start);
    return m.region.bytes.subarray(off, off + len);
  }

  /** Calls fn on each piece of [addr, addr+len) with the mapping and its offset in the range. */
  private pieces(op: string, addr: bigint, len: number, fn: (m: Mapping, regionOff: number, rangeOff: number, n: number) => void): void {
    let done = 0;
    while (done < len) {
      const a = addr + BigInt(done);
      const m = this.find(a);
      if (!m) throw new GuestMemoryError(op, a, len - done);
      const n = Math.min(len - done, Number(m.end - a));
      fn(m, m.offset + Number(a - m.start), done, n);
      done += n;
    }
  }

  read(addr: bigint, len: number): Uint8Array {
    const out = new Uint8Array(len);
    this.pieces('read', addr, len, (m, ro, o, n) => out.set(m.region.bytes.subarray(ro, ro + n), o));
    return out;
  }

  /** Writes bytes; translated code showing them anywhere is dropped when they are executable. */
  write(addr: bigint, bytes: Uint8Array): void {
    this.pieces('write', addr, bytes.length, (m, ro, o, n) => {
      m.region.bytes.set(bytes.subarray(o, o + n), ro);
      this.invalidateCode(m.region, ro, n);
    });
  }

  /** Drops translated code of every executable guest range that shows region[off, off+len). */
  invalidateCode(region: HostRegion, off: number, len: number): void {
    for (const m of this.maps) {
      if (m.region !== region || !(m.perms & PROT_X)) continue;
      const lo = Math.max(off, m.offset), hi = Math.min(off + len, m.offset + m.size);
      if (lo < hi) this.uc.removeCache(m.start + BigInt(lo - m.offset), m.start + BigInt(hi - m.offset));
    }
  }

  /** Drops the translated code of [start, end), or of every executable mapping. */
  invalidateRange(start?: bigint, end?: bigint): void {
    if (start !== undefined && end !== undefined && start <= end) {
      this.uc.removeCache(start, end + 1n);
      return;
    }
    for (const m of this.maps) if (m.perms & PROT_X) this.uc.removeCache(m.start, m.end);
  }

  private dv(addr: bigint, len: number): [DataView, number] {
    const m = this.find(addr);
    if (!m || addr + BigInt(len) > m.end) throw new GuestMemoryError('access', addr, len);
    return [m.region.view, m.offset + Number(addr - m.start)];
  }

  readU8(addr: bigint): number { const [v, o] = this.dv(addr, 1); return v.getUint8(o); }
  readU16(addr: bigint): number { const [v, o] = this.dv(addr, 2); return v.getUint16(o, true); }
  readU32(addr: bigint): number { const [v, o] = this.dv(addr, 4); return v.getUint32(o, true); }
  readU64(addr: bigint): bigint { const [v, o] = this.dv(addr, 8); return v.getBigUint64(o, true); }
  writeU8(addr: bigint, x: number): void { this.write(addr, Uint8Array.of(x & 0xff)); }
  writeU16(addr: bigint, x: number): void { const b = new Uint8Array(2); new DataView(b.buffer).setUint16(0, x, true); this.write(addr, b); }
  writeU32(addr: bigint, x: number): void { const b = new Uint8Array(4); new DataView(b.buffer).setUint32(0, x >>> 0, true); this.write(addr, b); }
  writeU64(addr: bigint, x: bigint): void { const b = new Uint8Array(8); new DataView(b.buffer).setBigUint64(0, BigInt.asUintN(64, x), true); this.write(addr, b); }

  /** A NUL-terminated string of at most `max` bytes. */
  readCString(addr: bigint, max = 4096): string {
    const out: number[] = [];
    for (let i = 0; i < max; i++) {
      const c = this.readU8(addr + BigInt(i));
      if (c === 0) break;
      out.push(c);
    }
    return Buffer.from(out).toString('utf8');
  }

  /** Frees every owned region (the engine is being closed). */
  dispose(): void {
    for (const r of this.owned) r.free();
    this.owned.clear();
    this.maps = [];
  }
}
