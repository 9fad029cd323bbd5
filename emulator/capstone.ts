/**
 * @fileoverview The one owner of capstone-js (`@alexaltea/capstone-js` 5.0.9, Capstone 5 compiled
 * to WASM). Everything else sees {@link loadDisassembler}, bigint addresses, {@link Insn} records
 * and {@link CsError}s that name the call and Capstone's error string.
 *
 * What we learnt about capstone-js (measured; the tests pin each point):
 *  - Initialisation is async and takes ~60–90 ms: it is done once per process and cached.
 *  - `disasm(code, address)` takes a bigint address and handles kernel addresses: branch targets
 *    print correctly (`e8 0b 00 00 00` at 0xffffffff81000000 is `call 0xffffffff81000010`), but
 *    instruction addresses come back as *signed* BigInt (-0x7f000000): normalised here.
 *  - cs_disasm stops at the first undecodable byte; when that is the first byte it returns no
 *    instruction and the JS wrapper throws "failed with code 0: OK". We treat that as data, like
 *    objdump: one `(bad)` byte, then decoding resumes at the next byte.
 *  - The wrapper throws strings, not Errors; WASM traps poison the instance (it is then dropped).
 *  - Capstone's Intel text differs from objdump's: lower case, spaces around `+`/`-`/`,`, no
 *    `*1` scale and no zero displacement (`0f 1f 44 00 00` is `nop dword ptr [rax + rax]`,
 *    objdump `nop DWORD PTR [rax+rax*1+0x0]`), small numbers in decimal (`[rbp - 8]`), negative
 *    immediates signed (`add rsp, -0x80`), `66 90` as `nop` (objdump `xchg ax,ax`), and a `cs`
 *    prefix inside the operand (`nop word ptr cs:[rax + rax]`, objdump `cs nop WORD PTR …`).
 */
import { WasmInstanceLoader, isWasmTrap } from './wasm_instance.ts';
import { createRequire } from 'node:module';

// --- declarations: the parts of capstone-js we use ----------------------------------------

/** One instruction as the capstone-js wrapper builds it (detail off). */
interface CsInsnRaw {
  address: bigint | number;
  size: number;
  mnemonic: string;
  op_str: string;
}

/** A cs_open'ed handle (the wrapper's `Capstone` class). Its methods throw strings. */
interface CsHandle {
  option(type: number, value: number): void;
  disasm(code: Uint8Array, address: bigint, max: number): CsInsnRaw[];
  errno(): number;
  close(): void;
}

/** The initialised module: constants from capstone.h plus the wrapper class. */
interface CsModule {
  readonly ARCH_X86: number;
  readonly MODE_64: number;
  readonly OPT_SYNTAX: number;
  readonly OPT_SYNTAX_INTEL: number;
  readonly OPT_SYNTAX_ATT: number;
  readonly ERR_OK: number;
  Capstone: new (arch: number, mode: number) => CsHandle;
  strerror(code: number): string;
}

const MCapstone = createRequire(import.meta.url)('@alexaltea/capstone-js') as () => Promise<CsModule>;

// --- errors -------------------------------------------------------------------------------

/** Our code for a WASM trap inside capstone-js (not a cs_err value): the instance is dropped. */
export const CS_ERR_WASM_TRAP = -1;

/** A failed Capstone call: `code` is the cs_err value (or {@link CS_ERR_WASM_TRAP}). */
export class CsError extends Error {
  readonly call: string;
  readonly code: number;
  constructor(call: string, code: number, detail: string) {
    super(`${call}: ${detail} (cs_err ${code})`);
    this.name = 'CsError';
    this.call = call;
    this.code = code;
  }
}

// --- public types -------------------------------------------------------------------------

export type Syntax = 'intel' | 'att';

/** A decoded instruction. Undecodable bytes come back one at a time as `(bad)`, like objdump. */
export interface Insn {
  /** Unsigned 64-bit address of the first byte. */
  address: bigint;
  size: number;
  bytes: Uint8Array;
  mnemonic: string;
  opStr: string;
}

export interface DisasmOptions {
  /** Stop after this many instructions (`(bad)` bytes count); default: the whole buffer. */
  count?: number;
  /** Operand syntax, default `'intel'`. */
  syntax?: Syntax;
}

export interface Disassembler {
  /** Decodes `code` as if it sat at `address` (0 ≤ address < 2^64). */
  disasm(code: Uint8Array, address: bigint, opts?: DisasmOptions): Insn[];
}

/** Returns a symbol name (`"bpf_prog_run+0x10"`) for an address, or undefined. */
export type Symbolizer = (address: bigint) => string | undefined;

// --- the wrapper --------------------------------------------------------------------------

const U64_LIMIT = 1n << 64n;

/** A copy (a Buffer's slice() would alias the caller's memory). */
const copy = (code: Uint8Array, off: number, n: number): Uint8Array => new Uint8Array(code.subarray(off, off + n));

/** The mnemonic capstone would never produce, used for undecodable bytes (objdump's word). */
export const BAD_MNEMONIC = '(bad)';

class CapstoneDisassembler implements Disassembler {
  readonly #cs: CsModule;
  /** One handle per syntax, opened on first use and kept for the life of the process. */
  readonly #handles = new Map<Syntax, CsHandle>();
  #trapped: CsError | undefined;

  constructor(cs: CsModule) {
    this.#cs = cs;
  }

  get trapped(): boolean {
    return this.#trapped !== undefined;
  }

  disasm(code: Uint8Array, address: bigint, opts: DisasmOptions = {}): Insn[] {
    if (address < 0n || address >= U64_LIMIT) {
      throw new RangeError(`cs_disasm: address ${address} is not an unsigned 64-bit value`);
    }
    const max = opts.count ?? Infinity;
    if (max !== Infinity && (!Number.isInteger(max) || max < 0)) {
      throw new RangeError(`cs_disasm: count ${max} is not a non-negative integer`);
    }
    const handle = this.#handle(opts.syntax ?? 'intel');
    const out: Insn[] = [];
    let off = 0;
    while (off < code.length && out.length < max) {
      const at = BigInt.asUintN(64, address + BigInt(off));
      const want = max === Infinity ? 0 : max - out.length; // 0: as many as decode
      const batch = this.#call('cs_disasm', () => this.#decode(handle, code.subarray(off), at, want));
      if (batch.length === 0) {
        // The byte at `off` starts no valid instruction (or a truncated one): one (bad) byte.
        out.push({ address: at, size: 1, bytes: copy(code, off, 1), mnemonic: BAD_MNEMONIC, opStr: '' });
        off += 1;
        continue;
      }
      for (const r of batch) {
        out.push({
          address: BigInt.asUintN(64, BigInt(r.address)),
          size: r.size,
          bytes: copy(code, off, r.size),
          mnemonic: r.mnemonic,
          opStr: r.op_str.trimEnd(), // capstone leaves a trailing space on e.g. `repz ret `
        });
        off += r.size;
      }
    }
    return out;
  }

  /** cs_disasm, with "nothing decoded, errno OK" turned into an empty batch. */
  #decode(handle: CsHandle, code: Uint8Array, address: bigint, max: number): CsInsnRaw[] {
    try {
      return handle.disasm(code, address, max);
    } catch (e) {
      if (typeof e === 'string' && handle.errno() === this.#cs.ERR_OK) return [];
      throw e;
    }
  }

  #handle(syntax: Syntax): CsHandle {
    let h = this.#handles.get(syntax);
    if (h === undefined) {
      const cs = this.#cs;
      h = this.#call('cs_open', () => new cs.Capstone(cs.ARCH_X86, cs.MODE_64));
      const value = syntax === 'att' ? cs.OPT_SYNTAX_ATT : cs.OPT_SYNTAX_INTEL;
      const opened = h;
      this.#call('cs_option(CS_OPT_SYNTAX)', () => opened.option(cs.OPT_SYNTAX, value));
      this.#handles.set(syntax, h);
    }
    return h;
  }

  /** Runs one library call, turning the wrapper's thrown strings and WASM traps into CsError. */
  #call<T>(call: string, fn: () => T): T {
    if (this.#trapped) throw this.#trapped;
    try {
      return fn();
    } catch (e) {
      if (isWasmTrap(e)) {
        this.#trapped = new CsError(call, CS_ERR_WASM_TRAP, `capstone-js trapped (${e.message}); call loadDisassembler() again`);
        throw this.#trapped;
      }
      if (typeof e === 'string') {
        // "Capstone.js: Function cs_xxx failed with code N:\n<strerror>"
        const m = /failed with code (\d+)/.exec(e);
        const code = m ? Number(m[1]) : NaN;
        throw new CsError(call, code, Number.isNaN(code) ? e : this.#cs.strerror(code));
      }
      throw e;
    }
  }
}

const instance = new WasmInstanceLoader(
  () => MCapstone().then((cs) => new CapstoneDisassembler(cs)),
  (e) => new CsError('MCapstone', CS_ERR_WASM_TRAP, `capstone-js failed to initialise: ${String(e)}`),
);

/**
 * Initialises capstone-js once per process (~60–90 ms) and returns the shared disassembler.
 * After a WASM trap the old instance is dropped and the next call initialises a new one.
 */
export const loadDisassembler = (): Promise<Disassembler> => instance.get();

// --- reading and printing instructions ----------------------------------------------------

/** Mnemonics whose single immediate operand is a relative branch target (Intel and AT&T). */
const DIRECT_BRANCH = /^(?:call[qlw]?|jmp[qlw]?|j[a-z]{1,4}|loop(?:n?[ez])?|xbegin)$/;
const NUMBER = /^(?:0x[0-9a-f]+|\d+)$/;

/** The absolute target of a direct (relative) call/jmp/jcc/loop, or undefined. */
export function branchTarget(insn: Insn): bigint | undefined {
  const words = insn.mnemonic.split(' '); // `bnd jmp`, `notrack jmp`: the last word counts
  if (!DIRECT_BRANCH.test(words[words.length - 1]!) || !NUMBER.test(insn.opStr)) return undefined;
  return BigInt(insn.opStr); // capstone prints the already-relocated absolute target
}

/** The absolute address of a rip-relative memory operand (`[rip + 0x10]`, `0x10(%rip)`). */
export function ripTarget(insn: Insn): bigint | undefined {
  let disp: bigint;
  const intel = /\[rip(?: ([+-]) (0x[0-9a-f]+|\d+))?\]/.exec(insn.opStr);
  const att = intel ? null : /(-?)(0x[0-9a-f]+|\d+)?\(%rip\)/.exec(insn.opStr);
  if (intel) disp = intel[2] === undefined ? 0n : (intel[1] === '-' ? -BigInt(intel[2]) : BigInt(intel[2]));
  else if (att) disp = att[2] === undefined ? 0n : (att[1] === '-' ? -BigInt(att[2]) : BigInt(att[2]));
  else return undefined;
  return BigInt.asUintN(64, insn.address + BigInt(insn.size) + disp);
}

const hex2 = (b: number): string => b.toString(16).padStart(2, '0');

/**
 * One objdump-like line:
 *
 *     ffffffff81000000:\t0f 1f 44 00 00       \tnop    dword ptr [rax + rax]
 *     ffffffff81000005:\te8 06 00 00 00       \tcall   0xffffffff81000010 <bar>
 *     ffffffff8100000a:\t48 8b 05 ef 0f 00 00 \tmov    rax, qword ptr [rip + 0xfef]  # 0xffffffff81001000 <jiffies>
 *
 * Fields: the address in lower-case hex without padding or `0x`, `:`, a tab; every byte as two
 * hex digits separated by spaces (all on one line, unlike objdump's 7-byte wrap), padded to 20
 * columns, a space, a tab; the mnemonic padded to 6 columns and a space, then capstone's operand
 * text. A direct branch target gets ` <symbol>` when `symbolize` knows it; a rip-relative operand
 * gets `  # 0x<absolute address>` and ` <symbol>` when known. No trailing whitespace.
 */
export function formatInsn(insn: Insn, symbolize?: Symbolizer): string {
  const bytes = Array.from(insn.bytes, hex2).join(' ').padEnd(20);
  let ops = insn.opStr;
  const sym = (a: bigint): string => {
    const s = symbolize?.(a);
    return s ? ` <${s}>` : '';
  };
  const target = branchTarget(insn);
  if (target !== undefined) ops += sym(target);
  const rip = ripTarget(insn);
  if (rip !== undefined) ops += `  # 0x${rip.toString(16)}${sym(rip)}`;
  const text = ops ? `${insn.mnemonic.padEnd(6)} ${ops}` : insn.mnemonic;
  return `${insn.address.toString(16)}:\t${bytes} \t${text}`;
}
