/**
 * @fileoverview Memory syscalls of user processes: mmap (arch/x86/kernel/sys_x86_64.c and
 * ksys_mmap_pgoff), munmap, mprotect and brk, over the caller's address space (kernel/mm.ts).
 */
import type { Processes } from './process.ts';
import { __NR } from './syscalls.ts';
import { MAP_ANONYMOUS, MAP_DENYWRITE, MAP_EXECUTABLE, MAP_HUGETLB, EBADF, EINVAL } from './mm.ts';
import { PAGE_SIZE } from './layout.ts';

export const __NR_MM = { brk: 12 } as const;
const PAGE = BigInt(PAGE_SIZE);

export function registerMmSyscalls(procs: Processes): void {
  const k = procs.kernel;
  const mm = () => procs.caller?.mm;

  k.syscalls.register({
    nr: __NR.mmap, name: 'mmap', argc: 6, fn: (addr, len, protArg, flagsArg, fdArg, off) => {
      const m = mm();
      if (!m) return -EINVAL; // a kernel thread has no address space to map into
      // sys_mmap(): the offset must be page-aligned (it becomes pgoff).
      if (off % PAGE !== 0n) return -EINVAL;
      let flags = Number(flagsArg & 0xffffffffn);
      const prot = Number(protArg & 0xffffffffn);
      let file;
      if (!(flags & MAP_ANONYMOUS)) {
        file = k.current.files.get(Number(BigInt.asIntN(32, fdArg)));
        if (!file) return -EBADF;
        if (flags & MAP_HUGETLB) return -EINVAL;
      } else if (flags & MAP_HUGETLB) {
        return -EINVAL; // no hugetlbfs here
      }
      flags &= ~(MAP_EXECUTABLE | MAP_DENYWRITE);
      return m.doMmap({ addr, len, prot: Number(protArg >> 32n ? -1 : prot), flags, file, pgoff: off / PAGE });
    },
  });
  k.syscalls.register({
    nr: __NR.munmap, name: 'munmap', argc: 2, fn: (addr, len) => mm()?.doMunmap(addr, len) ?? -EINVAL,
  });
  k.syscalls.register({
    nr: __NR.mprotect, name: 'mprotect', argc: 3, fn: (start, len, prot) => {
      const m = mm();
      if (!m) return -EINVAL;
      // prot is an unsigned long: any bit the kernel does not know (high ones too) is -EINVAL.
      return prot >> 32n ? -EINVAL : m.doMprotect(start, len, Number(prot));
    },
  });
  k.syscalls.register({
    nr: __NR_MM.brk, name: 'brk', argc: 1, fn: (want) => mm()?.doBrk(want) ?? 0n,
  });
}
