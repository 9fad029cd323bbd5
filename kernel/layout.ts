/**
 * @fileoverview The emulated kernel's virtual memory layout, as Linux x86-64 lays it out
 * (Documentation/arch/x86/x86_64/mm.rst), so addresses look familiar in a debugger.
 */

export const PAGE_SIZE = 4096;
/** The image is linked here (__START_KERNEL_map + 16 MiB, as CONFIG_PHYSICAL_START puts it). */
export const KERNEL_TEXT_START = 0xffffffff81000000n;
/** Modules, JIT images and trampolines: within ±2 GiB of the text so `call rel32` reaches. */
export const MODULES_VADDR = 0xffffffffa0000000n;
export const MODULES_END = 0xffffffffff000000n;
/** The first pages of the module area hold the runtime: the exit page, then native entry points. */
export const RUNTIME_EXIT_PAGE = MODULES_VADDR;
export const RUNTIME_NATIVE_PAGE = MODULES_VADDR + 0x1000n;
export const RUNTIME_NATIVE_PAGES = 4;
/** Module/JIT/trampoline allocations start after the runtime pages. */
export const MODULES_ALLOC_START = MODULES_VADDR + 0x10000n;
/** vmalloc space: map value areas (page-aligned for mmap-able arrays). */
export const VMALLOC_START = 0xffffc90000000000n;
/** The direct map of physical memory: kmalloc-like objects, per-CPU areas, kernel stacks. */
export const PAGE_OFFSET = 0xffff888000000000n;
/** THREAD_SIZE on x86-64 (16 KiB kernel stacks). */
export const THREAD_SIZE = 16384;
export const INIT_STACK = PAGE_OFFSET + 0x100000n;
/** The kmalloc arena (kernel/slab.ts). */
export const KMALLOC_ARENA = PAGE_OFFSET + 0x1000000n;
export const KMALLOC_ARENA_SIZE = 16 << 20;
/** User space: [USER_START, TASK_SIZE_MAX). */
export const USER_START = 0x400000n;
export const TASK_SIZE_MAX = 0x00007ffffffff000n;
