/**
 * @fileoverview `bpfemu call FUNC [ARG…]`: boot, call a kernel function with integer arguments,
 * print its return value in decimal (as its BTF return type: signed types sign-extended).
 */
import { session, release } from '../session.ts';
import type { Command } from 'commander';
import { ArityError, UnknownSymbolError } from '../../index.ts';
import { emit, parseInteger, UsageError, type OutputOptions } from '../output.ts';

export function register(program: Command, global: () => OutputOptions): void {
  program.command('call')
    .description('call a kernel function with integer arguments and print its return value')
    .argument('<func>', 'kernel function name')
    .argument('[args...]', 'integer arguments (decimal, 0x hex, negative)')
    .allowUnknownOption() // so negative numbers are arguments, not options
    .action(async (func: string, rawArgs: string[]) => {
      const args = rawArgs.map((a, i) => parseInteger(a, `argument ${i + 1}`));
      const sys = await session();
      try {
        let r;
        try {
          r = sys.callFunc(func, args);
        } catch (e) {
          if (e instanceof UnknownSymbolError || e instanceof ArityError) throw new UsageError(e.message);
          throw e;
        }
        emit(global(), { function: func, args, ret: r.ret ?? null, ret_type: r.retType },
          () => (r.ret === undefined ? '' : r.ret.toString()));
      } finally {
        release(sys);
      }
    });
}
