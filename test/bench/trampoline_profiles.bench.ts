/**
 * @fileoverview Per kernel profile: guest instructions of one traced call of bpf_fentry_test1
 * (untraced, 1 fentry, 1 fentry + 1 fexit, all JITed `r0 = 0`) and the bytes of its trampoline.
 * The same function and programs on every profile, so the lines compare the generations.
 */
import { pathToFileURL } from 'node:url';
import { boot } from '../../index.ts';
import { BPF_PROG_LOAD, BPF_RAW_TRACEPOINT_OPEN } from '../../bpf/syscall/attr.ts';
import { BTF_KIND } from '../../bpf/btf/btf.ts';
import { encode } from '../../bpf/isa/insn.ts';
import { assemble } from '../../bpf/asm/assembler.ts';
import { KERNEL_VERSIONS } from '../../kernel/profile.ts';
import { report, type Line } from './util.ts';

const FUNC = 'bpf_fentry_test1';

export async function trampolineProfilesBench(): Promise<Line[]> {
  const lines: Line[] = [];
  for (const v of KERNEL_VERSIONS) {
    const sys = await boot({ kernel: v });
    const k = sys.kernel, m = k.machine, b = sys.bpfSys;
    const addr = k.addressOf(FUNC);
    const load = (fexit: boolean): number => {
      const insns = assemble('mov %r0, 0\nexit');
      const ui = b.stage(encode(insns)), lic = b.stage(Buffer.from('GPL\0'));
      const fd = b.call(BPF_PROG_LOAD, {
        prog_type: 26, expected_attach_type: fexit ? 25 : 24, attach_btf_id: sys.btf.findByNameKind(FUNC, BTF_KIND.FUNC)!.id,
        insns: ui, insn_cnt: insns.length, license: lic,
      }).ret;
      b.unstage(ui); b.unstage(lic);
      if (fd < 0) throw new Error(`bench ${v}: PROG_LOAD ${fd}`);
      return fd;
    };
    const attach = (fd: number): number => b.call(BPF_RAW_TRACEPOINT_OPEN, { name: 0, prog_fd: fd }).ret;
    const insnsOfCall = (): number => {
      let n = 0;
      const h = m.hookCode(() => { n++; });
      try { m.call(addr, [1]); } finally { m.removeHook(h); }
      return n;
    };
    const trampBytes = (): number => k.ksyms.all().find((s) => s.name.startsWith('bpf_trampoline_'))?.size ?? 0;
    const key = `trampoline.v${v}`;
    lines.push([`${key}.guest_insns.untraced`, insnsOfCall()]);
    const lf = attach(load(false));
    lines.push([`${key}.guest_insns.1_fentry`, insnsOfCall()], [`${key}.bytes.1_fentry`, trampBytes()]);
    const lx = attach(load(true));
    lines.push([`${key}.guest_insns.1_fentry_1_fexit`, insnsOfCall()], [`${key}.bytes.1_fentry_1_fexit`, trampBytes()]);
    k.current.files.close(lx); k.current.files.close(lf);
    sys.close();
  }
  return lines;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) report(await trampolineProfilesBench());
