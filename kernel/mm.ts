/**
 * @fileoverview A process's address space (struct mm_struct) as mm/mmap.c and mm/mprotect.c keep
 * it: a sorted list of VMAs, each a page range with vm_flags, a file and vm_ops; mmap, munmap,
 * mprotect, brk and fork's dup_mmap with the kernel's checks and errnos (v5.5), including the
 * splits that partial munmap/mprotect make and the vm_ops calls around them:
 *
 *  - `open` runs for every VMA made from another one (a split, a fork's copy), never for the
 *    first one (the file's mmap op sets that one up), and `close` for every VMA that goes, so
 *    #close = #open + 1 per mmap() — what BPF map mmap's writecnt is built on (fc9702273e2e).
 *  - VMAs are never merged: the kernel does not merge VMAs that have a close op, and for
 *    anonymous memory a merge would only show in /proc/PID/maps.
 *
 * Pages are host memory (HostRegion) shown to the process's CPU (emulator/user_cpu.ts) at the
 * VMA's address, one Unicorn mapping per VMA (a split unmaps and maps the pieces again over the
 * same pages). While the process is the one in the kernel, the same pages are also mapped in the
 * kernel's engine at the same user addresses (`mirror`), as the kernel sees the current process's
 * memory on Linux: so bpf() and every other syscall read `union bpf_attr` and buffers through
 * kernel.machine.mem at the user's pointers, as copy_from_user would.
 *
 * Anonymous private memory is copied eagerly at fork (there is no copy-on-write); anonymous
 * MAP_SHARED memory and file mappings keep their pages (the child sees the parent's stores).
 */
import { GuestMemory, HostRegion, PAGE_SIZE, PROT_R, PROT_W, PROT_X } from '../emulator/memory.ts';
import type { KFile } from './file.ts';
import { TASK_SIZE_MAX, USER_START } from './layout.ts';

// uAPI (include/uapi/asm-generic/mman-common.h, mman.h)
export const PROT_NONE = 0, PROT_READ = 1, PROT_WRITE = 2, PROT_EXEC = 4, PROT_SEM = 8;
export const PROT_GROWSDOWN = 0x01000000, PROT_GROWSUP = 0x02000000;
export const MAP_SHARED = 0x01, MAP_PRIVATE = 0x02, MAP_SHARED_VALIDATE = 0x03, MAP_TYPE = 0x0f;
export const MAP_FIXED = 0x10, MAP_ANONYMOUS = 0x20, MAP_GROWSDOWN = 0x100, MAP_DENYWRITE = 0x800;
export const MAP_EXECUTABLE = 0x1000, MAP_LOCKED = 0x2000, MAP_NORESERVE = 0x4000, MAP_POPULATE = 0x8000;
export const MAP_NONBLOCK = 0x10000, MAP_STACK = 0x20000, MAP_HUGETLB = 0x40000, MAP_SYNC = 0x80000;
export const MAP_FIXED_NOREPLACE = 0x100000, MAP_UNINITIALIZED = 0x4000000;
/** LEGACY_MAP_MASK (include/linux/mman.h): the flags MAP_SHARED keeps (others are dropped silently). */
export const LEGACY_MAP_MASK = MAP_SHARED | MAP_PRIVATE | MAP_FIXED | MAP_ANONYMOUS | MAP_DENYWRITE | MAP_EXECUTABLE |
  MAP_UNINITIALIZED | MAP_GROWSDOWN | MAP_LOCKED | MAP_NORESERVE | MAP_POPULATE | MAP_NONBLOCK | MAP_STACK | MAP_HUGETLB;

// vm_flags (include/linux/mm.h)
export const VM_READ = 0x1, VM_WRITE = 0x2, VM_EXEC = 0x4, VM_SHARED = 0x8;
export const VM_MAYREAD = 0x10, VM_MAYWRITE = 0x20, VM_MAYEXEC = 0x40, VM_MAYSHARE = 0x80;
export const VM_GROWSDOWN = 0x100, VM_DENYWRITE = 0x800, VM_LOCKED = 0x2000, VM_DONTCOPY = 0x20000;
export const VM_DONTEXPAND = 0x40000, VM_ACCOUNT = 0x100000, VM_NORESERVE = 0x200000;

export const EPERM = 1, EBADF = 9, ENOMEM = 12, EACCES = 13, EEXIST = 17, ENODEV = 19, EINVAL = 22;
export const EOVERFLOW = 75, EOPNOTSUPP = 95;

/** sysctl vm.max_map_count. */
export const MAX_MAP_COUNT = 65530;
/** Where top-down mmap starts without ASLR (below the stack's gap), as x86-64 Linux shows it. */
export const MMAP_BASE = 0x7ffff7fff000n;
const PAGE = BigInt(PAGE_SIZE);

const pageAlignUp = (v: bigint): bigint => (v + PAGE - 1n) & ~(PAGE - 1n);
const hex = (v: bigint): string => `0x${v.toString(16)}`;

/** Host pages of anonymous memory, shared by the VMAs that split from one mapping. */
export class AnonPages {
  readonly region: HostRegion;
  private refs = 0;
  constructor(size: number) { this.region = new HostRegion(size); }
  get(): this { this.refs++; return this; }
  put(): void { if (--this.refs === 0) this.region.free(); }
  get refcount(): number { return this.refs; }
}

/** vm_operations_struct: what a file's mapping does when VMAs come and go. */
export interface VmOps {
  readonly name: string;
  /** A VMA made from another (split, fork): never the first one. */
  open?(vma: Vma): void;
  /** Every VMA that goes (munmap, exit, a MAP_FIXED over it). */
  close?(vma: Vma): void;
}

export interface Vma {
  start: bigint;
  end: bigint;
  flags: number;
  /** In pages: the file offset of `start` (for anonymous private memory, start >> 12). */
  pgoff: bigint;
  readonly file: KFile | undefined;
  ops: VmOps | undefined;
  /** vm_private_data. */
  priv: unknown;
  /** The pages: `region` from byte `offset` shows at `start`. */
  region: HostRegion;
  offset: number;
  /** Holds anonymous pages (undefined when the file's mmap provided the pages). */
  anon: AnonPages | undefined;
  name: string;
}

/** What a file lets mmap do (struct file_operations' mmap, and the file's open mode). */
export interface FileMmapOps {
  /** FMODE_READ/FMODE_WRITE of the open file. */
  fmode(file: KFile): { read: boolean; write: boolean };
  /**
   * The file's mmap: checks and fills in the VMA (vm_ops, priv, flags, region/offset of its
   * pages). 0 or a negative errno; a refusal leaves nothing behind.
   */
  mmap(file: KFile, vma: Vma): number;
  /** f_op->mmap_supported_flags (MAP_SHARED_VALIDATE refuses others with -EOPNOTSUPP). */
  supportedFlags?: number;
}

/** Finds the mmap ops of a file (its file_operations); undefined: no mmap (-ENODEV). */
export type FileOpsLookup = (file: KFile) => FileMmapOps | undefined;

/** The page permissions Unicorn gets for vm_flags (x86: write and exec imply read). */
export function ucPerms(flags: number): number {
  let p = 0;
  if (flags & VM_READ) p |= PROT_R;
  if (flags & VM_WRITE) p |= PROT_W | PROT_R;
  if (flags & VM_EXEC) p |= PROT_X | PROT_R;
  return p;
}

/** calc_vm_prot_bits(). */
export const calcVmProtBits = (prot: number): number =>
  (prot & PROT_READ ? VM_READ : 0) | (prot & PROT_WRITE ? VM_WRITE : 0) | (prot & PROT_EXEC ? VM_EXEC : 0);

/** calc_vm_flag_bits(). */
export const calcVmFlagBits = (flags: number): number =>
  (flags & MAP_GROWSDOWN ? VM_GROWSDOWN : 0) | (flags & MAP_DENYWRITE ? VM_DENYWRITE : 0) | (flags & MAP_LOCKED ? VM_LOCKED : 0);

export interface MmapRequest {
  addr: bigint;
  len: bigint;
  prot: number;
  flags: number;
  file?: KFile | undefined;
  /** In pages. */
  pgoff: bigint;
}

export class Mm {
  /** Sorted by start, never overlapping. */
  private vmas: Vma[] = [];
  /** The process's CPU's memory: where its VMAs are mapped. */
  readonly user: GuestMemory;
  /** The kernel engine's memory while this mm is the current one there (see the file comment). */
  private mirror: GuestMemory | undefined;
  private fileOps: FileOpsLookup;
  startBrk = 0n;
  brk = 0n;
  /** vm_ops.open/close calls made, for tests of the VMA lifecycle. */
  readonly stats = { opens: 0, closes: 0 };

  constructor(user: GuestMemory, fileOps: FileOpsLookup) {
    this.user = user;
    this.fileOps = fileOps;
  }

  get mapCount(): number { return this.vmas.length; }
  list(): readonly Vma[] { return this.vmas; }

  /** find_vma(): the first VMA that ends above `addr`. */
  findVma(addr: bigint): Vma | undefined { return this.vmas.find((v) => v.end > addr); }

  /** Bytes of anonymous pages this mm holds (each AnonPages once), for leak checks. */
  get anonBytes(): number {
    const seen = new Set<AnonPages>();
    for (const v of this.vmas) if (v.anon) seen.add(v.anon);
    let n = 0;
    for (const a of seen) n += a.region.size;
    return n;
  }

  // --- the kernel's view ----------------------------------------------------------------------

  /** Shows this address space in the kernel's engine at the same addresses (context switch). */
  attachMirror(kmem: GuestMemory): void {
    if (this.mirror === kmem) return;
    if (this.mirror) this.detachMirror();
    this.mirror = kmem;
    for (const v of this.vmas) this.mirrorMap(v);
  }

  detachMirror(): void {
    const k = this.mirror;
    if (!k) return;
    for (const v of this.vmas) if (k.find(v.start)?.start === v.start) k.unmap(v.start);
    this.mirror = undefined;
  }

  get mirrored(): GuestMemory | undefined { return this.mirror; }

  private mirrorMap(v: Vma): void {
    // No exec in the kernel's view: the kernel does not run user code (SMEP).
    this.mirror?.map(v.start, Number(v.end - v.start), ucPerms(v.flags) & ~PROT_X, { name: `user ${v.name}`, region: v.region, offset: v.offset });
  }

  // --- VMA primitives -------------------------------------------------------------------------

  private install(v: Vma): void {
    this.user.map(v.start, Number(v.end - v.start), ucPerms(v.flags), { name: v.name, region: v.region, offset: v.offset });
    this.mirrorMap(v);
    const i = this.vmas.findIndex((x) => x.start > v.start);
    if (i < 0) this.vmas.push(v); else this.vmas.splice(i, 0, v);
  }

  private uninstall(v: Vma): void {
    this.user.unmap(v.start);
    if (this.mirror) this.mirror.unmap(v.start);
    this.vmas.splice(this.vmas.indexOf(v), 1);
  }

  /** remove_vma(): close, drop the file and the pages. */
  private removeVma(v: Vma): void {
    if (v.ops?.close) { this.stats.closes++; v.ops.close(v); }
    v.file?.put();
    v.anon?.put();
  }

  /**
   * __split_vma(): `v` becomes [start, addr) and a new VMA [addr, end) is made from it (its file
   * referenced again, vm_ops.open called on it). Returns the upper part.
   */
  private split(v: Vma, addr: bigint): Vma {
    if (addr <= v.start || addr >= v.end || addr % PAGE !== 0n) throw new Error(`split ${v.name} at ${hex(addr)}: not inside it`);
    const delta = addr - v.start;
    const upper: Vma = {
      ...v, start: addr, pgoff: v.pgoff + delta / PAGE, offset: v.offset + Number(delta),
    };
    this.uninstall(v);
    v.end = addr;
    upper.file?.get();
    upper.anon?.get();
    this.install(v);
    this.install(upper);
    if (upper.ops?.open) { this.stats.opens++; upper.ops.open(upper); }
    return upper;
  }

  /** Re-applies a VMA's permissions to its Unicorn mappings. */
  private reprotect(v: Vma): void {
    this.user.protect(v.start, ucPerms(v.flags));
    if (this.mirror) this.mirror.protect(v.start, ucPerms(v.flags) & ~PROT_X);
  }

  /** The first free gap of `len` bytes from the top (below `top`), or undefined. */
  private topDown(len: bigint, top = MMAP_BASE): bigint | undefined {
    let hi = top;
    for (let i = this.vmas.length - 1; i >= -1; i--) {
      const v = this.vmas[i];
      const lo = v ? v.end : USER_START;
      if (v && v.start >= hi) continue;
      if (hi - lo >= len && hi - len >= USER_START) return hi - len;
      if (v) hi = v.start < hi ? v.start : hi;
    }
    return undefined;
  }

  private free(addr: bigint, len: bigint): boolean {
    return !this.vmas.some((v) => v.start < addr + len && addr < v.end);
  }

  // --- mmap -----------------------------------------------------------------------------------

  /**
   * get_unmapped_area() with arch_get_unmapped_area_topdown (x86-64): a page-aligned address
   * for `len` bytes, or -errno. USER_START is mmap_min_addr here: the kernel's engine uses
   * lower addresses (test-run packets), so nothing is mapped below it (-EPERM, as
   * security_mmap_addr refuses an address below mmap_min_addr).
   */
  getUnmappedArea(addr: bigint, len: bigint, flags: number): bigint | number {
    const taskSize = TASK_SIZE_MAX;
    if (len > taskSize) return -ENOMEM;
    let out: bigint;
    if (flags & MAP_FIXED) {
      out = addr;
    } else {
      const hint = addr & ~(PAGE - 1n);
      if (hint && hint >= USER_START && hint <= taskSize - len && this.free(hint, len)) out = hint;
      else {
        const a = this.topDown(len);
        if (a === undefined) return -ENOMEM;
        out = a;
      }
    }
    if (out > taskSize - len) return -ENOMEM;
    if (out % PAGE !== 0n) return -EINVAL;
    if (out < USER_START) return -EPERM;
    return out;
  }

  /** do_mmap() (v5.5): the address, or -errno. `len` and the checks before it as the kernel has them. */
  doMmap(req: MmapRequest): bigint | number {
    let { flags } = req;
    const { prot, file } = req;
    let { pgoff } = req;
    if (req.len === 0n) return -EINVAL;
    if (flags & MAP_FIXED_NOREPLACE) flags |= MAP_FIXED;
    let addr = req.addr;
    // round_hint_to_min(): a hint below mmap_min_addr goes up to it.
    if (!(flags & MAP_FIXED) && addr !== 0n && (addr & ~(PAGE - 1n)) < USER_START) addr = USER_START;
    const len = pageAlignUp(req.len);
    if (len === 0n || len >= 1n << 64n) return -ENOMEM;
    if (pgoff + len / PAGE >= 1n << 64n) return -EOVERFLOW;
    if (this.vmas.length > MAX_MAP_COUNT) return -ENOMEM;
    const got = this.getUnmappedArea(addr, len, flags);
    if (typeof got === 'number') return got;
    addr = got;
    if ((flags & MAP_FIXED_NOREPLACE) && !this.free(addr, len)) return -EEXIST;
    let vmFlags = calcVmProtBits(prot) | calcVmFlagBits(flags) | VM_MAYREAD | VM_MAYWRITE | VM_MAYEXEC;
    let ops: FileMmapOps | undefined;
    if (file) {
      ops = this.fileOps(file);
      const mode = ops?.fmode(file) ?? { read: true, write: true };
      // The kernel's switch falls through MAP_SHARED → MAP_SHARED_VALIDATE → MAP_PRIVATE.
      const type = flags & MAP_TYPE;
      if (type !== MAP_SHARED && type !== MAP_SHARED_VALIDATE && type !== MAP_PRIVATE) return -EINVAL;
      if (type === MAP_SHARED) flags &= LEGACY_MAP_MASK;
      if (type !== MAP_PRIVATE) {
        if (flags & ~(LEGACY_MAP_MASK | (ops?.supportedFlags ?? 0))) return -EOPNOTSUPP;
        if ((prot & PROT_WRITE) && !mode.write) return -EACCES;
        vmFlags |= VM_SHARED | VM_MAYSHARE;
        if (!mode.write) vmFlags &= ~(VM_MAYWRITE | VM_SHARED);
      }
      if (!mode.read) return -EACCES;
      if (!ops) return -ENODEV;
      if (vmFlags & VM_GROWSDOWN) return -EINVAL;
    } else {
      switch (flags & MAP_TYPE) {
        case MAP_SHARED:
          if (vmFlags & VM_GROWSDOWN) return -EINVAL;
          pgoff = 0n;
          vmFlags |= VM_SHARED | VM_MAYSHARE;
          break;
        case MAP_PRIVATE:
          pgoff = addr / PAGE;
          break;
        default:
          return -EINVAL;
      }
    }
    return this.mmapRegion(file, ops, addr, len, vmFlags, pgoff);
  }

  /** mmap_region(): clear the range (MAP_FIXED), make the VMA, let the file's mmap fill it. */
  private mmapRegion(file: KFile | undefined, ops: FileMmapOps | undefined, addr: bigint, len: bigint, vmFlags: number, pgoff: bigint): bigint | number {
    const err = this.doMunmap(addr, len);
    if (err) return err;
    const vma: Vma = {
      start: addr, end: addr + len, flags: vmFlags, pgoff, file, ops: undefined, priv: undefined,
      region: undefined as unknown as HostRegion, offset: 0, anon: undefined, name: file ? file.name : 'anon',
    };
    if (file && ops) {
      file.get();
      const r = ops.mmap(file, vma);
      if (r < 0) { file.put(); return r; }
      if (!vma.region) throw new Error(`mmap of ${file.name}: the file's mmap gave the VMA no pages`);
    } else {
      vma.anon = new AnonPages(Number(len)).get();
      vma.region = vma.anon.region;
    }
    this.install(vma);
    return addr;
  }

  /** A private anonymous VMA at a fixed place (exec: the ELF segments, the stack, brk). */
  mapAnonFixed(addr: bigint, len: bigint, prot: number, name: string, extra = 0): Vma {
    const r = this.doMmap({ addr, len, prot, flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, pgoff: 0n });
    if (typeof r === 'number') throw new Error(`map ${name} at ${hex(addr)}+${hex(len)}: errno ${-r}`);
    const v = this.findVma(addr)!;
    v.name = name;
    v.flags |= extra;
    return v;
  }

  // --- munmap ---------------------------------------------------------------------------------

  /** __do_munmap() (v5.5): splits at the ends, then each VMA in the range goes (close, fput). */
  doMunmap(start: bigint, lenIn: bigint): number {
    if (start % PAGE !== 0n || start > TASK_SIZE_MAX || lenIn > TASK_SIZE_MAX - start) return -EINVAL;
    const len = pageAlignUp(lenIn);
    if (len === 0n) return -EINVAL;
    const end = start + len;
    let vma = this.findVma(start);
    if (!vma || vma.start >= end) return 0;
    if (start > vma.start) {
      // A split that leaves three VMAs where there was one needs room for one more.
      if (end < vma.end && this.vmas.length >= MAX_MAP_COUNT) return -ENOMEM;
      vma = this.split(vma, start);
    }
    const last = this.findVma(end);
    if (last && end > last.start && end < last.end) this.split(last, end);
    for (const v of this.vmas.filter((x) => x.start >= start && x.end <= end)) {
      this.uninstall(v);
      this.removeVma(v);
    }
    return 0;
  }

  // --- mprotect -------------------------------------------------------------------------------

  /** do_mprotect_pkey() (v5.5): VM_MAY* bound what may be asked (-EACCES); holes give -ENOMEM. */
  doMprotect(start: bigint, lenIn: bigint, protIn: number): number {
    const grows = protIn & (PROT_GROWSDOWN | PROT_GROWSUP);
    const prot = protIn & ~(PROT_GROWSDOWN | PROT_GROWSUP);
    if (grows === (PROT_GROWSDOWN | PROT_GROWSUP)) return -EINVAL;
    if (start % PAGE !== 0n) return -EINVAL;
    if (lenIn === 0n) return 0;
    const len = pageAlignUp(lenIn);
    const end = start + len;
    if (end <= start || end >= 1n << 64n) return -ENOMEM;
    // arch_validate_prot()
    if (prot & ~(PROT_READ | PROT_WRITE | PROT_EXEC | PROT_SEM)) return -EINVAL;
    let vma = this.findVma(start);
    if (!vma) return -ENOMEM;
    if (grows & PROT_GROWSDOWN) {
      if (vma.start >= end) return -ENOMEM;
      if (!(vma.flags & VM_GROWSDOWN)) return -EINVAL;
    } else if (vma.start > start) return -ENOMEM;
    let nstart = start;
    for (;;) {
      const newflags = calcVmProtBits(prot) | (vma.flags & ~(VM_READ | VM_WRITE | VM_EXEC));
      // newflags >> 4 puts VM_MAY* in place of VM_*: asking for more than may be had.
      if ((newflags & ~(newflags >> 4)) & (VM_READ | VM_WRITE | VM_EXEC)) return -EACCES;
      const tmp = vma.end < end ? vma.end : end;
      this.mprotectFixup(vma, nstart, tmp, newflags);
      nstart = tmp;
      if (nstart >= end) return 0;
      const next = this.vmas.find((v) => v.start >= nstart);
      if (!next || next.start !== nstart) return -ENOMEM;
      vma = next;
    }
  }

  /** mprotect_fixup(): nothing when the flags do not change, else split to [start, end) and set. */
  private mprotectFixup(vma: Vma, start: bigint, end: bigint, newflags: number): void {
    if (newflags === vma.flags) return;
    let v = vma;
    if (start !== v.start) v = this.split(v, start);
    if (end !== v.end) this.split(v, end);
    v.flags = newflags;
    this.reprotect(v);
  }

  // --- brk ------------------------------------------------------------------------------------

  /** Sets the program break after exec: the heap starts at the page after the image. */
  setBrk(at: bigint): void {
    this.startBrk = this.brk = pageAlignUp(at);
  }

  /** brk(): the new break, or the old one when refused (as the syscall returns it). */
  doBrk(want: bigint): bigint {
    if (want < this.startBrk) return this.brk;
    const oldEnd = pageAlignUp(this.brk), newEnd = pageAlignUp(want);
    if (newEnd === oldEnd) { this.brk = want; return this.brk; }
    if (newEnd < oldEnd) {
      if (this.doMunmap(newEnd, oldEnd - newEnd)) return this.brk;
      this.brk = want;
      return this.brk;
    }
    if (!this.free(oldEnd, newEnd - oldEnd) || newEnd >= MMAP_BASE) return this.brk;
    this.mapAnonFixed(oldEnd, newEnd - oldEnd, PROT_READ | PROT_WRITE, '[heap]');
    this.brk = want;
    return this.brk;
  }

  // --- fork and exit --------------------------------------------------------------------------

  /**
   * dup_mmap(): every VMA again in `child` (VM_DONTCOPY ones excepted), the file referenced,
   * vm_ops.open called; private anonymous pages copied, shared ones shared.
   */
  dupMmap(child: Mm): void {
    child.startBrk = this.startBrk;
    child.brk = this.brk;
    for (const v of this.vmas) {
      if (v.flags & VM_DONTCOPY) continue;
      const size = Number(v.end - v.start);
      const c: Vma = { ...v };
      if (v.anon && !(v.flags & VM_SHARED)) {
        c.anon = new AnonPages(size).get();
        c.anon.region.bytes.set(v.region.bytes.subarray(v.offset, v.offset + size));
        c.region = c.anon.region;
        c.offset = 0;
      } else {
        c.anon?.get();
      }
      c.file?.get();
      child.install(c);
      if (c.ops?.open) { child.stats.opens++; c.ops.open(c); }
    }
  }

  /** exit_mmap(): every VMA goes (close, fput), the kernel's view too. */
  exitMmap(): void {
    this.detachMirror();
    for (const v of [...this.vmas]) {
      this.uninstall(v);
      this.removeVma(v);
    }
  }

  /** /proc/PID/maps-like lines. */
  describe(): string[] {
    return this.vmas.map((v) => {
      const f = v.flags;
      const perm = `${f & VM_READ ? 'r' : '-'}${f & VM_WRITE ? 'w' : '-'}${f & VM_EXEC ? 'x' : '-'}${f & VM_MAYSHARE ? 's' : 'p'}`;
      return `${v.start.toString(16).padStart(12, '0')}-${v.end.toString(16).padStart(12, '0')} ${perm} ${(v.pgoff * PAGE).toString(16).padStart(8, '0')} ${v.name}`;
    });
  }
}
