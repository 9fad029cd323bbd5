/**
 * @fileoverview `map lookup|update|delete|getnext|freeze|dump id N` through the real binary, in
 * batch files (one boot each): bpftool's text and JSON, its error messages with the kernel's
 * errno, exit 1 for a failed operation and 2 for malformed arguments, and the machine still
 * usable after an error (the batch's first failing line stops it, so each error case is its own
 * batch whose lines before the error succeed).
 */
import { describe, it, expect } from 'vitest';
import { spawnSync } from 'node:child_process';
import { run, batch, bpfObj, BIN } from './bin.ts';

const OBJ = bpfObj('objtest');
const FENTRY = bpfObj('fentry_test');
// objtest: map 1 is `counts` (hash, key 4B, value 8B, 16 entries); map 4 its .rodata (frozen).
const hex = (...b: number[]): string[] => b.map((x) => `0x${x.toString(16).padStart(2, '0')}`);

describe('map commands on one machine', () => {
  it('update, lookup, getnext, dump, delete and freeze as bpftool prints them', () => {
    const r = batch(`prog load ${OBJ}
map dump id 1
map update id 1 key 1 0 0 0 value hex 0a 00 00 00 00 00 00 ff
map update id 1 key hex 02 00 00 00 value 0x10 0 0 0 0 0 0 0 noexist
map update id 1 k 3 0 0 0 val 255 0x1ff 010 0 0 0 0 0 any
map lookup id 1 key 1 0 0 0
-j map lookup id 1 key 0x03 0 0 0
map getnext id 1 key 1 0 0 0
-j map getnext id 1
map delete id 1 key 2 0 0 0
-j map update id 1 key 4 0 0 0 value 0 0 0 0 0 0 0 1
map dump id 1
-j map dump id 1
map freeze id 1
map show id 1
-j map show id 1
`);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const out = r.out.slice(r.out.indexOf('Found 0 elements\n'));
    const lines = out.split('\n');
    expect(lines[0]).toBe('Found 0 elements');
    expect(lines[1]).toBe('key: 01 00 00 00  value: 0a 00 00 00 00 00 00 ff'); // lookup: 4 + 8 bytes on one line
    expect(JSON.parse(lines[2]!)).toEqual({ key: hex(3, 0, 0, 0), value: hex(255, 255, 8, 0, 0, 0, 0, 0) }); // 0x1ff → ff, 010 octal → 8
    // getnext: the key after 1 is some other key (hash order), printed as bpftool does.
    expect(lines.slice(3, 7).join('\n')).toMatch(/^key:\n01 00 00 00\nnext key:\n0[23] 00 00 00$/);
    expect(JSON.parse(lines[7]!)).toMatchObject({ key: null, next_key: expect.any(Array) });
    expect(lines[8]).toBe('null'); // -j update prints null, as bpftool's jsonw_null
    const dumped = lines.slice(9, 12).sort();
    expect(dumped).toEqual(['key: 01 00 00 00  value: 0a 00 00 00 00 00 00 ff', 'key: 03 00 00 00  value: ff ff 08 00 00 00 00 00', 'key: 04 00 00 00  value: 00 00 00 00 00 00 00 01']);
    expect(lines[12]).toBe('Found 3 elements');
    const j = JSON.parse(lines[13]!) as { key: string[]; value: string[] }[];
    expect(j.map((e) => e.key[0]).sort()).toEqual(['0x01', '0x03', '0x04']);
    expect(j.find((e) => e.key[0] === '0x04')!.value).toEqual(hex(0, 0, 0, 0, 0, 0, 0, 1));
    expect(lines.slice(14, 17).join('\n')).toBe('1: hash  name counts  flags 0x0\n\tkey 4B  value 8B  max_entries 16  memlock 4096B\n\tfrozen');
    expect(JSON.parse(lines[17]!)).toMatchObject({ id: 1, type: 'hash', name: 'counts', bytes_key: 4, bytes_value: 8, frozen: 1 });
  });

  it('values over 16 bytes break lines as fprint_hex does (a .bss array of 48 bytes)', () => {
    const r = batch(`prog load ${FENTRY}\nmap update id 1 key 0 0 0 0 value ${Array.from({ length: 48 }, (_, i) => i).join(' ')}\nmap lookup id 1 key 0 0 0 0\n`);
    expect(r.code).toBe(0);
    expect(r.out.split('map 1: fentry_test.bss')[1]!.split('\n').slice(1).join('\n')).toBe([
      'key:', '00 00 00 00', 'value:',
      '00 01 02 03 04 05 06 07  08 09 0a 0b 0c 0d 0e 0f',
      '10 11 12 13 14 15 16 17  18 19 1a 1b 1c 1d 1e 1f',
      '20 21 22 23 24 25 26 27  28 29 2a 2b 2c 2d 2e 2f', ''].join('\n'));
  });

  // Bad input, each followed by a good lookup: run through the shell (stdin piped), where an
  // error does not end the session, so one boot checks them all and that the machine stays usable.
  const BAD: [string, RegExp][] = [
    ['map lookup id 1 key 9 0 0 0', /^Error: lookup failed: No such file or directory$/],
    ['-j map lookup id 1 key 9 0 0 0', /^Error: lookup failed: No such file or directory$/],
    ['map lookup id 77 key 1 0 0 0', /^Error: get map by id \(77\): No such file or directory$/],
    ['map dump id 77', /^Error: get map by id \(77\): No such file or directory$/],
    [`map update id 4 key 0 0 0 0 value hex ${'00 '.repeat(32)}`, /^Error: update failed: Operation not permitted$/],
    ['map freeze id 4', /^Error: failed to freeze map: Device or resource busy$/],
    ['map update id 1 key 1 0 0 0 value 0 0 0 0 0 0 0 0 noexist', /^Error: update failed: File exists$/],
    ['map update id 1 key 5 0 0 0 value 0 0 0 0 0 0 0 0 exist', /^Error: update failed: No such file or directory$/],
    ['map delete id 1 key 5 0 0 0', /^Error: delete failed: No such file or directory$/],
    ['map lookup id 1 key 1 0 0', /^Error: key expected 4 bytes got 3$/],
    ['map lookup id 1 key 1 0 0 0 0', /^Error: expected key or value, got: 0$/],
    ['map update id 1 key 1 0 0 0 value 1 2', /^Error: value expected 8 bytes got 2$/],
    ['map lookup id 1 key 1 0 zz 0', /^Error: error parsing byte: zz$/],
    ['map lookup id 1 key hex 01 00 0g 00', /^Error: error parsing byte: 0g$/],
    ['map update id 1 key 1 0 0 0', /^Error: did not find value$/],
    ['map update id 1 key 1 0 0 0 key 1 0 0 0', /^Error: duplicate key$/],
    ['map update id 1 key 1 0 0 0 value 0 0 0 0 0 0 0 0 any exist', /^Error: flags specified multiple times: exist$/],
    ['map lookup id 1 key 1 0 0 0 value 1', /^Error: unnecessary value$/],
    ['map lookup id x1 key 1 0 0 0', /^Error: can't parse x1 as ID$/],
    ['map freeze 1', /^Error: expected 'id N', got '1'$/],
  ];
  it('bad input: a clear error naming the cause, and the next line works', () => {
    const good = 'map lookup id 1 key 1 0 0 0';
    const input = [`prog load ${OBJ}`, 'map update id 1 key 1 0 0 0 value 1 0 0 0 0 0 0 0', good, ...BAD.flatMap(([bad]) => [bad, good]), 'quit', ''].join('\n');
    const r = spawnSync(process.execPath, [BIN, 'shell'], { encoding: 'utf8', input });
    expect(r.status).toBe(0);
    const errs = r.stderr.trim().split('\n');
    expect(errs).toHaveLength(BAD.length);
    BAD.forEach(([, msg], i) => expect(errs[i]).toMatch(msg));
    expect(r.stdout.split('key: 01 00 00 00  value: 01 00 00 00 00 00 00 00\n')).toHaveLength(BAD.length + 2);
    expect(r.stdout).toContain('key:\n09 00 00 00\n\nNot found\n'); // bpftool's stdout for ENOENT
    expect(r.stdout).toMatch(/^(bpfemu> )*null$/m); // and -j's
  });

  it.each([
    ['map lookup id 1 key 9 0 0 0', 1, /Error: lookup failed: No such file or directory\n.*:2: 'map lookup id 1 key 9 0 0 0' failed; 1 command before it succeeded\n$/],
    ['map update id 4 key 0 0 0 0 value ' + '0 '.repeat(32), 1, /Error: update failed: Operation not permitted\n/],
    ['map lookup id 1 key 1 0', 2, /Error: key expected 4 bytes got 2\n/],
  ])('exit codes in a batch: %s → %d', (line, code, err) => {
    const r = batch(`prog load ${OBJ}\n${line}\nmap show\n`);
    expect(r.code).toBe(code);
    expect(r.err).toMatch(err);
  });

  it('on a fresh machine (one invocation) there is no map: the kernel says so', () => {
    const r = run('map', 'lookup', 'id', '1', 'key', '0', '0', '0', '0');
    expect(r.code).toBe(1);
    expect(r.err).toBe('Error: get map by id (1): No such file or directory\n');
  });
});
