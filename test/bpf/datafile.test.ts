/**
 * @fileoverview bpf/asm/datafile.ts: every conformance file parses (asm assembled, or raw
 * decoded), the sections and their values, the ISA version, and errors naming file and line.
 */
import { describe, expect, it } from 'vitest';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseDataFile, readDataFile, DataFileError, isaVersion } from '../../bpf/asm/datafile.ts';
import { assemble } from '../../bpf/asm/assembler.ts';
import { encode } from '../../bpf/isa/insn.ts';
import { exit, ldImm64, mov64Imm } from '../../bpf/isa/build.ts';

const CONFORMANCE = fileURLToPath(new URL('../../../shared/conformance/', import.meta.url));
const files = readdirSync(CONFORMANCE).filter((f) => f.endsWith('.data')).sort();

describe('the conformance files', () => {
  it('are all 313 here', () => expect(files).toHaveLength(313));

  it.each(files)('%s parses', (f) => {
    const d = readDataFile(CONFORMANCE + f);
    expect(d.name).toBe(f.replace(/\.data$/, ''));
    expect(d.insns.length).toBeGreaterThan(0);
    expect(d.result).toBeTypeOf('bigint');
    expect(d.error).toBeUndefined();
    expect(d.isa).toBe(isaVersion(d.insns));
    // The program is the assembled asm (lddw.data's raw section encodes its asm too).
    expect(encode(d.insns)).toEqual(encode(assemble(d.asm!)));
  });

  it.each([
    ['add.data', 1], ['jlt-imm.data', 2], ['jeq32-reg.data', 3], ['lock_add.data', 3],
    ['ja32.data', 4], ['movsx1664-reg.data', 4], ['sdiv64-imm.data', 4], ['rfc9669_ldxsb.data', 4],
  ] as const)('%s needs ISA v%d', (f, v) => {
    expect(readDataFile(CONFORMANCE + f).isa).toBe(v);
  });

  it('lddw.data: the raw section gives the program', () => {
    const d = readDataFile(CONFORMANCE + 'lddw.data');
    expect(d.insns).toEqual([...ldImm64(0, 0x1122334455667788n), exit()]);
    expect(d.result).toBe(0x1122334455667788n);
  });

  it('mem-len.data: memory bytes, the no-register-offset marker', () => {
    const d = readDataFile(CONFORMANCE + 'mem-len.data');
    expect([...d.mem]).toEqual([0, 0, 0, 1, 0, 0, 0, 2]);
    expect(d.result).toBe(8n);
  });

  it('prime.data: the C section is ignored', () => {
    const d = readDataFile(CONFORMANCE + 'prime.data');
    expect(d.asm).not.toContain('#include');
    expect(d.insns[0]).toEqual(mov64Imm(1, 67));
    expect(d.result).toBe(1n);
  });
});

describe('parseDataFile', () => {
  it('reads every section: raw (hex or decimal), mem with comments, error, CRLF', () => {
    const d = parseDataFile([
      '# SPDX header', '-- asm', 'mov %r0, 2', 'exit', '-- raw', '0x00000001000000b7 # mov r0, 1', '149', '',
      '-- mem', 'de ad # two bytes', '0xbe ef', '-- c', 'int x;', '-- no register offset', 'call instruction',
      '-- error', 'division by zero', '-- result', '# the value', '-1',
    ].join('\r\n'), 'dir/t.data');
    expect(d).toEqual({
      name: 't', insns: [mov64Imm(0, 1), exit()], asm: 'mov %r0, 2\nexit', mem: Uint8Array.of(0xde, 0xad, 0xbe, 0xef),
      error: 'division by zero', result: 0xffffffffffffffffn, isa: 1,
    });
  });

  it('allows a file with no result (a program to disassemble)', () => {
    const d = parseDataFile('-- asm\nmov32 %r0, 1\nexit\n', 'p.data');
    expect(d.result).toBeUndefined();
    expect(d.insns).toHaveLength(2);
  });

  it.each([
    ['an assembly error, at its file line and column', '# c\n-- asm\nmov %r0, 1\nmov %r11, 1\n-- result\n0x1', 4, 5, 't.data: line 4, column 5: unknown register %r11'],
    ['an unknown section', '-- asm\nexit\n-- rezult\n0', 3, undefined, "t.data: line 3: unknown section '-- rezult'"],
    ['a second section of a kind', '-- asm\nexit\n-- asm\nexit', 3, undefined, "second '-- asm' section"],
    ['text before the first section', '# ok\nexit\n-- asm\nexit', 2, undefined, 'text before the first section'],
    ['a bad memory byte', '-- asm\nexit\n-- mem\n00 11\n0x123', 5, undefined, "bad memory byte '0x123'"],
    ['a bad raw instruction', '-- raw\n0x95\n0x1ffffffffffffffff', 3, undefined, "bad raw instruction '0x1ffffffffffffffff'"],
    ['a bad result', '-- asm\nexit\n-- result\nforty-two', 4, undefined, "bad result 'forty-two'"],
    ['two results', '-- asm\nexit\n-- result\n1\n2', 5, undefined, 'more than one result'],
  ])('%s', (_descr, text, line, column, msg) => {
    let err: unknown;
    try { parseDataFile(text, 't.data'); } catch (e) { err = e; }
    expect(err).toBeInstanceOf(DataFileError);
    const e = err as DataFileError;
    expect({ file: e.file, line: e.line, column: e.column }).toEqual({ file: 't.data', line, column });
    expect(e.message).toContain(msg);
  });
});
