/**
 * @fileoverview __bpf_prog_enter / __bpf_prog_exit as guest code (kernel/bpf/trampoline.c, v5.5),
 * with the bpf_stats_enabled static key as the kernel builds it: a 5-byte nop at each entry that
 * becomes a `jmp` to the slow path when stats are switched on (a jump label). With stats off no
 * call leaves guest code; with them on, the slow paths tail-call TypeScript natives:
 *
 *   __bpf_prog_enter:  0f 1f 44 00 00   nop5 / jmp .enter_stats     ; static_branch_unlikely()
 *                      31 c0            xor eax, eax                 ; start = 0
 *                      c3               ret
 *   .enter_stats:      e9 rel32         jmp native_enter             ; returns sched_clock()
 *   __bpf_prog_exit:   0f 1f 44 00 00   nop5 / jmp .exit_stats
 *                      c3               ret
 *   .exit_stats:       48 85 f6         test rsi, rsi                ; start == 0: no stats
 *                      74 05            je .ret
 *                      e9 rel32         jmp native_exit              ; stats->cnt++, nsecs += …
 *   .ret:              c3               ret
 */

import type { ProgEnterExitCode } from '../../bpf/arch.ts';

const rel32 = (from: bigint, to: bigint): number[] => {
  const d = Number(to - from);
  if (d < -0x80000000 || d > 0x7fffffff) throw new RangeError(`rel32 from 0x${from.toString(16)} to 0x${to.toString(16)} out of range`);
  return [d & 0xff, (d >> 8) & 0xff, (d >> 16) & 0xff, (d >>> 24) & 0xff];
};

/** The two entry points at `base`, their slow paths jumping to the natives. */
export function emitProgEnterExit(base: bigint, nativeEnter: bigint, nativeExit: bigint): ProgEnterExitCode {
  const b: number[] = [];
  const at = (): bigint => base + BigInt(b.length);
  const enter = b.length, enterKey = b.length;
  b.push(0x0f, 0x1f, 0x44, 0x00, 0x00); // nop5: the static key, off
  b.push(0x31, 0xc0);                   // xor eax, eax
  b.push(0xc3);                         // ret
  const enterStats = b.length;
  b.push(0xe9, ...rel32(at() + 5n, nativeEnter)); // jmp native __bpf_prog_enter (stats)
  const exit = b.length, exitKey = b.length;
  b.push(0x0f, 0x1f, 0x44, 0x00, 0x00); // nop5: the static key, off
  b.push(0xc3);                         // ret
  const exitStats = b.length;
  b.push(0x48, 0x85, 0xf6);             // test rsi, rsi
  b.push(0x74, 0x05);                   // je .ret
  b.push(0xe9, ...rel32(at() + 5n, nativeExit)); // jmp native __bpf_prog_exit (stats)
  b.push(0xc3);                         // .ret: ret
  return { bytes: Uint8Array.from(b), enter, enterKey, enterStats, exit, exitKey, exitStats };
}

/** The static key's two states at a site: the nop, or `jmp target` (e9 rel32). */
export function staticKeyInsn(site: bigint, target: bigint | undefined): Uint8Array {
  return target === undefined ? Uint8Array.of(0x0f, 0x1f, 0x44, 0x00, 0x00) : Uint8Array.of(0xe9, ...rel32(site + 5n, target));
}
