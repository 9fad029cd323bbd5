/**
 * @fileoverview The registers the gdb stub exposes, in gdb's amd64 numbering, and the target
 * description (gdb/features/i386/64bit-core.xml and 64bit-segments.xml) that names them.
 *
 * gdb's amd64 architecture accepts an org.gnu.gdb.i386.core feature only when it holds all 40
 * core registers (i386_validate_tdesc_p): the 16 GPRs, rip, eflags, six segment selectors and the
 * x87 state. The machine has no x87 state to show, so st0..fop are sent as unavailable (`xx`);
 * gdb prints them as `<unavailable>`. fs_base/gs_base follow in org.gnu.gdb.i386.segments.
 *
 *   num  name     bits   g-packet offset (bytes)
 *   0-15 rax..r15  64    0..127     (gdb order: rax rbx rcx rdx rsi rdi rbp rsp r8..r15)
 *   16   rip       64    128
 *   17   eflags    32    136
 *   18-23 cs ss ds es fs gs  32   140..163
 *   24-31 st0..st7 80    164..243   unavailable
 *   32-39 fctrl..fop 32  244..275   unavailable
 *   40-41 fs_base gs_base 64  276..291
 */
import type { RegName } from './unicorn/consts.ts';

export interface GdbReg {
  readonly name: string;
  readonly bits: number;
  /** The machine register behind it; none for state the machine does not model. */
  readonly machine: RegName | undefined;
  readonly type: string;
  readonly feature: 'core' | 'segments';
  readonly group?: string;
}

const reg = (name: string, bits: number, machine: RegName | undefined, type: string, feature: GdbReg['feature'] = 'core', group?: string): GdbReg =>
  ({ name, bits, machine, type, feature, ...(group ? { group } : {}) });

const GPRS = ['rax', 'rbx', 'rcx', 'rdx', 'rsi', 'rdi', 'rbp', 'rsp', 'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15'] as const satisfies readonly RegName[];
const SEGS = ['cs', 'ss', 'ds', 'es', 'fs', 'gs'] as const satisfies readonly RegName[];
const X87_CONTROL = ['fctrl', 'fstat', 'ftag', 'fiseg', 'fioff', 'foseg', 'fooff', 'fop'];

/** The registers in gdb's numbering: index = the number `p`/`P` use. */
export const GDB_REGS: readonly GdbReg[] = [
  ...GPRS.map((r) => reg(r, 64, r, r === 'rbp' || r === 'rsp' ? 'data_ptr' : 'int64')),
  reg('rip', 64, 'rip', 'code_ptr'),
  reg('eflags', 32, 'eflags', 'i386_eflags'),
  ...SEGS.map((r) => reg(r, 32, r, 'int32')),
  ...Array.from({ length: 8 }, (_, i) => reg(`st${i}`, 80, undefined, 'i387_ext')),
  ...X87_CONTROL.map((r) => reg(r, 32, undefined, 'int', 'core', 'float')),
  reg('fs_base', 64, 'fs_base', 'int', 'segments'),
  reg('gs_base', 64, 'gs_base', 'int', 'segments'),
];

export const GDB_REG_NUM: Readonly<Record<string, number>> = Object.fromEntries(GDB_REGS.map((r, i) => [r.name, i]));

/** eflags bits as gdb names them (the i386_eflags flags type). */
const EFLAGS_FIELDS: readonly [string, number][] = [
  ['CF', 0], ['', 1], ['PF', 2], ['AF', 4], ['ZF', 6], ['SF', 7], ['TF', 8], ['IF', 9], ['DF', 10], ['OF', 11],
  ['NT', 14], ['RF', 16], ['VM', 17], ['AC', 18], ['VIF', 19], ['VIP', 20], ['ID', 21],
];

function regXml(r: GdbReg, regnum: number): string {
  return `    <reg name="${r.name}" bitsize="${r.bits}" type="${r.type}" regnum="${regnum}"${r.group ? ` group="${r.group}"` : ''}/>`;
}

/** target.xml: what qXfer:features:read:target.xml serves. */
export function targetXml(): string {
  const inFeature = (f: GdbReg['feature']): string =>
    GDB_REGS.map((r, i) => (r.feature === f ? regXml(r, i) : '')).filter(Boolean).join('\n');
  return `<?xml version="1.0"?>
<!DOCTYPE target SYSTEM "gdb-target.dtd">
<target version="1.0">
  <architecture>i386:x86-64</architecture>
  <feature name="org.gnu.gdb.i386.core">
    <flags id="i386_eflags" size="4">
${EFLAGS_FIELDS.map(([n, b]) => `      <field name="${n}" start="${b}" end="${b}"/>`).join('\n')}
    </flags>
${inFeature('core')}
  </feature>
  <feature name="org.gnu.gdb.i386.segments">
${inFeature('segments')}
  </feature>
</target>
`;
}

/** A register's value as little-endian hex of its size, `xx…` when unavailable. */
export function encodeReg(r: GdbReg, value: bigint | undefined): string {
  const bytes = r.bits / 8;
  if (value === undefined) return 'xx'.repeat(bytes);
  let out = '';
  let v = BigInt.asUintN(r.bits, value);
  for (let i = 0; i < bytes; i++) { out += Number(v & 0xffn).toString(16).padStart(2, '0'); v >>= 8n; }
  return out;
}

/** Little-endian hex of one register's size to a value; undefined when malformed or `xx`. */
export function decodeReg(r: GdbReg, hex: string): bigint | undefined {
  if (hex.length !== r.bits / 4 || !/^[0-9a-fA-F]*$/.test(hex)) return undefined;
  let v = 0n;
  for (let i = hex.length - 2; i >= 0; i -= 2) v = (v << 8n) | BigInt(parseInt(hex.slice(i, i + 2), 16));
  return v;
}

/** Total size of a `g` reply in hex digits. */
export const G_PACKET_HEX = GDB_REGS.reduce((n, r) => n + r.bits / 4, 0);
