/**
 * @fileoverview The bpf() bad-input table (test/bpf/syscall_cases.ts) replayed in the host's real
 * kernel (docs/ARCHITECTURE.md, "The host kernel as an oracle"), and its answers recorded:
 *
 *   npx tsx scripts/record-host-syscalls.ts     writes test/fixtures/host-kernel/syscalls.json
 *
 * Needs root and a kernel that accepts bpf(); exit 3 (nothing written) when the host refuses it.
 *
 * The replay goes through `images/build/host/bpfcall` (images/host/bpfcall.c), which knows no
 * command and no field: {@link bpfcallScript} lays each attr out by the offsets and widths of
 * bpf/syscall/attr.ts's ATTR_FIELDS (the layout {@link attrBytes} picks), and leaves the fixture
 * placeholders (`$array`, `$key`, `$insns:ok`…) for the tool to fill in with its own fds and
 * addresses. The fixtures are made first, as test/bpf/syscall.test.ts makes them in bpfemu.
 * test/host/syscall_oracle.test.ts imports the replay from here for its live run.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  ATTR_FIELDS, BPF_ATTR_SIZE, BPF_MAP_CREATE, BPF_MAP_FREEZE, BPF_PROG_LOAD,
} from '../bpf/syscall/attr.ts';
import { CASES, PROGS, type Fields, type SyscallCase } from '../test/bpf/syscall_cases.ts';
import { HostRefusedError, recordScriptStart } from '../test/host/oracle.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
/** The host tool, as `make -C images` builds it. */
export const BPFCALL = join(ROOT, 'images/build/host/bpfcall');
export const SYSCALLS_FIXTURE = join(ROOT, 'test/fixtures/host-kernel/syscalls.json');

/** What one bpf() call returned on the host: errno 0 when ret >= 0. */
export interface HostCall { ret: number; errno: number }

/** test/fixtures/host-kernel/syscalls.json. */
export interface SyscallsFixture {
  kernel: string;
  recorded: string;
  results: Record<string, HostCall>;
}

/** The layout of ATTR_FIELDS holding every field named (the first, as attrBytes picks it). */
export function layoutOf(fields: Fields): string {
  const l = Object.entries(ATTR_FIELDS).find(([, fs]) => Object.keys(fields).every((n) => fs.some(([f]) => f === n)))?.[0];
  if (l === undefined) throw new Error(`no attr layout has all of ${Object.keys(fields).join(', ')}`);
  return l;
}

/** bpfcall's FIELD tokens (OFF:WIDTH:VALUE) for uAPI-named fields; `$name` values stay names. */
export function fieldTokens(fields: Fields): string[] {
  const layout = ATTR_FIELDS[layoutOf(fields)]!;
  return Object.entries(fields).map(([name, v]) => {
    const [, off, w] = layout.find(([f]) => f === name)!;
    if (w === 16) return `${off}:16:x${Buffer.from(String(v)).subarray(0, 16).toString('hex')}`;
    if (typeof v === 'string' && v.startsWith('$')) return `${off}:${w}:${v}`;
    return `${off}:${w}:${BigInt.asUintN(w * 8, BigInt(v))}`;
  });
}

/** A case's `call` line: its attr by field, its pokes as 1-byte fields, its size. */
export function callLine(c: SyscallCase): string {
  const size = c.size ?? BPF_ATTR_SIZE;
  const pokes = (c.poke ?? []).map(([off, v]) => `${off}:1:${v}`);
  return ['call', c.cmd, size, ...fieldTokens(c.fields), ...pokes].join(' ');
}

const hex = (u: Uint8Array): string => Buffer.from(u).toString('hex');

/**
 * The fixtures of test/bpf/syscall.test.ts: three maps (array, hash, and a one-entry array that is
 * frozen), key/value/log buffers, the license, every program of PROGS, and an XDP `r0 = 1; exit`.
 */
export function fixtureLines(): string[] {
  const mapCreate = (name: string, f: Fields): string => ['fd', name, BPF_MAP_CREATE, BPF_ATTR_SIZE, ...fieldTokens(f)].join(' ');
  return [
    mapCreate('array', { map_type: 2, key_size: 4, value_size: 8, max_entries: 4 }),
    mapCreate('hash', { map_type: 1, key_size: 4, value_size: 8, max_entries: 4 }),
    mapCreate('frozen', { map_type: 2, key_size: 4, value_size: 8, max_entries: 1 }),
    'buf key 4', 'buf key3 4 03000000', 'buf key9 4 09000000', 'buf value 64', 'buf log 4096',
    `buf gpl 4 ${hex(Buffer.from('GPL\0'))}`,
    ...Object.entries(PROGS).map(([n, h]) => `buf insns:${n} ${h.length / 2} ${h}`),
    ['fd', 'prog', BPF_PROG_LOAD, BPF_ATTR_SIZE, ...fieldTokens({ prog_type: 6, insn_cnt: 2, insns: '$insns:ok', license: '$gpl' })].join(' '),
    ['do', BPF_MAP_FREEZE, BPF_ATTR_SIZE, ...fieldTokens({ map_fd: '$frozen' })].join(' '),
  ];
}

/** bpfcall's whole input for `cases`, in order (each case sees the state the ones before left). */
export function bpfcallScript(cases: readonly SyscallCase[]): string {
  return [
    '# test/bpf/syscall_cases.ts through scripts/record-host-syscalls.ts',
    ...fixtureLines(),
    ...cases.flatMap((c) => [`# ${c.name}`, callLine(c)]),
  ].join('\n') + '\n';
}

/** Builds bpfcall if it is missing; the reason when it cannot be built. */
export function ensureBpfcall(): string | undefined {
  if (existsSync(BPFCALL)) return undefined;
  const r = spawnSync('make', ['-s', '-C', join(ROOT, 'images'), BPFCALL], { encoding: 'utf8' });
  if (r.status !== 0 || !existsSync(BPFCALL)) return `${BPFCALL} is missing and 'make -C images' could not build it: ${(r.stderr || r.error?.message || '').trim()}`;
  return undefined;
}

/**
 * Runs `cases` in the host kernel (one bpfcall process: fixtures, then the cases in order).
 * @returns each case's answer, by case name.
 * @throws HostRefusedError when bpf() itself is refused; Error when the tool fails otherwise.
 */
export function hostSyscalls(cases: readonly SyscallCase[]): Record<string, HostCall> {
  const missing = ensureBpfcall();
  if (missing) throw new Error(missing);
  const r = spawnSync(BPFCALL, [], { input: bpfcallScript(cases), encoding: 'utf8', maxBuffer: 16 << 20 });
  if (r.status === 3) throw new HostRefusedError(r.stderr.trim());
  if (r.status !== 0) throw new Error(`bpfcall exited ${r.status ?? r.signal}: ${(r.stderr || r.error?.message || '').trim()}`);
  const lines = r.stdout.trim().split('\n').filter((l) => l !== '');
  if (lines.length !== cases.length) throw new Error(`bpfcall printed ${lines.length} results for ${cases.length} calls`);
  const out: Record<string, HostCall> = {};
  cases.forEach((c, i) => {
    const j = JSON.parse(lines[i]!) as HostCall;
    out[c.name] = { ret: j.ret, errno: j.errno };
  });
  return out;
}

function main(): void {
  recordScriptStart('record-host-syscalls.ts');
  const names = new Set(CASES.map((c) => c.name));
  if (names.size !== CASES.length) throw new Error('case names are not unique');
  let results: Record<string, HostCall>;
  try {
    results = hostSyscalls(CASES);
  } catch (e) {
    if (e instanceof HostRefusedError) {
      console.error(`record-host-syscalls: ${e.message}`);
      process.exit(3);
    }
    throw e;
  }
  const kernel = execFileSync('uname', ['-r'], { encoding: 'utf8' }).trim();
  const fixture: SyscallsFixture = { kernel, recorded: new Date().toISOString(), results };
  mkdirSync(dirname(SYSCALLS_FIXTURE), { recursive: true });
  writeFileSync(SYSCALLS_FIXTURE, `${JSON.stringify(fixture, null, 2)}\n`);

  const differ = CASES.filter((c) => results[c.name]!.errno !== c.errno);
  console.log(`kernel ${kernel}: ${CASES.length} cases, ${CASES.length - differ.length} give v5.5's errno, ${differ.length} differ`);
  for (const c of differ) console.log(`  ${c.name}: host errno ${results[c.name]!.errno} (ret ${results[c.name]!.ret}), v5.5 ${c.errno}`);
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) main();
