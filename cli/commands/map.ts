/**
 * @fileoverview `bpfemu map dump OBJ [MAP] [--run PROG [--data-in HEX] [--repeat N]]`: the maps of
 * a loaded object, after optionally test-running one of its programs, as `bpftool map dump`
 * prints them (`key: … value: …`, then `Found N elements`).
 */
import { session, release, releaseObject } from '../session.ts';
import type { Command } from 'commander';
import { BPF_MAP_GET_NEXT_KEY, BPF_MAP_LOOKUP_ELEM } from '../../bpf/syscall/attr.ts';
import { bootAndLoad, hexBytes } from '../bpfobj.ts';
import { parseId } from './prog.ts';
import { testRunProgram, DEFAULT_PACKET } from './prog.ts';
import { emit, parseInteger, UsageError, type OutputOptions } from '../output.ts';
import type { System } from '../../index.ts';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex').replace(/(..)(?!$)/g, '$1 ');

/** Every (key, value) of a map fd, walked with GET_NEXT_KEY as bpftool does. */
export function dumpMap(sys: System, fd: number): { key: Uint8Array; value: Uint8Array }[] {
  const b = sys.bpfSys, mem = sys.kernel.machine.mem;
  const map = b.mapFromFd(fd)!;
  const vsize = b.syscallValueSize(map);
  const key = b.stage(new Uint8Array(map.keySize)), next = b.stage(new Uint8Array(map.keySize)), val = b.stage(new Uint8Array(vsize));
  const out: { key: Uint8Array; value: Uint8Array }[] = [];
  try {
    let cur = 0n;
    for (;;) {
      if (b.call(BPF_MAP_GET_NEXT_KEY, { map_fd: fd, key: cur, next_key: next }).ret < 0) break;
      mem.write(key, mem.read(next, map.keySize));
      cur = key;
      if (b.call(BPF_MAP_LOOKUP_ELEM, { map_fd: fd, key, value: val }).ret < 0) continue;
      out.push({ key: mem.read(key, map.keySize), value: mem.read(val, vsize) });
    }
  } finally { b.unstage(key); b.unstage(next); b.unstage(val); }
  return out;
}

const MAP_TYPE_NAMES: Record<number, string> = { 1: 'hash', 2: 'array', 5: 'percpu_hash', 6: 'percpu_array' };

export function register(program: Command, global: () => OutputOptions): void {
  const map = program.command('map').description('BPF maps (as bpftool map)');
  map.command('show').alias('list')
    .description('show the maps of this machine (all, or `id N`)')
    .argument('[sel...]', 'id N')
    .action(async (sel: string[]) => {
      const id = parseId(sel, 'map show');
      const sys = await session();
      try {
        const maps = [...sys.bpfSys.maps.values()].filter((m) => id === undefined || m.id === id).sort((a, b) => a.id - b.id);
        if (id !== undefined && maps.length === 0) throw new Error(`get map by id (${id}): No such file or directory`);
        const shown = maps.map((m) => ({
          id: m.id, type: MAP_TYPE_NAMES[m.type] ?? String(m.type), name: m.name, flags: m.flags, bytes_key: m.keySize,
          bytes_value: m.valueSize, max_entries: m.maxEntries, bytes_memlock: m.impl.memUsage, frozen: m.frozen ? 1 : 0,
          ...(m.btfId ? { btf_id: m.btfId } : {}),
        }));
        emit(global(), id !== undefined ? shown[0] : shown, () => shown.map((m) =>
          `${m.id}: ${m.type}  name ${m.name}  flags 0x${m.flags.toString(16)}\n\tkey ${m.bytes_key}B  value ${m.bytes_value}B  max_entries ${m.max_entries}  memlock ${m.bytes_memlock}B${m.frozen ? '\n\tfrozen' : ''}`).join('\n'));
      } finally { release(sys); }
    });
  map.command('dump')
    .description("dump an object's maps (all, or one by name), optionally after test-running a program")
    .argument('<obj>', 'an ELF object built by clang -target bpf')
    .argument('[map]', 'map name')
    .option('--run <prog>', 'test-run this program (section or function name) first')
    .option('--data-in <hex>', 'packet bytes for --run')
    .option('--repeat <n>', 'runs for --run', '1')
    .action(async (path: string, name: string | undefined, opts: { run?: string; dataIn?: string; repeat: string }) => {
      const { sys, obj } = await bootAndLoad(path);
      try {
        if (opts.run) testRunProgram(sys, obj, opts.run, opts.dataIn ? hexBytes(opts.dataIn, '--data-in') : DEFAULT_PACKET, Number(parseInteger(opts.repeat, '--repeat')));
        const maps = [...obj.maps.values()].filter((m) => !name || m.spec.name === name);
        if (name && maps.length === 0) throw new UsageError(`no map '${name}' in ${obj.name} (maps: ${[...obj.maps.keys()].join(', ')})`);
        const dumps = maps.map((m) => ({ name: m.spec.name, id: m.id, entries: dumpMap(sys, m.fd) }));
        emit(global(), dumps.map((d) => ({ name: d.name, id: d.id, entries: d.entries.map((e) => ({ key: hex(e.key).split(' '), value: hex(e.value).split(' ') })) })),
          () => dumps.map((d) => [`map ${d.id}: ${d.name}`, ...d.entries.map((e) => `key: ${hex(e.key)}  value: ${hex(e.value)}`), `Found ${d.entries.length} element${d.entries.length === 1 ? '' : 's'}`].join('\n')).join('\n'));
      } finally { releaseObject(obj); release(sys); }
    });
}
