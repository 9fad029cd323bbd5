/**
 * @fileoverview Shared by the kernel-profile tests: PROG_LOAD of a tracing program from assembly
 * (any attach type), attach through RAW_TRACEPOINT_OPEN or LINK_CREATE, a snapshot of what a
 * refused or undone operation must give back, and reading a BPF object's .bss.
 */
import { expect } from 'vitest';
import { fileURLToPath } from 'node:url';
import { readFileSync } from 'node:fs';
import type { System } from '../../index.ts';
import { Btf, BTF_KIND } from '../../bpf/btf/btf.ts';
import { BpfObject } from '../../bpf/libbpf/load.ts';
import { assemble } from '../../bpf/asm/assembler.ts';
import { encode } from '../../bpf/isa/insn.ts';
import { BPF_PROG_LOAD, BPF_RAW_TRACEPOINT_OPEN, BPF_LINK_CREATE, BPF_MAP_LOOKUP_ELEM, BPF_MAP_UPDATE_ELEM } from '../../bpf/syscall/attr.ts';

export const FENTRY = 24, FEXIT = 25, FMOD_RET = 26;
export const objPath = (n: string): string => fileURLToPath(new URL(`../../images/build/bpf/${n}.bpf.o`, import.meta.url));

/** PROG_LOAD of a TRACING program: the fd or -errno, and the log. */
export function loadTracing(sys: System, fn: string, asm: string, eat: number, license = 'GPL'): { fd: number; log: string } {
  const b = sys.bpfSys;
  const insns = assemble(asm);
  const ui = b.stage(encode(insns)), lic = b.stage(Buffer.from(`${license}\0`)), log = b.stage(new Uint8Array(4096));
  const id = sys.btf.findByNameKind(fn, BTF_KIND.FUNC)?.id ?? 0;
  const fd = b.call(BPF_PROG_LOAD, {
    prog_type: 26, expected_attach_type: eat, attach_btf_id: id, insns: ui, insn_cnt: insns.length, license: lic,
    log_level: 1, log_size: 4096, log_buf: log, prog_name: 'pf',
  }).ret;
  const text = sys.kernel.machine.mem.readCString(log, 4096);
  b.unstage(ui); b.unstage(lic); b.unstage(log);
  return { fd, log: text };
}

export const rawTpOpen = (sys: System, fd: number): number => sys.bpfSys.call(BPF_RAW_TRACEPOINT_OPEN, { name: 0, prog_fd: fd }).ret;
export const linkCreate = (sys: System, fd: number, eat: number, cookie = 0n): number =>
  sys.bpfSys.call(BPF_LINK_CREATE, { prog_fd: fd, attach_type: eat, tracing_cookie: cookie }).ret;

/** What must come back after an operation is refused or undone. */
export function snapshot(sys: System) {
  const b = sys.bpfSys, k = sys.kernel;
  return { fds: k.current.files.count, progs: b.progs.size, links: b.links.size, tramps: b.trampolines!.count, exec: k.execmem.pagesInUse, slab: k.slab.inUse };
}

/** The machine still runs traced functions with their values. */
export function expectUsable(sys: System): void {
  expect(sys.callFunc('bpf_fentry_test1', [1n]).ret).toBe(2n);
  expect(sys.kernel.call('bpfemu_test_run_tracing')).toBe(0n);
}

export function openObject(sys: System, name: string): BpfObject {
  return BpfObject.open(new Uint8Array(readFileSync(objPath(name))), `${name}.bpf.o`, sys.objectLoadOptions).load(sys.bpfSys, sys.objectLoadOptions);
}

/** Where a global lives: its section's map (.bss, .data) and its offset, from the object's BTF DATASECs. */
function globalVar(o: BpfObject, name: string): { sec: string; off: number; size: number } {
  const btf = new Btf(o.spec.btfData!);
  for (const t of btf.types) {
    if (t?.kind !== BTF_KIND.DATASEC) continue;
    for (const v of t.secinfos ?? []) if (btf.type(v.type).name === name) return { sec: t.name, off: v.offset, size: v.size };
  }
  throw new Error(`${o.name}: no global ${name}`);
}

function secMap(o: BpfObject, sec: string) {
  return o.findMap([...o.maps.keys()].find((n) => n.endsWith(sec))!)!;
}

/** The values of an object's integer globals (u64, or their BTF size), by name. */
export function readGlobals(sys: System, o: BpfObject, names: readonly string[]): bigint[] {
  const b = sys.bpfSys, mem = sys.kernel.machine.mem;
  return names.map((n) => {
    const g = globalVar(o, n), m = secMap(o, g.sec);
    const k = b.stage(new Uint8Array(4)), v = b.stage(new Uint8Array(m.spec.valueSize));
    expect(b.call(BPF_MAP_LOOKUP_ELEM, { map_fd: m.fd, key: k, value: v }).ret).toBe(0);
    const r = g.size === 8 ? mem.readU64(v + BigInt(g.off)) : BigInt(mem.readU32(v + BigInt(g.off)));
    b.unstage(k); b.unstage(v);
    return r;
  });
}

/** Sets a u64 global to `value` (writeGlobal32: an int), keeping the rest of its section. */
export function writeGlobal(sys: System, o: BpfObject, name: string, value: bigint): void {
  const g = globalVar(o, name);
  const bytes = new Uint8Array(g.size);
  new DataView(bytes.buffer).setBigUint64(0, BigInt.asUintN(64, value), true); // a u64 global
  writeAt(sys, o, g.sec, g.off, bytes);
}
export function writeGlobal32(sys: System, o: BpfObject, name: string, value: number): void {
  const g = globalVar(o, name);
  const bytes = new Uint8Array(4);
  new DataView(bytes.buffer).setInt32(0, value, true);
  writeAt(sys, o, g.sec, g.off, bytes);
}

function writeAt(sys: System, o: BpfObject, sec: string, off: number, bytes: Uint8Array): void {
  const b = sys.bpfSys, m = secMap(o, sec);
  const k = b.stage(new Uint8Array(4)), v = b.stage(new Uint8Array(m.spec.valueSize));
  expect(b.call(BPF_MAP_LOOKUP_ELEM, { map_fd: m.fd, key: k, value: v }).ret).toBe(0);
  sys.kernel.machine.mem.write(v + BigInt(off), bytes);
  expect(b.call(BPF_MAP_UPDATE_ELEM, { map_fd: m.fd, key: k, value: v, flags: 0 }).ret).toBe(0);
  b.unstage(k); b.unstage(v);
}
