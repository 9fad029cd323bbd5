/**
 * @fileoverview The one owner of keystone-js (`@alexaltea/keystone-js` 0.9.2, Keystone 0.9 compiled
 * to WASM). Everything else sees {@link loadAssembler}, bigint addresses, bytes, and
 * {@link KsError}s naming the call, the input line and Keystone's error string.
 *
 * Keystone is slow (~200 µs a call) and has the quirks below, so it is for tests and the
 * interactive console, never the JIT. What we measured, and what this file does about it:
 *
 *  - `nop` with an operand is mis-encoded: `nop dword ptr [rax+rax*1+0x0]` gives `0f 18 24 00`
 *    (the 0F 18 hint space, with the zero displacement dropped) instead of the ftrace nop
 *    `0f 1f 44 00 00`; every memory or register form does the same (`nop eax` → `0f 18 e0`), in
 *    AT&T syntax too (`nopl 0x0(%rax,%rax,1)`). The well-known multi-byte nops are looked up in
 *    {@link FIXED_SEQUENCES} and emitted as `.byte`; any other `nop <operand>` is refused.
 *    `nopl`/`nopw` are not Intel mnemonics for Keystone (KS_ERR_ASM_MNEMONICFAIL).
 *  - Numbers without `0x` are read as hexadecimal (`mov eax, 10` → `b8 10 00 00 00`): ks_option
 *    forces radix 16 (keystone issues #436, #569, #571). Decimal literals of two or more digits
 *    are rewritten to hex before assembly, so `sub rsp, 16` means sixteen, as in gas.
 *  - Out-of-range relative branches are silently truncated (`je 0x7fffffff` at 0xffffffff81000000
 *    gives `0f 84 f9 ff ff fe`, `jrcxz` to +0x100 gives `e3 fe`); only some raise
 *    KS_ERR_ASM_FIXUP_INVALID. Numeric branch targets are range-checked here.
 *  - Unbalanced brackets are accepted: `mov rax, [` assembles to `48 a1 00…`,
 *    `lea rdi, [rbp-0x10` to `48 8d 7d f0`. Brackets are checked here.
 *  - Over-wide immediates are silently truncated (`mov al, 0x100` → `b0 00`,
 *    `push 0x1ffffffff` → `66 68 ff ff`). Not checked: write immediates that fit.
 *  - The wrapper's asm() copies the source onto the 64 KiB WASM stack: ~80 KB of text traps
 *    (memory access out of bounds) and poisons the instance. We pass the text through the heap.
 *  - `#` and `//` comments are not understood (KS_ERR_ASM_EXPR_TOKEN); `#` comments are removed.
 *  - Kernel addresses work: `call 0xffffffff81000100` at 0xffffffff81000000 is `e8 fb 00 00 00`.
 *  - On failure the statement count is unreliable, so the failing line is found by assembling
 *    statements one at a time (with the input's labels defined as stubs).
 */
import { WasmInstanceLoader, isWasmTrap } from './wasm_instance.ts';
import { createRequire } from 'node:module';

// --- declarations: the parts of keystone-js we use ----------------------------------------

type CType = 'number' | 'string' | null;

/** The initialised Emscripten module: constants from keystone.h and the raw C exports. */
interface KsModule {
  readonly ARCH_X86: number;
  readonly MODE_64: number;
  readonly OPT_SYNTAX: number;
  readonly OPT_SYNTAX_INTEL: number;
  readonly OPT_SYNTAX_ATT: number;
  ccall(name: string, ret: CType, argTypes: CType[], args: (number | bigint)[]): unknown;
  getValue(ptr: number, type: 'i8' | 'i32'): number;
  setValue(ptr: number, value: number, type: 'i8' | 'i32'): void;
  _malloc(size: number): number;
  _free(ptr: number): void;
}

const MKeystone = createRequire(import.meta.url)('@alexaltea/keystone-js') as () => Promise<KsModule>;

/** keystone.h prototypes, bound to one module instance. Pointers are WASM32 numbers. */
function bindKeystone(m: KsModule) {
  const n = 'number' as const;
  return {
    ks_open: (arch: number, mode: number, ksOut: number) => m.ccall('ks_open', n, [n, n, n], [arch, mode, ksOut]) as number,
    ks_option: (ks: number, type: number, value: number) => m.ccall('ks_option', n, [n, n, n], [ks, type, value]) as number,
    // int ks_asm(ks_engine *ks, const char *string, uint64_t address,
    //            unsigned char **encoding, size_t *encoding_size, size_t *stat_count)
    ks_asm: (ks: number, str: number, address: bigint, enc: number, size: number, count: number) =>
      m.ccall('ks_asm', n, [n, n, n, n, n, n], [ks, str, address, enc, size, count]) as number,
    ks_free: (p: number) => m.ccall('ks_free', null, [n], [p]),
    ks_errno: (ks: number) => m.ccall('ks_errno', n, [n], [ks]) as number,
    ks_strerror: (code: number) => m.ccall('ks_strerror', 'string', [n], [code]) as string,
  };
}
type KsApi = ReturnType<typeof bindKeystone>;

// --- errors -------------------------------------------------------------------------------

// ks_err values (keystone.h) that callers and our own checks use.
export const KS_ERR_OK = 0;
export const KS_ERR_ASM_EXPR_TOKEN = 128;
export const KS_ERR_ASM_EXPR_BRACKET = 141;
export const KS_ERR_ASM_SYMBOL_REDEFINED = 143;
export const KS_ERR_ASM_SYMBOL_MISSING = 144;
export const KS_ERR_ASM_INSN_UNSUPPORTED = 160;
export const KS_ERR_ASM_FIXUP_INVALID = 161;
export const KS_ERR_ASM_INVALIDOPERAND = 512;
export const KS_ERR_ASM_MNEMONICFAIL = 514;
/** Our code for a WASM trap inside keystone-js (not a ks_err value): the instance is dropped. */
export const KS_ERR_WASM_TRAP = -1;

/**
 * A failed Keystone call. `code` is a ks_err value: Keystone's own, or the closest one for a
 * problem this wrapper catches (unbalanced brackets → KS_ERR_ASM_EXPR_BRACKET, a nop form
 * Keystone mis-encodes → KS_ERR_ASM_INSN_UNSUPPORTED, branch out of range →
 * KS_ERR_ASM_FIXUP_INVALID). `line` (1-based, by newlines) and `statement` say where, when known.
 */
export class KsError extends Error {
  readonly call: string;
  readonly code: number;
  readonly line: number | undefined;
  readonly statement: string | undefined;
  constructor(call: string, code: number, detail: string, where?: { line: number; statement: string }) {
    const at = where ? ` line ${where.line} ${JSON.stringify(where.statement)}:` : '';
    super(`${call}:${at} ${detail}`);
    this.name = 'KsError';
    this.call = call;
    this.code = code;
    this.line = where?.line;
    this.statement = where?.statement;
  }
}

// --- known fixed sequences ----------------------------------------------------------------

/**
 * Instructions Keystone mis-encodes, with the bytes gas emits. Spellings are matched ignoring
 * case and blanks; they include objdump's Intel and AT&T text and capstone's (so our own
 * disassembly assembles back). objdump prints NOP4/NOP7 (and NOP5/NOP8) alike; here an 8-digit
 * displacement `0x00000000` selects the disp32 form. Capstone prints NOP3, NOP4 and NOP7 all as
 * `nop dword ptr [rax]`, which means NOP3 here.
 */
export const FIXED_SEQUENCES: readonly { name: string; bytes: readonly number[]; spellings: readonly string[] }[] = [
  // 0f 1f /0, mod=00 rm=rax                 (Linux BYTES_NOP3)
  { name: 'NOP3', bytes: [0x0f, 0x1f, 0x00], spellings: ['nop dword ptr [rax]', 'nopl (%rax)'] },
  // 0f 1f /0, mod=01 rm=rax disp8=0          (BYTES_NOP4)
  {
    name: 'NOP4', bytes: [0x0f, 0x1f, 0x40, 0x00],
    spellings: ['nop dword ptr [rax+0x0]', 'nop dword ptr [rax+0]', 'nopl 0x0(%rax)', 'nopl 0(%rax)'],
  },
  // 0f 1f /0, mod=01 SIB(rax+rax*1) disp8=0  (BYTES_NOP5): the ftrace nop gcc -mfentry
  // -mnop-mcount puts at every function entry, and the site bpf_arch_text_poke rewrites.
  {
    name: 'NOP5', bytes: [0x0f, 0x1f, 0x44, 0x00, 0x00],
    spellings: [
      'nop dword ptr [rax+rax*1+0x0]', 'nop dword ptr [rax+rax*1+0]', 'nop dword ptr [rax+rax+0x0]',
      'nop dword ptr [rax+rax]', 'nopl 0x0(%rax,%rax,1)', 'nopl 0(%rax,%rax,1)', 'nopl (%rax,%rax)',
    ],
  },
  // 66 + NOP5                                 (BYTES_NOP6)
  {
    name: 'NOP6', bytes: [0x66, 0x0f, 0x1f, 0x44, 0x00, 0x00],
    spellings: [
      'nop word ptr [rax+rax*1+0x0]', 'nop word ptr [rax+rax*1+0]', 'nop word ptr [rax+rax]',
      'nopw 0x0(%rax,%rax,1)', 'nopw 0(%rax,%rax,1)', 'nopw (%rax,%rax)',
    ],
  },
  // 0f 1f /0, mod=10 rm=rax disp32=0         (BYTES_NOP7)
  { name: 'NOP7', bytes: [0x0f, 0x1f, 0x80, 0, 0, 0, 0], spellings: ['nop dword ptr [rax+0x00000000]', 'nopl 0x00000000(%rax)'] },
  // 0f 1f /0, mod=10 SIB(rax+rax*1) disp32=0 (BYTES_NOP8)
  {
    name: 'NOP8', bytes: [0x0f, 0x1f, 0x84, 0x00, 0, 0, 0, 0],
    spellings: ['nop dword ptr [rax+rax*1+0x00000000]', 'nopl 0x00000000(%rax,%rax,1)'],
  },
  // 66 2e 0f 1f 84 00 00000000: gas's 10-byte padding (objdump `cs nop WORD PTR [rax+rax*1+0x0]`)
  {
    name: 'NOP10', bytes: [0x66, 0x2e, 0x0f, 0x1f, 0x84, 0x00, 0, 0, 0, 0],
    spellings: [
      'cs nop word ptr [rax+rax*1+0x0]', 'nop word ptr cs:[rax+rax*1+0x0]', 'nop word ptr cs:[rax+rax]',
      'cs nopw 0x0(%rax,%rax,1)', 'nopw %cs:0x0(%rax,%rax,1)', 'nopw %cs:(%rax,%rax)',
    ],
  },
];

/** Lower case, single blanks, no blanks around punctuation: `NOP  dword ptr [rax + rax]` → `nop dword ptr[rax+rax]`. */
const lookupKey = (s: string): string =>
  s.toLowerCase().replace(/\s+/g, ' ').replace(/ ?([[\]+\-*,:()%]) ?/g, '$1').trim();

const FIXED_BY_SPELLING = new Map<string, readonly number[]>(
  FIXED_SEQUENCES.flatMap((f) => f.spellings.map((s) => [lookupKey(s), f.bytes] as const)),
);

// --- statements ---------------------------------------------------------------------------

export type AsmSyntax = 'intel' | 'att';

export interface AsmOptions {
  /** Operand syntax, default `'intel'`. */
  syntax?: AsmSyntax;
}

export interface Assembler {
  /**
   * Assembles `text` (statements separated by newlines or `;`, `#` comments, labels allowed) as
   * if placed at `address`. Numbers are decimal unless written `0x…`. Throws {@link KsError}.
   */
  asm(text: string, address: bigint, opts?: AsmOptions): Uint8Array;
}

interface Statement {
  line: number;
  /** As written (trimmed), for error messages. */
  source: string;
  /** What Keystone gets. */
  text: string;
  /** The label this statement defines, if it is one. */
  label?: string;
}

const LABEL = /^([A-Za-z_.$][\w.$@]*)\s*:(?!:)\s*(.*)$/;
const NOP_WITH_OPERAND = /^(?:(?:cs|ds|es|ss|data16)\s+)*nop[lwq]?\s+\S/i;
/** Decimal literals of two or more digits (one digit reads the same in both radixes). */
const DECIMAL = /(?<![\w.])(\d{2,})(?![\w.:])/g;
/** Direct branches with only rel8 forms; other branch mnemonics take a rel32. */
const REL8_ONLY = /^(?:jrcxz|jecxz|loop|loopn?[ez])$/;
const DIRECT_BRANCH = /^(?:call[qlw]?|jmp[qlw]?|j[a-z]{1,4}|loop(?:n?[ez])?)$/;

function splitStatements(text: string): Statement[] {
  const out: Statement[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = i + 1;
    for (let piece of raw.replace(/#.*$/, '').split(';')) {
      piece = piece.trim();
      // A label may share its statement with an instruction: `loop: dec rcx`.
      let m: RegExpExecArray | null;
      while ((m = LABEL.exec(piece)) !== null) {
        out.push({ line, source: piece, text: `${m[1]}:`, label: m[1]! });
        piece = m[2]!.trim();
      }
      if (piece !== '') out.push({ line, source: piece, text: piece });
    }
  });
  return out;
}

function bracketsBalanced(s: string): boolean {
  const stack: string[] = [];
  for (const c of s) {
    if (c === '[' || c === '(') stack.push(c === '[' ? ']' : ')');
    else if ((c === ']' || c === ')') && stack.pop() !== c) return false;
  }
  return stack.length === 0;
}

/** Rewrites one statement for Keystone, or throws for input Keystone would get wrong. */
function prepare(st: Statement): void {
  const where = { line: st.line, statement: st.source };
  if (!bracketsBalanced(st.text)) {
    throw new KsError('ks_asm', KS_ERR_ASM_EXPR_BRACKET, 'unbalanced brackets (KS_ERR_ASM_EXPR_BRACKET)', where);
  }
  const fixed = FIXED_BY_SPELLING.get(lookupKey(st.text));
  if (fixed) {
    st.text = `.byte ${fixed.map((b) => `0x${b.toString(16)}`).join(', ')}`;
    return;
  }
  if (NOP_WITH_OPERAND.test(st.text)) {
    const known = FIXED_SEQUENCES.map((f) => f.spellings[0]).join('; ');
    throw new KsError(
      'ks_asm', KS_ERR_ASM_INSN_UNSUPPORTED,
      `keystone mis-encodes nop with an operand; known forms: ${known} (KS_ERR_ASM_INSN_UNSUPPORTED)`, where,
    );
  }
  st.text = st.text.replace(DECIMAL, (d) => `0x${BigInt(d).toString(16)}`);
}

/** A direct branch to a numeric address: `{ target, rel8 }`, else undefined. */
function numericBranch(text: string): { target: bigint; rel8: boolean } | undefined {
  const m = /^([a-z]+)\s+(-?)(0x[0-9a-f]+|\d+)$/i.exec(text);
  if (!m || !DIRECT_BRANCH.test(m[1]!.toLowerCase())) return undefined;
  const v = BigInt(m[3]!);
  return { target: BigInt.asUintN(64, m[2] === '-' ? -v : v), rel8: REL8_ONLY.test(m[1]!.toLowerCase()) };
}

// --- the wrapper --------------------------------------------------------------------------

const U64_LIMIT = 1n << 64n;

class KeystoneAssembler implements Assembler {
  readonly #m: KsModule;
  readonly #api: KsApi;
  /** One ks_engine per syntax, opened on first use and kept for the life of the process. */
  readonly #engines = new Map<AsmSyntax, number>();
  #trapped: KsError | undefined;

  constructor(m: KsModule) {
    this.#m = m;
    this.#api = bindKeystone(m);
  }

  get trapped(): boolean {
    return this.#trapped !== undefined;
  }

  asm(text: string, address: bigint, opts: AsmOptions = {}): Uint8Array {
    if (address < 0n || address >= U64_LIMIT) {
      throw new RangeError(`ks_asm: address ${address} is not an unsigned 64-bit value`);
    }
    const ks = this.#engine(opts.syntax ?? 'intel');
    const stmts = splitStatements(text);
    const labels = new Set<string>();
    for (const st of stmts) {
      if (st.label === undefined) prepare(st);
      else if (labels.has(st.label)) {
        throw new KsError('ks_asm', KS_ERR_ASM_SYMBOL_REDEFINED, `label ${st.label} defined twice (KS_ERR_ASM_SYMBOL_REDEFINED)`,
          { line: st.line, statement: st.source });
      } else labels.add(st.label);
    }

    const r = this.#asm(ks, stmts.map((s) => s.text).join('\n'), address);
    if (r.code !== KS_ERR_OK) throw this.#locate(ks, stmts, labels, address, r.code);

    // Keystone truncates some out-of-range displacements silently. The branch's own address is
    // somewhere in [address, address + size): accept only targets reachable from all of it.
    const size = BigInt(r.bytes.length);
    for (const st of stmts) {
      const b = st.label === undefined ? numericBranch(st.text) : undefined;
      if (!b) continue;
      const [lo, hi] = b.rel8 ? [-128n, 127n] : [-(1n << 31n), (1n << 31n) - 1n];
      const far = BigInt.asIntN(64, b.target - address); // ≥ every rel
      const near = BigInt.asIntN(64, b.target - address - size); // ≤ every rel
      if (far > hi || near < lo) {
        throw new KsError('ks_asm', KS_ERR_ASM_FIXUP_INVALID,
          `branch target 0x${b.target.toString(16)} is out of ${b.rel8 ? 'rel8' : 'rel32'} range of ` +
          `0x${address.toString(16)} (KS_ERR_ASM_FIXUP_INVALID)`, { line: st.line, statement: st.source });
      }
    }
    return r.bytes;
  }

  /** Finds the statement Keystone rejects, assembling each alone with the labels as stubs. */
  #locate(ks: number, stmts: Statement[], labels: Set<string>, address: bigint, code: number): KsError {
    const stubs = [...labels].map((l) => `${l}:`);
    for (const st of stmts) {
      if (st.label !== undefined) continue;
      const one = this.#asm(ks, [st.text, ...stubs].join('\n'), address);
      if (one.code !== KS_ERR_OK) {
        return new KsError('ks_asm', one.code, this.#strerror(one.code), { line: st.line, statement: st.source });
      }
    }
    return new KsError('ks_asm', code, this.#strerror(code));
  }

  /** ks_asm with the source passed through the WASM heap (the wrapper's stack copy traps). */
  #asm(ks: number, source: string, address: bigint): { code: number; bytes: Uint8Array } {
    return this.#call('ks_asm', () => {
      const m = this.#m;
      const utf8 = new TextEncoder().encode(source);
      const str = m._malloc(utf8.length + 1);
      const outs = m._malloc(12); // unsigned char *encoding; size_t size; size_t count
      try {
        for (let i = 0; i < utf8.length; i++) m.setValue(str + i, utf8[i]!, 'i8');
        m.setValue(str + utf8.length, 0, 'i8');
        m.setValue(outs, 0, 'i32');
        const status = this.#api.ks_asm(ks, str, address, outs, outs + 4, outs + 8);
        if (status !== 0) return { code: this.#api.ks_errno(ks), bytes: new Uint8Array(0) };
        const enc = m.getValue(outs, 'i32');
        const bytes = new Uint8Array(m.getValue(outs + 4, 'i32'));
        for (let i = 0; i < bytes.length; i++) bytes[i] = m.getValue(enc + i, 'i8') & 0xff;
        if (enc !== 0) this.#api.ks_free(enc);
        return { code: KS_ERR_OK, bytes };
      } finally {
        m._free(outs);
        m._free(str);
      }
    });
  }

  #engine(syntax: AsmSyntax): number {
    let ks = this.#engines.get(syntax);
    if (ks === undefined) {
      const m = this.#m;
      const out = m._malloc(4);
      try {
        const err = this.#call('ks_open', () => this.#api.ks_open(m.ARCH_X86, m.MODE_64, out));
        if (err !== KS_ERR_OK) throw new KsError('ks_open', err, this.#strerror(err));
        ks = m.getValue(out, 'i32');
      } finally {
        m._free(out);
      }
      const engine = ks;
      // ks_option also forces radix 16 for numbers (see the file comment).
      const value = syntax === 'att' ? m.OPT_SYNTAX_ATT : m.OPT_SYNTAX_INTEL;
      const err = this.#call('ks_option', () => this.#api.ks_option(engine, m.OPT_SYNTAX, value));
      if (err !== KS_ERR_OK) throw new KsError('ks_option(KS_OPT_SYNTAX)', err, this.#strerror(err));
      this.#engines.set(syntax, ks);
    }
    return ks;
  }

  #strerror(code: number): string {
    return this.#call('ks_strerror', () => this.#api.ks_strerror(code));
  }

  /** Runs one library call; a WASM trap poisons the instance, so it is remembered. */
  #call<T>(call: string, fn: () => T): T {
    if (this.#trapped) throw this.#trapped;
    try {
      return fn();
    } catch (e) {
      if (isWasmTrap(e)) {
        this.#trapped = new KsError(call, KS_ERR_WASM_TRAP, `keystone-js trapped (${e.message}); call loadAssembler() again`);
        throw this.#trapped;
      }
      throw e;
    }
  }
}

const instance = new WasmInstanceLoader(
  () => MKeystone().then((m) => new KeystoneAssembler(m)),
  (e) => new KsError('MKeystone', KS_ERR_WASM_TRAP, `keystone-js failed to initialise: ${String(e)}`),
);

/**
 * Initialises keystone-js once per process (~90 ms) and returns the shared assembler. After a
 * WASM trap the old instance is dropped and the next call initialises a new one.
 */
export const loadAssembler = (): Promise<Assembler> => instance.get();
