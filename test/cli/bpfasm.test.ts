/**
 * @fileoverview `bpfemu asm` and `bpfemu disasm --bpf [--xlated]` through the real binary:
 * outputs, bytes written, JSON, and exit codes (2 for usage, 1 for assembly/disassembly errors
 * with the line/column or index in the one-line message).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { run } from './bin.ts';

const CONFORMANCE = fileURLToPath(new URL('../../../shared/conformance/', import.meta.url));

const PROG = 'mov %r0, 1\nlddw %r1, 0x1122334455667788\njne %r0, 0, out\nexit\nout:\nexit\n';
// Bytes by hand: b7 | 18 dst=1, imm lo; hi slot | 55 off=+1 | 95 | 95.
const BYTES = 'b700000001000000' + '1801000088776655' + '0000000044332211' + '5500010000000000' + '9500000000000000'.repeat(2);

let dir: string;
const at = (name: string): string => join(dir, name);
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'bpfemu-asm-'));
  writeFileSync(at('prog.s'), PROG);
  writeFileSync(at('bad.s'), 'mov %r0, 1\nmov32 %r0, %r11\n');
  writeFileSync(at('bad.bin'), Buffer.from('9500000000000000'.repeat(2) + '8f00000000000000', 'hex'));
  writeFileSync(at('odd.bin'), Buffer.from('9500', 'hex'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('bpfemu asm', () => {
  it('prints one instruction per line as -- raw values', () => {
    expect(run('asm', at('prog.s'))).toEqual({
      code: 0, err: '',
      out: ['0x00000001000000b7', '0x5566778800000118', '0x1122334400000000', '0x0000000000010055', '0x0000000000000095', '0x0000000000000095', ''].join('\n'),
    });
  });

  it('-o writes the raw little-endian bytes', () => {
    expect(run('asm', at('prog.s'), '-o', at('prog.bin'))).toEqual({ code: 0, out: '', err: '' });
    expect(readFileSync(at('prog.bin')).toString('hex')).toBe(BYTES);
    expect(JSON.parse(run('-j', 'asm', at('prog.s'), '-o', at('prog2.bin')).out)).toEqual({ file: at('prog2.bin'), insns: 6, bytes: 48 });
  });

  it('takes the program of a .data file', () => {
    expect(run('asm', CONFORMANCE + 'lddw.data').out).toBe('0x5566778800000018\n0x1122334400000000\n0x0000000000000095\n');
  });
});

describe('bpfemu disasm --bpf', () => {
  it('prints the conformance syntax, which assembles back to the same bytes', () => {
    writeFileSync(at('rt.bin'), Buffer.from(BYTES, 'hex'));
    const r = run('disasm', '--bpf', at('rt.bin'));
    expect(r).toEqual({ code: 0, err: '', out: 'mov %r0, 1\nlddw %r1, 0x1122334455667788\njne %r0, 0, +1\nexit\nexit\n' });
    writeFileSync(at('rt.s'), r.out);
    expect(run('asm', at('rt.s'), '-o', at('rt2.bin')).code).toBe(0);
    expect(readFileSync(at('rt2.bin')).toString('hex')).toBe(BYTES);
  });

  it('--xlated prints as the verifier does', () => {
    writeFileSync(at('x.bin'), Buffer.from(BYTES, 'hex'));
    expect(run('disasm', '--bpf', at('x.bin'), '--xlated').out).toBe([
      '0: (b7) r0 = 1', '1: (18) r1 = 0x1122334455667788', '3: (55) if r0 != 0x0 goto pc+1', '4: (95) exit', '5: (95) exit', '',
    ].join('\n'));
  });

  it('reads .data files and prints JSON', () => {
    expect(JSON.parse(run('-j', 'disasm', '--bpf', CONFORMANCE + 'lddw.data', '--xlated').out)).toEqual({
      file: CONFORMANCE + 'lddw.data', insns: 3, lines: ['0: (18) r0 = 0x1122334455667788', '2: (95) exit'],
    });
  });
});

describe('errors', () => {
  it.each([
    [['asm', 'bad.s'], 1, /^Error: .*bad\.s: line 2, column 12: unknown register %r11\n$/],
    [['disasm', '--bpf', 'bad.bin'], 1, /^Error: .*bad\.bin: insn 2: unknown opcode 0x8f\n$/],
    [['disasm', '--bpf', 'odd.bin'], 1, /^Error: .*odd\.bin: BPF program length 2 is not a multiple of 8\n$/],
    [['asm', 'missing.s'], 2, /^Error: cannot read .*missing\.s: ENOENT\n$/],
    [['asm'], 2, /^Error: missing required argument 'file'\n$/],
    [['disasm', '--bpf', 'missing.bin'], 2, /^Error: cannot read .*missing\.bin: ENOENT\n$/],
    [['disasm', '--xlated'], 2, /^Error: --xlated needs --bpf FILE\n$/],
    [['disasm'], 2, /^Error: missing required argument 'func'\n$/],
    [['disasm', 'bpf_fentry_test1', '--bpf', 'bad.bin'], 2, /^Error: give a kernel function or --bpf FILE, not both\n$/],
  ] as const)('%j: exit %d, one line', (args, code, msg) => {
    const r = run(...args.map((a) => (a.includes('.') ? at(a) : a)));
    expect(r.code).toBe(code);
    expect(r.out).toBe('');
    expect(r.err).toMatch(msg);
  });

  it('a malformed .data file names file and line', () => {
    writeFileSync(at('bad.data'), '-- asm\nexit\n-- rezult\n0\n');
    const r = run('disasm', '--bpf', at('bad.data'));
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^Error: .*bad\.data: line 3: unknown section '-- rezult'\n$/);
  });
});
