/**
 * @fileoverview `prog attach|detach`, `link show|detach` and `btf show` on one machine: a batch
 * file loads, attaches, calls the traced functions, reads the programs' effect through
 * `map lookup`, detaches and shows the links; bad input through the shell (errors do not end it)
 * and in batches (exit codes); and, in process, that a session of these commands leaves no fd,
 * link or kmalloc'ed byte behind.
 */
import { describe, it, expect, vi } from 'vitest';
import { spawnSync, execFileSync } from 'node:child_process';
import { main } from '../../cli/main.ts';
import { beginShared, endShared, session, setBootOptions } from '../../cli/session.ts';
import { run, batch, bpfObj, BIN } from './bin.ts';

const OBJ = bpfObj('objtest');
const FENTRY = bpfObj('fentry_test');
// fentry_test: progs 1..6 (test1..test6, fentry on bpf_fentry_test1..6), each sets its
// testN_result (u64 at 8*(N-1) in map 1, the .bss) to 1 when it sees the expected arguments.
const ZERO48 = Array(48).fill('0').join(' ');
const bss = (t1: number, t2: number) => `key:\n00 00 00 00\nvalue:\n0${t1} 00 00 00 00 00 00 00  0${t2} 00 00 00 00 00 00 00\n${'00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00\n'.repeat(2)}`;

// Tracing bpf_links (BPF_LINK_CREATE) are 5.10's: the link tests run the 5.12 profile; under 5.5
// `prog attach` holds a raw tracepoint fd instead and the link commands do not exist.
const K512 = ['--kernel', '5.12'];

describe('prog attach / detach, link show / detach', () => {
  it('under 5.5: attached through BPF_RAW_TRACEPOINT_OPEN (no link id), detached by closing it; no link commands', () => {
    const r = batch(`prog load ${FENTRY}
prog attach id 1
-j prog attach id 2
call bpf_fentry_test1 1
map lookup id 1 key 0 0 0 0
prog detach id 1
prog detach id 2
map update id 1 key 0 0 0 0 value ${ZERO48}
call bpf_fentry_test1 1
map lookup id 1 key 0 0 0 0
link show
`);
    const out = r.out.slice(r.out.indexOf('raw tracepoint'));
    expect(out).toBe([
      'raw tracepoint fd (no bpf_link before 5.10): prog 1 attached (trace_fentry bpf_fentry_test1)\n',
      '{"link_id":null,"prog_id":2,"attach_type":"trace_fentry","func":"bpf_fentry_test2"}\n',
      '2\n', bss(1, 0), '2\n', bss(0, 0),
    ].join(''));
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^Error: can't get next link: Invalid argument\n.*:11: 'link show' failed; 10 commands before it succeeded\n$/s);
  });

  it('load → attach → call → map lookup → detach → link show, in one batch', () => {
    const r = batch(`prog load ${FENTRY}
prog attach id 1
-j prog attach id 2 fentry
link show
-j link show id 2
call bpf_fentry_test1 1
call bpf_fentry_test2 2 3
map lookup id 1 key 0 0 0 0
prog detach id 1
link show
map update id 1 key 0 0 0 0 value ${ZERO48}
call bpf_fentry_test1 1
call bpf_fentry_test2 2 3
map lookup id 1 key 0 0 0 0
link detach id 2
-j link show
call bpf_fentry_test2 2 3
map lookup id 1 key hex 00 00 00 00
-j prog show id 2
`, K512);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const out = r.out.slice(r.out.indexOf('link 1:'));
    const link = (n: number) => `${n}: tracing  prog ${n}  \n\tprog_type tracing  attach_type trace_fentry  \n`;
    expect(out.slice(0, out.lastIndexOf('{'))).toBe([
      'link 1: prog 1 attached (trace_fentry bpf_fentry_test1)\n',
      '{"link_id":2,"prog_id":2,"attach_type":"trace_fentry","func":"bpf_fentry_test2"}\n',
      link(1), link(2),
      '{"id":2,"type":"tracing","prog_id":2,"prog_type":"tracing","attach_type":"trace_fentry"}\n',
      '2\n5\n', bss(1, 1), // both programs ran
      link(2), // prog 1's link is gone
      '2\n5\n', bss(0, 1), // test1 detached: its result stays 0; test2 still runs
      '[]\n', // link detach closed the last link
      '5\n', bss(0, 1),
    ].join(''));
    expect(JSON.parse(r.out.trim().split('\n').at(-1)!)).toMatchObject({ id: 2, type: 'tracing', name: 'test2' });
  });

  const BAD: [string, RegExp][] = [
    ['prog attach id 1', /^Error: failed to attach prog 1: Device or resource busy \(prog 1 is already attached\)$/],
    ['prog attach id 7', /^Error: failed to attach prog 7: Invalid argument \(prog 7 is xdp: only fentry\/fexit programs attach here\)$/],
    ['prog attach id 2 fexit', /^Error: prog 2 was loaded for trace_fentry, not trace_fexit$/],
    ['prog attach id 2 kprobe', /^Error: invalid attach type 'kprobe': expected fentry or fexit$/],
    ['prog attach id 99', /^Error: get by id \(99\): No such file or directory$/],
    ['prog attach id 2x', /^Error: can't parse 2x as ID$/],
    ['prog detach id 3', /^Error: failed prog detach: No such file or directory \(prog 3 is not attached\)$/],
    ['prog detach id 99', /^Error: get by id \(99\): No such file or directory$/],
    ['link detach id 42', /^Error: failed to get link with ID 42: No such file or directory$/],
    ['link show id 42', /^Error: failed to get link with ID 42: No such file or directory$/],
    ['prog detach 1', /^Error: expected 'id N' after prog detach, got '1'$/],
  ];
  it('bad input: a clear error naming the cause, the attachment and the machine intact', () => {
    const good = 'call bpf_fentry_test1 1';
    const input = [`prog load ${FENTRY}`, `prog load ${OBJ}`, 'prog attach id 1', ...BAD.flatMap(([bad]) => [bad, good]), '-j link show', 'quit', ''].join('\n');
    const r = spawnSync(process.execPath, [BIN, ...K512, 'shell'], { encoding: 'utf8', input });
    expect(r.status).toBe(0);
    const errs = r.stderr.trim().split('\n');
    expect(errs).toHaveLength(BAD.length);
    BAD.forEach(([, msg], i) => expect(errs[i]).toMatch(msg));
    expect(r.stdout.match(/^(bpfemu> )*2$/gm)).toHaveLength(BAD.length);
    expect(JSON.parse(r.stdout.split('\n').filter((l) => l.includes('[{')).at(-1)!.replace(/^(bpfemu> )+/, ''))).toEqual([
      { id: 1, type: 'tracing', prog_id: 1, prog_type: 'tracing', attach_type: 'trace_fentry' },
    ]);
  });

  it.each([
    [`prog load ${FENTRY}\nprog detach id 1\nlink show\n`, 1, /:2: 'prog detach id 1' failed; 1 command before it succeeded\n$/],
    [`prog load ${FENTRY}\nprog attach id 1 fentry 7\nlink show\n`, 2, /^Error: what is '7'\?\n/],
    // 5.5: the second raw tracepoint on one program is the trampoline's -EBUSY.
    [`prog load ${FENTRY}\nprog attach id 1\nprog attach id 1\n`, 1, /^Error: failed to attach prog 1: Device or resource busy \(prog 1 is already attached\)\n.*:3: /s],
  ])('exit codes in a batch (%#)', (text, code, err) => {
    const r = batch(text);
    expect(r.code).toBe(code);
    expect(r.err).toMatch(err);
  });
});

describe('btf show', () => {
  it("lists the objects' BTF with the programs using it, text and JSON; an unknown id fails", () => {
    const r = batch(`btf show\n-j btf show\nprog load ${FENTRY}\nprog load ${OBJ}\nbtf show\n-j btf show\n-p btf show id 2\n`);
    expect(r.err).toBe('');
    const tail = r.out.slice(r.out.indexOf('[]\n'));
    const lines = tail.split('\n');
    expect(lines[0]).toBe('[]'); // a fresh 5.5 machine: no BTF object (vmlinux's gets an id from 5.11)
    const i = lines.findIndex((l) => l.startsWith('1: name'));
    expect(lines.slice(i, i + 2)).toEqual([
      expect.stringMatching(/^1: name <anon> {2}size \d+B {2}prog_ids 1,2,3,4,5,6$/),
      expect.stringMatching(/^2: name <anon> {2}size \d+B {2}prog_ids 7,8$/),
    ]);
    const j = JSON.parse(lines[i + 2]!) as { id: number; size: number }[];
    expect(j).toEqual([
      { id: 1, size: expect.any(Number), prog_ids: [1, 2, 3, 4, 5, 6], map_ids: [], kernel: false },
      { id: 2, size: expect.any(Number), prog_ids: [7, 8], map_ids: [], kernel: false },
    ]);
    expect(lines[i]).toContain(`size ${j[0]!.size}B`);
    expect(JSON.parse(lines.slice(i + 3).join('\n'))).toEqual(j[1]);
    const bad = run('btf', 'show', 'id', '3');
    expect(bad.code).toBe(1);
    expect(bad.err).toBe('Error: get btf by id (3): No such file or directory\n');
  });
});

describe('nothing leaked', () => {
  it('a session of map, attach, link and btf commands (and their errors) ends where it started', async () => {
    const out = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    const err = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    setBootOptions({ kernel: '5.12' });
    beginShared();
    try {
      const sys = await session();
      expect(await main(['prog', 'load', FENTRY])).toBe(0);
      const fds = sys.kernel.current.files.count, slab = sys.kernel.slab.inUse, maps = [...sys.bpfSys.maps.values()].length;
      const cmds: [string, number][] = [
        ['prog attach id 1', 0], ['prog attach id 2', 0], ['link show', 0], ['btf show', 0], ['call bpf_fentry_test1 1', 0],
        ['map lookup id 1 key 0 0 0 0', 0], ['map dump id 1', 0], ['map getnext id 1', 0], ['map update id 1 key 0 0 0 0 value ' + ZERO48, 0],
        ['prog attach id 1', 1], ['map lookup id 1 key 0 0 0', 2], ['map lookup id 9 key 0 0 0 0', 1], ['link detach id 9', 1],
        ['prog detach id 1', 0], ['link detach id 2', 0], ['prog detach id 2', 1], ['map delete id 1 key 0 0 0 0', 1],
      ];
      for (const [c, code] of cmds) expect([c, await main(c.split(' '))]).toEqual([c, code]);
      expect(sys.kernel.current.files.count).toBe(fds);
      expect(sys.kernel.slab.inUse).toBe(slab);
      expect([...sys.bpfSys.links.values()]).toEqual([]);
      expect([...sys.bpfSys.maps.values()]).toHaveLength(maps);
      expect([...sys.bpfSys.progs.values()].every((p) => !p.linked && p.refcnt === 1)).toBe(true);
    } finally {
      await endShared();
      setBootOptions({});
      out.mockRestore();
      err.mockRestore();
    }
  }, 60_000);
});

const hasTmux = spawnSync('tmux', ['-V']).status === 0;
describe.skipIf(!hasTmux)('the shell completes the new subcommands', () => {
  it('prog att<Tab> → prog attach, map looku<Tab> → map lookup, on one machine', async () => {
    const tmux = (...a: string[]): string => execFileSync('tmux', a, { encoding: 'utf8' });
    const waitFor = async (s: string, re: RegExp): Promise<void> => {
      for (const end = Date.now() + 20_000; Date.now() < end; await new Promise((r) => setTimeout(r, 100))) if (re.test(tmux('capture-pane', '-p', '-t', s))) return;
      throw new Error(`timed out waiting for ${re} in:\n${tmux('capture-pane', '-p', '-t', s)}`);
    };
    const s = `bpfemu-attach-${process.pid}`;
    tmux('new-session', '-d', '-s', s, '-x', '200', '-y', '50', process.execPath, BIN, ...K512, 'shell');
    try {
      await waitFor(s, /^bpfemu>/m);
      tmux('send-keys', '-t', s, `prog load ${FENTRY}`, 'Enter');
      await waitFor(s, /^map 1: fentry_test\.bss/m);
      tmux('send-keys', '-t', s, 'prog att', 'Tab');
      await waitFor(s, /bpfemu> prog attach/);
      tmux('send-keys', '-t', s, ' id 1', 'Enter');
      await waitFor(s, /^link 1: prog 1 attached \(trace_fentry bpf_fentry_test1\)$/m);
      tmux('send-keys', '-t', s, 'call bpf_fentry_test1 1', 'Enter');
      tmux('send-keys', '-t', s, 'map looku', 'Tab');
      await waitFor(s, /bpfemu> map lookup/);
      tmux('send-keys', '-t', s, ' id 1 key 0 0 0 0', 'Enter');
      await waitFor(s, /^value:\n01 00 00 00 00 00 00 00 {2}00/m);
      tmux('send-keys', '-t', s, 'quit', 'Enter');
    } finally {
      spawnSync('tmux', ['kill-session', '-t', s]);
    }
  }, 60_000);
});
