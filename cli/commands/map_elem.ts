/**
 * @fileoverview What `map lookup|update|delete|getnext|dump id N` share, as bpftool's map.c does
 * it: the map's fd by id (BPF_MAP_GET_FD_BY_ID, closed after the command), `key`/`value` byte
 * arguments (parse_elem/parse_bytes: `key 0x01 0 0 0`, `key hex 01 00 00 00`, prefixes `k`,
 * `val`…, flags any|exist|noexist), the plain `key: … value: …` rendering (fprint_hex: a space
 * between bytes, two every 8, a new line every 16) and the JSON one (`"0x01"` strings), and the
 * kernel's errno as strerror() words it.
 */
import { BPF_MAP_GET_FD_BY_ID, BPF_OBJ_GET_INFO_BY_FD } from '../../bpf/syscall/attr.ts';
import { MAP_INFO_SIZE } from '../../bpf/syscall/info.ts';
import { UsageError } from '../output.ts';
import type { System } from '../../index.ts';

/** strerror(3) of the errnos bpf() returns. */
const STRERROR: Record<number, string> = {
  1: 'Operation not permitted', 2: 'No such file or directory', 7: 'Argument list too long', 9: 'Bad file descriptor',
  12: 'Cannot allocate memory', 13: 'Permission denied', 14: 'Bad address', 16: 'Device or resource busy',
  17: 'File exists', 22: 'Invalid argument', 24: 'Too many open files', 28: 'No space left on device',
  77: 'File descriptor in bad state', 95: 'Operation not supported', 524: 'Unknown error 524',
};
/** strerror of a negative (kernel) or positive errno. */
export const strerror = (e: number): string => STRERROR[Math.abs(e)] ?? `Unknown error ${Math.abs(e)}`;

/** bpftool's is_prefix: `arg` is a (non-empty here) prefix of `word`. */
export const isPrefix = (arg: string, word: string): boolean => arg.length > 0 && word.startsWith(arg);

/** strtoul(s, &end, base) → the value, or undefined when `*end` would not be NUL (bpftool's check). */
export function strtoul(s: string, base: 0 | 16): bigint | undefined {
  if (s === '') return 0n; // no digits: end = s, and *s is NUL
  const sign = /^[ \t\n\v\f\r]*([+-]?)/.exec(s)!;
  let rest = s.slice(sign[0].length), b: number = base;
  if (/^0x[0-9a-f]/i.test(rest)) { rest = rest.slice(2); b = 16; } else if (b === 0) b = rest.startsWith('0') ? 8 : 10;
  const digits = (b === 16 ? /^[0-9a-f]+/i : b === 8 ? /^[0-7]+/ : /^[0-9]+/).exec(rest)?.[0];
  if (!digits || digits.length !== rest.length) return undefined;
  let v = BigInt(b === 16 ? `0x${digits}` : b === 8 ? `0o${digits}` : digits);
  if (v > 0xffffffffffffffffn) v = 0xffffffffffffffffn; // ERANGE: ULONG_MAX
  return sign[1] === '-' ? BigInt.asUintN(64, -v) : v;
}

/** parse_bytes: `[hex] B0 B1 …` into exactly n bytes; returns the words after them. */
function parseBytes(words: string[], name: string, n: number): { bytes: Uint8Array; rest: string[] } {
  let i = 0, base: 0 | 16 = 0;
  if (words[0] !== undefined && isPrefix(words[0], 'hex')) { base = 16; words = words.slice(1); }
  const bytes = new Uint8Array(n);
  while (i < n && i < words.length) {
    const v = strtoul(words[i]!, base);
    if (v === undefined) throw new UsageError(`error parsing byte: ${words[i]}`);
    bytes[i] = Number(v & 0xffn); // val[i] is an unsigned char
    i++;
  }
  if (i !== n) throw new UsageError(`${name} expected ${n} bytes got ${i}`);
  return { bytes, rest: words.slice(i) };
}

export const BPF_ANY = 0, BPF_NOEXIST = 1, BPF_EXIST = 2;

export interface Elem { key?: Uint8Array; value?: Uint8Array; flags: number }

/**
 * parse_elem: `key BYTES`, `value BYTES` and an update flag in any order, each once; `want`
 * says which the command takes (lookup/delete: the key; update: key, value and a flag).
 */
export function parseElem(words: string[], keySize: number, valueSize: number, want: { value?: boolean; flags?: boolean }): Elem {
  const out: Elem = { flags: BPF_ANY };
  let needKey = true, needValue = !!want.value, flagsOk = !!want.flags; // flagsOk false: "specified multiple times" as bpftool says
  while (words.length) {
    const w = words[0]!;
    if (isPrefix(w, 'key')) {
      if (!needKey) throw new UsageError(keySize ? 'duplicate key' : 'unnecessary key');
      const r = parseBytes(words.slice(1), 'key', keySize);
      out.key = r.bytes; words = r.rest; needKey = false;
    } else if (isPrefix(w, 'value')) {
      if (!needValue) throw new UsageError(want.value && valueSize ? 'duplicate value' : 'unnecessary value');
      const r = parseBytes(words.slice(1), 'value', valueSize);
      out.value = r.bytes; words = r.rest; needValue = false;
    } else if ((isPrefix(w, 'any') || isPrefix(w, 'noexist') || isPrefix(w, 'exist'))) {
      if (!flagsOk) throw new UsageError(`flags specified multiple times: ${w}`);
      out.flags = isPrefix(w, 'any') ? BPF_ANY : isPrefix(w, 'noexist') ? BPF_NOEXIST : BPF_EXIST;
      words = words.slice(1); flagsOk = false;
    } else throw new UsageError(`expected key or value, got: ${w}`);
  }
  if (needKey || needValue) throw new UsageError(`did not find ${needKey ? 'key' : 'value'}`);
  return out;
}

/** fprint_hex(…, " "): bytes as %02x, two spaces every 8 bytes, a new line every 16. */
export function fprintHex(b: Uint8Array): string {
  let s = '';
  b.forEach((x, i) => { s += `${i === 0 ? '' : i % 16 === 0 ? '\n' : i % 8 === 0 ? '  ' : ' '}${x.toString(16).padStart(2, '0')}`; });
  return s;
}

/** print_hex_data_json: each byte as a "0x%02hhx" string. */
export const hexJson = (b: Uint8Array): string[] => Array.from(b, (x) => `0x${x.toString(16).padStart(2, '0')}`);

export interface MapInfo { id: number; type: number; keySize: number; valueSize: number; maxEntries: number; flags: number; name: string; btfId: number }
const PERCPU = new Set([5, 6, 10]); // percpu_hash, percpu_array, lru_percpu_hash
export const isPerCpu = (type: number): boolean => PERCPU.has(type);

/** print_entry_plain. */
export function entryPlain(info: MapInfo, key: Uint8Array, value: Uint8Array, nrCpus = 1): string {
  if (!isPerCpu(info.type)) {
    const breakNames = info.keySize > 16 || info.valueSize > 16;
    const single = info.keySize + info.valueSize <= 24 && !breakNames;
    const sep = breakNames ? '\n' : ' ';
    return `${info.keySize ? `key:${sep}${fprintHex(key)}${single ? '  ' : '\n'}` : ''}${info.valueSize ? `value:${sep}${fprintHex(value)}` : ''}`;
  }
  const step = (info.valueSize + 7) & ~7;
  const lines = [`key:\n${fprintHex(key)}`];
  for (let c = 0; c < nrCpus; c++)
    lines.push(`value (CPU ${String(c).padStart(2, '0')}):${info.valueSize > 16 ? '\n' : ' '}${fprintHex(value.subarray(c * step, c * step + info.valueSize))}`);
  return lines.join('\n');
}

/** print_entry_json (without BTF). */
export function entryJson(info: MapInfo, key: Uint8Array, value: Uint8Array, nrCpus = 1): unknown {
  if (!isPerCpu(info.type)) return { key: hexJson(key), value: hexJson(value) };
  const step = (info.valueSize + 7) & ~7;
  return { key: hexJson(key), values: Array.from({ length: nrCpus }, (_, c) => ({ cpu: c, value: hexJson(value.subarray(c * step, c * step + info.valueSize)) })) };
}

/**
 * map_parse_fd_and_info for `id N`: an fd from BPF_MAP_GET_FD_BY_ID and struct bpf_map_info
 * from BPF_OBJ_GET_INFO_BY_FD. The caller closes the fd (closeFd).
 */
export function mapFdAndInfo(sys: System, id: number): { fd: number; info: MapInfo } {
  const b = sys.bpfSys;
  const fd = b.call(BPF_MAP_GET_FD_BY_ID, { start_id: id }).ret;
  if (fd < 0) throw new Error(`get map by id (${id}): ${strerror(fd)}`);
  const buf = b.stage(new Uint8Array(MAP_INFO_SIZE));
  try {
    const r = b.call(BPF_OBJ_GET_INFO_BY_FD, { bpf_fd: fd, info_len: MAP_INFO_SIZE, info: buf });
    if (r.ret < 0) { closeFd(sys, fd); throw new Error(`can't get map info: ${strerror(r.ret)}`); }
    const raw = sys.kernel.machine.mem.read(buf, MAP_INFO_SIZE);
    const dv = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    const name = Buffer.from(raw.subarray(24, 40)).toString('latin1').replace(/\0.*$/s, '');
    return { fd, info: { type: dv.getUint32(0, true), id: dv.getUint32(4, true), keySize: dv.getUint32(8, true), valueSize: dv.getUint32(12, true),
      maxEntries: dv.getUint32(16, true), flags: dv.getUint32(20, true), name, btfId: dv.getUint32(64, true) } };
  } finally { b.unstage(buf); }
}

export const closeFd = (sys: System, fd: number): void => { sys.kernel.current.files.close(fd); };

/** Bytes one value takes in bpf() (per-CPU maps: every CPU's, each rounded up to 8). */
export const syscallValueSize = (sys: System, info: MapInfo): number =>
  (isPerCpu(info.type) ? ((info.valueSize + 7) & ~7) * sys.bpfSys.nrCpus : info.valueSize);
