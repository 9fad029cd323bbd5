/**
 * @fileoverview Guest faults as typed errors. Unicorn stops a faulting run with rip at the start of
 * the translation block (no memory hook exists, so no precise pc is kept); a FaultLocator finds the
 * exact instruction from the block start, the registers (which are as they were just before the
 * faulting instruction) and the fault address.
 */
import {
  UC_ERR_READ_UNMAPPED, UC_ERR_WRITE_UNMAPPED, UC_ERR_FETCH_UNMAPPED, UC_ERR_INSN_INVALID,
  UC_ERR_WRITE_PROT, UC_ERR_READ_PROT, UC_ERR_FETCH_PROT, UC_ERR_EXCEPTION, UC_MEM_FETCH_UNMAPPED, UC_MEM_FETCH_PROT,
} from './unicorn/consts.ts';

export type FaultKind =
  | 'read-unmapped' | 'write-unmapped' | 'fetch-unmapped'
  | 'read-prot' | 'write-prot' | 'fetch-prot'
  | 'invalid-insn' | 'exception';

export const FAULT_OF_UC_ERR: Readonly<Record<number, FaultKind>> = {
  [UC_ERR_READ_UNMAPPED]: 'read-unmapped',
  [UC_ERR_WRITE_UNMAPPED]: 'write-unmapped',
  [UC_ERR_FETCH_UNMAPPED]: 'fetch-unmapped',
  [UC_ERR_READ_PROT]: 'read-prot',
  [UC_ERR_WRITE_PROT]: 'write-prot',
  [UC_ERR_FETCH_PROT]: 'fetch-prot',
  [UC_ERR_INSN_INVALID]: 'invalid-insn',
  [UC_ERR_EXCEPTION]: 'exception',
};

/** What the locator is given: the state Unicorn left after a memory fault. */
export interface FaultSite {
  kind: FaultKind;
  blockStart: bigint;
  address: bigint; // the faulting data address
  size: number;
  reg: (name: string) => bigint;
  readCode: (addr: bigint, len: number) => Uint8Array | undefined;
}

/** Returns the exact rip of the faulting instruction, or undefined when it cannot tell. */
export type FaultLocator = (site: FaultSite) => bigint | undefined;

const hex = (v: bigint): string => `0x${v.toString(16)}`;

/** A fault of guest code: the run stopped; the machine stays usable. */
export class GuestFault extends Error {
  readonly kind: FaultKind;
  /** The data address for memory faults, the instruction address for fetch and opcode faults. */
  readonly address: bigint;
  /** The faulting instruction (exact when `exact`, else the start of its translation block). */
  readonly rip: bigint;
  readonly exact: boolean;
  readonly symbol: string | undefined;

  constructor(kind: FaultKind, address: bigint, rip: bigint, exact: boolean, symbol: string | undefined) {
    const where = `rip ${hex(rip)}${symbol ? ` <${symbol}>` : ''}${exact ? '' : ' (start of its block)'}`;
    const what = kind === 'invalid-insn' ? 'invalid opcode'
      : kind === 'exception' ? 'unhandled CPU exception'
      : `${kind.replace('-', ' access to ').replace('prot', 'protected memory').replace('unmapped', 'unmapped memory')} at ${hex(address)}`;
    super(`guest fault: ${what}, ${where}`);
    this.name = 'GuestFault';
    this.kind = kind;
    this.address = address;
    this.rip = rip;
    this.exact = exact;
    this.symbol = symbol;
  }
}

/** The state a faulting uc_emu_start left, for {@link guestFaultOf}. */
export interface FaultState {
  /** rip after the stop: the start of the faulting instruction's translation block. */
  rip: bigint;
  /** The last UC_HOOK_MEM_*_INVALID/PROT report (type, address, size), if any. */
  lastFault: { type: number; address: bigint; size: number } | undefined;
  reg: (name: string) => bigint;
  readCode: (addr: bigint, len: number) => Uint8Array | undefined;
  symbolize: (addr: bigint) => string | undefined;
  faultLocator: FaultLocator | undefined;
}

/**
 * The GuestFault for a uc_emu_start error with a fault code, or undefined when `code` is not one.
 * Fetch faults and invalid opcodes are exact by nature; a data fault asks the locator for the
 * instruction inside the block (an operand it cannot evaluate leaves the block start).
 */
export function guestFaultOf(code: number, s: FaultState): GuestFault | undefined {
  const kind = FAULT_OF_UC_ERR[code];
  if (!kind) return undefined;
  const { rip, lastFault: f } = s;
  if (kind === 'invalid-insn' || kind === 'exception' || !f) return new GuestFault(kind, rip, rip, true, s.symbolize(rip));
  if (f.type === UC_MEM_FETCH_UNMAPPED || f.type === UC_MEM_FETCH_PROT) return new GuestFault(kind, f.address, f.address, true, s.symbolize(f.address));
  let exact: bigint | undefined;
  try {
    exact = s.faultLocator?.({ kind, blockStart: rip, address: f.address, size: f.size, reg: s.reg, readCode: s.readCode });
  } catch {
    exact = undefined;
  }
  const at = exact ?? rip;
  return new GuestFault(kind, f.address, at, exact !== undefined, s.symbolize(at));
}
