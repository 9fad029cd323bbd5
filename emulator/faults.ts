/**
 * @fileoverview Guest faults as typed errors. Unicorn stops a faulting run with rip at the start of
 * the translation block (no memory hook exists, so no precise pc is kept); a FaultLocator finds the
 * exact instruction from the block start, the registers (which are as they were just before the
 * faulting instruction) and the fault address.
 */
import {
  UC_ERR_READ_UNMAPPED, UC_ERR_WRITE_UNMAPPED, UC_ERR_FETCH_UNMAPPED, UC_ERR_INSN_INVALID,
  UC_ERR_WRITE_PROT, UC_ERR_READ_PROT, UC_ERR_FETCH_PROT, UC_ERR_EXCEPTION,
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
