/**
 * @fileoverview Loading the kernel image: each PT_LOAD segment mapped with its own permissions
 * (text r-x, rodata r--, data and bss rw-), its bytes copied in, the rest zero.
 */
import { readFileSync, existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { GuestMemory } from '../emulator/memory.ts';
import { PROT_R, PROT_W, PROT_X } from '../emulator/memory.ts';
import { ElfFile, PT_LOAD, PF_R, PF_W, PF_X } from './elf.ts';
import { PAGE_SIZE } from './layout.ts';

/** The image `make -C images` builds. */
export const DEFAULT_IMAGE = fileURLToPath(new URL('../images/build/vmlinux', import.meta.url));

export interface LoadedSegment { start: bigint; size: number; perms: number }

export function readImage(path = DEFAULT_IMAGE): ElfFile {
  if (!existsSync(path)) throw new Error(`kernel image ${path} not found: run \`npm run setup\` (it builds images/)`);
  return new ElfFile(new Uint8Array(readFileSync(path)));
}

/** Maps the image's loadable segments into guest memory. */
export function mapImage(elf: ElfFile, mem: GuestMemory): LoadedSegment[] {
  const out: LoadedSegment[] = [];
  const page = BigInt(PAGE_SIZE);
  for (const seg of elf.segments) {
    if (seg.type !== PT_LOAD || seg.memsz === 0) continue;
    const start = seg.vaddr & ~(page - 1n);
    const end = (seg.vaddr + BigInt(seg.memsz) + page - 1n) & ~(page - 1n);
    const perms = (seg.flags & PF_R ? PROT_R : 0) | (seg.flags & PF_W ? PROT_W : 0) | (seg.flags & PF_X ? PROT_X : 0);
    const name = seg.flags & PF_X ? 'kernel text' : seg.flags & PF_W ? (seg.filesz ? 'kernel data' : 'kernel bss') : 'kernel rodata';
    mem.map(start, Number(end - start), perms, { name });
    mem.write(seg.vaddr, elf.segmentData(seg));
    out.push({ start, size: Number(end - start), perms });
  }
  return out;
}
