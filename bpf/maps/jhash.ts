/**
 * @fileoverview jhash (include/linux/jhash.h): Bob Jenkins' lookup3 hash over bytes, as the
 * kernel's hash maps hash their keys (htab_map_hash() is jhash(key, key_size, hashrnd) in v5.5).
 * The bucket of a key, and so the order of BPF_MAP_GET_NEXT_KEY, follows from it.
 */

/** JHASH_INITVAL: an arbitrary start value. */
const JHASH_INITVAL = 0xdeadbeef;

const rol32 = (x: number, k: number): number => ((x << k) | (x >>> (32 - k))) >>> 0;

/**
 * jhash(key, length, initval): 12-byte blocks read as three little-endian u32s and mixed, the
 * last 1..12 bytes added byte by byte, then the final avalanche (none for an empty key).
 */
export function jhash(key: Uint8Array, initval: number): number {
  let length = key.length;
  let a = (JHASH_INITVAL + length + initval) >>> 0, b = a, c = a;
  let k = 0;
  const u32 = (o: number): number => (key[o]! | (key[o + 1]! << 8) | (key[o + 2]! << 16) | (key[o + 3]! << 24)) >>> 0;
  while (length > 12) {
    a = (a + u32(k)) >>> 0;
    b = (b + u32(k + 4)) >>> 0;
    c = (c + u32(k + 8)) >>> 0;
    // __jhash_mix(a, b, c)
    a = (a - c) >>> 0; a ^= rol32(c, 4);  c = (c + b) >>> 0;
    b = (b - a) >>> 0; b ^= rol32(a, 6);  a = (a + c) >>> 0;
    c = (c - b) >>> 0; c ^= rol32(b, 8);  b = (b + a) >>> 0;
    a = (a - c) >>> 0; a ^= rol32(c, 16); c = (c + b) >>> 0;
    b = (b - a) >>> 0; b ^= rol32(a, 19); a = (a + c) >>> 0;
    c = (c - b) >>> 0; c ^= rol32(b, 4);  b = (b + a) >>> 0;
    a >>>= 0; b >>>= 0; c >>>= 0;
    length -= 12;
    k += 12;
  }
  if (length === 0) return c;
  // The tail: byte j of the last block goes to a (0..3), b (4..7) or c (8..11) at bit 8*(j%4).
  for (let j = length - 1; j >= 0; j--) {
    const v = (key[k + j]! << (8 * (j % 4))) >>> 0;
    if (j >= 8) c = (c + v) >>> 0;
    else if (j >= 4) b = (b + v) >>> 0;
    else a = (a + v) >>> 0;
  }
  // __jhash_final(a, b, c)
  c ^= b; c = (c - rol32(b, 14)) >>> 0;
  a ^= c; a = (a - rol32(c, 11)) >>> 0;
  b ^= a; b = (b - rol32(a, 25)) >>> 0;
  c ^= b; c = (c - rol32(b, 16)) >>> 0;
  a ^= c; a = (a - rol32(c, 4)) >>> 0;
  b ^= a; b = (b - rol32(a, 14)) >>> 0;
  c ^= b; c = (c - rol32(b, 24)) >>> 0;
  return c >>> 0;
}
