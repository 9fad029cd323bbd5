/**
 * @fileoverview `bpfemu btf dump` through the real binary: the booted kernel's BTF as bpftool
 * prints the image's, a file's BTF (raw or in an ELF) as text, C and JSON, and the exit codes:
 * 2 for a missing file or bad usage, 1 for BTF the kernel would refuse, with its message.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BTF_INT_SIGNED, BtfBuilder, dumpBtfC, dumpBtfRaw, validateBtf } from '../../bpf/btf/index.ts';

const BIN = fileURLToPath(new URL('../../bin/bpfemu.js', import.meta.url));
const VMLINUX = fileURLToPath(new URL('../../images/build/vmlinux', import.meta.url));
const VMLINUX_BTF = fileURLToPath(new URL('../../images/build/vmlinux.btf', import.meta.url));
const run = (...args: string[]): { code: number | null; out: string; err: string } => {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: { ...process.env, BPFEMU_LOG: 'silent' } });
  return { code: r.status, out: r.stdout, err: r.stderr };
};
const noBpftool = spawnSync('bpftool', ['version'], { stdio: 'ignore' }).status === 0 ? undefined : 'bpftool is not installed';

const vmlinux = validateBtf(new Uint8Array(readFileSync(VMLINUX_BTF)));
let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'bpfemu-btf-cli-'));
  writeFileSync(join(dir, 'loop.btf'), new BtfBuilder().int('int', 4, BTF_INT_SIGNED).ptr(3).ptr(2).build());
  writeFileSync(join(dir, 'member.btf'), new BtfBuilder().int('int', 4, BTF_INT_SIGNED).struct('s', 4, [{ name: 'a', type: 1, bitsOffset: 32 }]).build());
  writeFileSync(join(dir, 'text.txt'), 'not BTF\n');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('bpfemu btf dump', () => {
  (noBpftool ? it.skip : it)(`prints the booted kernel's BTF as bpftool prints the image's${noBpftool ? ` (skipped: ${noBpftool})` : ''}`, () => {
    const r = run('btf', 'dump');
    expect(r).toEqual({ code: 0, err: '', out: spawnSync('bpftool', ['btf', 'dump', 'file', VMLINUX], { encoding: 'utf8' }).stdout });
  });

  it('reads raw BTF and ELF files, as text, C and JSON', () => {
    expect(run('btf', 'dump', VMLINUX_BTF)).toEqual({ code: 0, err: '', out: dumpBtfRaw(vmlinux) });
    expect(run('btf', 'dump', VMLINUX, '--format', 'c')).toEqual({ code: 0, err: '', out: dumpBtfC(vmlinux) });
    const json = JSON.parse(run('-j', 'btf', 'dump', VMLINUX_BTF).out) as { types: Record<string, unknown>[] };
    expect(json.types).toHaveLength(vmlinux.typeCount - 1);
    expect(json.types[0]).toEqual({ id: 1, kind: 'INT', name: 'unsigned char', size: 1, bits_offset: 0, nr_bits: 8, encoding: '(none)' });
    expect(json.types.find((t) => t.name === 'bpf_fentry_test3')).toMatchObject({ kind: 'FUNC', linkage: 'static' });
  });

  it('exits 1 with the kernel\'s message for BTF it would refuse', () => {
    expect(run('btf', 'dump', join(dir, 'loop.btf'))).toEqual({ code: 1, out: '', err: `Error: ${join(dir, 'loop.btf')}: [2] PTR (anon) type_id=3 Loop detected\n` });
    expect(run('btf', 'dump', join(dir, 'member.btf')).err)
      .toBe(`Error: ${join(dir, 'member.btf')}: [2] STRUCT s size=4 vlen=1 a type_id=1 bits_offset=32 Member exceeds struct_size\n`);
    expect(run('btf', 'dump', join(dir, 'text.txt'))).toMatchObject({ code: 1, err: `Error: ${join(dir, 'text.txt')}: not raw BTF, and ELF: bad magic (not an ELF file)\n` });
  });

  it('exits 2 for bad usage', () => {
    expect(run('btf', 'dump', join(dir, 'nosuch'))).toEqual({ code: 2, out: '', err: `Error: cannot read ${join(dir, 'nosuch')}: ENOENT\n` });
    expect(run('btf', 'dump', VMLINUX_BTF, '--format', 'xml')).toMatchObject({ code: 2, err: "Error: unrecognized format specifier: 'xml', possible values: raw, c\n" });
    expect(run('-j', 'btf', 'dump', VMLINUX_BTF, '--format', 'c')).toMatchObject({ code: 2, err: 'Error: JSON output for C-syntax dump is not supported\n' });
  });
});
