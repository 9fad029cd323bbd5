/**
 * @fileoverview `bpfemu disasm FUNC`: the function's instructions with addresses and symbols;
 * `bpfemu disasm --bpf FILE [--xlated]`: a BPF program (run by bpfasm.ts).
 */
import { session, release } from '../session.ts';
import type { Command } from 'commander';
import { UnknownSymbolError } from '../../index.ts';
import { formatInsn } from '../../emulator/capstone.ts';
import { emit, UsageError, type OutputOptions } from '../output.ts';
import { disasmBpf } from './bpfasm.ts';

export function register(program: Command, global: () => OutputOptions): void {
  program.command('disasm')
    .description('disassemble a kernel function (Intel syntax, objdump-like), or a BPF program (--bpf)')
    .argument('[func]', 'kernel function name')
    .option('--bpf <file>', 'disassemble raw BPF instructions (little-endian), or a .data file, instead')
    .option('--xlated', 'with --bpf: print as the verifier and bpftool prog dump xlated do')
    .action(async (func: string | undefined, o: { bpf?: string; xlated?: boolean }) => {
      if (o.bpf !== undefined) {
        if (func !== undefined) throw new UsageError('give a kernel function or --bpf FILE, not both');
        disasmBpf(o.bpf, o.xlated === true, global());
        return;
      }
      if (o.xlated) throw new UsageError('--xlated needs --bpf FILE');
      if (func === undefined) throw new UsageError("missing required argument 'func'");
      const sys = await session();
      try {
        const sym = sys.kernel.ksyms.lookup(func);
        if (!sym || !/[Tt]/.test(sym.type)) throw new UsageError(new UnknownSymbolError(func).message);
        const insns = sys.disasm(func);
        const name = (a: bigint): string | undefined => sys.kernel.symbolize(a);
        emit(global(), insns.map((i) => ({
          address: `0x${i.address.toString(16)}`, symbol: name(i.address) ?? null,
          bytes: Buffer.from(i.bytes).toString('hex'), mnemonic: i.mnemonic, operands: i.opStr,
        })), () => [`${sym.address.toString(16).padStart(16, '0')} <${func}>:`, ...insns.map((i) => formatInsn(i, name))].join('\n'));
      } finally {
        release(sys);
      }
    });
}
