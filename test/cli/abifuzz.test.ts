/**
 * @fileoverview `bpfemu abi-fuzz`: the last line, shards, worker processes, replay, a failing
 * run's reproducer and exit code, JSON, and bad usage.
 */
import { describe, it, expect, vi } from 'vitest';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { main } from '../../cli/main.ts';

const BIN = fileURLToPath(new URL('../../bin/bpfemu.js', import.meta.url));
/** The real binary (worker processes need a real process tree). */
const spawnBin = (...args: string[]): Promise<{ code: number | null; out: string; err: string }> => new Promise((resolve) => {
  const p = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, BPFEMU_LOG: 'silent' } });
  let out = '', err = '';
  p.stdout.on('data', (d: Buffer) => { out += d.toString(); });
  p.stderr.on('data', (d: Buffer) => { err += d.toString(); });
  p.on('close', (code) => resolve({ code, out, err }));
});
/** main() in this process, stdout and stderr captured (no tsx start-up per case). */
async function run(...args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  let out = '', err = '';
  const exitCode = process.exitCode;
  const o = vi.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => { out += String(s); return true; });
  const e = vi.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => { err += String(s); return true; });
  try {
    const code = await main(args);
    return { code, out, err };
  } finally { o.mockRestore(); e.mockRestore(); process.exitCode = exitCode; }
}
const lastLine = (s: string): string => s.trimEnd().split('\n').at(-1)!;

describe('bpfemu abi-fuzz', () => {
  it('a shard over two worker processes ends with "N passed, M failed"', async () => {
    const r = await spawnBin('abi-fuzz', '--seed', '11', '--cases', '12', '--shard', '2/2', '--jobs', '2', '--modes', 'fentry,fexit,both');
    expect(r.code).toBe(0);
    expect(lastLine(r.out)).toBe('6 passed, 0 failed');
    expect(r.out).toMatch(/seed 11, cases 6\.\.11: /);
    expect(r.out).toMatch(/narrow-arg-slot-upper-bytes x\d+/);
  });

  it('--replay SEED:CASE reruns one case; -j prints the report as JSON', async () => {
    const r = await run('-j', 'abi-fuzz', '--replay', '11:7', '--modes', 'fexit');
    expect(r.code).toBe(0);
    const rep = JSON.parse(r.out);
    expect(rep).toMatchObject({ seed: 11, range: [7, 8], passed: 1, failed: 0, failures: [] });
  });

  it('a wrong trampoline: a reproducer naming the slot, exit 1', async () => {
    const r = await run('abi-fuzz', '--seed', '1', '--cases', '2', '--modes', 'fentry', '--broken-trampoline', 'wrong-arg-reg', '--minimise', '1');
    expect(r.code).toBe(1);
    expect(lastLine(r.out)).toBe('0 passed, 2 failed');
    expect(r.out).toMatch(/^FAIL seed 1 case 0 {3}\(rerun: bpfemu abi-fuzz --replay 1:0\)$/m);
    expect(r.out).toMatch(/slot arg0 \(fentry#0\), fentry: expected 0x[0-9a-f]+, got 0x[0-9a-f]+/);
    expect(r.out).toMatch(/minimised from: /);
    expect(r.out).toMatch(/mov\s+\w+ ptr \[rbp - 8\], si/);
  });

  it('--kernel all: the same cases under every profile, a line each, skipped counted; the last line sums them', async () => {
    const r = await spawnBin('abi-fuzz', '--kernel', 'all', '--seed', '5', '--cases', '12', '--jobs', '2', '--modes', 'fentry,fexit');
    expect(r.code, r.err).toBe(0);
    const lines = r.out.trimEnd().split('\n');
    expect(lines.at(-9)).toBe('seed 5, cases 0..11 under 7 kernel profiles:');
    const per = lines.slice(-8, -1).map((l) => /^(\S+): (\d+) passed, (\d+) failed, (\d+) skipped \([\d.]+ s\)$/.exec(l)!);
    expect(per.map((m) => m[1])).toEqual(['5.5', '5.7', '5.12', '5.15', '5.19', '6.1', '6.6']);
    for (const m of per) expect(Number(m[2]) + Number(m[4])).toBe(12);
    expect(per.every((m) => m[3] === '0')).toBe(true);
    // Drawn with 6.6's shapes: 6.6 runs all, 6.1 at least as many as 5.x, the 5.x profiles alike.
    const passed = per.map((m) => Number(m[2]));
    expect(passed[6]).toBe(12);
    expect(new Set(passed.slice(0, 5)).size).toBe(1);
    expect(passed[5]).toBeGreaterThanOrEqual(passed[0]!);
    expect(lastLine(r.out)).toBe(`${passed.reduce((a, b) => a + b, 0)} passed, 0 failed`);
  });

  it('--kernel 6.1 --replay: one profile, its cases drawn with its shapes; -j names the kernel', async () => {
    const r = await run('-j', 'abi-fuzz', '--kernel', '6.1', '--replay', '5:3', '--modes', 'fexit');
    expect(r.code, r.err).toBe(0);
    expect(JSON.parse(r.out)).toMatchObject({ seed: 5, range: [3, 4], kernel: '6.1', passed: 1, failed: 0, skipped: 0 });
  });

  it.each([
    [['--kernel', '9.9'], /unknown kernel profile '9\.9' \(known: 5\.5, .*, 6\.6, all\)/],
    [['--gen', '4.0'], /unknown kernel profile '4\.0'/],
  ])('bad profile %j: exit 2', async (args, msg) => {
    const r = await run('abi-fuzz', ...args);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(msg);
  });

  it.each([
    [['--shard', '3/2'], /--shard '3\/2' must be I\/N with 1 <= I <= N/],
    [['--replay', '5'], /--replay '5' must be SEED:CASE/],
    [['--cases', '0'], /--cases '0' must be an integer >= 1/],
    [['--modes', 'fentry,sideways'], /unknown mode 'sideways'/],
    [['--broken-trampoline', 'nope'], /unknown variant 'nope'/],
  ])('bad usage %j: exit 2', async (args, msg) => {
    const r = await run('abi-fuzz', ...args);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(msg);
  });
});
