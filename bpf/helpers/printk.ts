/**
 * @fileoverview bpf_trace_printk()'s format rules and formatting as in v5.5
 * (kernel/trace/bpf_trace.c, before b2a5212fb634 added %pks/%pus in 5.7):
 *
 * - fmt_size bytes with a NUL as the last one; every byte checked before it must be printable
 *   ASCII or whitespace (an embedded NUL fails too);
 * - at most 3 conversions, each one of %d %i %u %x, with an `l` or `ll` modifier, or %p, or %s;
 *   %p and %s may only be followed by NUL, whitespace or punctuation (no %pK, %px, %pS, …), and
 *   only one %s; anything else (%c, %%, widths, %5d, %lp) is -EINVAL;
 * - arguments are u64; without a modifier they are passed as u32 (%d then prints a signed int);
 * - %s reads at most 63 bytes of a kernel string (strncpy_from_unsafe into a 64-byte buffer);
 * - %p prints hashed: NULL and error pointers as they are, others as 32 bits of a keyed hash,
 *   zero-padded to 16 hex digits (ptr_to_id(); the kernel's key is random, this one is fixed).
 *
 * The result is the text and its length (__trace_printk() returns what vscnprintf wrote into
 * TRACE_BUF_SIZE = 1024 bytes).
 */
import { jhash } from '../maps/jhash.ts';

export const EINVAL = 22;
/** TRACE_BUF_SIZE: the trace_printk buffer; text beyond 1023 bytes is dropped. */
export const TRACE_BUF_SIZE = 1024;
/** The %s buffer of bpf_trace_printk (char buf[64]). */
export const BPF_PRINTK_STR_BUF = 64;
/** Stands for the kernel's random ptr_key. */
const PTR_HASH_KEY = 0x70747268;

const isPrint = (c: number): boolean => c >= 0x20 && c <= 0x7e;
const isSpace = (c: number): boolean => c === 0x20 || (c >= 0x09 && c <= 0x0d);
const isAlnum = (c: number): boolean => (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
const isPunct = (c: number): boolean => isPrint(c) && c !== 0x20 && !isAlnum(c);

/** One accepted conversion: where it is in fmt, what it converts, and its `l` count. */
interface Conv { start: number; end: number; type: 'd' | 'i' | 'u' | 'x' | 'p' | 's'; mod: number }

/** The conversions of a v5.5-valid format, or -EINVAL. */
export function parseTracePrintkFormat(fmt: Uint8Array): Conv[] | number {
  if (fmt.length === 0) return -EINVAL; // the verifier's fmt_size > 0
  const size = fmt.length - 1;
  if (fmt[size] !== 0) return -EINVAL;
  const at = (i: number): number => fmt[i] ?? 0;
  const convs: Conv[] = [];
  let strSeen = false;
  for (let i = 0; i < size; i++) {
    const c = at(i);
    if ((!isPrint(c) && !isSpace(c)) || c > 0x7f) return -EINVAL;
    if (c !== 0x25 /* % */) continue;
    if (convs.length >= 3) return -EINVAL;
    const start = i;
    let mod = 0;
    i++; // fmt[i] != 0 and fmt[last] == 0, so fmt[i + 1] exists
    if (at(i) === 0x6c /* l */) { mod++; i++; }
    else if (at(i) === 0x70 /* p */ || at(i) === 0x73 /* s */) {
      mod++;
      const next = at(i + 1);
      // No further format extensions (%pK, %px, %sfoo, …).
      if (next !== 0 && !isSpace(next) && !isPunct(next)) return -EINVAL;
      const type = at(i) === 0x70 ? 'p' : 's';
      if (type === 's') {
        if (strSeen) return -EINVAL; // only one %s per format
        strSeen = true;
      }
      convs.push({ start, end: i + 1, type, mod });
      continue;
    }
    if (at(i) === 0x6c) { mod++; i++; }
    const t = at(i);
    if (t !== 0x69 && t !== 0x64 && t !== 0x75 && t !== 0x78) return -EINVAL;
    convs.push({ start, end: i + 1, type: String.fromCharCode(t) as Conv['type'], mod });
  }
  return convs;
}

/** ptr_to_id(): how a plain %p prints `v`. */
export function hashedPointer(v: bigint): string {
  const p = BigInt.asUintN(64, v);
  if (p === 0n || p >= BigInt.asUintN(64, -4095n)) return p.toString(16).padStart(16, '0'); // IS_ERR_OR_NULL
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, p, true);
  return jhash(b, PTR_HASH_KEY).toString(16).padStart(16, '0');
}

/**
 * Formats a v5.5 bpf_trace_printk call: the text, or -EINVAL for a refused format. `readStr`
 * does %s's strncpy_from_unsafe of at most BPF_PRINTK_STR_BUF bytes (the string, NUL excluded).
 */
export function formatTracePrintk(fmt: Uint8Array, args: readonly bigint[], readStr: (addr: bigint) => Uint8Array): string | number {
  const convs = parseTracePrintkFormat(fmt);
  if (typeof convs === 'number') return convs;
  const end = fmt.length - 1;
  const latin1 = (a: number, b: number): string => Buffer.from(fmt.subarray(a, b)).toString('latin1');
  let out = '', pos = 0;
  convs.forEach((cv, n) => {
    out += latin1(pos, cv.start);
    pos = cv.end;
    const v = BigInt.asUintN(64, args[n] ?? 0n);
    // No modifier: passed as u32 (the va_arg is an int); l/ll: the full 64 bits.
    const wide = cv.mod > 0;
    switch (cv.type) {
      case 'd': case 'i': out += (wide ? BigInt.asIntN(64, v) : BigInt.asIntN(32, v)).toString(); break;
      case 'u': out += (wide ? v : BigInt.asUintN(32, v)).toString(); break;
      case 'x': out += (wide ? v : BigInt.asUintN(32, v)).toString(16); break;
      case 'p': out += hashedPointer(v); break;
      case 's': out += Buffer.from(readStr(v)).toString('utf8'); break;
    }
  });
  out += latin1(pos, end);
  // vscnprintf into TRACE_BUF_SIZE: at most 1023 bytes.
  const bytes = Buffer.from(out, 'utf8');
  return bytes.length < TRACE_BUF_SIZE ? out : bytes.subarray(0, TRACE_BUF_SIZE - 1).toString('utf8');
}
