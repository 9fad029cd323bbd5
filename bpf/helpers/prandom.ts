/**
 * @fileoverview prandom (lib/random32.c, v5.5): L'Ecuyer's four-component Tausworthe generator
 * (LFSR113) behind bpf_get_prandom_u32(). The kernel seeds each CPU's state from the entropy
 * pool once (bpf_user_rnd_init_once); here the seed is fixed, so runs are reproducible.
 */

export interface PrandomState { s1: number; s2: number; s3: number; s4: number }

/** One Tausworthe step: ((s & c) << d) ^ (((s << a) ^ s) >> b), all u32. */
const taus = (s: number, a: number, b: number, c: number, d: number): number =>
  (((s & c) << d) ^ (((s << a) ^ s) >>> b)) >>> 0;

/** prandom_u32_state() */
export function prandomU32State(st: PrandomState): number {
  st.s1 = taus(st.s1, 6, 13, 4294967294, 18);
  st.s2 = taus(st.s2, 2, 27, 4294967288, 2);
  st.s3 = taus(st.s3, 13, 21, 4294967280, 7);
  st.s4 = taus(st.s4, 3, 12, 4294967168, 13);
  return (st.s1 ^ st.s2 ^ st.s3 ^ st.s4) >>> 0;
}

/** prandom_seed_state() and prandom_warmup(): each component at least its minimum, then 10 steps. */
export function prandomSeedState(seed: bigint): PrandomState {
  const s = BigInt.asUintN(64, seed);
  const i = Number(BigInt.asUintN(32, (s >> 32n) ^ (s << 10n) ^ s));
  // __seed(x, m): components below their minimum would make the LFSR degenerate.
  const seedOf = (x: number, m: number): number => (x < m ? x + m : x) >>> 0;
  return prandomWarmup({ s1: seedOf(i, 2), s2: seedOf(i, 8), s3: seedOf(i, 16), s4: seedOf(i, 128) });
}

/** prandom_warmup(): 10 steps, so a weak seed's low bits are mixed in. */
export function prandomWarmup(st: PrandomState): PrandomState {
  for (let k = 0; k < 10; k++) prandomU32State(st);
  return st;
}

/** The seed of bpf_get_prandom_u32()'s state unless the helper environment gives one. */
export const BPF_PRANDOM_DEFAULT_SEED = 0x62706665_6d75n; // "bpfemu"
