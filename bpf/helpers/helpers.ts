/**
 * @fileoverview The generic helpers of kernel/bpf/helpers.c (v5.5): map access, time, random
 * numbers, the CPU and the current task. Arguments arrive as u64 registers; pointers are guest
 * addresses read and written through the kernel's GuestMemory; errors go back as -errno in R0.
 */
import type { Kernel } from '../../kernel/kernel.ts';
import type { HelperDef } from '../prog.ts';
import type { BpfMap } from '../maps/map.ts';
import { BPF_FUNC } from './func_ids.ts';
import { BPF_PRANDOM_DEFAULT_SEED, prandomSeedState, prandomU32State } from './prandom.ts';

export const EINVAL = 22;

/** What helpers may use: the kernel, the maps by their `struct bpf_map` address, the CPUs. */
export interface HelperEnv {
  kernel: Kernel;
  /** The live map whose kaddr this is (what a program has in R1 for map helpers). */
  mapByAddr(addr: bigint): BpfMap | undefined;
  /** num_possible_cpus(); programs run on CPU 0. */
  nrCpus: number;
  /** Seed of bpf_get_prandom_u32()'s state (default BPF_PRANDOM_DEFAULT_SEED). */
  prandomSeed?: bigint;
}

/** A helper called with arguments the verifier would have refused (e.g. R1 not a map). */
export class BpfHelperError extends Error {
  readonly helper: string;
  constructor(helper: string, detail: string) {
    super(`${helper}: ${detail}`);
    this.name = 'BpfHelperError';
    this.helper = helper;
  }
}

/** A negative errno as the u64 a helper returns. */
export const errnoU64 = (err: number): bigint => BigInt.asUintN(64, BigInt(err));

/** A helper definition: the kernel's id for `name`, its symbol `bpf_<name>` and its arity. */
export function helper(name: keyof typeof BPF_FUNC, argc: number, fn: (...args: bigint[]) => bigint): HelperDef {
  return { id: BPF_FUNC[name], name: `bpf_${name}`, argc, fn };
}

function mapArg(env: HelperEnv, name: string, addr: bigint): BpfMap {
  const map = env.mapByAddr(addr);
  if (!map) throw new BpfHelperError(name, `R1 0x${addr.toString(16)} is not a map`);
  return map;
}

/** bpf_map_lookup_elem, bpf_map_update_elem, bpf_map_delete_elem. */
export function mapHelpers(env: HelperEnv): HelperDef[] {
  const mem = env.kernel.machine.mem;
  return [
    // void *bpf_map_lookup_elem(map, key): the value's address or NULL.
    helper('map_lookup_elem', 2, (m, key) => {
      const map = mapArg(env, 'bpf_map_lookup_elem', m);
      return map.impl.lookupElem(mem.read(key, map.keySize)) ?? 0n;
    }),
    // long bpf_map_update_elem(map, key, value, flags)
    helper('map_update_elem', 4, (m, key, value, flags) => {
      const map = mapArg(env, 'bpf_map_update_elem', m);
      // flags is a u64: anything past 32 bits is an unknown flag, which Number() keeps visible.
      const err = map.impl.updateElem(mem.read(key, map.keySize), mem.read(value, map.valueSize), Number(flags), false);
      return errnoU64(err);
    }),
    // long bpf_map_delete_elem(map, key)
    helper('map_delete_elem', 2, (m, key) => {
      const map = mapArg(env, 'bpf_map_delete_elem', m);
      return errnoU64(map.impl.deleteElem(mem.read(key, map.keySize)));
    }),
  ];
}

/** ktime_get_ns, get_prandom_u32, get_smp_processor_id and the current task's ids and comm. */
export function taskHelpers(env: HelperEnv): HelperDef[] {
  const k = env.kernel;
  const rnd = prandomSeedState(env.prandomSeed ?? BPF_PRANDOM_DEFAULT_SEED);
  return [
    // u64 bpf_ktime_get_ns(void): CLOCK_MONOTONIC.
    helper('ktime_get_ns', 0, () => k.clock.ktimeGetNs()),
    // u32 bpf_get_prandom_u32(void): this CPU's prandom state (bpf_user_rnd_u32).
    helper('get_prandom_u32', 0, () => BigInt(prandomU32State(rnd))),
    // u32 bpf_get_smp_processor_id(void): everything runs on CPU 0.
    helper('get_smp_processor_id', 0, () => 0n),
    // u64 bpf_get_current_pid_tgid(void): tgid << 32 | pid.
    helper('get_current_pid_tgid', 0, () => (BigInt(k.current.tgid) << 32n) | BigInt(k.current.pid >>> 0)),
    // u64 bpf_get_current_uid_gid(void): gid << 32 | uid, the real ids in the initial namespace.
    helper('get_current_uid_gid', 0, () => (BigInt(k.current.cred.gid >>> 0) << 32n) | BigInt(k.current.cred.uid >>> 0)),
    // long bpf_get_current_comm(buf, size_of_buf): strncpy (NUL-padded), then buf[size-1] = 0.
    helper('get_current_comm', 2, (buf, size) => {
      const n = Number(BigInt.asUintN(32, size));
      // The verifier requires size > 0 (ARG_CONST_SIZE); refuse rather than write buf[-1].
      if (n === 0) return errnoU64(-EINVAL);
      const out = new Uint8Array(n);
      out.set(Buffer.from(k.current.comm, 'utf8').subarray(0, n));
      out[n - 1] = 0;
      k.machine.mem.write(buf, out);
      return 0n;
    }),
  ];
}
