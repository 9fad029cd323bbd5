/**
 * @fileoverview `bpfemu step OBJ --call FUNC ARG…`: a stepping console over a traced call. The
 * object's fentry/fexit programs are attached, the call is set up and stopped at the function's
 * entry; then `s` (step), `n` (step over calls), `c` (continue), `finish` (to the return of the
 * current function), `b SYMBOL[+OFF]`, `regs`, `x ADDR LEN`, `ctx` (the u64 slots the programs
 * see, named and typed from BTF), `q`. Each instruction is shown with symbol+offset, its
 * disassembly and the registers it changed; a call into TypeScript is one step with its
 * arguments and result. Commands come from the terminal or from piped standard input.
 */
import type { Command } from 'commander';
import { createInterface } from 'node:readline';
import { bootAndLoad } from '../bpfobj.ts';
import { release, releaseObject } from '../session.ts';
import { parseInteger, UsageError, type OutputOptions } from '../output.ts';
import type { System } from '../../index.ts';

const REGS = ['rax', 'rbx', 'rcx', 'rdx', 'rsi', 'rdi', 'rbp', 'rsp', 'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15'] as const;
const hex = (v: bigint): string => `0x${v.toString(16)}`;

export class Stepper {
  private sys: System;
  private func: string;
  done = false;
  ret: bigint | undefined;
  constructor(sys: System, func: string, args: bigint[]) {
    this.sys = sys;
    this.func = func;
    sys.kernel.machine.prepareCall(sys.kernel.addressOf(func), args);
  }

  private get m() { return this.sys.kernel.machine; }
  private regs(): bigint[] { return REGS.map((r) => this.m.regs[r]); }

  /** The instruction at rip, as `addr <sym+off>  text`. */
  where(): string {
    const rip = this.m.regs.rip;
    const native = this.m.nativeFunctions().find((n) => n.address === rip);
    if (native) return `${rip.toString(16)} <${native.name}>  (TypeScript)`;
    const insn = this.sys.disassembler.disasm(this.m.mem.read(rip, 16), rip, { count: 1 })[0];
    const sym = this.sys.kernel.symbolize(rip);
    return `${rip.toString(16)} <${sym ?? '?'}>  ${insn ? `${insn.mnemonic} ${insn.opStr}`.trim() : '(bad)'}`;
  }

  /** One instruction; a native function runs as one step showing its arguments and result. */
  step(): string {
    if (this.done) return 'the call has returned';
    const rip = this.m.regs.rip;
    const native = this.m.nativeFunctions().find((n) => n.address === rip);
    const before = this.regs();
    const args = native ? (['rdi', 'rsi', 'rdx', 'rcx', 'r8', 'r9'] as const).slice(0, native.argc).map((r) => this.m.regs[r]) : [];
    const head = this.where();
    const stop = this.m.step();
    if (stop.kind === 'exit') { this.done = true; this.ret = stop.rax; }
    const after = this.regs();
    const changed = REGS.filter((_, i) => before[i] !== after[i]).map((r, _i) => `${r}=${hex(after[REGS.indexOf(r)]!)}`).join(' ');
    if (native) return `${head} ${native.name}(${args.map(hex).join(', ')}) = ${hex(this.m.regs.rax)}`;
    return `${head}${changed ? `    ${changed}` : ''}${this.done ? `\nreturned ${this.ret}` : ''}`;
  }

  /** Steps until `pred` holds after a step, or the call returns; returns the lines. */
  private until(pred: () => boolean, limit = 100_000): string[] {
    const out: string[] = [];
    for (let i = 0; i < limit && !this.done; i++) {
      out.push(this.step());
      if (pred()) break;
    }
    return out;
  }

  /** `n`: a call is stepped over (runs until the instruction after it). */
  next(): string[] {
    const rip = this.m.regs.rip;
    const insn = this.sys.disassembler.disasm(this.m.mem.read(rip, 16), rip, { count: 1 })[0];
    if (!insn || insn.mnemonic !== 'call') return [this.step()];
    const after = rip + BigInt(insn.size);
    const sp = this.m.regs.rsp;
    const lines = this.until(() => this.m.regs.rip === after && this.m.regs.rsp === sp);
    return [lines[0]!, ...(lines.length > 1 ? [`  … ${lines.length - 1} instructions in the call`] : [])];
  }

  /** `finish`: until the current function returns (rsp above where it is now). */
  finish(): string[] {
    const sp = this.m.regs.rsp;
    return this.until(() => this.m.regs.rsp > sp);
  }

  /** `c`: to a breakpoint or the end. */
  cont(breaks: Set<bigint>): string[] {
    const lines = this.until(() => breaks.has(this.m.regs.rip));
    return lines.length > 20 ? [...lines.slice(0, 3), `  … ${lines.length - 6} more`, ...lines.slice(-3)] : lines;
  }

  regsText(): string {
    return REGS.map((r) => `${r.padEnd(4)}${hex(this.m.regs[r]).padStart(19)}`).join('\n') + `\nrip ${hex(this.m.regs.rip).padStart(19)}`;
  }

  /** The ctx slots: in the trampoline, the saved u64 array; before it, the argument registers. */
  ctxText(): string {
    const btf = this.sys.btf;
    const proto = btf.funcProto(this.func);
    const params = proto?.params ?? [];
    const tr = [...this.sys.bpfSys.progs.values()].find((p) => p.trampoline?.func.name === this.func)?.trampoline;
    const rip = this.m.regs.rip;
    const inTramp = tr && rip >= tr.image.start && rip < tr.image.start + 4096n;
    const hasFexit = tr ? tr.progs.fexit.length > 0 : false;
    const names = params.map((p) => `${p.name}: ${btf.typeName(p.type)}`);
    if (inTramp && (rip - tr.image.start) % 2048n < 4n) return 'the trampoline has not set up its frame yet (step past `mov rbp, rsp`)';
    if (inTramp) {
      const ctx = this.m.regs.rbp - BigInt(params.length * 8 + (hasFexit ? 8 : 0));
      const slots = names.map((n, i) => `ctx[${i}] ${n} = ${hex(this.m.mem.readU64(ctx + BigInt(8 * i)))}`);
      if (hasFexit) slots.push(`ctx[${params.length}] return: ${btf.typeName(proto!.sizeOrType)} = ${hex(this.m.mem.readU64(ctx + BigInt(8 * params.length)))}`);
      return [`ctx at ${hex(ctx)} (rbp - ${params.length * 8 + (hasFexit ? 8 : 0)})`, ...slots].join('\n');
    }
    const regs = ['rdi', 'rsi', 'rdx', 'rcx', 'r8', 'r9'] as const;
    return names.map((n, i) => `arg${i} ${n} = ${hex(this.m.regs[regs[i]!])} (${regs[i]}, saved into ctx[${i}] by the trampoline)`).join('\n') || '(no arguments)';
  }

  xText(addr: bigint, len: number): string {
    const bytes = this.m.mem.read(addr, len);
    const lines: string[] = [];
    for (let o = 0; o < bytes.length; o += 16) lines.push(`${(addr + BigInt(o)).toString(16)}: ${Buffer.from(bytes.subarray(o, o + 16)).toString('hex').replace(/(..)(?!$)/g, '$1 ')}`);
    return lines.join('\n');
  }
}

export function register(program: Command, _global: () => OutputOptions): void {
  program.command('step')
    .description('step through a traced call: s, n, c, finish, b SYM[+OFF], regs, x ADDR LEN, ctx, q')
    .argument('<obj>', 'an object whose fentry/fexit programs are attached first')
    .requiredOption('--call <func...>', 'FUNC and its integer arguments')
    .action(async (path: string, opts: { call: string[] }) => {
      const [func, ...raw] = opts.call;
      const args = raw.map((a, i) => parseInteger(a, `argument ${i + 1}`));
      const { sys, obj } = await bootAndLoad(path);
      try {
        if (!sys.kernel.ksyms.lookup(func!)) throw new UsageError(`unknown kernel function: ${func}`);
        obj.attachTracing();
        const st = new Stepper(sys, func!, args);
        const breaks = new Set<bigint>();
        const out = (s: string): void => { process.stdout.write(`${s}\n`); };
        out(`stopped at ${st.where()}`);
        const rl = createInterface({ input: process.stdin, output: process.stdout, prompt: '(step) ', terminal: process.stdin.isTTY });
        if (process.stdin.isTTY) rl.prompt();
        for await (const line of rl) {
          const [cmd, ...rest] = line.trim().split(/\s+/);
          try {
            switch (cmd) {
              case '': break;
              case 's': case 'si': case 'step': out(st.step()); break;
              case 'n': case 'next': st.next().forEach(out); break;
              case 'c': case 'continue': st.cont(breaks).forEach(out); break;
              case 'finish': st.finish().forEach(out); break;
              case 'b': case 'break': {
                const m = /^([A-Za-z_.$][\w.$]*)(?:\+(0x[0-9a-f]+|\d+))?$/i.exec(rest[0] ?? '');
                if (!m) throw new UsageError('b SYMBOL[+OFF]');
                const sym = sys.kernel.ksyms.lookup(m[1]!);
                if (!sym) throw new UsageError(`unknown symbol ${m[1]}`);
                const at = sym.address + (m[2] ? BigInt(m[2]) : 0n);
                breaks.add(at);
                out(`breakpoint at ${at.toString(16)} <${sys.kernel.symbolize(at)}>`);
                break;
              }
              case 'regs': out(st.regsText()); break;
              case 'x': out(st.xText(parseInteger(rest[0] ?? '', 'address'), Number(parseInteger(rest[1] ?? '16', 'length')))); break;
              case 'ctx': out(st.ctxText()); break;
              case 'q': case 'quit': rl.close(); break;
              default: out(`unknown command '${cmd}' (s, n, c, finish, b SYM[+OFF], regs, x ADDR LEN, ctx, q)`);
            }
          } catch (e) { out(`error: ${(e as Error).message}`); }
          if (st.done && cmd !== 'q') { out(`the call returned ${st.ret}`); break; }
          if (process.stdin.isTTY) rl.prompt();
        }
        rl.close();
      } finally { releaseObject(obj); release(sys); }
    });
}
