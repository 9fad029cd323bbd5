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
 *
 * From 5.12 (ca06f55b9002, 9ed9e9ba2337) the trampoline passes the program (rdi) and the enter
 * side guards against recursion on the `struct bpf_prog` stand-in (bpf/arch.ts PROG_STANDIN:
 * prog->active a plain int, one CPU; recursion_misses a u64):
 *
 *   __bpf_prog_enter:  ff 47 08         inc dword ptr [rdi+active]   ; ++prog->active
 *                      83 7f 08 01      cmp dword ptr [rdi+active], 1
 *                      75 0b            jne .miss
 *                      0f 1f 44 00 00   nop5 / jmp .enter_stats      ; bpf_prog_start_time()
 *                      b8 01 00 00 00   mov eax, 1                   ; NO_START_TIME
 *                      c3               ret
 *   .miss:             48 ff 47 10      inc qword ptr [rdi+misses]   ; inc_misses_counter()
 *                      31 c0            xor eax, eax                 ; 0: the trampoline skips it
 *                      c3               ret
 *   .enter_stats:      e9 rel32         jmp native_enter             ; sched_clock() or NO_START_TIME
 *   __bpf_prog_exit:   ff 4f 08         dec dword ptr [rdi+active]   ; prog->active--
 *                      0f 1f 44 00 00   nop5 / jmp .exit_stats
 *                      c3               ret
 *   .exit_stats:       48 83 fe 01      cmp rsi, 1                   ; start > NO_START_TIME only
 *                      76 05            jbe .ret
 *                      e9 rel32         jmp native_exit
 *   .ret:              c3               ret
 *
 * (The kernel decrements after update_prog_stats(); with one CPU the order is not observable,
 * and decrementing first keeps the stats path a tail call.) 5.19 adds the run context: enter
 * gets &run_ctx in rsi, exit in rdx, and they set and reset current->bpf_ctx, a u64 in guest
 * memory (`bpfCtx`) that bpf_get_attach_cookie reads: cookie = *(u64 *)*bpfCtx, the run_ctx's
 * first field (struct bpf_run_ctx is empty, so &run_ctx->run_ctx == &run_ctx == &bpf_cookie):
 *
 *   enter +=           48 a1 imm64      mov rax, [bpfCtx]            ; bpf_set_run_ctx()
 *                      48 89 46 08      mov [rsi+8], rax             ;   run_ctx->saved_run_ctx
 *                      48 89 f0         mov rax, rsi
 *                      48 a3 imm64      mov [bpfCtx], rax            ;   current->bpf_ctx = run_ctx
 *   exit +=            48 8b 42 08      mov rax, [rdx+8]             ; bpf_reset_run_ctx(saved)
 *                      48 a3 imm64      mov [bpfCtx], rax
 *
 * __bpf_tramp_enter/exit(im) (5.12, e21aa341785c) count callers inside an image on the
 * bpf_tramp_image stand-in: `48 ff 07 c3` inc qword ptr [rdi]; ret and `48 ff 0f c3`.
 */

import { PROG_STANDIN, type ProgEnterExitCode } from '../../bpf/arch.ts';
import type { TrampolineBehaviour } from '../../kernel/profile.ts';

const rel32 = (from: bigint, to: bigint): number[] => {
  const d = Number(to - from);
  if (d < -0x80000000 || d > 0x7fffffff) throw new RangeError(`rel32 from 0x${from.toString(16)} to 0x${to.toString(16)} out of range`);
  return [d & 0xff, (d >> 8) & 0xff, (d >> 16) & 0xff, (d >>> 24) & 0xff];
};

const le64 = (v: bigint): number[] => Array.from({ length: 8 }, (_, i) => Number((v >> BigInt(8 * i)) & 0xffn));

/** The entry points at `base` as generation `opts.gen` has them, their slow paths jumping to the natives. */
export function emitProgEnterExit(base: bigint, nativeEnter: bigint, nativeExit: bigint,
  opts: { gen?: TrampolineBehaviour; bpfCtx?: bigint } = {}): ProgEnterExitCode {
  if (opts.gen?.enterSkips) return emitRecursionGuarded(base, nativeEnter, nativeExit, opts.gen.runCtx ? opts.bpfCtx ?? 0n : undefined);
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

/** 5.12+'s enter/exit (run context from 5.19 when `bpfCtx` is given) and __bpf_tramp_enter/exit. */
function emitRecursionGuarded(base: bigint, nativeEnter: bigint, nativeExit: bigint, bpfCtx: bigint | undefined): ProgEnterExitCode {
  const b: number[] = [];
  const at = (): bigint => base + BigInt(b.length);
  const { active, misses } = PROG_STANDIN;
  const enter = b.length;
  if (bpfCtx !== undefined) {
    b.push(0x48, 0xa1, ...le64(bpfCtx)); //       mov rax, [current->bpf_ctx]
    b.push(0x48, 0x89, 0x46, 0x08); //            mov [rsi+8], rax      ; run_ctx->saved_run_ctx
    b.push(0x48, 0x89, 0xf0); //                  mov rax, rsi
    b.push(0x48, 0xa3, ...le64(bpfCtx)); //       mov [current->bpf_ctx], rax
  }
  b.push(0xff, 0x47, active); //                  inc dword ptr [rdi+active]
  b.push(0x83, 0x7f, active, 0x01); //            cmp dword ptr [rdi+active], 1
  b.push(0x75, 5 + 5 + 1); //                     jne .miss
  const enterKey = b.length;
  b.push(0x0f, 0x1f, 0x44, 0x00, 0x00); //        nop5: the static key, off
  b.push(0xb8, 0x01, 0x00, 0x00, 0x00); //        mov eax, NO_START_TIME
  b.push(0xc3); //                                ret
  b.push(0x48, 0xff, 0x47, misses); //            .miss: inc qword ptr [rdi+misses]
  b.push(0x31, 0xc0); //                          xor eax, eax
  b.push(0xc3); //                                ret
  const enterStats = b.length;
  b.push(0xe9, ...rel32(at() + 5n, nativeEnter)); // jmp native __bpf_prog_enter (stats)
  const exit = b.length;
  if (bpfCtx !== undefined) {
    b.push(0x48, 0x8b, 0x42, 0x08); //            mov rax, [rdx+8]      ; run_ctx->saved_run_ctx
    b.push(0x48, 0xa3, ...le64(bpfCtx)); //       mov [current->bpf_ctx], rax
  }
  b.push(0xff, 0x4f, active); //                  dec dword ptr [rdi+active]
  const exitKey = b.length;
  b.push(0x0f, 0x1f, 0x44, 0x00, 0x00); //        nop5: the static key, off
  b.push(0xc3); //                                ret
  const exitStats = b.length;
  b.push(0x48, 0x83, 0xfe, 0x01); //              cmp rsi, NO_START_TIME
  b.push(0x76, 0x05); //                          jbe .ret
  b.push(0xe9, ...rel32(at() + 5n, nativeExit)); // jmp native __bpf_prog_exit (stats)
  b.push(0xc3); //                                .ret: ret
  const trampEnter = b.length;
  b.push(0x48, 0xff, 0x07, 0xc3); //              inc qword ptr [rdi] (TRAMP_IMAGE_STANDIN.pcref = 0); ret
  const trampExit = b.length;
  b.push(0x48, 0xff, 0x0f, 0xc3); //              dec qword ptr [rdi]; ret
  return { bytes: Uint8Array.from(b), enter, enterKey, enterStats, exit, exitKey, exitStats, trampEnter, trampExit };
}
