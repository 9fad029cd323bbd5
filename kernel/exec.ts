/**
 * @fileoverview execve()'s loader for static x86-64 programs (fs/binfmt_elf.c load_elf_binary,
 * create_elf_tables): each PT_LOAD as a private mapping with its permissions, the bss zeroed, the
 * program break after the image, a stack at the top of user space holding argc, argv, envp and
 * the auxiliary vector as the System V ABI lays them out. A program with an interpreter
 * (PT_INTERP: dynamically linked) is refused with -ENOEXEC: there is no ld.so here.
 */
import { ElfFile, ElfError, PT_LOAD, PF_R, PF_W, PF_X } from './elf.ts';
import { Mm, PROT_READ, PROT_WRITE, PROT_EXEC, VM_GROWSDOWN } from './mm.ts';
import { PAGE_SIZE, TASK_SIZE_MAX } from './layout.ts';

export const ENOEXEC = 8;
export const EM_X86_64 = 62, ET_EXEC = 2, ET_DYN = 3;
const PT_INTERP = 3, PT_PHDR = 6;
/** Where a static PIE is loaded without ASLR (ELF_ET_DYN_BASE on x86-64). */
export const ELF_ET_DYN_BASE = 0x555555554000n;
/** The initial stack: its top is the top of user space; this much is mapped (no growth). */
export const STACK_TOP = TASK_SIZE_MAX;
export const STACK_SIZE = 1 << 20;

// Auxiliary vector types (include/uapi/linux/auxvec.h).
export const AT_NULL = 0, AT_PHDR = 3, AT_PHENT = 4, AT_PHNUM = 5, AT_PAGESZ = 6, AT_BASE = 7, AT_FLAGS = 8, AT_ENTRY = 9;
export const AT_UID = 11, AT_EUID = 12, AT_GID = 13, AT_EGID = 14, AT_PLATFORM = 15, AT_HWCAP = 16, AT_CLKTCK = 17;
export const AT_SECURE = 23, AT_RANDOM = 25, AT_EXECFN = 31;

const PAGE = BigInt(PAGE_SIZE);
const down = (v: bigint): bigint => v & ~(PAGE - 1n);
const up = (v: bigint): bigint => (v + PAGE - 1n) & ~(PAGE - 1n);

/** A program the loader refused: errno as execve returns it, and why. */
export class ExecError extends Error {
  readonly errno: number;
  constructor(errno: number, msg: string) {
    super(msg);
    this.name = 'ExecError';
    this.errno = errno;
  }
}

export interface ExecImage {
  entry: bigint;
  /** Initial rsp: at argc. */
  sp: bigint;
}

export interface ExecArgs {
  argv: readonly string[];
  envp: readonly string[];
  uid: number;
  gid: number;
  /** 16 bytes for AT_RANDOM (fixed by default: runs are reproducible). */
  random?: Uint8Array;
}

/** Parses and checks a program image: an x86-64 ELF executable without an interpreter. */
export function checkElf(bytes: Uint8Array): ElfFile {
  let elf: ElfFile;
  try {
    elf = new ElfFile(bytes);
  } catch (e) {
    if (e instanceof ElfError) throw new ExecError(ENOEXEC, `not an executable: ${e.message}`);
    throw e;
  }
  if (elf.machine !== EM_X86_64) throw new ExecError(ENOEXEC, `ELF machine ${elf.machine} is not x86-64 (${EM_X86_64})`);
  if (elf.type !== ET_EXEC && elf.type !== ET_DYN) throw new ExecError(ENOEXEC, `ELF type ${elf.type} is not an executable`);
  if (elf.segments.some((s) => s.type === PT_INTERP))
    throw new ExecError(ENOEXEC, 'dynamically linked (PT_INTERP): build it with -static -nostdlib');
  if (!elf.segments.some((s) => s.type === PT_LOAD)) throw new ExecError(ENOEXEC, 'no PT_LOAD segment');
  return elf;
}

/** Maps the program into `mm` and builds its initial stack. */
export function loadElf(mm: Mm, elf: ElfFile, args: ExecArgs): ExecImage {
  const bias = elf.type === ET_DYN ? ELF_ET_DYN_BASE : 0n;
  const loads = elf.segments.filter((s) => s.type === PT_LOAD && s.memsz > 0);
  // Page by page, the union of the permissions of the segments touching it.
  const pages = new Map<bigint, number>();
  for (const s of loads) {
    if (s.filesz > s.memsz) throw new ExecError(ENOEXEC, 'PT_LOAD filesz > memsz');
    const prot = (s.flags & PF_R ? PROT_READ : 0) | (s.flags & PF_W ? PROT_WRITE : 0) | (s.flags & PF_X ? PROT_EXEC : 0);
    const lo = down(s.vaddr + bias), hi = up(s.vaddr + bias + BigInt(s.memsz));
    if (lo < 0x10000n || hi > STACK_TOP - BigInt(STACK_SIZE)) throw new ExecError(ENOEXEC, `segment at 0x${lo.toString(16)} is outside user space`);
    for (let p = lo; p < hi; p += PAGE) pages.set(p, (pages.get(p) ?? 0) | prot);
  }
  const sorted = [...pages.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  for (let i = 0; i < sorted.length;) {
    let j = i;
    const prot = pages.get(sorted[i]!)!;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j]! + PAGE && pages.get(sorted[j + 1]!) === prot) j++;
    const name = prot & PROT_EXEC ? 'text' : prot & PROT_WRITE ? 'data' : 'rodata';
    mm.mapAnonFixed(sorted[i]!, sorted[j]! + PAGE - sorted[i]!, prot, name);
    i = j + 1;
  }
  let brk = 0n;
  for (const s of loads) {
    mm.user.write(s.vaddr + bias, elf.segmentData(s).subarray(0, s.filesz));
    const end = s.vaddr + bias + BigInt(s.memsz);
    if (end > brk) brk = end;
  }
  mm.setBrk(brk);
  // The program headers in memory, for AT_PHDR: PT_PHDR, else inside the first segment.
  const phoff = BigInt(new DataView(elf.bytes.buffer, elf.bytes.byteOffset).getBigUint64(32, true));
  const phdrSeg = elf.segments.find((s) => s.type === PT_PHDR);
  const first = loads.find((s) => s.offset === 0);
  const phdr = phdrSeg ? phdrSeg.vaddr + bias : first ? first.vaddr + bias + phoff : 0n;

  mm.mapAnonFixed(STACK_TOP - BigInt(STACK_SIZE), BigInt(STACK_SIZE), PROT_READ | PROT_WRITE, '[stack]', VM_GROWSDOWN);
  const sp = buildStack(mm, {
    ...args,
    auxv: [
      [AT_PHDR, phdr], [AT_PHENT, 56n], [AT_PHNUM, BigInt(elf.segments.length)], [AT_PAGESZ, PAGE],
      [AT_BASE, 0n], [AT_FLAGS, 0n], [AT_ENTRY, elf.entry + bias],
      [AT_UID, BigInt(args.uid)], [AT_EUID, BigInt(args.uid)], [AT_GID, BigInt(args.gid)], [AT_EGID, BigInt(args.gid)],
      [AT_SECURE, 0n], [AT_CLKTCK, 100n], [AT_HWCAP, 0n],
    ],
  });
  return { entry: elf.entry + bias, sp };
}

/**
 * create_elf_tables(): from the top, the strings (argv, envp, the platform, AT_RANDOM's bytes),
 * then 16-byte aligned: argc, argv[], NULL, envp[], NULL, auxv pairs, AT_NULL.
 */
function buildStack(mm: Mm, a: ExecArgs & { auxv: [number, bigint][] }): bigint {
  const mem = mm.user;
  let top = STACK_TOP - 8n; // a zero word at the very top, as Linux leaves it
  const push = (bytes: Uint8Array): bigint => {
    top -= BigInt(bytes.length);
    mem.write(top, bytes);
    return top;
  };
  const cstr = (s: string): Uint8Array => {
    const b = Buffer.from(s, 'utf8');
    const out = new Uint8Array(b.length + 1);
    out.set(b);
    return out;
  };
  const execfn = push(cstr(a.argv[0] ?? ''));
  const envp = a.envp.map((s) => push(cstr(s)));
  const argv = a.argv.map((s) => push(cstr(s)));
  const platform = push(cstr('x86_64'));
  const random = push(a.random ?? Uint8Array.from({ length: 16 }, (_, i) => (i * 37 + 11) & 0xff));
  const auxv: [number, bigint][] = [...a.auxv, [AT_PLATFORM, platform], [AT_RANDOM, random], [AT_EXECFN, execfn], [AT_NULL, 0n]];
  const words: bigint[] = [BigInt(argv.length), ...argv, 0n, ...envp, 0n, ...auxv.flatMap(([k, v]) => [BigInt(k), v])];
  top &= ~15n;
  if (words.length % 2) top -= 8n; // rsp is 16-byte aligned at argc
  const sp = top - BigInt(8 * words.length);
  const buf = new Uint8Array(8 * words.length);
  const dv = new DataView(buf.buffer);
  words.forEach((w, i) => dv.setBigUint64(8 * i, BigInt.asUintN(64, w), true));
  mem.write(sp, buf);
  return sp;
}
