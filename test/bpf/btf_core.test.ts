/**
 * @fileoverview bpf/btf/core.ts, CO-RE relocations as libbpf resolves them: bitfields read back
 * through BYTE_OFFSET/BYTE_SIZE/LSHIFT/RSHIFT/SIGNED exactly as BPF_CORE_READ_BITFIELD_PROBED
 * does, from the bytes of a struct laid out and filled by gcc; arrays (bounds, flexible
 * arrays), members found by name through different anonymous nesting, flavors, candidate
 * ambiguity, the TYPE_* and ENUMVAL_* kinds, and the errors that name the relocation.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  BPF_CORE, BTF_INT_SIGNED, BTF_KIND, Btf, BtfBuilder, CoreReloError, essentialName, formatCoreSpec, resolveCoreRelo,
  validateBtf, type BpfCoreReloKind,
} from '../../bpf/btf/index.ts';
import { ElfFile } from '../../kernel/elf.ts';

const need = (cmd: string): string | undefined =>
  spawnSync(cmd, ['--version'], { stdio: 'ignore' }).status === 0 ? undefined : `${cmd} is not installed`;
const noTools = need('clang') ?? need('gcc');

const relo = (typeId: number, accessStr: string, kind: BpfCoreReloKind) => ({ typeId, accessStr, kind });
const value = (local: Btf, typeId: number, access: string, kind: BpfCoreReloKind, target: Btf): bigint =>
  resolveCoreRelo(local, relo(typeId, access, kind), target).value;

describe('bitfields: the relocated load and shifts read what gcc wrote', () => {
  // The kernel's layout (gcc fills it); the program knows the fields by name only.
  const TARGET_C = `
struct bf {
	char pad;
	unsigned int a: 3;
	int c: 20;
	unsigned long long d: 33;
	unsigned short e: 9;
	long long tail;
};
`;
  const FIELDS = { a: 5n, c: -12345n, d: 0x1fffffff9n, e: 300n } as const;
  let dir: string, target: Btf, bytes: Uint8Array;

  beforeAll(() => {
    if (noTools) return;
    dir = mkdtempSync(join(tmpdir(), 'bpfemu-core-'));
    writeFileSync(join(dir, 'target.c'), `${TARGET_C}struct bf g;\n`);
    const c = spawnSync('clang', ['-g', '-O2', '-target', 'bpf', '-c', join(dir, 'target.c'), '-o', join(dir, 'target.o')], { encoding: 'utf8' });
    expect(c.stderr).toBe('');
    target = new Btf(new ElfFile(new Uint8Array(readFileSync(join(dir, 'target.o')))).sectionData('.BTF'));
    // gcc's bytes of the struct with the fields set.
    writeFileSync(join(dir, 'fill.c'), `#include <stdio.h>\n#include <string.h>\n${TARGET_C}
int main(void) { struct bf s; memset(&s, 0, sizeof(s)); s.pad = 0x7f; s.tail = -1;
  s.a = ${FIELDS.a}; s.c = ${FIELDS.c}; s.d = ${FIELDS.d}ULL; s.e = ${FIELDS.e};
  for (unsigned i = 0; i < sizeof(s); i++) printf("%02x", ((unsigned char *)&s)[i]);
  return 0; }\n`);
    const g = spawnSync('gcc', ['-O0', '-o', join(dir, 'fill'), join(dir, 'fill.c')], { encoding: 'utf8' });
    expect(g.stderr).toBe('');
    bytes = Buffer.from(spawnSync(join(dir, 'fill'), { encoding: 'utf8' }).stdout, 'hex');
  });
  afterAll(() => { if (dir) rmSync(dir, { recursive: true, force: true }); });

  (noTools ? it.skip : it)(`with the program's own layout of struct bf${noTools ? ` (skipped: ${noTools})` : ''}`, () => {
    const bf = target.findByNameKind('bf', BTF_KIND.STRUCT)!;
    expect(bytes.length).toBe(bf.sizeOrType);
    // The program's view: other order, other widths' neighbours; relocated by name.
    const local = new Btf(new BtfBuilder()
      .int('unsigned int', 4).int('int', 4, BTF_INT_SIGNED).int('long long unsigned int', 8).int('short unsigned int', 2)
      .struct('bf', 16, [
        { name: 'e', type: 4, bitsOffset: 0, bitfieldSize: 9 }, { name: 'a', type: 1, bitsOffset: 9, bitfieldSize: 3 },
        { name: 'c', type: 2, bitsOffset: 12, bitfieldSize: 20 }, { name: 'd', type: 3, bitsOffset: 64, bitfieldSize: 33 }])
      .build());
    const members = local.type(5).members!;
    for (const [name, want] of Object.entries(FIELDS)) {
      const access = `0:${members.findIndex((m) => m.name === name)}`;
      const v = (k: BpfCoreReloKind): number => Number(value(local, 5, access, k, target));
      const off = v(BPF_CORE.FIELD_BYTE_OFFSET), size = v(BPF_CORE.FIELD_BYTE_SIZE);
      // BPF_CORE_READ_BITFIELD_PROBED: read size bytes into a zeroed u64, shift left, shift right.
      let val = 0n;
      for (let i = size - 1; i >= 0; i--) val = (val << 8n) | BigInt(bytes[off + i]!);
      val = BigInt.asUintN(64, val << BigInt(v(BPF_CORE.FIELD_LSHIFT_U64)));
      const rshift = BigInt(v(BPF_CORE.FIELD_RSHIFT_U64));
      val = v(BPF_CORE.FIELD_SIGNED) ? BigInt.asIntN(64, val) >> rshift : val >> rshift;
      expect(val, name).toBe(want);
      // The load is naturally aligned and within the struct.
      expect(off % size, name).toBe(0);
      expect(off + size, name).toBeLessThanOrEqual(bf.sizeOrType);
    }
  });
});

// A target ("kernel") BTF built by hand:
// [1] int, [2] unsigned int, [3] long, [4] int[8], [5] int[0],
// [6] struct s { long y; int x; int arr[8]; }                      (x @64, arr @96)
// [7] struct anon { int a; int c; } (anonymous), [8] struct n { [7]; }   (c @32 through it)
// [9] struct flex { int n; int data[]; }
// [10] enum e { E_ONE = 1, E_TWO___new = 2 } (signed), [11] typedef s_t [6]
// [12] struct t { int x; }, [13] struct t { long x; } (two t: x at the same offset)
// [14] struct amb { int x; } [15] struct amb { long z; int x; } (x at different offsets)
const target = validateBtf(new BtfBuilder()
  .int('int', 4, BTF_INT_SIGNED).int('unsigned int', 4).int('long', 8, BTF_INT_SIGNED)
  .array(1, 1, 8).array(1, 1, 0)
  .struct('s', 48, [{ name: 'y', type: 3, bitsOffset: 0 }, { name: 'x', type: 1, bitsOffset: 64 }, { name: 'arr', type: 4, bitsOffset: 96 }])
  .struct(undefined, 8, [{ name: 'a', type: 1, bitsOffset: 0 }, { name: 'c', type: 1, bitsOffset: 32 }])
  .struct('n', 8, [{ type: 7, bitsOffset: 0 }])
  .struct('flex', 4, [{ name: 'n', type: 1, bitsOffset: 0 }, { name: 'data', type: 5, bitsOffset: 32 }])
  .enum('e', 4, [['E_ONE', 1], ['E_TWO___new', 2]], true)
  .typedef('s_t', 6)
  .struct('t', 4, [{ name: 'x', type: 1, bitsOffset: 0 }]).struct('t', 8, [{ name: 'x', type: 3, bitsOffset: 0 }])
  .struct('amb', 4, [{ name: 'x', type: 1, bitsOffset: 0 }]).struct('amb', 16, [{ name: 'z', type: 3, bitsOffset: 0 }, { name: 'x', type: 1, bitsOffset: 64 }])
  .build());

// The program's ("local") BTF:
// [1] int, [2] int[4], [3] struct s { int x; int arr[4]; }, [4] struct s___v2 { int arr[16]; },
// [5] union { int b; int c; } (anonymous), [6] struct n { int a; [5]; }, [7] struct flex { int n; int data[]; } ([8] int[0]),
// [9] enum e { E_ONE, E_TWO, E_THREE }, [10] typedef s_t [3], [11] struct t { int x; }, [12] struct amb { int x; },
// [13] struct s { struct n x; } (x incompatible), [14] struct (anonymous) { int x; }, [15] struct missing { int x; }
// [16] struct s { int x; int y; }: TYPE_MATCHES needs every local member in the target
const local = new Btf(new BtfBuilder()
  .int('int', 4, BTF_INT_SIGNED).array(1, 1, 4)
  .struct('s', 20, [{ name: 'x', type: 1, bitsOffset: 0 }, { name: 'arr', type: 2, bitsOffset: 32 }])
  .struct('s___v2', 64, [{ name: 'arr', type: 17, bitsOffset: 0 }])
  .union(undefined, 4, [{ name: 'b', type: 1, bitsOffset: 0 }, { name: 'c', type: 1, bitsOffset: 0 }])
  .struct('n', 8, [{ name: 'a', type: 1, bitsOffset: 0 }, { type: 5, bitsOffset: 32 }])
  .struct('flex', 4, [{ name: 'n', type: 1, bitsOffset: 0 }, { name: 'data', type: 8, bitsOffset: 32 }]).array(1, 1, 0)
  .enum('e', 4, [['E_ONE', 0], ['E_TWO', 1], ['E_THREE', 2]])
  .typedef('s_t', 3)
  .struct('t', 4, [{ name: 'x', type: 1, bitsOffset: 0 }])
  .struct('amb', 4, [{ name: 'x', type: 1, bitsOffset: 0 }])
  .struct('s', 8, [{ name: 'x', type: 6, bitsOffset: 0 }])
  .struct(undefined, 4, [{ name: 'x', type: 1, bitsOffset: 0 }])
  .struct('missing', 4, [{ name: 'x', type: 1, bitsOffset: 0 }])
  .struct('s', 8, [{ name: 'x', type: 1, bitsOffset: 0 }, { name: 'y', type: 1, bitsOffset: 32 }])
  .array(1, 1, 16)
  .build());

describe('fields', () => {
  it('relocates a member and an array element by name and index', () => {
    const r = resolveCoreRelo(local, relo(3, '0:0', BPF_CORE.FIELD_BYTE_OFFSET), target);
    expect([r.origValue, r.value, r.targetTypeId, r.origSize, r.newSize, r.failMemszAdjust]).toEqual([0n, 8n, 6, 4, 4, false]);
    expect(formatCoreSpec(r.localSpec)).toBe('<byte_off> [3] struct s.x (0:0 @ offset 0)');
    expect(formatCoreSpec(r.targetSpec!)).toBe('<byte_off> [6] struct s.x (0:1 @ offset 8)');
    // arr[2]: 12 + 2*4 locally, 12 + 2*4 in the target as well (arr @96 bits there).
    expect(value(local, 3, '0:1:2', BPF_CORE.FIELD_BYTE_OFFSET, target)).toBe(20n);
    expect(formatCoreSpec(resolveCoreRelo(local, relo(3, '0:1:2', BPF_CORE.FIELD_BYTE_OFFSET), target).targetSpec!))
      .toBe('<byte_off> [6] struct s.arr[2] (0:2:2 @ offset 20)');
    expect(value(local, 3, '0:1', BPF_CORE.FIELD_BYTE_SIZE, target)).toBe(32n); // the target's int[8]
    expect(value(local, 3, '0:0', BPF_CORE.FIELD_SIGNED, target)).toBe(1n);
    // The second element of an array of struct s: one target struct further.
    expect(value(local, 3, '1:0', BPF_CORE.FIELD_BYTE_OFFSET, target)).toBe(48n + 8n);
  });

  it('finds a member through other anonymous nesting in the target', () => {
    const r = resolveCoreRelo(local, relo(6, '0:1:1', BPF_CORE.FIELD_BYTE_OFFSET), target);
    expect([r.origValue, r.value]).toEqual([4n, 4n]);
    expect(r.targetSpec!.raw).toEqual([0, 0, 1]);
    expect(value(local, 6, '0:0', BPF_CORE.FIELD_BYTE_OFFSET, target)).toBe(0n);
  });

  it('checks array bounds in the target, except for a flexible array', () => {
    // s___v2 is a flavor of s: arr[10] is past the target's int[8].
    expect(value(local, 4, '0:0:10', BPF_CORE.FIELD_EXISTS, target)).toBe(0n);
    expect(value(local, 4, '0:0:7', BPF_CORE.FIELD_EXISTS, target)).toBe(1n);
    expect(value(local, 4, '0:0:7', BPF_CORE.FIELD_BYTE_OFFSET, target)).toBe(12n + 28n);
    expect(value(local, 7, '0:1:5', BPF_CORE.FIELD_BYTE_OFFSET, target)).toBe(4n + 20n);
  });

  it('resolves through a typedef root, and by flavor', () => {
    expect(value(local, 10, '0:0', BPF_CORE.FIELD_BYTE_OFFSET, target)).toBe(8n);
    expect(essentialName('task_struct___v2')).toBe('task_struct');
    expect(essentialName('a___b___c')).toBe('a___b');
    for (const n of ['foo___', '___foo', 'a____b', 'plain']) expect(essentialName(n)).toBe(n);
  });

  it('accepts candidates that agree, and refuses ones that do not', () => {
    expect(value(local, 11, '0:0', BPF_CORE.FIELD_BYTE_OFFSET, target)).toBe(0n); // two t, x at 0 in both
    expect(() => resolveCoreRelo(local, relo(12, '0:0', BPF_CORE.FIELD_BYTE_OFFSET), target, { reloIdx: 3 }))
      .toThrow("relo #3: <byte_off> [12] struct amb.x (0:0 @ offset 0): field offset ambiguity: 64 != 0");
  });

  it('poisons a relocation without a target field, and tells which one and why', () => {
    const r = resolveCoreRelo(local, relo(13, '0:0', BPF_CORE.FIELD_BYTE_OFFSET), target, { reloIdx: 7, progName: 'trace' });
    expect([r.poison, r.matched, r.origValue]).toEqual([true, false, 0n]);
    expect(r.error).toBeInstanceOf(CoreReloError);
    expect(r.error!.poison).toBe(true);
    // x is a struct locally and an int in the target: incompatible, so no candidate has it.
    expect(r.error!.message).toBe("prog 'trace': relo #7: <byte_off> [13] struct s.x (0:0 @ offset 0): target field not found: " +
      'no candidate has it (candidates: [6] struct s)');
    // Asking whether it exists is no error.
    const ex = resolveCoreRelo(local, relo(13, '0:0', BPF_CORE.FIELD_EXISTS), target);
    expect([ex.poison, ex.matched, ex.value, ex.error]).toEqual([false, false, 0n, undefined]);
    expect(resolveCoreRelo(local, relo(15, '0:0', BPF_CORE.FIELD_BYTE_OFFSET), target).error!.message)
      .toBe("relo #0: <byte_off> [15] struct missing.x (0:0 @ offset 0): target field not found: no struct named 'missing' in the target BTF");
  });
});

describe('types and enumerators', () => {
  it('TYPE_ID_LOCAL/TARGET, TYPE_EXISTS, TYPE_SIZE, TYPE_MATCHES', () => {
    const v = (id: number, k: BpfCoreReloKind): bigint => value(local, id, '0', k, target);
    expect([v(3, BPF_CORE.TYPE_ID_LOCAL), v(3, BPF_CORE.TYPE_ID_TARGET), v(3, BPF_CORE.TYPE_EXISTS), v(3, BPF_CORE.TYPE_SIZE)]).toEqual([3n, 6n, 1n, 48n]);
    expect([v(15, BPF_CORE.TYPE_EXISTS), v(15, BPF_CORE.TYPE_SIZE), v(15, BPF_CORE.TYPE_ID_TARGET)]).toEqual([0n, 0n, 0n]);
    // s { int x; int arr[4] }: the target's arr is int[8], so the types do not "match" (they are compatible).
    expect(v(3, BPF_CORE.TYPE_MATCHES)).toBe(0n);
    expect(v(11, BPF_CORE.TYPE_MATCHES)).toBe(1n); // t { int x } is the first t
    expect(v(16, BPF_CORE.TYPE_MATCHES)).toBe(0n); // no y in the target's s
  });

  it('ENUMVAL_EXISTS/VALUE by enumerator name, flavors ignored', () => {
    const v = (idx: number, k: BpfCoreReloKind): bigint => value(local, 9, String(idx), k, target);
    expect([v(0, BPF_CORE.ENUMVAL_VALUE), v(1, BPF_CORE.ENUMVAL_VALUE), v(2, BPF_CORE.ENUMVAL_EXISTS)]).toEqual([1n, 2n, 0n]);
    expect(formatCoreSpec(resolveCoreRelo(local, relo(9, '1', BPF_CORE.ENUMVAL_VALUE), target).targetSpec!))
      .toBe('<enumval_value> [10] enum e::E_TWO___new = 2');
    const missing = resolveCoreRelo(local, relo(9, '2', BPF_CORE.ENUMVAL_VALUE), target);
    expect([missing.poison, missing.origValue]).toEqual([true, 2n]);
    expect(missing.error!.message).toBe('relo #0: <enumval_value> [9] enum e::E_THREE = 2: target enumerator not found: no candidate has it (candidates: [10] enum e)');
  });

  it('refuses bad access strings and anonymous roots', () => {
    expect(() => resolveCoreRelo(local, relo(3, '0:5', BPF_CORE.FIELD_BYTE_OFFSET), target))
      .toThrow('relo #0: parsing [3] struct s + 0:5 failed: member #5 of [3] does not exist');
    expect(() => resolveCoreRelo(local, relo(3, ':0', BPF_CORE.FIELD_BYTE_OFFSET), target)).toThrow("bad access string ':0'");
    expect(() => resolveCoreRelo(local, relo(3, '0:1', BPF_CORE.TYPE_SIZE), target)).toThrow('access string must be "0"');
    expect(() => resolveCoreRelo(local, relo(9, '7', BPF_CORE.ENUMVAL_VALUE), target)).toThrow('not an enumerator of an enum');
    expect(() => resolveCoreRelo(local, relo(14, '0:0', BPF_CORE.FIELD_BYTE_OFFSET), target)).toThrow("relocation doesn't support anonymous types");
    expect(() => resolveCoreRelo(local, relo(1, '0:0', BPF_CORE.FIELD_BYTE_OFFSET), target)).toThrow('captures type [1] of unexpected kind int');
  });
});
