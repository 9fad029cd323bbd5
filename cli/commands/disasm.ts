/**
 * @fileoverview `bpfemu disasm FUNC`: the function's instructions with addresses and symbols.
 */
import type { Command } from 'commander';
import { boot, UnknownSymbolError } from '../../index.ts';
import { formatInsn } from '../../emulator/capstone.ts';
import { emit, UsageError, type OutputOptions } from '../output.ts';

export function register(program: Command, global: () => OutputOptions): void {
  program.command('disasm')
    .description('disassemble a kernel function (Intel syntax, objdump-like)')
    .argument('<func>', 'kernel function name')
    .action(async (func: string) => {
      const sys = await boot();
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
        sys.close();
      }
    });
}
