/**
 * @fileoverview The GDB Remote Serial Protocol's framing (gdb/doc "Overview" of the remote
 * protocol): a packet is `$data#cs` with `cs` the two-hex-digit sum of the data bytes mod 256;
 * the receiver answers `+` (good) or `-` (bad checksum: resend); a lone 0x03 outside a packet is
 * an interrupt. Binary data (X, qXfer replies) escapes `# $ } *` as `}` followed by the byte
 * xor 0x20. Bytes are handled as latin1 strings so binary payloads survive unchanged.
 */

/** Largest packet accepted from the client (and the PacketSize the stub advertises). */
export const MAX_PACKET = 0x4000;

/** What the byte stream from gdb holds, in order. */
export type RspEvent =
  | { kind: 'ack' }
  | { kind: 'nak' }
  | { kind: 'interrupt' }
  /** A packet; `valid` is false when its checksum did not match (or it was too long). */
  | { kind: 'packet'; data: string; valid: boolean };

export function checksum(data: string): number {
  let sum = 0;
  for (let i = 0; i < data.length; i++) sum = (sum + data.charCodeAt(i)) & 0xff;
  return sum;
}

const hex2 = (n: number): string => n.toString(16).padStart(2, '0');

/** `$data#cs` (data already escaped where it is binary). */
export function frame(data: string): string {
  return `$${data}#${hex2(checksum(data))}`;
}

/** Escapes binary data for a packet: `#`, `$`, `}` and `*` become `}` + (byte ^ 0x20). */
export function escapeBinary(bytes: Uint8Array): string {
  let out = '';
  for (const b of bytes) out += b === 0x23 || b === 0x24 || b === 0x7d || b === 0x2a ? `}${String.fromCharCode(b ^ 0x20)}` : String.fromCharCode(b);
  return out;
}

/** Undoes escapeBinary; undefined when the data ends in a lone `}`. */
export function unescapeBinary(data: string): Uint8Array | undefined {
  const out: number[] = [];
  for (let i = 0; i < data.length; i++) {
    const c = data.charCodeAt(i);
    if (c !== 0x7d) { out.push(c & 0xff); continue; }
    if (++i >= data.length) return undefined;
    out.push((data.charCodeAt(i) ^ 0x20) & 0xff);
  }
  return Uint8Array.from(out);
}

export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex');
}

/** Hex text to bytes; undefined unless it is an even number of hex digits. */
export function fromHex(s: string): Uint8Array | undefined {
  if (s.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(s)) return undefined;
  return Uint8Array.from(Buffer.from(s, 'hex'));
}

/** A hex number as the protocol writes addresses and lengths; undefined when malformed. */
export function parseHexNum(s: string | undefined): bigint | undefined {
  if (s === undefined || !/^[0-9a-fA-F]{1,16}$/.test(s)) return undefined;
  return BigInt(`0x${s}`);
}

/**
 * Splits gdb's byte stream into events. Bytes outside a packet other than `+`, `-` and 0x03
 * are line noise and are dropped, as gdbserver does.
 */
export class RspReader {
  private state: 'idle' | 'data' | 'cs1' | 'cs2' = 'idle';
  private data = '';
  private cs = '';
  private overflow = false;

  feed(chunk: Buffer): RspEvent[] {
    const events: RspEvent[] = [];
    const s = chunk.toString('latin1');
    for (let i = 0; i < s.length; i++) {
      const ch = s[i]!;
      switch (this.state) {
        case 'idle':
          if (ch === '$') { this.state = 'data'; this.data = ''; this.overflow = false; }
          else if (ch === '+') events.push({ kind: 'ack' });
          else if (ch === '-') events.push({ kind: 'nak' });
          else if (ch === '\x03') events.push({ kind: 'interrupt' });
          break;
        case 'data':
          if (ch === '#') this.state = 'cs1';
          else if (ch === '$') { this.data = ''; this.overflow = false; } // a restart: the earlier one was cut short
          else if (this.data.length < MAX_PACKET) this.data += ch;
          else this.overflow = true;
          break;
        case 'cs1':
          this.cs = ch;
          this.state = 'cs2';
          break;
        case 'cs2': {
          this.cs += ch;
          this.state = 'idle';
          const want = /^[0-9a-fA-F]{2}$/.test(this.cs) ? parseInt(this.cs, 16) : -1;
          events.push({ kind: 'packet', data: this.data, valid: !this.overflow && want === checksum(this.data) });
          break;
        }
      }
    }
    return events;
  }
}
