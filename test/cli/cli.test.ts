import { describe, it, expect } from 'vitest';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const BIN = fileURLToPath(new URL('../../bin/bpfemu.js', import.meta.url));
const run = (...args: string[]): { code: number | null; out: string; err: string } => {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: { ...process.env, BPFEMU_LOG: 'silent' } });
  return { code: r.status, out: r.stdout, err: r.stderr };
};

describe('bpfemu CLI', () => {
  it('call prints the return value in decimal', () => {
    expect(run('call', 'bpf_fentry_test1', '1')).toEqual({ code: 0, out: '2\n', err: '' });
    expect(run('call', 'bpf_fentry_test6', '16', '0x11', '18', '19', '20', '21').out).toBe('111\n');
    expect(run('call', 'bpfemu_shapes_s32', '-5', '3').out).toBe('-12\n');
  });

  it('call -j prints JSON', () => {
    const r = run('-j', 'call', 'bpf_fentry_test2', '2', '3');
    expect(JSON.parse(r.out)).toEqual({ function: 'bpf_fentry_test2', args: [2, 3], ret: 5, ret_type: 'int' });
  });

  it.each([
    [['call', 'no_such_func', '1'], /^Error: unknown kernel function: no_such_func\n$/],
    [['call', 'bpf_fentry_test1'], /^Error: bpf_fentry_test1 takes 1 argument .*got 0\n$/],
    [['call', 'bpf_fentry_test1', '1', '2'], /^Error: bpf_fentry_test1 takes 1 argument .*got 2\n$/],
    [['call', 'bpf_fentry_test1', 'one'], /^Error: argument 1 'one' is not an integer\n$/],
    [['call', 'bpf_fentry_test1', '0x1ffffffffffffffff'], /does not fit in 64 bits\n$/],
    [['call'], /^Error: missing required argument 'func'\n$/],
    [['frobnicate'], /^Error: unknown command 'frobnicate'\n$/],
    [['disasm', 'bpfemu_banner'], /^Error: unknown kernel function: bpfemu_banner\n$/],
  ])('bad usage %j: one line on stderr, exit 2', (args, msg) => {
    const r = run(...args);
    expect(r.code).toBe(2);
    expect(r.out).toBe('');
    expect(r.err).toMatch(msg);
  });

  it('a guest fault is a failed operation: exit 1', () => {
    const r = run('call', 'bpfemu_call_fn6', '0');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^Error: guest fault: fetch access to unmapped memory at 0x0/);
  });

  it('ftrace list prints the attachable functions only', () => {
    const names = run('ftrace', 'list').out.trim().split('\n');
    expect(names).toContain('bpf_fentry_test1');
    expect(names).toContain('eth_type_trans');
    expect(names).not.toContain('bpfemu_notrace_add');
    expect(names).not.toContain('bpf_test_run_fentry');
  });

  it('disasm prints addresses, bytes and symbols', () => {
    const lines = run('disasm', 'bpf_fentry_test2').out.trim().split('\n');
    expect(lines[0]).toMatch(/^ffffffff8100[0-9a-f]{4} <bpf_fentry_test2>:$/);
    expect(lines[1]).toMatch(/^ffffffff8100[0-9a-f]{4}:\t0f 1f 44 00 00 +\tnop/);
    expect(lines.at(-1)).toMatch(/\tret$/);
  });

  it('demo runs the selftest calls', () => {
    const r = run('demo');
    expect(r.code).toBe(0);
    expect(r.out).toContain('bpf_fentry_test6(16, 17, 18, 19, 20, 21) = 111  ok');
    expect(r.out).toContain('arg8 = 0x8888888888888888  (on the stack)');
  });
});
