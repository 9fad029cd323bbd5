/**
 * @fileoverview Per kernel profile, the same function and the same programs: guest instructions
 * of one traced call of bpf_fentry_test2(2, 3) with nothing, 1 fentry, and 1 fentry + 1 fexit
 * attached, counted exactly (a code hook per instruction, as trampoline.bench.ts counts), and the
 * trampoline's bytes. fmod_ret only attaches to functions open to error injection, so its figure
 * is bpf_modify_return_test(1, &b) with fentry + fmod_ret + fexit, under the profiles that have
 * it (5.7+). Every program is `r0 = 0; exit`.
 */
import { pathToFileURL } from 'node:url';
import { boot, type System } from '../../index.ts';
import { BPF_RAW_TRACEPOINT_OPEN } from '../../bpf/syscall/attr.ts';
import { BTF_KIND } from '../../bpf/btf/btf.ts';
import { KERNEL_VERSIONS, type KernelVersion } from '../../kernel/profile.ts';
import { liveTrampolineSym, loadTiny, type TraceKind } from '../../cli/tramp/image.ts';
import { report, type Line } from './util.ts';

/** Loads (cli/tramp/image.ts's loadTiny: `r0 = 0; exit`) and attaches a program of `kind` on `func`; returns its fd. */
function attach(sys: System, func: string, kind: TraceKind): number {
  const fd = loadTiny(sys, sys.kernel.profile.version, func, sys.btf.findByNameKind(func, BTF_KIND.FUNC)!.id, kind);
  const l = sys.bpfSys.call(BPF_RAW_TRACEPOINT_OPEN, { name: 0, prog_fd: fd }).ret;
  if (l < 0) throw new Error(`bench: attach ${kind} on ${func}: ${l}`);
  return fd;
}

/** Guest instructions of one call (every instruction the CPU ran, trampoline and programs included). */
function insnsOfCall(sys: System, func: string, args: bigint[]): number {
  const m = sys.kernel.machine;
  let n = 0;
  const h = m.hookCode(() => { n++; });
  try { m.call(sys.kernel.addressOf(func), args); } finally { m.removeHook(h); }
  return n;
}

/** The live trampoline's size in bytes (its ksym), of the program `fd`'s target. */
function trampBytes(sys: System, fd: number): number {
  const sym = liveTrampolineSym(sys, sys.bpfSys.progFromFd(fd)!.trampoline!);
  if (!sym) throw new Error('bench: no live trampoline image');
  return sym.size;
}

async function profileBench(v: KernelVersion): Promise<Line[]> {
  const sys = await boot({ kernel: v });
  const p = `profile.${v}`;
  const lines: Line[] = [];
  try {
    const f = 'bpf_fentry_test2', args = [2n, 3n];
    lines.push([`${p}.guest_insns.fentry_test2.untraced`, insnsOfCall(sys, f, args)]);
    const fe = attach(sys, f, 'fentry');
    lines.push([`${p}.guest_insns.fentry_test2.1_fentry`, insnsOfCall(sys, f, args)]);
    lines.push([`${p}.tramp_bytes.fentry_test2.1_fentry`, trampBytes(sys, fe)]);
    attach(sys, f, 'fexit');
    lines.push([`${p}.guest_insns.fentry_test2.fentry_fexit`, insnsOfCall(sys, f, args)]);
    lines.push([`${p}.tramp_bytes.fentry_test2.fentry_fexit`, trampBytes(sys, fe)]);
    if (sys.kernel.profile.trampoline.fmodRet) {
      const g = 'bpf_modify_return_test', b = sys.bpfSys.stage(Uint8Array.of(2, 0, 0, 0));
      try {
        const m0 = attach(sys, g, 'fentry');
        attach(sys, g, 'fmod_ret');
        attach(sys, g, 'fexit');
        lines.push([`${p}.guest_insns.modify_return.fentry_fmod_ret_fexit`, insnsOfCall(sys, g, [1n, b])]);
        lines.push([`${p}.tramp_bytes.modify_return.fentry_fmod_ret_fexit`, trampBytes(sys, m0)]);
      } finally { sys.bpfSys.unstage(b); }
    }
  } finally { sys.close(); }
  return lines;
}

export async function profilesBench(): Promise<Line[]> {
  const lines: Line[] = [];
  for (const v of KERNEL_VERSIONS) lines.push(...await profileBench(v));
  return lines;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) report(await profilesBench());
