/**
 * @fileoverview `bpfemu map …` as bpftool's: `show [id N]`, `dump id N`, `lookup id N key BYTES`,
 * `update id N key BYTES value BYTES [any|exist|noexist]`, `delete id N key BYTES`,
 * `getnext id N [key BYTES]`, `freeze id N` — each through bpf() on the map's fd from its id, the
 * kernel's errno as bpftool's "Error: … failed: <strerror>" (exit 1; malformed arguments exit 2).
 * BYTES is bpftool's `[hex] B0 B1 …`. The project's own `dump OBJ [MAP] [--run PROG …]` loads an
 * object, optionally test-runs one of its programs and dumps its maps.
 */
import { session, release, releaseObject } from '../session.ts';
import type { Command } from 'commander';
import { BPF_MAP_GET_NEXT_KEY, BPF_MAP_LOOKUP_ELEM, BPF_MAP_UPDATE_ELEM, BPF_MAP_DELETE_ELEM, BPF_MAP_FREEZE } from '../../bpf/syscall/attr.ts';
import { closeFd, entryJson, entryPlain, hexJson, fprintHex, isPrefix, mapFdAndInfo, parseElem, strerror, strtoul, syscallValueSize, type MapInfo } from './map_elem.ts';
import { bootAndLoad, hexBytes } from '../bpfobj.ts';
import { parseId } from './prog.ts';
import { testRunProgram, DEFAULT_PACKET } from './prog.ts';
import { emit, parseInteger, UsageError, type OutputOptions } from '../output.ts';
import type { System } from '../../index.ts';


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

/** map_parse_fd's `id N` (bpftool takes any prefix of "id"); the words after it. */
function mapId(words: string[]): { id: number; rest: string[] } {
  if (words.length < 2) throw new UsageError(`expected 'id N', got '${words.join(' ')}'`);
  if (!isPrefix(words[0]!, 'id')) throw new UsageError(words[0] === 'pinned' ? 'pinned maps: this machine has no bpffs' : `expected 'id' or 'pinned', got: '${words[0]}'?`);
  const id = strtoul(words[1]!, 0);
  if (id === undefined || words[1] === '' || id > 0xffffffffn) throw new UsageError(`can't parse ${words[1]} as ID`);
  return { id: Number(id), rest: words.slice(2) };
}

/** Runs `fn` with the map's fd and info (from its id) and staged guest buffers, closing and freeing them after. */
async function withMap<T>(words: string[], fn: (sys: System, fd: number, info: MapInfo, rest: string[], stage: (b: Uint8Array) => bigint) => T): Promise<T> {
  const { id, rest } = mapId(words);
  const sys = await session();
  const staged: bigint[] = [];
  try {
    const { fd, info } = mapFdAndInfo(sys, id);
    try {
      return fn(sys, fd, info, rest, (b) => { const a = sys.bpfSys.stage(b); staged.push(a); return a; });
    } finally { closeFd(sys, fd); }
  } finally {
    for (const a of staged) sys.bpfSys.unstage(a);
    release(sys);
  }
}

/** An update's value for every CPU of a per-CPU map (fill_per_cpu_value). */
function fullValue(sys: System, info: MapInfo, v: Uint8Array): Uint8Array {
  const size = syscallValueSize(sys, info);
  if (size === info.valueSize) return v;
  const out = new Uint8Array(size), step = (info.valueSize + 7) & ~7;
  for (let c = 0; c * step < size; c++) out.set(v, c * step);
  return out;
}

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
          `${m.id}: ${m.type}  name ${m.name}  flags 0x${m.flags.toString(16)}\n\tkey ${m.bytes_key}B  value ${m.bytes_value}B  max_entries ${m.max_entries}  memlock ${m.bytes_memlock}B${m.btf_id || m.frozen ? `\n\t${m.btf_id ? `btf_id ${m.btf_id}` : ''}${m.frozen ? `${m.btf_id ? '  ' : ''}frozen` : ''}` : ''}`).join('\n'));
      } finally { release(sys); }
    });
  map.command('dump')
    .description("dump a map (`id N`, as bpftool), or an object's maps (all, or one by name) after optionally test-running a program")
    .argument('<obj>', "an ELF object built by clang -target bpf, or 'id'")
    .argument('[map]', 'map name (with OBJ), or the map id (with id)')
    .option('--run <prog>', 'test-run this program (section or function name) first')
    .option('--data-in <hex>', 'packet bytes for --run')
    .option('--repeat <n>', 'runs for --run', '1')
    .action(async (path: string, name: string | undefined, opts: { run?: string; dataIn?: string; repeat: string }) => {
      if (path === 'id') {
        if (opts.run) throw new UsageError('--run needs an object file: map dump OBJ [MAP] --run PROG');
        await withMap([path, name ?? ''], (sys, fd, info) => {
          const entries = dumpMap(sys, fd);
          emit(global(), entries.map((e) => entryJson(info, e.key, e.value, sys.bpfSys.nrCpus)), () =>
            [...entries.map((e) => entryPlain(info, e.key, e.value, sys.bpfSys.nrCpus)), `Found ${entries.length} element${entries.length === 1 ? '' : 's'}`].join('\n'));
        });
        return;
      }
      const { sys, obj } = await bootAndLoad(path);
      try {
        if (opts.run) testRunProgram(sys, obj, opts.run, opts.dataIn ? hexBytes(opts.dataIn, '--data-in') : DEFAULT_PACKET, Number(parseInteger(opts.repeat, '--repeat')));
        const maps = [...obj.maps.values()].filter((m) => !name || m.spec.name === name);
        if (name && maps.length === 0) throw new UsageError(`no map '${name}' in ${obj.name} (maps: ${[...obj.maps.keys()].join(', ')})`);
        const dumps = maps.map((m) => {
          const k = sys.bpfSys.mapFromFd(m.fd)!;
          const info: MapInfo = { id: m.id, type: k.type, keySize: k.keySize, valueSize: k.valueSize, maxEntries: k.maxEntries, flags: k.flags, name: k.name, btfId: k.btfId };
          return { name: m.spec.name, id: m.id, info, entries: dumpMap(sys, m.fd) };
        });
        emit(global(), dumps.map((d) => ({ name: d.name, id: d.id, entries: d.entries.map((e) => entryJson(d.info, e.key, e.value, sys.bpfSys.nrCpus)) })),
          () => dumps.map((d) => [`map ${d.id}: ${d.name}`, ...d.entries.map((e) => entryPlain(d.info, e.key, e.value, sys.bpfSys.nrCpus)), `Found ${d.entries.length} element${d.entries.length === 1 ? '' : 's'}`].join('\n')).join('\n'));
      } finally { releaseObject(obj); release(sys); }
    });

  map.command('lookup')
    .description('look a key up: map lookup id N key [hex] BYTES')
    .argument('<args...>', 'id N key [hex] BYTES').allowUnknownOption()
    .action((words: string[]) => withMap(words, (sys, fd, info, rest, stage) => {
      const { key } = parseElem(rest, info.keySize, 0, {});
      const k = stage(key!), v = stage(new Uint8Array(syscallValueSize(sys, info)));
      const r = sys.bpfSys.call(BPF_MAP_LOOKUP_ELEM, { map_fd: fd, key: k, value: v });
      if (r.ret === -2) {
        emit(global(), null, () => `key:\n${fprintHex(key!)}\n\nNot found`); // what bpftool prints for ENOENT
      }
      if (r.ret < 0) throw new Error(`lookup failed: ${strerror(r.ret)}`);
      const value = sys.kernel.machine.mem.read(v, syscallValueSize(sys, info));
      emit(global(), entryJson(info, key!, value, sys.bpfSys.nrCpus), () => entryPlain(info, key!, value, sys.bpfSys.nrCpus));
    }));

  map.command('update')
    .description('update (or add) an element: map update id N key [hex] BYTES value [hex] BYTES [any|exist|noexist]')
    .argument('<args...>', 'id N key BYTES value BYTES [FLAG]').allowUnknownOption()
    .action((words: string[]) => withMap(words, (sys, fd, info, rest, stage) => {
      const e = parseElem(rest, info.keySize, info.valueSize, { value: true, flags: true });
      const r = sys.bpfSys.call(BPF_MAP_UPDATE_ELEM, { map_fd: fd, key: stage(e.key!), value: stage(fullValue(sys, info, e.value!)), flags: e.flags });
      if (r.ret < 0) throw new Error(`update failed: ${strerror(r.ret)}`);
      emit(global(), null, () => '');
    }));

  map.command('delete')
    .description('delete an element: map delete id N key [hex] BYTES')
    .argument('<args...>', 'id N key BYTES').allowUnknownOption()
    .action((words: string[]) => withMap(words, (sys, fd, info, rest, stage) => {
      const { key } = parseElem(rest, info.keySize, 0, {});
      const r = sys.bpfSys.call(BPF_MAP_DELETE_ELEM, { map_fd: fd, key: stage(key!) });
      if (r.ret < 0) throw new Error(`delete failed: ${strerror(r.ret)}`);
      emit(global(), null, () => '');
    }));

  map.command('getnext')
    .description('the key after KEY (or the first key): map getnext id N [key [hex] BYTES]')
    .argument('<args...>', 'id N [key BYTES]').allowUnknownOption()
    .action((words: string[]) => withMap(words, (sys, fd, info, rest, stage) => {
      const key = rest.length ? parseElem(rest, info.keySize, 0, {}).key! : undefined;
      const next = stage(new Uint8Array(info.keySize));
      const r = sys.bpfSys.call(BPF_MAP_GET_NEXT_KEY, { map_fd: fd, key: key ? stage(key) : 0n, next_key: next });
      if (r.ret < 0) throw new Error(`can't get next key: ${strerror(r.ret)}`);
      const nk = sys.kernel.machine.mem.read(next, info.keySize);
      emit(global(), { key: key ? hexJson(key) : null, next_key: hexJson(nk) },
        () => `${key ? `key:\n${fprintHex(key)}` : 'key: None'}\nnext key:\n${fprintHex(nk)}`);
    }));

  map.command('freeze')
    .description('freeze a map (no more updates from bpf()): map freeze id N')
    .argument('<args...>', 'id N')
    .action((words: string[]) => withMap(words, (sys, fd, _info, rest) => {
      if (rest.length) throw new UsageError(`what is '${rest[0]}'?`);
      const r = sys.bpfSys.call(BPF_MAP_FREEZE, { map_fd: fd });
      if (r.ret < 0) throw new Error(`failed to freeze map: ${strerror(r.ret)}`);
      emit(global(), null, () => '');
    }));
}
