import { describe, it, expect } from 'vitest';
import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pktV6, udpV4, toHex } from '../../net/packets.ts';
import { run, bpfObj } from './bin.ts';

const V6 = toHex(pktV6()), DISCARD = toHex(udpV4(9)), DNS = toHex(udpV4(53));

describe('bpfemu net', () => {
  it('net rx with an XDP and a TC program: a line per frame, then the counters', () => {
    const r = run('net', 'rx', 'eth0', V6, DISCARD, '--xdp', bpfObj('xdp_filter'), '--tc', bpfObj('test_pkt_access'));
    expect(r.code).toBe(0);
    expect(r.out).toBe([
      'packet 1: 74 bytes: xdp XDP_PASS, tc TC_ACT_OK: delivered (len 60, protocol 0x86dd, pkt_type 3)',
      'packet 2: 42 bytes: xdp XDP_DROP: dropped',
      'eth0: rx_packets 2 rx_bytes 116 rx_dropped 1  xdp: XDP_DROP 1 XDP_PASS 1  tc: TC_ACT_OK 1',
      '',
    ].join('\n'));
  });

  it('-j gives each frame\'s result and the counters', () => {
    const j = JSON.parse(run('-j', 'net', 'rx', 'eth0', DNS, '--xdp', `${bpfObj('xdp_filter')}:xdp_filter`).out);
    expect(j.packets).toEqual([{ bytes: 42, ret: 0, delivered: true, xdp: { action: 2, name: 'XDP_PASS' }, len: 28, protocol: 0x800, pktType: 3 }]);
    expect(j.stats).toMatchObject({ rxPackets: 1, rxDropped: 0, xdp: { XDP_PASS: 1 } });
  });

  it('a batch file: attach, receive, show, detach on one machine', () => {
    const dir = mkdtempSync(join(tmpdir(), 'bpfemu-net-'));
    const f = join(dir, 'net.batch');
    writeFileSync(f, `net attach eth0 xdp ${bpfObj('xdp_filter')}\nnet rx eth0 ${DISCARD} ${V6}\nnet show\nnet detach eth0 xdp\nnet rx eth0 ${DISCARD}\n`);
    const r = run('batch', 'file', f);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^eth0 xdp: prog 1 \(xdp_filter\)$/m);
    expect(r.out).toMatch(/^2: eth0 {2}xdp prog 1$/m);
    expect(r.out).toMatch(/^packet 1: 42 bytes: xdp XDP_DROP: dropped$/m);
    expect(r.out).toMatch(/^packet 1: 42 bytes: delivered \(len 28, protocol 0x0800, pkt_type 3\)$/m);
  });

  it.each([
    ['an unknown device', ['net', 'rx', 'eth7', V6], 2, /no device eth7 \(devices: lo, eth0\)/],
    ['a frame that is not hex', ['net', 'rx', 'eth0', 'zz'], 2, /frame 1 'zz' is not hex bytes/],
    ['a frame too short', ['net', 'rx', 'eth0', '0011'], 1, /a frame is 14\.\.3520 bytes, not 2/],
    ['an object without an xdp program', ['net', 'attach', 'eth0', 'xdp', bpfObj('test_pkt_access')], 2, /has no xdp program/],
    ['an XDP program on the TC hook', ['net', 'attach', 'eth0', 'tc', bpfObj('xdp_filter'), 'xdp_filter'], 1, /attach to eth0 tc: EINVAL \(-22\)/],
    ['an unknown hook', ['net', 'attach', 'eth0', 'egress', bpfObj('xdp_filter')], 2, /hook 'egress': expected xdp or tc/],
  ])('%s', (_n, args, code, msg) => {
    const r = run(...(args as string[]));
    expect(r.code).toBe(code);
    expect(r.err).toMatch(msg as RegExp);
  });
});

describe('bpfemu trace OBJ --target TARGET_OBJ', () => {
  it('--test-run: the selftest fexit_bpf2bpf, its values', () => {
    const r = run('trace', bpfObj('fexit_bpf2bpf'), '--target', bpfObj('test_pkt_access'), '--test-run');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^target test_pkt_access: test run over pkt_v6 \(74 bytes\): retval 0\ntest_result = 1\ntest_result_subprog1 = 1\ntest_result_subprog2 = 1\n/);
    expect(r.out).toMatch(/^prog test_subprog2: run_cnt 0 run_time_ns 0$/m);
  });

  it('--net-rx with --stats and -j: the verdicts, what fentry/fexit saw, each program ran once a frame', () => {
    const j = JSON.parse(run('-j', 'trace', bpfObj('xdp_trace'), '--target', bpfObj('xdp_filter'), '--net-rx', V6, DISCARD, '--stats').out);
    expect(j.packets.map((p: { xdp: { name: string } }) => p.xdp.name)).toEqual(['XDP_PASS', 'XDP_DROP']);
    expect(j.globals).toMatchObject({ entry_calls: '2', entry_len: '42', verdicts: ['0', '1', '1', '0', '0'], last_verdict: '1', last_dport: '9' });
    expect(j.progs.map((p: { name: string; target: string; run_cnt: string }) => [p.name, p.target, p.run_cnt])).toEqual([
      ['trace_entry', 'xdp_filter', '2'], ['trace_exit', 'xdp_filter', '2'], ['trace_dport', 'xdp_filter', '2'],
    ]);
  });

  it.each([
    ['neither --test-run nor --net-rx', ['trace', bpfObj('fexit_bpf2bpf'), '--target', bpfObj('test_pkt_access')], 2, /exactly one of --test-run and --net-rx/],
    ['--call with --target', ['trace', bpfObj('fexit_bpf2bpf'), '--target', bpfObj('test_pkt_access'), '--call', 'bpf_fentry_test1', '1'], 2, /not --call/],
    ['--net-rx without --target', ['trace', bpfObj('fexit_test'), '--net-rx', V6], 2, /--net-rx needs --target/],
    ['a FUNC the target does not have', ['trace', bpfObj('fexit_test'), '--target', bpfObj('test_pkt_access'), '--test-run'], 2, /no function bpf_fentry_test1 in test_pkt_access/],
    ['a typed read of an unreliable subprogram', ['trace', bpfObj('fexit_bpf2bpf_typed'), '--target', bpfObj('test_pkt_access'), '--test-run'], 1, /program 'typed_subprog2': BPF_PROG_LOAD: EACCES \(-13\)/],
  ])('%s', (_n, args, code, msg) => {
    const r = run(...(args as string[]));
    expect(r.code).toBe(code);
    expect(r.err).toMatch(msg as RegExp);
  });
});
