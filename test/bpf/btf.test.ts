/**
 * @fileoverview bpf/btf: the kernel image's BTF dumped exactly as bpftool dumps it (raw text,
 * JSON, C), the bpf_fentry_test* prototypes in it, the kernel's btf_parse() checks on a
 * table of hand-built bad BTF (code, errno and the verifier's line), split BTF on top of
 * vmlinux's, sizes/alignment/member lookup, and a clang-compiled BPF object: its .BTF.ext
 * func_info/line_info against the symbols and the source, and its CO-RE relocations
 * resolved against vmlinux BTF to pahole's offsets.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  BPF_CORE, BTF_FUNC_STATIC, BTF_INT_SIGNED, BTF_KIND, Btf, BtfBuilder, BtfError, BtfExt, dumpBtfC, dumpBtfJson, dumpBtfRaw,
  resolveCoreRelo, validateBtf, type BtfErrorCode,
} from '../../bpf/btf/index.ts';
import { ElfFile, STT_FUNC } from '../../kernel/elf.ts';
import { decode } from '../../bpf/isa/insn.ts';

const VMLINUX = fileURLToPath(new URL('../../images/build/vmlinux', import.meta.url));
const VMLINUX_BTF = fileURLToPath(new URL('../../images/build/vmlinux.btf', import.meta.url));

/** A host tool, or why a test needing it is skipped. */
const tool = (cmd: string, arg: string): string | undefined =>
  spawnSync(cmd, [arg], { stdio: 'ignore' }).status === 0 ? undefined : `${cmd} is not installed`;
const noBpftool = tool('bpftool', 'version');
const noClang = tool('clang', '--version');
const noPahole = tool('pahole', '--version');
const itWith = (why: string | undefined) => (why ? it.skip : it);
const skipped = (why: string | undefined): string => (why ? ` (skipped: ${why})` : '');
const run = (cmd: string, args: string[]): string => {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
};

const elfBtf = (file: string): Uint8Array => new ElfFile(new Uint8Array(readFileSync(file))).sectionData('.BTF');
const vmlinux = validateBtf(elfBtf(VMLINUX));

let dir: string;
beforeAll(() => { dir = mkdtempSync(join(tmpdir(), 'bpfemu-btf-')); });
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('the kernel image\'s BTF', () => {
  it('is the same in the ELF section and the raw file, and passes the kernel\'s checks', () => {
    expect(Buffer.from(elfBtf(VMLINUX)).equals(readFileSync(VMLINUX_BTF))).toBe(true);
    expect(vmlinux.typeCount).toBe(new Btf(new Uint8Array(readFileSync(VMLINUX_BTF))).typeCount);
    expect(vmlinux.hdr).toMatchObject({ magic: 0xeb9f, version: 1, flags: 0, hdrLen: 24, typeOff: 0 });
  });

  itWith(noBpftool)(`dumps exactly as bpftool btf dump file vmlinux (raw text and -j JSON)${skipped(noBpftool)}`, () => {
    expect(dumpBtfRaw(vmlinux)).toBe(run('bpftool', ['btf', 'dump', 'file', VMLINUX]));
    const json = JSON.parse(JSON.stringify(dumpBtfJson(vmlinux), (_k, v) => (typeof v === 'bigint' ? Number(v) : v)));
    expect(json).toEqual(JSON.parse(run('bpftool', ['-j', 'btf', 'dump', 'file', VMLINUX])));
  });

  it('shows bpf_fentry_test1..8 with the kernel\'s prototypes (KERNEL.md A.6)', () => {
    const text = dumpBtfRaw(vmlinux);
    // From the text itself: the FUNC line, then its FUNC_PROTO's parameter lines.
    const protoOf = (name: string): { ret: string; params: string[] } => {
      const f = new RegExp(`^\\[\\d+\\] FUNC '${name}' type_id=(\\d+) linkage=static$`, 'm').exec(text);
      expect(f, name).not.toBeNull();
      const p = new RegExp(`^\\[${f![1]}\\] FUNC_PROTO '\\(anon\\)' ret_type_id=(\\d+) vlen=(\\d+)((?:\\n\\t.*)*)`, 'm').exec(text)!;
      const params = [...p[3]!.matchAll(/\n\t'(\w+)' type_id=(\d+)/g)].map((m) => vmlinux.typeName(Number(m[2])));
      expect(params).toHaveLength(Number(p[2]));
      return { ret: vmlinux.typeName(Number(p[1])), params };
    };
    const want: [string, string[]][] = [
      ['bpf_fentry_test1', ['int']],
      ['bpf_fentry_test2', ['int', 'u64']],
      ['bpf_fentry_test3', ['char', 'int', 'u64']],
      ['bpf_fentry_test4', ['void *', 'char', 'int', 'u64']],
      ['bpf_fentry_test5', ['u64', 'void *', 'short int', 'int', 'u64']],
      ['bpf_fentry_test6', ['u64', 'void *', 'short int', 'int', 'void *', 'u64']],
      ['bpf_fentry_test7', ['struct bpf_fentry_test_t *']],
      ['bpf_fentry_test8', ['struct bpf_fentry_test_t *']],
    ];
    for (const [name, params] of want) expect(protoOf(name), name).toEqual({ ret: 'int', params });
    expect(protoOf('bpf_fentry_test9')).toEqual({ ret: 'u32', params: ['u32 *'] });
  });

  it('sizes, aligns and finds members as the compiler laid them out', () => {
    const skb = vmlinux.findByNameKind('sk_buff', BTF_KIND.STRUCT)!;
    expect(vmlinux.resolveSize(skb.id)).toBe(128);
    expect(vmlinux.alignOf(skb.id)).toBe(8);
    expect(vmlinux.findMember(skb.id, 'len')).toMatchObject({ bitOffset: 64, bitfieldSize: 0, path: [1] });
    expect(vmlinux.findMember(skb.id, 'nosuch')).toBeUndefined();
    const u64 = vmlinux.findByNameKind('u64', BTF_KIND.TYPEDEF)!;
    expect(vmlinux.resolveSize(u64.id)).toBe(8);
    const comm = vmlinux.findMember(vmlinux.findByNameKind('task_struct', BTF_KIND.STRUCT)!.id, 'comm')!;
    expect([comm.bitOffset, vmlinux.resolveSize(comm.member.type), vmlinux.alignOf(comm.member.type)]).toEqual([32, 16, 1]);
    const fn = vmlinux.findByNameKind('bpf_fentry_test1', BTF_KIND.FUNC)!;
    expect(() => vmlinux.resolveSize(fn.id)).toThrow(/FUNC 'bpf_fentry_test1' has no size/);
    expect(() => vmlinux.resolveSize(0)).toThrow(/has no size \(void\)/);
  });
});

describe('layout of hand-built types', () => {
  // [1] int, [2] char, [3] struct { char c; int d; }, [4] union { int b; [3]; }, [5] struct outer { int a; [4]; },
  // [6] const [5], [7] typedef outer_t [6], [8] int[3][2] (array of [9]), [9] int[2], [10] packed { char; int @8 }
  const b = new BtfBuilder()
    .int('int', 4, BTF_INT_SIGNED).int('char', 1, BTF_INT_SIGNED)
    .struct(undefined, 8, [{ name: 'c', type: 2, bitsOffset: 0 }, { name: 'd', type: 1, bitsOffset: 32 }])
    .union(undefined, 8, [{ name: 'b', type: 1, bitsOffset: 0 }, { type: 3, bitsOffset: 0 }])
    .struct('outer', 12, [{ name: 'a', type: 1, bitsOffset: 0 }, { type: 4, bitsOffset: 32 }])
    .const(5).typedef('outer_t', 6)
    .array(9, 1, 3).array(1, 1, 2)
    .struct('pk', 5, [{ name: 'c', type: 2, bitsOffset: 0 }, { name: 'i', type: 1, bitsOffset: 8 }]);
  const btf = validateBtf(b.build());

  it('finds a member through anonymous unions and structs, with its offset from the outer struct', () => {
    expect(btf.findMember(7, 'd')).toMatchObject({ bitOffset: 64, path: [1, 1, 1], member: { name: 'd', type: 1 } });
    expect(btf.findMember(5, 'b')).toMatchObject({ bitOffset: 32, path: [1, 0] });
    expect(btf.findMember(5, 'a')).toMatchObject({ bitOffset: 0, path: [0] });
    expect(() => btf.findMember(1, 'a')).toThrow(/\[1\] INT is not a struct or union/);
  });

  it('sizes arrays as element size times elements, through typedefs and modifiers', () => {
    expect([btf.resolveSize(7), btf.resolveSize(8), btf.resolveSize(9), btf.resolveSize(10)]).toEqual([12, 24, 8, 5]);
    expect([btf.alignOf(7), btf.alignOf(8), btf.alignOf(10)]).toEqual([4, 4, 1]);
  });
});

// --- the kernel's checks --------------------------------------------------------------------

const B = (): BtfBuilder => new BtfBuilder();
const int = (): BtfBuilder => B().int('int', 4, BTF_INT_SIGNED);
/** The built BTF with its header's 24 bytes followed by `extra` (hdr_len grown to match). */
function withLongerHeader(data: Uint8Array, extra: number[]): Uint8Array {
  const out = new Uint8Array(data.length + extra.length);
  out.set(data.subarray(0, 24));
  out.set(extra, 24);
  out.set(data.subarray(24), 24 + extra.length);
  new DataView(out.buffer).setUint32(4, 24 + extra.length, true);
  return out;
}

interface BadCase { descr: string; data: () => Uint8Array; code: BtfErrorCode; msg: string; errno?: number }

const bad: BadCase[] = [
  // btf_parse_hdr(), btf_check_sec_info()
  { descr: 'a 4-byte blob', data: () => Uint8Array.of(0x9f, 0xeb, 1, 0), code: 'HDR_LEN_NOT_FOUND', msg: 'hdr_len not found' },
  { descr: 'hdr_len past the data', data: () => int().build({ hdr: { hdrLen: 4096 } }), code: 'HDR_NOT_FOUND', msg: 'btf_header not found' },
  { descr: 'a longer header with non-zero bytes', data: () => withLongerHeader(int().build(), [1, 0, 0, 0]), code: 'UNSUPPORTED_HDR', msg: 'Unsupported btf_header', errno: -7 },
  { descr: 'bad magic', data: () => int().build({ hdr: { magic: 0x1234 } }), code: 'INVALID_MAGIC', msg: 'Invalid magic' },
  { descr: 'version 2', data: () => int().build({ hdr: { version: 2 } }), code: 'UNSUPPORTED_VERSION', msg: 'Unsupported version', errno: -524 },
  { descr: 'flags', data: () => int().build({ hdr: { flags: 1 } }), code: 'UNSUPPORTED_FLAGS', msg: 'Unsupported flags', errno: -524 },
  { descr: 'a header only', data: () => B().build({ strings: new Uint8Array(0) }), code: 'NO_DATA', msg: 'No data' },
  { descr: 'str_off past the data', data: () => int().build({ hdr: { strOff: 16 + 100 } }), code: 'INVALID_SECTION_OFFSET', msg: 'Invalid section offset' },
  { descr: 'a gap before the types', data: () => int().build({ hdr: { typeOff: 4 } }), code: 'UNSUPPORTED_SECTION', msg: 'Unsupported section found' },
  { descr: 'sections overlapping', data: () => int().build({ hdr: { strOff: 12 } }), code: 'SECTION_OVERLAP', msg: 'Section overlap found' },
  { descr: 'type_len too long', data: () => int().build({ hdr: { typeLen: 1016 } }), code: 'SECTION_TOO_LONG', msg: 'Total section length too long' },
  { descr: 'data after the sections', data: () => int().build({ tail: new Uint8Array(4) }), code: 'UNSUPPORTED_SECTION', msg: 'Unsupported section found' },
  // btf_parse_str_sec(), btf_parse_type_sec()
  { descr: 'strings before types', data: () => int().build({ hdr: { typeOff: 5, strOff: 0 } }), code: 'STR_NOT_AT_END', msg: 'String section is not at the end' },
  { descr: 'strings not starting with \\0', data: () => B().ptr(0).build({ strings: Uint8Array.of(0x61, 0) }), code: 'INVALID_STR_SECTION', msg: 'Invalid string section' },
  { descr: 'strings not ending with \\0', data: () => B().ptr(0).build({ strings: Uint8Array.of(0, 0x61) }), code: 'INVALID_STR_SECTION', msg: 'Invalid string section' },
  { descr: 'no types', data: () => B().build(), code: 'NO_TYPE', msg: 'No type found' },
  // btf_check_meta()
  { descr: 'a truncated record', data: () => B().words(0, 0x02000000).build(), code: 'META_LEFT', msg: '[1] meta_left:8 meta_needed:12' },
  { descr: 'kind 0', data: () => B().raw({ kind: 0 }).build(), code: 'INVALID_KIND', msg: '[1] Invalid kind:0' },
  { descr: 'kind 20', data: () => B().raw({ kind: 20 }).build(), code: 'INVALID_KIND', msg: '[1] Invalid kind:20' },
  { descr: 'a name past the strings', data: () => B().raw({ kind: BTF_KIND.PTR, name: { off: 4096 } }).build(), code: 'INVALID_NAME_OFFSET', msg: '[1] Invalid name_offset:4096' },
  { descr: 'INT without its int_data', data: () => B().raw({ kind: BTF_KIND.INT, name: 'int', sizeOrType: 4 }).build(), code: 'META_LEFT', msg: '[1] INT int meta_left:0 meta_needed:4' },
  // INT
  { descr: 'INT vlen', data: () => B().raw({ kind: BTF_KIND.INT, name: 'int', vlen: 1, sizeOrType: 4, data: [32] }).build(), code: 'VLEN_NOT_ZERO', msg: '[1] INT int size=4 bits_offset=0 nr_bits=32 encoding=(none) vlen != 0' },
  { descr: 'INT kind_flag', data: () => B().raw({ kind: BTF_KIND.INT, name: 'int', kindFlag: true, sizeOrType: 4, data: [32] }).build(), code: 'INVALID_KIND_FLAG', msg: '[1] INT int size=4 bits_offset=0 nr_bits=32 encoding=(none) Invalid btf_info kind_flag' },
  { descr: 'INT reserved bits', data: () => B().raw({ kind: BTF_KIND.INT, name: 'int', sizeOrType: 4, data: [(1 << 28) | 32] }).build(), code: 'INVALID_INT_DATA', msg: '[1] INT int Invalid int_data:10000020' },
  { descr: 'INT 129 bits', data: () => B().int('i', 16, 0, 129).build(), code: 'NR_BITS_EXCEEDS_128', msg: '[1] INT i size=16 bits_offset=0 nr_bits=129 encoding=(none) nr_bits exceeds 128' },
  { descr: 'INT 33 bits in 4 bytes', data: () => B().int('int', 4, BTF_INT_SIGNED, 33).build(), code: 'NR_BITS_EXCEEDS_SIZE', msg: '[1] INT int size=4 bits_offset=0 nr_bits=33 encoding=SIGNED nr_bits exceeds type_size' },
  { descr: 'INT offset + bits past its size', data: () => B().int('int', 4, 0, 30, 4).build(), code: 'NR_BITS_EXCEEDS_SIZE', msg: '[1] INT int size=4 bits_offset=4 nr_bits=30 encoding=(none) nr_bits exceeds type_size' },
  { descr: 'INT two encodings', data: () => B().int('int', 4, 3).build(), code: 'UNSUPPORTED_ENCODING', msg: '[1] INT int size=4 bits_offset=0 nr_bits=32 encoding=UNKN Unsupported encoding', errno: -524 },
  // PTR and modifiers
  { descr: 'PTR vlen', data: () => int().raw({ kind: BTF_KIND.PTR, vlen: 1, sizeOrType: 1 }).build(), code: 'VLEN_NOT_ZERO', msg: '[2] PTR (anon) type_id=1 vlen != 0' },
  { descr: 'PTR named', data: () => int().raw({ kind: BTF_KIND.PTR, name: 'p', sizeOrType: 1 }).build(), code: 'INVALID_NAME', msg: '[2] PTR p type_id=1 Invalid name' },
  { descr: 'PTR kind_flag', data: () => int().raw({ kind: BTF_KIND.PTR, kindFlag: true, sizeOrType: 1 }).build(), code: 'INVALID_KIND_FLAG', msg: '[2] PTR (anon) type_id=1 Invalid btf_info kind_flag' },
  { descr: 'PTR past BTF_MAX_TYPE', data: () => int().ptr(0x100000).build(), code: 'INVALID_TYPE_ID', msg: '[2] PTR (anon) type_id=1048576 Invalid type_id' },
  { descr: 'PTR to a missing type', data: () => int().ptr(5).build(), code: 'INVALID_TYPE_ID', msg: '[2] PTR (anon) type_id=5 Invalid type_id' },
  { descr: 'PTR to a DATASEC', data: () => int().var('v', 1).datasec('.data', 4, [{ type: 2, offset: 0, size: 4 }]).ptr(3).build(), code: 'INVALID_TYPE_ID', msg: '[4] PTR (anon) type_id=3 Invalid type_id' },
  { descr: 'CONST named', data: () => int().raw({ kind: BTF_KIND.CONST, name: 'c', sizeOrType: 1 }).build(), code: 'INVALID_NAME', msg: '[2] CONST c type_id=1 Invalid name' },
  { descr: 'TYPEDEF anonymous', data: () => int().raw({ kind: BTF_KIND.TYPEDEF, sizeOrType: 1 }).build(), code: 'INVALID_NAME', msg: '[2] TYPEDEF (anon) type_id=1 Invalid name' },
  { descr: 'TYPEDEF not an identifier', data: () => int().typedef('1x', 1).build(), code: 'INVALID_NAME', msg: '[2] TYPEDEF 1x type_id=1 Invalid name' },
  { descr: 'TYPEDEF with a dash', data: () => int().typedef('a-b', 1).build(), code: 'INVALID_NAME', msg: '[2] TYPEDEF a-b type_id=1 Invalid name' },
  { descr: 'TYPE_TAG without a value', data: () => int().ptr(1).raw({ kind: BTF_KIND.TYPE_TAG, sizeOrType: 2 }).build(), code: 'INVALID_NAME', msg: '[3] TYPE_TAG (anon) type_id=2 Invalid name' },
  // FWD
  { descr: 'FWD with a type', data: () => B().raw({ kind: BTF_KIND.FWD, name: 'f', sizeOrType: 1 }).build(), code: 'TYPE_NOT_ZERO', msg: '[1] FWD f struct type != 0' },
  { descr: 'FWD anonymous', data: () => B().raw({ kind: BTF_KIND.FWD, kindFlag: true }).build(), code: 'INVALID_NAME', msg: '[1] FWD (anon) union Invalid name' },
  // ARRAY
  { descr: 'ARRAY without its data', data: () => int().raw({ kind: BTF_KIND.ARRAY }).build(), code: 'META_LEFT', msg: '[2] ARRAY (anon) meta_left:0 meta_needed:12' },
  { descr: 'ARRAY named', data: () => int().raw({ kind: BTF_KIND.ARRAY, name: 'a', data: [1, 1, 4] }).build(), code: 'INVALID_NAME', msg: '[2] ARRAY a type_id=1 index_type_id=1 nr_elems=4 Invalid name' },
  { descr: 'ARRAY with a size', data: () => int().raw({ kind: BTF_KIND.ARRAY, sizeOrType: 16, data: [1, 1, 4] }).build(), code: 'SIZE_NOT_ZERO', msg: '[2] ARRAY (anon) type_id=1 index_type_id=1 nr_elems=4 size != 0' },
  { descr: 'ARRAY of void', data: () => int().array(0, 1, 4).build(), code: 'INVALID_ELEM', msg: '[2] ARRAY (anon) type_id=0 index_type_id=1 nr_elems=4 Invalid elem' },
  { descr: 'ARRAY indexed by void', data: () => int().array(1, 0, 4).build(), code: 'INVALID_INDEX', msg: '[2] ARRAY (anon) type_id=1 index_type_id=0 nr_elems=4 Invalid index' },
  { descr: 'ARRAY indexed by a pointer', data: () => int().ptr(1).array(1, 2, 4).build(), code: 'INVALID_INDEX', msg: '[3] ARRAY (anon) type_id=1 index_type_id=2 nr_elems=4 Invalid index' },
  { descr: 'ARRAY of a function prototype', data: () => int().funcProto(1, []).array(2, 1, 1).build(), code: 'INVALID_ELEM', msg: '[3] ARRAY (anon) type_id=2 index_type_id=1 nr_elems=1 Invalid elem' },
  { descr: 'ARRAY of 3-bit ints', data: () => int().int('b3', 1, 0, 3).array(2, 1, 4).build(), code: 'INVALID_ARRAY_OF_INT', msg: '[3] ARRAY (anon) type_id=2 index_type_id=1 nr_elems=4 Invalid array of int' },
  { descr: 'ARRAY of 4 GiB', data: () => B().int('long', 8, BTF_INT_SIGNED).array(1, 1, 0x20000001).build(), code: 'ARRAY_SIZE_OVERFLOW', msg: '[2] ARRAY (anon) type_id=1 index_type_id=1 nr_elems=536870913 Array size overflows U32_MAX' },
  // STRUCT, UNION
  { descr: 'STRUCT not an identifier', data: () => int().struct('9s', 4, [{ name: 'a', type: 1, bitsOffset: 0 }]).build(), code: 'INVALID_NAME', msg: '[2] STRUCT 9s size=4 vlen=1 Invalid name' },
  { descr: 'member name past the strings', data: () => int().struct('s', 4, [{ name: { off: 4096 }, type: 1, bitsOffset: 0 }]).build(), code: 'INVALID_MEMBER_NAME_OFFSET', msg: '[2] STRUCT s size=4 vlen=1\n\t(invalid-name-offset) type_id=1 bits_offset=0 Invalid member name_offset:4096' },
  { descr: 'member not an identifier', data: () => int().struct('s', 4, [{ name: 'a b', type: 1, bitsOffset: 0 }]).build(), code: 'INVALID_NAME', msg: '\ta b type_id=1 bits_offset=0 Invalid name' },
  { descr: 'member of type void', data: () => int().struct('s', 4, [{ name: 'a', type: 0, bitsOffset: 0 }]).build(), code: 'INVALID_TYPE_ID', msg: '[2] STRUCT s size=4 vlen=1\n\ta type_id=0 bits_offset=0 Invalid type_id' },
  { descr: 'UNION member at an offset', data: () => int().union('u', 4, [{ name: 'a', type: 1, bitsOffset: 0 }, { name: 'b', type: 1, bitsOffset: 8 }]).build(), code: 'INVALID_MEMBER_BITS_OFFSET', msg: '[2] UNION u size=4 vlen=2\n\tb type_id=1 bits_offset=8 Invalid member bits_offset' },
  { descr: 'members out of order', data: () => int().struct('s', 8, [{ name: 'a', type: 1, bitsOffset: 32 }, { name: 'b', type: 1, bitsOffset: 0 }]).build(), code: 'INVALID_MEMBER_BITS_OFFSET', msg: '\tb type_id=1 bits_offset=0 Invalid member bits_offset' },
  { descr: 'member starting past the end', data: () => int().struct('s', 4, [{ name: 'a', type: 1, bitsOffset: 0 }, { name: 'b', type: 1, bitsOffset: 40 }]).build(), code: 'MEMBER_BITS_OFFSET_EXCEEDS', msg: '\tb type_id=1 bits_offset=40 Member bits_offset exceeds its struct size' },
  { descr: 'member ending past the end', data: () => int().struct('s', 4, [{ name: 'a', type: 1, bitsOffset: 32 }]).build(), code: 'MEMBER_EXCEEDS_STRUCT_SIZE', msg: '[2] STRUCT s size=4 vlen=1\n\ta type_id=1 bits_offset=32 Member exceeds struct_size' },
  { descr: 'bitfield wider than its int', data: () => int().struct('s', 8, [{ name: 'a', type: 1, bitsOffset: 0, bitfieldSize: 33 }]).build(), code: 'INVALID_MEMBER_BITFIELD_SIZE', msg: '[2] STRUCT s size=8 vlen=1\n\ta type_id=1 bitfield_size=33 bits_offset=0 Invalid member bitfield_size' },
  {
    descr: 'kind_flag member off a byte, not a bitfield',
    data: () => int().struct('s', 8, [{ name: 'a', type: 1, bitsOffset: 0, bitfieldSize: 3 }, { name: 'b', type: 1, bitsOffset: 4 }]).build(),
    code: 'INVALID_MEMBER_OFFSET', msg: '\tb type_id=1 bitfield_size=0 bits_offset=4 Invalid member offset',
  },
  { descr: 'pointer member off a byte', data: () => int().ptr(1).struct('s', 16, [{ name: 'p', type: 2, bitsOffset: 4 }]).build(), code: 'MEMBER_NOT_BYTE_ALIGNED', msg: '\tp type_id=2 bits_offset=4 Member is not byte aligned' },
  { descr: 'member of a function type', data: () => int().funcProto(1, []).struct('s', 8, [{ name: 'f', type: 2, bitsOffset: 0 }]).build(), code: 'INVALID_MEMBER', msg: '[3] STRUCT s size=8 vlen=1\n\tf type_id=2 bits_offset=0 Invalid member' },
  { descr: 'STRUCT embedding itself', data: () => B().struct('s', 4, [{ name: 'a', type: 1, bitsOffset: 0 }]).build(), code: 'LOOP_DETECTED', msg: '[1] STRUCT s size=4 vlen=1 Loop detected', errno: -17 },
  {
    descr: 'STRUCTs embedding each other',
    data: () => B().struct('A', 4, [{ name: 'b', type: 2, bitsOffset: 0 }]).struct('B', 4, [{ name: 'a', type: 1, bitsOffset: 0 }]).build(),
    code: 'LOOP_DETECTED', msg: '[1] STRUCT A size=4 vlen=1 Loop detected', errno: -17,
  },
  // ENUM, ENUM64
  { descr: 'ENUM of 3 bytes', data: () => B().enum('e', 3, [['A', 0]]).build(), code: 'UNEXPECTED_SIZE', msg: '[1] ENUM e size=3 vlen=1 Unexpected size' },
  { descr: 'ENUM of 0 bytes', data: () => B().enum('e', 0, [['A', 0]]).build(), code: 'UNEXPECTED_SIZE', msg: '[1] ENUM e size=0 vlen=1 Unexpected size' },
  { descr: 'ENUM64 of 16 bytes', data: () => B().enum64('e', 16, [['A', 0n]]).build(), code: 'UNEXPECTED_SIZE', msg: '[1] ENUM64 e size=16 vlen=1 Unexpected size' },
  { descr: 'enumerator without a name', data: () => B().enum('e', 4, [[{ off: 0 }, 1]]).build(), code: 'INVALID_NAME', msg: '[1] ENUM e size=4 vlen=1 Invalid name' },
  { descr: 'enumerator name past the strings', data: () => B().enum('e', 4, [[{ off: 4096 }, 1]]).build(), code: 'ENUM_INVALID_NAME_OFFSET', msg: '[1] ENUM e size=4 vlen=1\n\tInvalid name_offset:4096' },
  // FUNC_PROTO, FUNC
  { descr: 'FUNC_PROTO named', data: () => int().raw({ kind: BTF_KIND.FUNC_PROTO, name: 'p', sizeOrType: 1 }).build(), code: 'INVALID_NAME', msg: '[2] FUNC_PROTO p return=1 args=(void) Invalid name' },
  { descr: 'FUNC_PROTO kind_flag', data: () => int().raw({ kind: BTF_KIND.FUNC_PROTO, kindFlag: true, sizeOrType: 1 }).build(), code: 'INVALID_KIND_FLAG', msg: '[2] FUNC_PROTO (anon) return=1 args=(void) Invalid btf_info kind_flag' },
  { descr: 'vararg first', data: () => int().funcProto(1, [['a', 0], ['b', 1]]).build(), code: 'INVALID_ARG', msg: '[2] FUNC_PROTO (anon) return=1 args=(0 a, 1 b) Invalid arg#1' },
  { descr: 'a named vararg', data: () => int().funcProto(1, [['a', 1], ['rest', 0]]).build(), code: 'INVALID_ARG', msg: '[2] FUNC_PROTO (anon) return=1 args=(1 a, vararg) Invalid arg#2' },
  { descr: 'argument of a missing type', data: () => int().funcProto(1, [['a', 9]]).build(), code: 'INVALID_ARG', msg: '[2] FUNC_PROTO (anon) return=1 args=(9 a) Invalid arg#1' },
  { descr: 'returning a VAR', data: () => int().var('v', 1).funcProto(2, []).build(), code: 'INVALID_RETURN_TYPE', msg: '[3] FUNC_PROTO (anon) return=2 args=(void) Invalid return type' },
  { descr: 'returning a function', data: () => int().funcProto(1, []).funcProto(2, []).build(), code: 'INVALID_RETURN_TYPE', msg: '[3] FUNC_PROTO (anon) return=2 args=(void) Invalid return type' },
  { descr: 'FUNC anonymous', data: () => int().funcProto(1, []).raw({ kind: BTF_KIND.FUNC, sizeOrType: 2 }).build(), code: 'INVALID_NAME', msg: '[3] FUNC (anon) type_id=2 Invalid name' },
  { descr: 'FUNC extern', data: () => int().funcProto(1, []).func('f', 2, 2).build(), code: 'INVALID_FUNC_LINKAGE', msg: '[3] FUNC f type_id=2 Invalid func linkage' },
  { descr: 'FUNC of an int', data: () => int().func('f', 1).build(), code: 'INVALID_TYPE_ID', msg: '[2] FUNC f type_id=1 Invalid type_id' },
  { descr: 'FUNC with an anonymous argument', data: () => int().funcProto(1, [[undefined, 1]]).func('f', 2).build(), code: 'INVALID_ARG', msg: '[3] FUNC f type_id=2 Invalid arg#1' },
  // VAR, DATASEC
  { descr: 'VAR extern', data: () => int().var('v', 1, 2).build(), code: 'LINKAGE_NOT_SUPPORTED', msg: '[2] VAR v type_id=1 linkage=2 Linkage not supported' },
  { descr: 'VAR of void', data: () => B().var('v', 0).build(), code: 'INVALID_TYPE_ID', msg: '[1] VAR v type_id=0 linkage=1 Invalid type_id' },
  { descr: 'VAR anonymous', data: () => int().raw({ kind: BTF_KIND.VAR, sizeOrType: 1, data: [1] }).build(), code: 'INVALID_NAME', msg: '[2] VAR (anon) type_id=1 linkage=1 Invalid name' },
  { descr: 'VAR of a fwd', data: () => B().fwd('f').var('v', 1).build(), code: 'INVALID_TYPE_ID', msg: '[2] VAR v type_id=1 linkage=1 Invalid type_id' },
  { descr: 'DATASEC of 0 bytes', data: () => int().var('v', 1).datasec('.data', 0, [{ type: 2, offset: 0, size: 4 }]).build(), code: 'SIZE_ZERO', msg: '[3] DATASEC .data size=0 vlen=1 size == 0' },
  { descr: 'DATASEC anonymous', data: () => int().var('v', 1).datasec({ off: 0 }, 4, [{ type: 2, offset: 0, size: 4 }]).build(), code: 'INVALID_NAME', msg: '[3] DATASEC (anon) size=4 vlen=1 Invalid name' },
  { descr: 'DATASEC var of type 0', data: () => int().var('v', 1).datasec('.data', 8, [{ type: 0, offset: 0, size: 4 }]).build(), code: 'INVALID_TYPE_ID', msg: '[3] DATASEC .data size=8 vlen=1\n\t type_id=0 offset=0 size=4 Invalid type_id' },
  {
    descr: 'DATASEC vars overlapping',
    data: () => int().var('v', 1).var('w', 1).datasec('.data', 8, [{ type: 2, offset: 0, size: 4 }, { type: 3, offset: 2, size: 4 }]).build(),
    code: 'INVALID_OFFSET', msg: '\t type_id=3 offset=2 size=4 Invalid offset',
  },
  { descr: 'DATASEC var of 0 bytes', data: () => int().var('v', 1).datasec('.data', 8, [{ type: 2, offset: 0, size: 0 }]).build(), code: 'INVALID_SIZE', msg: '\t type_id=2 offset=0 size=0 Invalid size' },
  { descr: 'DATASEC var past the end', data: () => int().var('v', 1).datasec('.data', 8, [{ type: 2, offset: 6, size: 4 }]).build(), code: 'INVALID_OFFSET_SIZE', msg: '\t type_id=2 offset=6 size=4 Invalid offset+size' },
  { descr: 'DATASEC of an int', data: () => int().var('v', 1).datasec('.data', 4, [{ type: 1, offset: 0, size: 4 }]).build(), code: 'NOT_A_VAR', msg: '[3] DATASEC .data size=4 vlen=1\n\t type_id=1 offset=0 size=4 Not a VAR kind member' },
  { descr: 'DATASEC var smaller than its type', data: () => int().var('v', 1).datasec('.data', 4, [{ type: 2, offset: 0, size: 2 }]).build(), code: 'INVALID_SIZE', msg: '[3] DATASEC .data size=4 vlen=1\n\t type_id=2 offset=0 size=2 Invalid size' },
  // FLOAT, DECL_TAG
  { descr: 'FLOAT of 3 bytes', data: () => B().float('f', 3).build(), code: 'INVALID_TYPE_SIZE', msg: '[1] FLOAT f size=3 Invalid type_size' },
  { descr: 'FLOAT kind_flag', data: () => B().raw({ kind: BTF_KIND.FLOAT, name: 'f', kindFlag: true, sizeOrType: 4 }).build(), code: 'INVALID_KIND_FLAG', msg: '[1] FLOAT f size=4 Invalid btf_info kind_flag' },
  {
    descr: 'DECL_TAG without a value',
    data: () => int().struct('s', 4, [{ name: 'a', type: 1, bitsOffset: 0 }]).raw({ kind: BTF_KIND.DECL_TAG, sizeOrType: 2, data: [-1] }).build(),
    code: 'INVALID_VALUE', msg: '[3] DECL_TAG (anon) type=2 component_idx=-1 Invalid value',
  },
  { descr: 'DECL_TAG component -2', data: () => int().struct('s', 4, [{ name: 'a', type: 1, bitsOffset: 0 }]).declTag('t', 2, -2).build(), code: 'INVALID_COMPONENT_IDX', msg: '[3] DECL_TAG t type=2 component_idx=-2 Invalid component_idx' },
  { descr: 'DECL_TAG on an int', data: () => int().declTag('t', 1).build(), code: 'INVALID_TYPE_ID', msg: '[2] DECL_TAG t type=1 component_idx=-1 Invalid type_id' },
  { descr: 'DECL_TAG on a missing member', data: () => int().struct('s', 4, [{ name: 'a', type: 1, bitsOffset: 0 }]).declTag('t', 2, 1).build(), code: 'INVALID_COMPONENT_IDX', msg: '[3] DECL_TAG t type=2 component_idx=1 Invalid component_idx' },
  { descr: 'DECL_TAG on a component of a VAR', data: () => int().var('v', 1).declTag('t', 2, 0).build(), code: 'INVALID_COMPONENT_IDX', msg: '[3] DECL_TAG t type=2 component_idx=0 Invalid component_idx' },
  // loops and depth
  { descr: 'PTRs to each other', data: () => B().ptr(2).ptr(1).build(), code: 'LOOP_DETECTED', msg: '[1] PTR (anon) type_id=2 Loop detected', errno: -17 },
  { descr: 'CONST and VOLATILE to each other', data: () => B().const(2).volatile(1).build(), code: 'LOOP_DETECTED', msg: '[1] CONST (anon) type_id=2 Loop detected', errno: -17 },
  { descr: 'a TYPEDEF of a pointer to itself', data: () => B().typedef('t', 2).ptr(1).build(), code: 'LOOP_DETECTED', msg: '[1] TYPEDEF t type_id=2 Loop detected', errno: -17 },
  {
    descr: '34 CONSTs before the int',
    data: () => { const b = B(); for (let i = 1; i <= 34; i++) b.const(i + 1); return b.int('int', 4).build(); },
    code: 'MAX_RESOLVE_DEPTH', msg: '[1] CONST (anon) type_id=2 Exceeded max resolving depth:32', errno: -7,
  },
];

describe('validateBtf: the kernel\'s btf_parse() checks', () => {
  it.each(bad)('rejects $descr: $msg', ({ data, code, msg, errno }) => {
    let err: unknown;
    try { validateBtf(data()); } catch (e) { err = e; }
    expect(err).toBeInstanceOf(BtfError);
    const e = err as BtfError;
    expect({ code: e.code, errno: e.errno }).toEqual({ code, errno: errno ?? -22 });
    expect(e.message).toContain(msg);
    expect(e.log.at(-1)).toBe(msg.split('\n').at(-1));
    // A type's error names its id first.
    if (e.typeId !== undefined) expect(e.log[0]).toMatch(new RegExp(`^\\[${e.typeId}\\] `));
  });

  it('reads the structure without the kernel\'s semantic checks (bpftool\'s view), but not broken records', () => {
    // A struct embedding itself: readable, not loadable.
    const loop = B().struct('s', 4, [{ name: 'a', type: 1, bitsOffset: 0 }]).build();
    expect(new Btf(loop).type(1).members![0]!.type).toBe(1);
    expect(() => new Btf(B().raw({ kind: 20 }).build())).toThrow('[1] Invalid kind:20');
    expect(() => new Btf(int().build({ hdr: { version: 2 } }))).toThrow('Unsupported version');
  });

  it('accepts every kind in valid use, a zero-filled longer header, and pointer cycles through structs', () => {
    const b = int()                                   // [1]
      .ptr(1).const(2).volatile(3).restrict(4)        // [2..5]
      .typedef('t', 5).typeTag('user', 2)             // [6] [7]
      .array(1, 1, 4)                                 // [8]
      .struct('node', 32, [                           // [9]: a pointer to itself, bitfields, an array
        { name: 'next', type: 10, bitsOffset: 0 }, { name: 'a', type: 1, bitsOffset: 64, bitfieldSize: 3 },
        { name: 'b', type: 1, bitsOffset: 67, bitfieldSize: 29 }, { name: 'arr', type: 8, bitsOffset: 96 }])
      .ptr(9)                                         // [10]
      .union('u', 8, [{ name: 'i', type: 1, bitsOffset: 0 }, { name: 'p', type: 2, bitsOffset: 0 }]) // [11]
      .enum('e', 4, [['A', -1], ['B', 5]], true).enum64('e64', 8, [['C', 1n << 40n]]) // [12] [13]
      .fwd('later').fwd('lu', true)                   // [14] [15]
      .funcProto(1, [['x', 1], ['p', 10], [undefined, 0]]) // [16]: a vararg
      .func('f', 16, BTF_FUNC_STATIC)                 // [17]
      .var('g', 11).datasec('.data', 8, [{ type: 18, offset: 0, size: 8 }]) // [18] [19]
      .float('double', 8).declTag('tag', 9, 1).declTag('ftag', 17, 0) // [20..22]
      .ptr(14).ptr(16);                               // [23] to a fwd, [24] to a function
    const btf = validateBtf(b.build());
    expect(btf.typeCount).toBe(25);
    expect(btf.resolveSize(19)).toBe(8);
    expect(validateBtf(withLongerHeader(b.build(), [0, 0, 0, 0, 0, 0, 0, 0])).typeCount).toBe(25);
  });
});

describe('split BTF on top of vmlinux\'s', () => {
  const splitData = (): Uint8Array => new BtfBuilder({ base: vmlinux })
    .ptr(vmlinux.findByNameKind('sk_buff', BTF_KIND.STRUCT)!.id)
    .struct('mod_s', 16, [{ name: 'skb', type: vmlinux.typeCount, bitsOffset: 0 }, { name: 'x', type: 6, bitsOffset: 64 }])
    .build();

  it('continues the base\'s ids and strings', () => {
    const split = validateBtf(splitData(), { base: vmlinux });
    expect(split.startId).toBe(vmlinux.typeCount);
    expect(split.type(vmlinux.typeCount + 1).name).toBe('mod_s');
    expect(split.typeName(split.type(vmlinux.typeCount + 1).members![0]!.type)).toBe('struct sk_buff *');
    expect(split.findByNameKind('sk_buff', BTF_KIND.STRUCT)!.id).toBe(vmlinux.findByNameKind('sk_buff', BTF_KIND.STRUCT)!.id);
    expect(split.resolveSize(vmlinux.typeCount + 1)).toBe(16);
  });

  itWith(noBpftool)(`dumps its own types as bpftool -B vmlinux.btf does${skipped(noBpftool)}`, () => {
    writeFileSync(join(dir, 'split.btf'), splitData());
    const split = validateBtf(splitData(), { base: vmlinux });
    expect(dumpBtfRaw(split)).toBe(run('bpftool', ['btf', 'dump', 'file', join(dir, 'split.btf'), '-B', VMLINUX_BTF]));
  });

  it('rejects what the kernel rejects of a module\'s BTF, with ids after the base\'s', () => {
    const n = vmlinux.typeCount;
    const cases: [BtfBuilder, string][] = [
      [new BtfBuilder({ base: vmlinux }).ptr(9999), `[${n}] PTR (anon) type_id=9999 Invalid type_id`],
      [new BtfBuilder({ base: vmlinux }).struct('s', 4, [{ name: 'len', type: 5, bitsOffset: 8 }]), `\tlen type_id=5 bits_offset=8 Member exceeds struct_size`],
      [new BtfBuilder({ base: vmlinux }).ptr(n + 1).ptr(n), `[${n}] PTR (anon) type_id=${n + 1} Loop detected`],
    ];
    for (const [b, msg] of cases) expect(() => validateBtf(b.build(), { base: vmlinux })).toThrow(msg);
  });
});

// --- C ------------------------------------------------------------------------------------

/** _Static_asserts of every uniquely named struct/union's size and its named, non-bitfield members' offsets. */
function layoutAsserts(btf: Btf): string {
  const names = new Map<string, number>();
  for (const t of btf.types) if (t.name) names.set(`${t.kind}:${t.name}`, (names.get(`${t.kind}:${t.name}`) ?? 0) + 1);
  const out: string[] = [];
  for (const t of btf.types) {
    if ((t.kind !== BTF_KIND.STRUCT && t.kind !== BTF_KIND.UNION) || !t.name || names.get(`${t.kind}:${t.name}`) !== 1) continue;
    const tag = `${t.kind === BTF_KIND.STRUCT ? 'struct' : 'union'} ${t.name}`;
    out.push(`_Static_assert(sizeof(${tag}) == ${t.sizeOrType}, "${tag}");`);
    for (const m of t.members!) {
      if (m.name && !m.bitfieldSize) out.push(`_Static_assert(__builtin_offsetof(${tag}, ${m.name}) == ${m.offset / 8}, "${tag}.${m.name}");`);
    }
  }
  return out.join('\n');
}

/** The top-level declarations of a vmlinux.h: `struct x`, `typedef y`, `enum z` (each block ends with a blank line). */
function declarations(h: string): string[] {
  return h.split('\n\n').flatMap((block) => {
    const first = block.split('\n')[0]!;
    if (first.startsWith('typedef ')) {
      const name = /\(\*(\w+)\)/.exec(first)?.[1] ?? /(\w+)(?:\[\d+\])*;$/.exec(block)?.[1];
      return name ? [`typedef ${name}`] : [];
    }
    const m = /^(struct|union|enum) (\w+)(?: \{|;)/.exec(first);
    return m ? [`${m[1]} ${m[2]}`] : [];
  }).sort();
}

const SHAPES_C = `
typedef unsigned long long u64;
struct B;
struct A { struct B *b; int x; };
struct B { struct A a; char tag[3]; };
struct bits { unsigned int a: 3, b: 5; int : 0; unsigned long long c: 40; char d; unsigned short e: 9; };
struct __attribute__((packed)) pk { char c; int i; long long l; };
struct pad { char c; long long l __attribute__((aligned(16))); };
struct nest {
	int kind;
	union { struct { int lo, hi; }; u64 whole; } u;
	struct { char name[8]; int (*cb[4])(int, const char *); } anon_in;
	union { int i; float f; };
	enum { NA, NB = 7 } e;
	const volatile int *cvp;
	int *const cp;
	char grid[2][3][4];
	void (*(*fn_ret_fn)(int))(void);
};
typedef struct { int q; } anon_td;
typedef enum { T0, T1 } anon_enum_td;
enum top { TOP_A = -3, TOP_B = 1 };
union un { int a; char b[9]; };
typedef int arr_t[10];
typedef int (*fnptr_t)(void *, ...);
struct uses { anon_td t; anon_enum_td et; arr_t arr; fnptr_t f; union un uu; struct bits bb; struct pk p; struct pad pd;
	struct nest n; struct A aa; struct B bb2; enum top tp; _Bool ok; };
struct uses g_uses;
`;

describe('dumpBtfC (bpftool btf dump format c)', () => {
  const compiles = (header: string, btf: Btf, name: string): void => {
    const file = join(dir, `${name}.c`);
    writeFileSync(file, `${header}\n${layoutAsserts(btf)}\n`);
    const r = spawnSync('clang', ['-target', 'bpf', '-fsyntax-only', '-Werror', file], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  };

  itWith(noBpftool ?? noClang)(`writes vmlinux's types as bpftool does, and it compiles to BTF's layout${skipped(noBpftool ?? noClang)}`, () => {
    const mine = dumpBtfC(vmlinux);
    const theirs = run('bpftool', ['btf', 'dump', 'file', VMLINUX, 'format', 'c']);
    expect(declarations(mine)).toEqual(declarations(theirs));
    expect(declarations(mine)).toContain('struct sk_buff');
    expect(mine).toBe(theirs);
    compiles(mine, vmlinux, 'vmlinux_mine');
    compiles(theirs, vmlinux, 'vmlinux_bpftool');
  });

  itWith(noBpftool ?? noClang)(`writes clang's BTF of tricky C (bitfields, padding, packed, anonymous, function pointers) back to compilable C${skipped(noBpftool ?? noClang)}`, () => {
    writeFileSync(join(dir, 'shapes.c'), SHAPES_C);
    run('clang', ['-O2', '-g', '-target', 'bpf', '-c', join(dir, 'shapes.c'), '-o', join(dir, 'shapes.o')]);
    const btf = new Btf(elfBtf(join(dir, 'shapes.o')));
    const mine = dumpBtfC(btf);
    const theirs = run('bpftool', ['btf', 'dump', 'file', join(dir, 'shapes.o'), 'format', 'c']);
    expect(declarations(mine)).toEqual(declarations(theirs));
    for (const d of ['struct bits', 'struct pk', 'struct nest', 'typedef fnptr_t', 'typedef arr_t', 'typedef anon_td', 'enum top']) {
      expect(declarations(mine)).toContain(d);
    }
    expect(mine).toContain('} __attribute__((packed));');
    expect(mine).toContain('\tvoid (* (*fn_ret_fn)(int))(void);');
    expect(mine).toContain('\tint (*cb[4])(int, const char *);');
    compiles(mine, btf, 'shapes_mine');
  });
});

// --- .BTF.ext, hand-built ------------------------------------------------------------------

/** A .BTF.ext: header fields (hdr_len 32 unless given), then the u32 words of its blocks. */
function extBlob(words: number[], hdr: Partial<Record<'magic' | 'version' | 'flags' | 'hdrLen' | 'fiOff' | 'fiLen' | 'liOff' | 'liLen' | 'crOff' | 'crLen', number>>): Uint8Array {
  const h = { magic: 0xeb9f, version: 1, flags: 0, hdrLen: 32, fiOff: 0, fiLen: 0, liOff: 0, liLen: 0, crOff: 0, crLen: 0, ...hdr };
  const out = new Uint8Array(h.hdrLen + words.length * 4);
  const dv = new DataView(out.buffer);
  dv.setUint16(0, h.magic, true); out[2] = h.version; out[3] = h.flags; dv.setUint32(4, h.hdrLen, true);
  [h.fiOff, h.fiLen, h.liOff, h.liLen, h.crOff, h.crLen].forEach((v, i) => { if (8 + 4 * i < h.hdrLen) dv.setUint32(8 + 4 * i, v, true); });
  words.forEach((w, i) => dv.setUint32(h.hdrLen + 4 * i, w, true));
  return out;
}

describe('BtfExt: libbpf\'s checks of .BTF.ext', () => {
  const b = int().funcProto(1, []).func('f', 2);
  const sec = b.str('sec'), file = b.str('f.c'), line = b.str('return 0;'), access = b.str('0:1');
  const btf = new Btf(b.build());
  // func_info: rec_size 8, one section of one record; line_info: rec_size 16; core_relo: rec_size 16.
  const fi = [8, sec, 1, 0, 3], li = [16, sec, 1, 8, file, line, (7 << 10) | 3], cr = [16, sec, 1, 16, 1, access, 0];
  const all = (): Uint8Array => extBlob([...fi, ...li, ...cr], { fiLen: 20, liOff: 20, liLen: 28, crOff: 48, crLen: 28 });

  it('reads the three blocks, a short header without CO-RE, and larger records by their size', () => {
    const ext = new BtfExt(all(), btf);
    expect(ext.section('sec')).toEqual({
      funcInfo: [{ insnOff: 0, typeId: 3 }],
      lineInfo: [{ insnOff: 8, fileNameOff: file, lineOff: line, lineCol: (7 << 10) | 3, line: 7, col: 3, fileName: 'f.c', lineText: 'return 0;' }],
      coreRelos: [{ insnOff: 16, typeId: 1, accessStrOff: access, kind: 0, accessStr: '0:1' }],
    });
    expect(new BtfExt(extBlob([...fi, ...li], { hdrLen: 24, fiLen: 20, liOff: 20, liLen: 28 }), btf).coreRelos.sections).toEqual([]);
    const wide = new BtfExt(extBlob([12, sec, 2, 0, 3, 0xdead, 8, 3, 0xbeef], { fiLen: 36 }), btf);
    expect(wide.funcInfo).toEqual({ recSize: 12, sections: [{ secNameOff: sec, secName: 'sec', records: [{ insnOff: 0, typeId: 3 }, { insnOff: 8, typeId: 3 }] }] });
  });

  const cases: [string, string, () => Uint8Array, number?][] = [
    ['a 4-byte blob', 'BTF.ext header not found', () => Uint8Array.of(0x9f, 0xeb, 1, 0)],
    ['bad magic', 'Invalid BTF.ext magic:1234', () => extBlob(fi, { magic: 0x1234, fiLen: 20 })],
    ['version 2', 'Unsupported BTF.ext version:2', () => extBlob(fi, { version: 2, fiLen: 20 }), -524],
    ['flags', 'Unsupported BTF.ext flags:1', () => extBlob(fi, { flags: 1, fiLen: 20 }), -524],
    ['a header only', 'BTF.ext has no data', () => extBlob([], {})],
    ['an unaligned block', '.BTF.ext func_info section is not aligned to 4 bytes', () => extBlob([0, ...fi], { fiOff: 2, fiLen: 20 })],
    ['a block past the end', 'func_info section (off:0 len:100) is beyond the end of the ELF section .BTF.ext', () => extBlob(fi, { fiLen: 100 })],
    ['no record size', '.BTF.ext line_info record size not found', () => extBlob([...fi, 0], { fiLen: 20, liOff: 20, liLen: 2 })],
    ['records too small', 'func_info section in .BTF.ext has invalid record size 4', () => extBlob([4, sec, 1, 0], { fiLen: 16 })],
    ['a record size only', 'func_info section in .BTF.ext has no records', () => extBlob([8], { fiLen: 4 })],
    ['no records in a section', 'func_info section has incorrect num_records in .BTF.ext', () => extBlob([8, sec, 0], { fiLen: 12 })],
    ['fewer records than counted', 'func_info section has incorrect num_records in .BTF.ext', () => extBlob([8, sec, 2, 0, 3], { fiLen: 20 })],
    ['a section name past the strings', 'func_info section has invalid sec_name_off 4096', () => extBlob([8, 4096, 1, 0, 3], { fiLen: 20 })],
  ];
  it.each(cases)('rejects %s: %s', (_d, msg, data, errno) => {
    let err: unknown;
    try { new BtfExt(data(), btf); } catch (e) { err = e; }
    expect(err).toBeInstanceOf(BtfError);
    expect([(err as BtfError).message, (err as BtfError).errno]).toEqual([msg, errno ?? -22]);
  });
});

// --- a BPF object: .BTF.ext and CO-RE ---------------------------------------------------------

const PROG_C = `// SPDX-License-Identifier: GPL-2.0
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

/* Local views of the kernel's structs: fewer fields at other offsets; CO-RE relocates by name. */
struct net_device { int ifindex; } __attribute__((preserve_access_index));
struct sk_buff { unsigned int len; struct net_device *dev; } __attribute__((preserve_access_index));
struct sk_buff___old { int pad; unsigned int len; } __attribute__((preserve_access_index));
struct task_struct { int pid; } __attribute__((preserve_access_index));
enum bpfemu_color { BPFEMU_RED, BPFEMU_GREEN = 5, BPFEMU_BLUE = 6, BPFEMU_PURPLE = 7 };

unsigned long long out[8];

static __noinline int add_len(unsigned int len, int ifindex)
{
	return len + ifindex;
}

SEC("fentry/eth_type_trans")
int trace_skb(unsigned long long *ctx)
{
	struct sk_buff *skb = (struct sk_buff *)ctx[0];
	unsigned int len = BPF_CORE_READ(skb, len);
	int ifindex = BPF_CORE_READ(skb, dev, ifindex);

	out[0] = add_len(len, ifindex);
	out[1] = bpf_core_field_exists(((struct sk_buff___old *)skb)->pad);
	out[2] = BPF_CORE_READ((struct sk_buff___old *)skb, len);
	out[3] = bpf_core_field_size(skb->len);
	out[4] = bpf_core_type_exists(struct task_struct);
	out[5] = bpf_core_type_size(struct task_struct);
	out[6] = bpf_core_enum_value(enum bpfemu_color, BPFEMU_BLUE);
	out[7] = bpf_core_enum_value_exists(enum bpfemu_color, BPFEMU_PURPLE);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
`;

/** pahole's offset of a member: `\ttype  name;  /* offset size *\/`. */
function paholeOffset(struct: string, member: string): number {
  const text = run('pahole', ['-C', struct, VMLINUX]);
  const m = new RegExp(`\\b${member};\\s+/\\*\\s+(\\d+)\\s+(\\d+) \\*/`).exec(text);
  if (!m) throw new Error(`pahole -C ${struct}: no ${member}`);
  return Number(m[1]);
}

describe('a clang-compiled BPF object', () => {
  const noTools = noClang ?? noPahole;
  let elf: ElfFile, btf: Btf, ext: BtfExt;
  beforeAll(() => {
    if (noTools) return;
    writeFileSync(join(dir, 'prog.c'), PROG_C);
    run('clang', ['-O2', '-g', '-target', 'bpf', '-I/usr/include/x86_64-linux-gnu', '-c', join(dir, 'prog.c'), '-o', join(dir, 'prog.o')]);
    elf = new ElfFile(new Uint8Array(readFileSync(join(dir, 'prog.o'))));
    btf = new Btf(elf.sectionData('.BTF'));
    ext = new BtfExt(elf.sectionData('.BTF.ext'), btf);
  });

  itWith(noTools)(`its .BTF is clang's, which the kernel refuses until libbpf sizes the DATASECs${skipped(noTools)}`, () => {
    expect(btf.findByNameKind('trace_skb', BTF_KIND.FUNC)!.linkage).toBe(1);
    const bss = btf.findByNameKind('.bss', BTF_KIND.DATASEC)!;
    expect(() => validateBtf(elf.sectionData('.BTF'))).toThrow(`[${bss.id}] DATASEC .bss size=0 vlen=1 size == 0`);
  });

  itWith(noTools)(`func_info names each function's FUNC at its symbol's offset, per section${skipped(noTools)}`, () => {
    expect(ext.hdr).toMatchObject({ magic: 0xeb9f, version: 1, flags: 0, hdrLen: 32 });
    expect(ext.funcInfo.recSize).toBe(8);
    const syms = elf.symbols().filter((s) => s.type === STT_FUNC);
    const seen = ext.funcInfo.sections.flatMap((sec) => sec.records.map((r) => {
      const f = btf.type(r.typeId);
      expect(f.kind).toBe(BTF_KIND.FUNC);
      const sym = syms.find((s) => s.name === f.name)!;
      expect(elf.sections[sym.shndx]!.name).toBe(sec.secName);
      expect(BigInt(r.insnOff)).toBe(sym.value);
      return `${sec.secName}:${f.name}`;
    }));
    expect(seen.sort()).toEqual(['.text:add_len', 'fentry/eth_type_trans:trace_skb']);
    expect(btf.typeName(btf.type(btf.findByNameKind('add_len', BTF_KIND.FUNC)!.sizeOrType).params![0]!.type)).toBe('unsigned int');
  });

  itWith(noTools)(`line_info points at the source lines, with their text${skipped(noTools)}`, () => {
    const src = PROG_C.split('\n');
    expect(ext.lineInfo.recSize).toBe(16);
    const lines = ext.lineInfo.sections.flatMap((s) => s.records).filter((l) => l.line > 0);
    for (const l of lines) {
      expect(l.fileName).toMatch(/prog\.c$/);
      expect(l.lineText).toBe(src[l.line - 1]);
      expect(l.col).toBeLessThanOrEqual(src[l.line - 1]!.length + 1);
    }
    const at = (text: string): number => src.findIndex((s) => s.includes(text)) + 1;
    const covered = new Set(lines.map((l) => l.line));
    for (const t of ['int trace_skb(', 'BPF_CORE_READ(skb, len)', 'BPF_CORE_READ(skb, dev, ifindex)', 'return len + ifindex']) expect(covered).toContain(at(t));
    // Each section's first line is its function's first line.
    const first = ext.section('fentry/eth_type_trans').lineInfo[0]!;
    expect([first.insnOff, first.line]).toEqual([0, at('int trace_skb(')]);
  });

  itWith(noTools)(`CO-RE relocations resolve against vmlinux BTF to pahole's offsets, matching the compiled instructions${skipped(noTools)}`, () => {
    const insns = decode(elf.sectionData('fentry/eth_type_trans'));
    const relos = ext.section('fentry/eth_type_trans').coreRelos;
    const got = relos.map((r, i) => {
      const res = resolveCoreRelo(btf, { typeId: r.typeId, accessStr: r.accessStr!, kind: r.kind }, vmlinux, { reloIdx: i });
      // The compiled instruction holds the local value (an immediate here; a load's offset otherwise).
      const insn = insns[r.insnOff / 8]!;
      const lddw = insn.code === 0x18;
      const held = lddw ? BigInt.asUintN(64, (BigInt(insns[r.insnOff / 8 + 1]!.imm) << 32n) | BigInt(insn.imm >>> 0)) : BigInt(insn.imm);
      if (res.validate) expect(held).toBe(res.origValue);
      return [btf.type(r.typeId).name, r.accessStr, r.kind, res.origValue, res.value];
    });
    const skbLen = BigInt(paholeOffset('sk_buff', 'len')), skbDev = BigInt(paholeOffset('sk_buff', 'dev'));
    const ifindex = BigInt(paholeOffset('net_device', 'ifindex'));
    expect([skbLen, skbDev, ifindex]).toEqual([8n, 16n, 16n]);
    expect(got).toEqual([
      ['sk_buff', '0:0', BPF_CORE.FIELD_BYTE_OFFSET, 0n, skbLen],
      ['sk_buff', '0:1', BPF_CORE.FIELD_BYTE_OFFSET, 8n, skbDev],
      ['net_device', '0:0', BPF_CORE.FIELD_BYTE_OFFSET, 0n, ifindex],
      ['sk_buff___old', '0:0', BPF_CORE.FIELD_EXISTS, 1n, 0n], // no pad in the kernel's sk_buff
      ['sk_buff___old', '0:1', BPF_CORE.FIELD_BYTE_OFFSET, 4n, skbLen], // the flavor matches sk_buff
      ['sk_buff', '0:0', BPF_CORE.FIELD_BYTE_SIZE, 4n, 4n],
      ['task_struct', '0', BPF_CORE.TYPE_EXISTS, 1n, 1n],
      ['task_struct', '0', BPF_CORE.TYPE_SIZE, 4n, BigInt(vmlinux.resolveSize(vmlinux.findByNameKind('task_struct', BTF_KIND.STRUCT)!.id))],
      ['bpfemu_color', '2', BPF_CORE.ENUMVAL_VALUE, 6n, 0xffffffffffffffffn], // BPFEMU_BLUE = -1 in the kernel
      ['bpfemu_color', '3', BPF_CORE.ENUMVAL_EXISTS, 1n, 0n], // no PURPLE in the kernel
    ]);
  });
});
