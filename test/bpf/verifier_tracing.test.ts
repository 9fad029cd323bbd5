/**
 * @fileoverview The verifier's typed kernel pointers (PTR_TO_BTF_ID) against the kernel image's
 * BTF: a fentry/fexit program's struct pointer arguments (btf_ctx_access) and loads through them
 * (btf_struct_access): inside one member, a whole pointer member gives the next typed pointer,
 * no writes, no negative or variable offsets; and the same programs through bpf() PROG_LOAD.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { Btf, BTF_KIND } from '../../bpf/btf/btf.ts';
import { bpfCheck } from '../../bpf/verifier/verifier.ts';
import { BPF_PROG_TYPE_TRACING, BPF_TRACE_FENTRY, BPF_TRACE_FEXIT } from '../../bpf/prog_types.ts';
import {
  prog, BPF_LDX_MEM, BPF_STX_MEM, BPF_EXIT_INSN, BPF_MOV64_IMM, BPF_MOV64_REG, BPF_ALU64_IMM, BPF_ALU64_REG, BPF_JMP_IMM,
  BPF_DW, BPF_W, BPF_H, BPF_B, BPF_ADD, BPF_AND, BPF_JEQ, R0, R1, R2, R6,
} from './verifier/harness.ts';
import type { Insn } from '../../bpf/isa/insn.ts';
import { kernelProfile } from '../../kernel/profile.ts';

const vmlinux = new Btf(new Uint8Array(readFileSync(fileURLToPath(new URL('../../images/build/vmlinux.btf', import.meta.url)))));
const funcId = (name: string): number => vmlinux.findByNameKind(name, BTF_KIND.FUNC)!.id;
const structId = (name: string): number => vmlinux.findByNameKind(name, BTF_KIND.STRUCT)!.id;
const off = (struct: string, member: string): number => vmlinux.findMember(structId(struct), member)!.bitOffset / 8;

function verify(fn: string, insns: Insn[], fexit = false, logLevel = 1, kernel = '5.5') {
  return bpfCheck(insns, {
    progType: BPF_PROG_TYPE_TRACING, expectedAttachType: fexit ? BPF_TRACE_FEXIT : BPF_TRACE_FENTRY, logLevel,
    attach: { btf: vmlinux, funcId: funcId(fn) }, btf: vmlinux, profile: kernelProfile(kernel),
  });
}
const ret0 = prog(BPF_MOV64_IMM(R0, 0), BPF_EXIT_INSN());

describe('btf_ctx_access: the arguments of the target', () => {
  it.each([
    ['an int argument is a scalar', 'bpf_fentry_test1', prog(BPF_LDX_MEM(BPF_DW, R0, R1, 0), BPF_EXIT_INSN()), false, 0, ''],
    ['a narrow read of an int argument', 'bpf_fentry_test1', prog(BPF_LDX_MEM(BPF_W, R0, R1, 0), BPF_EXIT_INSN()), false, 0, ''],
    ['fexit reads the return value after the arguments', 'bpf_fentry_test2', prog(BPF_LDX_MEM(BPF_DW, R0, R1, 16), BPF_EXIT_INSN()), true, 0, ''],
    ['fentry has no return value slot', 'bpf_fentry_test2', prog(BPF_LDX_MEM(BPF_DW, R0, R1, 16), BPF_EXIT_INSN()), false, 13, "func 'bpf_fentry_test2' doesn't have 3-th argument"],
    ['an offset that is not a multiple of 8', 'bpf_fentry_test2', prog(BPF_LDX_MEM(BPF_W, R0, R1, 4), BPF_EXIT_INSN()), false, 13, "func 'bpf_fentry_test2' offset 4 is not multiple of 8"],
    ['ctx is read-only', 'bpf_fentry_test1', prog(BPF_MOV64_IMM(R2, 1), BPF_STX_MEM(BPF_DW, R1, R2, 0), ret0), false, 13, 'invalid bpf_context access off=0 size=8'],
    ['an int argument cannot be dereferenced', 'bpf_fentry_test1', prog(BPF_LDX_MEM(BPF_DW, R2, R1, 0), BPF_LDX_MEM(BPF_W, R0, R2, 0), BPF_EXIT_INSN()), false, 13, "R2 invalid mem access 'inv'"],
    ['a struct pointer argument is typed', 'bpf_fentry_test8', prog(BPF_LDX_MEM(BPF_DW, R2, R1, 0), BPF_LDX_MEM(BPF_DW, R0, R2, 0), BPF_EXIT_INSN()), false, 0, ''],
  ])('%s', (_n, fn, insns, fexit, errno, msg) => {
    const r = verify(fn as string, insns as Insn[], fexit as boolean);
    expect(r.errno, r.log.join('\n')).toBe(errno);
    if (msg) expect(r.log.join('\n')).toContain(msg);
  });

  it('the log names the typed argument as btf_ctx_access does', () => {
    const r = verify('bpf_fentry_test8', prog(BPF_LDX_MEM(BPF_DW, R2, R1, 0), BPF_LDX_MEM(BPF_DW, R0, R2, 0), BPF_EXIT_INSN()), false, 2);
    const log = r.log.join('\n');
    expect(log).toContain(`func 'bpf_fentry_test8' arg0 has btf_id ${structId('bpf_fentry_test_t')} type STRUCT 'bpf_fentry_test_t'`);
    expect(log).toMatch(/R2_w=ptr_bpf_fentry_test_t\(id=0,off=0,imm=0\)/);
  });
});

describe('btf_struct_access: loads through a typed kernel pointer', () => {
  // eth_type_trans(struct sk_buff *skb, struct net_device *dev). Each row: [5.5's verdict, 5.7's]
  // where they differ (v5.5's walker needs the member's whole size and skips arrays; 5.6's
  // narrow/array support bounds loads by the member's end and the struct's size instead).
  const skbArg = BPF_LDX_MEM(BPF_DW, R6, R1, 0);
  const lenOff = off('sk_buff', 'len'), devOff = off('sk_buff', 'dev'), skbSize = vmlinux.type(structId('sk_buff')).sizeOrType;
  type V = readonly [number, string];
  const same = (v: V): { '5.5': V; '5.7': V } => ({ '5.5': v, '5.7': v });
  it.each([
    ['a u32 member', prog(skbArg, BPF_LDX_MEM(BPF_W, R0, R6, lenOff), BPF_EXIT_INSN()), same([0, ''])],
    ['a narrow read inside a member', prog(skbArg, BPF_LDX_MEM(BPF_H, R0, R6, lenOff), BPF_EXIT_INSN()),
      { '5.5': [13, 'cannot access 2 bytes in struct sk_buff field len that has size 4'], '5.7': [0, ''] }],
    ['a pointer member gives a typed pointer, followed once more', prog(skbArg, BPF_LDX_MEM(BPF_DW, R2, R6, devOff),
      BPF_LDX_MEM(BPF_W, R0, R2, off('net_device', 'ifindex')), BPF_EXIT_INSN()), same([0, ''])],
    ['a typed pointer needs no NULL check (the load cannot fault)', prog(skbArg, BPF_LDX_MEM(BPF_DW, R2, R6, devOff),
      BPF_JMP_IMM(BPF_JEQ, R2, 0, 1), BPF_LDX_MEM(BPF_W, R0, R2, off('net_device', 'ifindex')), ret0), same([0, ''])],
    ['a byte of an array member (net_device.name)', prog(skbArg, BPF_LDX_MEM(BPF_DW, R2, R6, devOff), BPF_LDX_MEM(BPF_B, R0, R2, 0), ret0),
      { '5.5': [22, 'struct net_device doesn\'t have field at offset 0'], '5.7': [0, ''] }],
    ['a part of a pointer member', prog(skbArg, BPF_LDX_MEM(BPF_W, R0, R6, devOff), BPF_EXIT_INSN()),
      { '5.5': [13, 'cannot access 4 bytes in struct sk_buff field dev that has size 8'],
        '5.7': [13, `cannot access ptr member dev with moff ${devOff} in struct sk_buff with off ${devOff} size 4`] }],
    ['past the end of the struct', prog(skbArg, BPF_LDX_MEM(BPF_DW, R0, R6, skbSize), BPF_EXIT_INSN()),
      { '5.5': [22, `struct sk_buff doesn't have field at offset ${skbSize}`], '5.7': [13, `access beyond struct sk_buff at off ${skbSize} size 8`] }],
    ['a negative offset', prog(skbArg, BPF_LDX_MEM(BPF_DW, R0, R6, -8), BPF_EXIT_INSN()), same([13, 'R6 is ptr_sk_buff invalid negative access: off=-8'])],
    ['a write', prog(skbArg, BPF_MOV64_IMM(R2, 0), BPF_STX_MEM(BPF_W, R6, R2, lenOff), ret0), same([13, 'only read is supported'])],
    ['a variable offset', prog(skbArg, BPF_LDX_MEM(BPF_W, R2, R6, lenOff), BPF_ALU64_IMM(BPF_AND, R2, 7), BPF_ALU64_REG(BPF_ADD, R6, R2),
      BPF_LDX_MEM(BPF_B, R0, R6, 0), BPF_EXIT_INSN()), same([13, 'R6 is ptr_sk_buff invalid variable offset: off=0, var_off=(0x0; 0x7)'])],
    ['a constant offset moves the pointer', prog(skbArg, BPF_ALU64_IMM(BPF_ADD, R6, lenOff), BPF_LDX_MEM(BPF_W, R0, R6, 0), BPF_EXIT_INSN()), same([0, ''])],
  ] as const)('%s', (_n, insns, want) => {
    for (const kernel of ['5.5', '5.7'] as const) {
      const [errno, msg] = want[kernel];
      const r = verify('eth_type_trans', insns as unknown as Insn[], false, 1, kernel);
      expect(r.errno, `${kernel}: ${r.log.join('\n')}`).toBe(errno);
      if (msg) expect(r.log.join('\n')).toContain(msg);
      if (!errno) expect(r.probeMem.length).toBeGreaterThan(0); // every such load is a BPF_PROBE_MEM load
    }
  });
});
