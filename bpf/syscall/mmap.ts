/**
 * @fileoverview mmap() of a BPF map's fd: bpf_map_fops.mmap (kernel/bpf/syscall.c bpf_map_mmap),
 * the array's map_mmap (kernel/bpf/arraymap.c array_map_mmap) and the VMA's open/close, from
 * fc9702273e2e "bpf: Add mmap() support for BPF_MAP_TYPE_ARRAY" (v5.5):
 *
 *  - only maps with a map_mmap op (plain BPF_MAP_TYPE_ARRAY) and no bpf_spin_lock: else -ENOTSUPP;
 *  - only MAP_SHARED (VM_SHARED): else -EINVAL; a writable mapping of a frozen map: -EPERM;
 *  - the array must have BPF_F_MMAPABLE (-EINVAL), and the mapping must fit in its value pages
 *    (remap_vmalloc_range: -EINVAL past the end);
 *  - the pages are the map's own vmalloc pages (the area's host region, from its second page):
 *    the process, the kernel's engine (JIT-compiled programs) and TypeScript share them;
 *  - the first VMA is counted here (a reference on the map, writecnt++ when VM_WRITE), each VMA
 *    made from it (split, fork) in open(), each one that goes in close(): #close = #open + 1.
 *
 * Later kernels changed this; each change is one row of {@link MMAP_PROFILES}, and
 * `BpfMapMmap.profile` picks the behaviour ('v5.5' by default, as the seed commit describes it).
 * The host kernel of the oracle fixtures (6.x) behaves as 'v6'.
 */
import type { BpfSubsystem } from './bpf.ts';
import type { KFile } from '../../kernel/file.ts';
import type { FileMmapOps, Vma, VmOps } from '../../kernel/mm.ts';
import { VM_MAYEXEC, VM_MAYWRITE, VM_SHARED, VM_WRITE } from '../../kernel/mm.ts';
import { PAGE_SIZE } from '../../kernel/layout.ts';
import { BPF_F_RDONLY, BPF_F_RDONLY_PROG, BPF_F_WRONLY, BPF_MAP_TYPE_ARRAY, type BpfMap } from '../maps/map.ts';
import { ArrayMap } from '../maps/array.ts';
import { writeBpfMapStruct } from '../maps/types.ts';
import { ANON_MAP } from './objects.ts';

export const EPERM = 1, EACCES = 13, EINVAL = 22, ENOTSUPP = 524;
const PAGE = BigInt(PAGE_SIZE);

export type MmapProfile = 'v5.5' | 'v6';

/** What changed in BPF map mmap after v5.5, with the kernel version and commit of each change. */
export interface MmapBehaviour {
  /**
   * The VMA's file offset selects the first value page (array_map_mmap passes vm_pgoff on, and
   * checks pgoff + size against the values). v5.5 ignores vm_pgoff: every mapping starts at the
   * first value page. Fixed in 5.7 ("bpf: Fix mmap() offset" in array_map_mmap, Andrii).
   */
  honourPgoff: boolean;
  /**
   * A read-only mapping loses VM_MAYWRITE (and every mapping VM_MAYEXEC), so mprotect() cannot
   * make it writable (-EACCES), and writecnt counts VM_MAYWRITE. In v5.5 mprotect(PROT_WRITE) of
   * a read-only mapping of a frozen map succeeds and writecnt does not follow VM_WRITE changes
   * (Jann Horn's report; 1f6cb19be2e2, 5.7).
   */
  dropMayWrite: boolean;
  /** The VMAs hold map references in open/close (v5.5); from 5.7 the VMA's file reference does. */
  refsInVmOps: boolean;
  /** A writable mapping of a BPF_F_RDONLY_PROG map: -EACCES (6.x). */
  rdonlyProgNotWritable: boolean;
}

export const MMAP_PROFILES: Readonly<Record<MmapProfile, MmapBehaviour>> = {
  'v5.5': { honourPgoff: false, dropMayWrite: false, refsInVmOps: true, rdonlyProgNotWritable: false },
  v6: { honourPgoff: true, dropMayWrite: true, refsInVmOps: false, rdonlyProgNotWritable: true },
};

/** bpf_map_fops' mmap for the kernel's process layer (registered for "bpf-map" files). */
export class BpfMapMmap implements FileMmapOps {
  profile: MmapProfile;
  private readonly bpf: BpfSubsystem;
  private readonly vmOps: VmOps;

  constructor(bpf: BpfSubsystem, profile: MmapProfile = 'v5.5') {
    this.bpf = bpf;
    this.profile = profile;
    this.vmOps = {
      name: 'bpf_map_default_vmops',
      open: (vma) => this.vmaOpen(vma),
      close: (vma) => this.vmaClose(vma),
    };
  }

  private get behaviour(): MmapBehaviour { return MMAP_PROFILES[this.profile]; }

  /**
   * The fd's open mode: bpf_map_new_fd() opens with bpf_get_file_flag(map_flags), so a
   * BPF_F_RDONLY map's fd is O_RDONLY and a BPF_F_WRONLY one O_WRONLY (the map's flags stand
   * for the fd's here: fds do not carry their own).
   */
  fmode(file: KFile): { read: boolean; write: boolean } {
    const map = file.priv as BpfMap;
    return { read: !(map.flags & BPF_F_WRONLY), write: !(map.flags & BPF_F_RDONLY) };
  }

  mmap(file: KFile, vma: Vma): number {
    if (file.name !== ANON_MAP) return -EINVAL;
    const map = file.priv as BpfMap;
    const b = this.behaviour;
    // !map->ops->map_mmap || map_value_has_spin_lock(map): only plain arrays have the op, and a
    // bpf_spin_lock needs BTF-described values, which no map here has.
    if (map.type !== BPF_MAP_TYPE_ARRAY || !(map.impl instanceof ArrayMap)) return -ENOTSUPP;
    if (!(vma.flags & VM_SHARED)) return -EINVAL;
    if (vma.flags & VM_WRITE) {
      if (map.frozen) return -EPERM;
      if (b.rdonlyProgNotWritable && (map.flags & BPF_F_RDONLY_PROG)) return -EACCES;
    }
    if (b.dropMayWrite) {
      vma.flags &= ~VM_MAYEXEC;
      if (!(vma.flags & VM_WRITE)) vma.flags &= ~VM_MAYWRITE;
    }
    const err = arrayMapMmap(this.bpf, map.impl, map, vma, b);
    if (err) return err;
    vma.ops = this.vmOps;
    vma.priv = map;
    if (b.refsInVmOps) this.get(map);
    if (vma.flags & this.writeFlag) map.writecnt++;
    this.sync(map);
    return 0;
  }

  /** The flag writecnt follows: VM_WRITE (v5.5), VM_MAYWRITE once read-only mappings drop it. */
  private get writeFlag(): number { return this.behaviour.dropMayWrite ? VM_MAYWRITE : VM_WRITE; }

  /** bpf_map_mmap_open(): every VMA made from a mapped one (split, fork). */
  private vmaOpen(vma: Vma): void {
    const map = vma.priv as BpfMap;
    if (this.behaviour.refsInVmOps) this.get(map);
    if (vma.flags & this.writeFlag) map.writecnt++;
    this.sync(map);
  }

  /** bpf_map_mmap_close(): every VMA that goes. */
  private vmaClose(vma: Vma): void {
    const map = vma.priv as BpfMap;
    if (vma.flags & this.writeFlag) map.writecnt--;
    if (this.behaviour.refsInVmOps) {
      map.usercnt--;
      this.bpf.mapPut(map); // bpf_map_put_with_uref: may free the map (the last mapping of a closed fd)
    }
    this.sync(map);
  }

  /** bpf_map_inc_with_uref(). */
  private get(map: BpfMap): void {
    map.refcnt++;
    map.usercnt++;
  }

  /** The map's struct bpf_map in guest memory follows (refcnt, usercnt, writecnt), while it lives. */
  private sync(map: BpfMap): void {
    if (map.refcnt > 0 && this.bpf.maps.find(map.id) === map) writeBpfMapStruct(this.bpf.kernel.machine.mem, map);
  }
}

/**
 * array_map_mmap() and remap_vmalloc_range(): the VMA shows the array's value pages (the area's
 * second page on), from vm_pgoff when the profile honours it.
 */
function arrayMapMmap(bpf: BpfSubsystem, arr: ArrayMap, map: BpfMap, vma: Vma, b: MmapBehaviour): number {
  if (!arr.mmapable) return -EINVAL;
  const size = vma.end - vma.start;
  const pgoff = b.honourPgoff ? vma.pgoff : 0n;
  if (b.honourPgoff && pgoff * PAGE + size > BigInt(arr.mmapSize)) return -EINVAL;
  // remap_vmalloc_range_partial(): kaddr + size must stay inside the vmalloc area.
  const kaddr = arr.values + pgoff * PAGE;
  if (kaddr + size > arr.area + BigInt(arr.areaSize)) return -EINVAL;
  const m = bpf.kernel.vmalloc.mapping(arr.area);
  if (!m) throw new Error(`array map ${map.name}: its value area is not a vmalloc area`);
  vma.region = m.region;
  vma.offset = m.offset + Number(kaddr - arr.area);
  return 0;
}
