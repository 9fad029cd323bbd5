/**
 * @fileoverview One printer for every command: commands return plain data and a text
 * rendering; `-j/--json` prints the data as JSON (bigints as numbers when exact, else strings),
 * `-p/--pretty` indents it, as bpftool does.
 */

/** Bad usage: the CLI prints one line and exits 2. */
export class UsageError extends Error {
  constructor(msg: string) { super(msg); this.name = 'UsageError'; }
}

export interface OutputOptions { json?: boolean; pretty?: boolean }

export function toJson(v: unknown, pretty = false): string {
  return JSON.stringify(v, (_k, x) => (typeof x === 'bigint'
    ? (x <= BigInt(Number.MAX_SAFE_INTEGER) && x >= BigInt(Number.MIN_SAFE_INTEGER) ? Number(x) : x.toString())
    : x), pretty ? 2 : undefined);
}

export function emit(opts: OutputOptions, data: unknown, text: () => string): void {
  const out = opts.json || opts.pretty ? toJson(data, opts.pretty) : text();
  if (out !== '') process.stdout.write(out.endsWith('\n') ? out : `${out}\n`);
}

/** A C-style integer: decimal, 0x hex, 0o/0 octal, 0b binary, optionally negative. */
export function parseInteger(s: string, what = 'argument'): bigint {
  const m = /^([+-]?)(0x[0-9a-f]+|0b[01]+|0o[0-7]+|0[0-7]*|[1-9][0-9]*)$/i.exec(s.trim());
  if (!m) throw new UsageError(`${what} '${s}' is not an integer`);
  const body = m[2]!.toLowerCase();
  const v = body.length > 1 && body.startsWith('0') && /^[0-7]+$/.test(body.slice(1)) ? BigInt(`0o${body.slice(1)}`) : BigInt(body);
  const r = m[1] === '-' ? -v : v;
  if (r < -(1n << 63n) || r >= 1n << 64n) throw new UsageError(`${what} '${s}' does not fit in 64 bits`);
  return BigInt.asUintN(64, r);
}
