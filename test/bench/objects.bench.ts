/**
 * @fileoverview Object figures: ELF load + BTF parse of the kernel image and of a clang-built
 * BPF object, and map lookup/update rates through bpf() and through a JIT-compiled helper call.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { boot } from '../../index.ts';
import { ElfFile } from '../../kernel/elf.ts';
import { Btf } from '../../bpf/btf/btf.ts';
import { BpfObject } from '../../bpf/libbpf/load.ts';
import { assemble } from '../../bpf/asm/assembler.ts';
import { BPF_MAP_CREATE, BPF_MAP_LOOKUP_ELEM, BPF_MAP_UPDATE_ELEM } from '../../bpf/syscall/attr.ts';
import { BPF_PSEUDO_MAP_FD } from '../../bpf/isa/opcodes.ts';
import { interleave, median, report, type Line } from './util.ts';

const VMLINUX = fileURLToPath(new URL('../../images/build/vmlinux', import.meta.url));
const OBJ = fileURLToPath(new URL('../../images/build/bpf/objtest.bpf.o', import.meta.url));

export async function objectsBench(): Promise<Line[]> {
  const sys = await boot();
  const b = sys.bpfSys;
  const vmlinux = new Uint8Array(readFileSync(VMLINUX)), objBytes = new Uint8Array(readFileSync(OBJ));
  const [tImg, tObj] = interleave(7, [
    () => new Btf(new ElfFile(vmlinux).sectionData('.BTF')),
    () => BpfObject.open(objBytes, 'objtest.bpf.o', sys.objectLoadOptions),
  ]);
  const [tLoad] = interleave(5, [() => BpfObject.open(objBytes, 'objtest.bpf.o', sys.objectLoadOptions).load(b, sys.objectLoadOptions).close()]);

  // Map operations through bpf(): lookup and update of a hash map.
  const fd = b.call(BPF_MAP_CREATE, { map_type: 1, key_size: 4, value_size: 8, max_entries: 1024 }).ret;
  const key = b.stage(new Uint8Array(4)), val = b.stage(new Uint8Array(8));
  const N = 2000;
  const [tUpd, tLook] = interleave(5, [
    () => { for (let i = 0; i < N; i++) b.call(BPF_MAP_UPDATE_ELEM, { map_fd: fd, key, value: val, flags: 0 }); },
    () => { for (let i = 0; i < N; i++) b.call(BPF_MAP_LOOKUP_ELEM, { map_fd: fd, key, value: val }); },
  ]);
  // The same from a JIT-compiled program: a loop of N lookups through the helper.
  const insns = assemble(`
    mov %r6, ${N}
    stw [%r10-4], 0
  loop:
    lddw %r1, ${fd}
    mov %r2, %r10
    add %r2, -4
    call 1
    sub %r6, 1
    jne %r6, 0, loop
    mov %r0, 0
    exit`);
  insns[2]!.src = BPF_PSEUDO_MAP_FD;
  const map = b.mapFromFd(fd)!;
  const prog = sys.bpf.load(insns, { helpers: b.helpers, resolveLdImm64: () => map.kaddr, name: 'bench_lookup' });
  const [tHelper] = interleave(5, [() => sys.bpf.run(prog, [0n], 'jit')]);
  sys.bpf.free(prog);
  sys.close();
  const perSec = (ms: number): number => Math.round(N / (ms / 1000));
  return [
    ['objects.vmlinux_elf_btf_parse_ms', +median(tImg!).toFixed(3)],
    ['objects.objtest_open_ms', +median(tObj!).toFixed(3)],
    ['objects.objtest_load_and_close_ms', +median(tLoad!).toFixed(3)],
    ['objects.map_update_per_sec_bpf_syscall', perSec(median(tUpd!))],
    ['objects.map_lookup_per_sec_bpf_syscall', perSec(median(tLook!))],
    ['objects.map_lookup_per_sec_jit_helper', perSec(median(tHelper!))],
  ];
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) report(await objectsBench());
