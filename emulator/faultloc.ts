/**
 * @fileoverview The exact faulting instruction of a memory fault. Unicorn leaves rip at the start
 * of the translation block, but the registers as they were just before the faulting instruction
 * (TCG syncs them before its memory helpers). So: decode the block from its start and return
 * the first instruction whose memory operand, computed with those registers, covers the fault
 * address with a compatible access. Intel-syntax operands from capstone are enough for this:
 * `qword ptr [rbx + rcx*8 - 0x10]`, `[rip + 0x1f]`, and the implicit stack accesses of
 * push/pop/call/ret/leave.
 */
import type { Disassembler, Insn } from './capstone.ts';
import type { FaultLocator, FaultSite } from './faults.ts';

const MAX_INSNS = 64;
const WIDTH: Record<string, number> = { byte: 1, word: 2, dword: 4, qword: 8, xmmword: 16, tbyte: 10, ymmword: 32 };
/** Mnemonics that read their first (memory) operand without writing it. */
const READ_ONLY_DEST = new Set(['cmp', 'test', 'bt', 'push', 'call', 'jmp', 'prefetch', 'nop']);
/** Mnemonics that end a translation block: stop looking after them. */
const ENDS_BLOCK = /^(j|call|ret|iret|syscall|sysret|hlt|ud2|int)/;

interface Access { ea: bigint; size: number; write: boolean; read: boolean }

function memOperand(op: string, insn: Insn, reg: (n: string) => bigint): { ea: bigint; size: number } | undefined {
  const m = /(?:(\w+) ptr )?(?:\w+:)?\[([^\]]+)\]/.exec(op);
  if (!m) return undefined;
  let ea = 0n;
  for (const raw of m[2]!.replace(/\s+/g, '').replace(/-/g, '+-').split('+')) {
    if (!raw) continue;
    const neg = raw.startsWith('-');
    const term = neg ? raw.slice(1) : raw;
    let v: bigint;
    const scaled = /^(\w+)\*(\d)$/.exec(term);
    if (scaled) v = reg64(scaled[1]!, insn, reg) * BigInt(scaled[2]!);
    else if (/^(0x[0-9a-f]+|\d+)$/.test(term)) v = BigInt(term);
    else v = reg64(term, insn, reg);
    ea += neg ? -v : v;
  }
  return { ea: BigInt.asUintN(64, ea), size: WIDTH[m[1] ?? ''] ?? 8 };
}

function reg64(name: string, insn: Insn, reg: (n: string) => bigint): bigint {
  if (name === 'rip') return insn.address + BigInt(insn.size);
  if (/^e[a-z]{2}$/.test(name)) return reg(`r${name.slice(1)}`) & 0xffffffffn; // 32-bit addressing
  if (/^r\d+d$/.test(name)) return reg(name.slice(0, -1)) & 0xffffffffn;
  return reg(name);
}

/** The memory accesses one instruction makes, with registers as they are before it runs. */
function accesses(insn: Insn, reg: (n: string) => bigint): Access[] {
  const mn = insn.mnemonic.replace(/^(lock|rep|repe|repne|repz|repnz) /, '');
  const rsp = reg('rsp');
  if (mn === 'push' || mn === 'call') {
    const out: Access[] = [{ ea: rsp - 8n, size: 8, write: true, read: false }];
    const mem = memOperand(insn.opStr, insn, reg);
    if (mem) out.push({ ...mem, write: false, read: true });
    return out;
  }
  if (mn === 'pop' || mn === 'ret') return [{ ea: rsp, size: 8, write: false, read: true }];
  if (mn === 'leave') return [{ ea: reg('rbp'), size: 8, write: false, read: true }];
  if (/^(movs|stos|lods|cmps|scas)/.test(mn)) {
    const size = WIDTH[/ptr/.test(insn.opStr) ? /(\w+) ptr/.exec(insn.opStr)![1]! : 'qword'] ?? 8;
    return [{ ea: reg('rdi'), size, write: !/^(lods|cmps|scas)/.test(mn), read: /^(cmps|scas)/.test(mn) },
      { ea: reg('rsi'), size, write: false, read: /^(movs|lods|cmps)/.test(mn) }];
  }
  if (mn === 'lea' || mn.startsWith('nop')) return [];
  const ops = insn.opStr.split(/,\s*(?![^[]*\])/);
  const out: Access[] = [];
  ops.forEach((op, i) => {
    const mem = memOperand(op, insn, reg);
    if (!mem) return;
    const dest = i === 0 && ops.length > 1 && !READ_ONLY_DEST.has(mn);
    const moveOnly = /^(mov|set|stos)/.test(mn) && !/^movs/.test(mn);
    out.push({ ...mem, write: dest || (ops.length === 1 && /^(inc|dec|neg|not|set)/.test(mn)), read: !(dest && moveOnly) });
  });
  return out;
}

export function makeFaultLocator(dis: Disassembler): FaultLocator {
  return (site: FaultSite) => {
    const write = site.kind.startsWith('write');
    let code: Uint8Array | undefined;
    for (let len = 15 * MAX_INSNS; len >= 16 && !code; len >>= 1) code = site.readCode(site.blockStart, len);
    if (!code) return undefined;
    for (const insn of dis.disasm(code, site.blockStart, { count: MAX_INSNS })) {
      if (insn.mnemonic === '(bad)') return undefined;
      for (const a of accesses(insn, site.reg)) {
        const covers = site.address >= a.ea && site.address < a.ea + BigInt(a.size);
        if (covers && (write ? a.write : a.read)) return insn.address;
      }
      if (ENDS_BLOCK.test(insn.mnemonic)) break;
    }
    return undefined;
  };
}
