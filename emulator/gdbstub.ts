/**
 * @fileoverview A GDB Remote Serial Protocol server over a Machine, on loopback: real gdb
 * attaches (`target remote :PORT`), reads and writes registers and memory, single-steps,
 * continues, sets breakpoints, and sees the driven call's end as the inferior's exit (`W`).
 * One connection per stub, as gdbserver without --multi.
 *
 * What it speaks (gdb/doc/gdb.texinfo "Remote Protocol"):
 *   framing   `$…#cs`, `+`/`-` (a bad checksum is NAKed, a NAKed reply resent), QStartNoAckMode, 0x03
 *   queries   qSupported, qXfer:features:read (target.xml), qXfer:exec-file:read (the kernel image,
 *             so plain `target remote` loads its symbols), qXfer:libraries:read (a generated symbol
 *             file naming JIT images and trampolines), qAttached, qC, qfThreadInfo/qsThreadInfo,
 *             qSymbol, H, T
 *   state     ?, g/G, p/P, m/M/X (E14 = EFAULT when unmapped)
 *   running   s, c, S, C, vCont?/vCont;c/s, Z0/z0 and Z1/z1 (Machine breakpoints: code hooks, memory
 *             untouched, so gdb reads the real bytes), D, k, vKill
 *   anything else gets the empty reply ("not supported"); malformed arguments get E16 (EINVAL).
 *
 * `c` runs in slices (`run({ timeoutUs })`) with the event loop turning between them, so a 0x03
 * interrupt or a disconnect is seen while guest code runs; a breakpoint stop is exact (Machine
 * stops before the instruction), and so is a step. Guest faults stop with SIGSEGV/SIGILL at the
 * faulting instruction and their message goes to gdb's console (`O` packet).
 */
import { createServer, type Server, type Socket } from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setImmediate as nextTurn } from 'node:timers/promises';
import type { Machine, StopReason } from './machine.ts';
import { GuestFault } from './faults.ts';
import { logger } from './log.ts';
import {
  MAX_PACKET, RspReader, frame, escapeBinary, unescapeBinary, toHex, fromHex, parseHexNum, type RspEvent,
} from './gdb_rsp.ts';
import { GDB_REGS, GDB_REG_NUM, G_PACKET_HEX, targetXml, encodeReg, decodeReg } from './gdb_regs.ts';
import { writeSymbolFile, symbolSpan, type ElfSymbol } from './gdb_symfile.ts';

export type { ElfSymbol };

/** gdb's own signal numbers (gdb/signals.def), which stop replies carry. */
export const GDB_SIGNAL = { INT: 2, ILL: 4, TRAP: 5, ABRT: 6, SEGV: 11 } as const;

/** Error replies: errno values, as gdbserver sends them. */
const E_FAULT = 'E14', E_INVAL = 'E16', E_IO = 'E05';

/** How a session ended; the caller decides what happens to the machine next. */
export type GdbSessionEnd =
  | { kind: 'exit'; rax: bigint }   // the call returned: `W` was sent
  | { kind: 'detach' }              // `D`: the machine is left where it stopped, to run on without gdb
  | { kind: 'kill' }                // `k` / vKill
  | { kind: 'disconnect' }          // the connection closed without either
  | { kind: 'closed' };             // close() from this side (no gdb, or the caller gave up)

export interface GdbStubOptions {
  /** Default 127.0.0.1: the stub has no authentication. */
  host?: string;
  /** Default 0: a free port (read `port` after listen). */
  port?: number;
  /** Absolute path answered to qXfer:exec-file:read (the kernel image). */
  execFile?: string;
  /** Code gdb cannot name from execFile (JIT images, trampolines): served as a symbol-file library. */
  symbols?: () => readonly ElfSymbol[];
  /** Length of one `c` slice before the event loop runs (default 20 ms). */
  sliceUs?: number;
}

type Stop =
  | { kind: 'signal'; sig: number; reason?: 'swbreak' | 'hwbreak'; message?: string }
  | { kind: 'exit'; rax: bigint };

const log = logger.child({ module: 'gdbstub' });
const hex2 = (n: number): string => n.toString(16).padStart(2, '0');
const xmlEscape = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/"/g, '&quot;');
/** One thread, id 1 (gdb's thread ids are positive hex; 0 = any, -1 = all). */
const THREAD = 1;

export class GdbStub {
  readonly machine: Machine;
  /** Resolves once, when the session ends (the stub has closed its socket and server). */
  readonly ended: Promise<GdbSessionEnd>;
  private readonly opts: GdbStubOptions;
  private readonly server: Server;
  private sock: Socket | undefined;
  private readonly reader = new RspReader();
  private noAck = false;
  private lastSent = '';
  private readonly queue: string[] = [];
  private busy = false;
  private interrupted = false;
  private closed = false;
  private stop: Stop = { kind: 'signal', sig: GDB_SIGNAL.TRAP };
  /** Breakpoints gdb placed, by kind (for the swbreak/hwbreak stop reasons). */
  private readonly breakpoints = new Map<bigint, 'swbreak' | 'hwbreak'>();
  private symDir: string | undefined;
  private library: { path: string; address: bigint; key: string } | undefined;
  private libraryGen = 0;
  private resolveEnd!: (e: GdbSessionEnd) => void;

  private constructor(machine: Machine, opts: GdbStubOptions) {
    this.machine = machine;
    this.opts = opts;
    this.ended = new Promise((r) => { this.resolveEnd = r; });
    this.server = createServer((s) => this.accept(s));
  }

  /** Starts listening; the machine should be stopped before the first instruction gdb will see. */
  static async listen(machine: Machine, opts: GdbStubOptions = {}): Promise<GdbStub> {
    const stub = new GdbStub(machine, opts);
    await new Promise<void>((resolve, reject) => {
      stub.server.once('error', reject);
      stub.server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => { stub.server.off('error', reject); resolve(); });
    });
    return stub;
  }

  get port(): number {
    const a = this.server.address();
    return typeof a === 'object' && a ? a.port : 0;
  }

  /** Ends the session from this side (a signal to the process, a caller that gives up waiting). */
  close(): void { this.finish({ kind: 'closed' }); }

  /**
   * The symbol file for `symbols()` (written on demand; a new file when the set changes, since
   * gdb knows libraries by name). gdb loads it by itself through qXfer:libraries:read; by hand:
   * `add-symbol-file PATH`.
   */
  symbolFile(): string | undefined { return this.currentLibrary()?.path; }

  // --- connection ----------------------------------------------------------------------------

  private accept(s: Socket): void {
    if (this.sock || this.closed) { s.destroy(); return; }
    this.sock = s;
    this.server.close(); // one client per stub
    s.setNoDelay(true);
    s.on('data', (chunk: Buffer) => this.onData(chunk));
    s.on('error', (e) => log.debug({ err: e.message }, 'socket error'));
    s.on('close', () => this.finish({ kind: 'disconnect' }));
  }

  private finish(end: GdbSessionEnd): void {
    if (this.closed) return;
    this.closed = true;
    for (const a of this.breakpoints.keys()) this.machine.removeBreakpoint(a);
    this.breakpoints.clear();
    this.sock?.end();
    this.server.close();
    if (this.symDir) rmSync(this.symDir, { recursive: true, force: true });
    log.debug({ end: end.kind }, 'session ended');
    this.resolveEnd(end);
  }

  private onData(chunk: Buffer): void {
    for (const ev of this.reader.feed(chunk)) this.onEvent(ev);
    void this.pump();
  }

  private onEvent(ev: RspEvent): void {
    switch (ev.kind) {
      case 'ack': return;
      case 'nak': if (this.lastSent) this.write(this.lastSent); return;
      case 'interrupt': this.interrupted = true; return;
      case 'packet':
        if (!ev.valid) {
          log.debug({ data: ev.data.slice(0, 80) }, 'bad checksum');
          if (!this.noAck) this.write('-'); // the client resends
          return;
        }
        if (!this.noAck) this.write('+');
        this.queue.push(ev.data);
    }
  }

  /** Handles queued packets one at a time (a `c` awaits its run before the next is read). */
  private async pump(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      while (this.queue.length > 0 && !this.closed) {
        const data = this.queue.shift()!;
        log.debug({ data: data.slice(0, 120) }, '<-');
        let reply: string | undefined;
        try {
          reply = await this.handle(data);
        } catch (e) {
          // A bug in a handler: the protocol's error reply, never a crash of the stub.
          log.debug({ err: e instanceof Error ? e.message : String(e) }, 'handler failed');
          reply = E_IO;
        }
        if (reply !== undefined) this.send(reply);
      }
    } finally {
      this.busy = false;
    }
  }

  private write(s: string): void {
    if (this.closed || !this.sock || this.sock.destroyed) return;
    this.sock.write(Buffer.from(s, 'latin1'));
  }

  private send(data: string): void {
    if (this.closed) return;
    log.debug({ data: data.slice(0, 120) }, '->');
    this.lastSent = frame(data);
    this.write(this.lastSent);
  }

  // --- packets -------------------------------------------------------------------------------

  /** The reply to one packet; undefined for none (`k`, or a session that ended meanwhile). */
  private async handle(p: string): Promise<string | undefined> {
    switch (p[0]) {
      case '?': return this.stopReply(this.stop);
      case 'g': return GDB_REGS.map((r, i) => encodeReg(r, this.readReg(i))).join('');
      case 'G': return this.writeAllRegs(p.slice(1));
      case 'p': {
        const n = parseHexNum(p.slice(1));
        return n === undefined || n >= BigInt(GDB_REGS.length) ? E_INVAL : encodeReg(GDB_REGS[Number(n)]!, this.readReg(Number(n)));
      }
      case 'P': return this.writeOneReg(p.slice(1));
      case 'm': return this.readMem(p.slice(1));
      case 'M': return this.writeMem(p.slice(1), 'hex');
      case 'X': return this.writeMem(p.slice(1), 'binary');
      case 'Z': case 'z': return this.breakpoint(p);
      case 'c': case 's': case 'C': case 'S': return this.resumePacket(p);
      case 'v': return this.vPacket(p);
      case 'q': case 'Q': return this.query(p);
      case 'H': return 'OK';                  // one thread: any selection is it
      case 'T': return 'OK';                  // thread alive
      case 'D': this.send('OK'); this.finish({ kind: 'detach' }); return undefined;
      case 'k': this.finish({ kind: 'kill' }); return undefined;
      default: return '';
    }
  }

  private query(p: string): string | undefined {
    if (p.startsWith('qSupported')) {
      return [
        `PacketSize=${MAX_PACKET.toString(16)}`, 'QStartNoAckMode+', 'qXfer:features:read+',
        ...(this.opts.execFile ? ['qXfer:exec-file:read+'] : []),
        ...(this.opts.symbols ? ['qXfer:libraries:read+'] : []),
        'swbreak+', 'hwbreak+', 'vContSupported+',
      ].join(';');
    }
    if (p === 'QStartNoAckMode') { this.send('OK'); this.noAck = true; return undefined; } // acked, then no more acks
    if (p.startsWith('qXfer:')) return this.xfer(p);
    if (p === 'qAttached' || p.startsWith('qAttached:')) return '1'; // the machine existed before gdb: quit detaches
    if (p === 'qC') return `QC${THREAD.toString(16)}`;
    if (p === 'qfThreadInfo') return `m${THREAD.toString(16)}`;
    if (p === 'qsThreadInfo') return 'l';
    if (p.startsWith('qSymbol')) return 'OK'; // no symbols to look up
    return '';
  }

  /** qXfer:OBJECT:read:ANNEX:OFFSET,LENGTH → `m`/`l` + a slice of the object. */
  private xfer(p: string): string {
    const m = /^qXfer:([\w-]+):read:([^:]*):([0-9a-fA-F]+),([0-9a-fA-F]+)$/.exec(p);
    if (!m) return /^qXfer:[\w-]+:read:/.test(p) ? E_INVAL : ''; // a read with bad arguments, or another operation
    const [, object, annex] = m;
    let text: string | undefined;
    if (object === 'features') {
      if (annex !== 'target.xml') return E_INVAL;
      text = targetXml();
    } else if (object === 'exec-file' && this.opts.execFile) {
      text = this.opts.execFile;
    } else if (object === 'libraries' && this.opts.symbols) {
      text = this.libraryXml();
    } else return '';
    const data = Buffer.from(text, 'utf8');
    const offset = Number(BigInt(`0x${m[3]}`));
    const length = Math.min(Number(BigInt(`0x${m[4]}`)), (MAX_PACKET - 16) >> 1); // escaping may double it
    if (offset >= data.length) return 'l';
    const piece = data.subarray(offset, offset + length);
    return `${offset + piece.length < data.length ? 'm' : 'l'}${escapeBinary(piece)}`;
  }

  private vPacket(p: string): string | Promise<string | undefined> | undefined {
    if (p === 'vCont?') return 'vCont;c;C;s;S';
    if (p.startsWith('vCont;')) {
      // Actions apply in order to the threads they name; the first for thread 1 (or all) wins.
      for (const action of p.slice(6).split(';')) {
        const [what, tid] = action.split(':');
        if (tid !== undefined && tid !== '-1' && parseHexNum(tid) !== BigInt(THREAD)) continue;
        if (what === 'c' || /^C[0-9a-fA-F]{2}$/.test(what ?? '')) return this.resume(false);
        if (what === 's' || /^S[0-9a-fA-F]{2}$/.test(what ?? '')) return this.resume(true);
        return E_INVAL;
      }
      return E_INVAL;
    }
    if (p.startsWith('vKill')) { this.send('OK'); this.finish({ kind: 'kill' }); return undefined; }
    return ''; // vMustReplyEmpty, vFile:* (gdb then reads files locally), vRun, …
  }

  // --- registers -----------------------------------------------------------------------------

  private readReg(n: number): bigint | undefined {
    const r = GDB_REGS[n]!;
    return r.machine ? this.machine.regs[r.machine] : undefined;
  }

  /** Writes a register if it changed; false when the machine refuses (e.g. a segment selector). */
  private writeReg(n: number, v: bigint): boolean {
    const r = GDB_REGS[n]!;
    if (!r.machine) return false;
    if (this.machine.regs[r.machine] === BigInt.asUintN(r.bits, v)) return true;
    try {
      this.machine.regs[r.machine] = v;
      return true;
    } catch {
      return false;
    }
  }

  private writeAllRegs(hex: string): string {
    if (hex.length !== G_PACKET_HEX) return E_INVAL;
    let off = 0, ok = true;
    GDB_REGS.forEach((r, i) => {
      const piece = hex.slice(off, off + r.bits / 4);
      off += r.bits / 4;
      if (!r.machine || /^x+$/i.test(piece)) return; // unavailable: left as it is
      const v = decodeReg(r, piece);
      if (v === undefined) { ok = false; return; }
      ok = this.writeReg(i, v) && ok;
    });
    return ok ? 'OK' : E_INVAL;
  }

  private writeOneReg(args: string): string {
    const m = /^([0-9a-fA-F]+)=([0-9a-fA-FxX]+)$/.exec(args);
    if (!m) return E_INVAL;
    const n = Number(BigInt(`0x${m[1]}`));
    const r = GDB_REGS[n];
    if (!r) return E_INVAL;
    const v = decodeReg(r, m[2]!);
    if (v === undefined) return E_INVAL;
    return this.writeReg(n, v) ? 'OK' : 'E01';
  }

  // --- memory --------------------------------------------------------------------------------

  /** `m addr,len`: the readable prefix, E14 when not even one byte is mapped. */
  private readMem(args: string): string {
    const [a, l] = args.split(',');
    const addr = parseHexNum(a), len = parseHexNum(l);
    if (addr === undefined || len === undefined) return E_INVAL;
    const want = Math.min(Number(len), (MAX_PACKET - 16) >> 1);
    const pieces: Uint8Array[] = [];
    let at = addr, left = want;
    while (left > 0) {
      const m = this.machine.mem.find(at);
      if (!m) break;
      const n = Math.min(left, Number(m.end - at));
      pieces.push(this.machine.mem.read(at, n));
      at += BigInt(n);
      left -= n;
    }
    if (want > 0 && pieces.length === 0) return E_FAULT;
    return toHex(Buffer.concat(pieces));
  }

  /** `M addr,len:hex` / `X addr,len:binary`: all or nothing, E14 when any byte is unmapped. */
  private writeMem(args: string, enc: 'hex' | 'binary'): string {
    const colon = args.indexOf(':');
    if (colon < 0) return E_INVAL;
    const [a, l] = args.slice(0, colon).split(',');
    const addr = parseHexNum(a), len = parseHexNum(l);
    const bytes = enc === 'hex' ? fromHex(args.slice(colon + 1)) : unescapeBinary(args.slice(colon + 1));
    if (addr === undefined || len === undefined || !bytes || BigInt(bytes.length) !== len) return E_INVAL;
    if (bytes.length === 0) return 'OK'; // gdb's probe for X support
    for (let at = addr; at < addr + len;) {
      const m = this.machine.mem.find(at);
      if (!m) return E_FAULT;
      at = m.end;
    }
    this.machine.mem.write(addr, bytes); // drops translated code it covers
    return 'OK';
  }

  // --- breakpoints ---------------------------------------------------------------------------

  /** Z0/z0 software and Z1/z1 hardware breakpoints: both are Machine breakpoints. */
  private breakpoint(p: string): string {
    const m = /^([Zz])([0-4]),([0-9a-fA-F]+),([0-9a-fA-F]+)(;.*)?$/.exec(p);
    if (!m) return E_INVAL;
    if (m[2] !== '0' && m[2] !== '1') return ''; // watchpoints: not supported
    const addr = parseHexNum(m[3]);
    if (addr === undefined) return E_INVAL;
    if (m[1] === 'Z') {
      if (!this.breakpoints.has(addr)) this.machine.addBreakpoint(addr);
      this.breakpoints.set(addr, m[2] === '0' ? 'swbreak' : 'hwbreak');
    } else if (this.breakpoints.delete(addr)) {
      this.machine.removeBreakpoint(addr);
    }
    return 'OK';
  }

  // --- running -------------------------------------------------------------------------------

  /** c [addr], s [addr], C sig[;addr], S sig[;addr] (the signal is dropped: nothing to deliver). */
  private resumePacket(p: string): Promise<string | undefined> | string {
    const m = /^([cs])([0-9a-fA-F]*)$|^([CS])[0-9a-fA-F]{2}(?:;([0-9a-fA-F]+))?$/.exec(p);
    if (!m) return E_INVAL;
    const step = (m[1] ?? m[3]) === 's' || m[3] === 'S';
    const at = m[2] || m[4];
    if (at) {
      const addr = parseHexNum(at);
      if (addr === undefined) return E_INVAL;
      this.machine.regs.rip = addr;
    }
    return this.resume(step);
  }

  private async resume(step: boolean): Promise<string | undefined> {
    const stop = await this.execute(step);
    if (this.closed) return undefined; // gdb went away meanwhile: touch nothing
    this.stop = stop;
    if (stop.kind === 'signal' && stop.message) this.send(`O${toHex(Buffer.from(`${stop.message}\n`))}`);
    if (stop.kind === 'exit') {
      this.send(this.stopReply(stop));
      this.finish({ kind: 'exit', rax: stop.rax });
      return undefined;
    }
    return this.stopReply(stop);
  }

  /** Runs one instruction, or slices until a stop, an interrupt or a disconnect. */
  private async execute(step: boolean): Promise<Stop> {
    const m = this.machine;
    this.interrupted = false;
    for (;;) {
      const start = m.regs.rip;
      let r: StopReason;
      try {
        r = step ? m.step() : m.run({ timeoutUs: this.opts.sliceUs ?? 20_000 });
      } catch (e) {
        return this.faultStop(e);
      }
      if (r.kind === 'exit') return { kind: 'exit', rax: r.rax };
      if (r.kind === 'breakpoint') return this.trapAt(r.rip);
      if (step) return { kind: 'signal', sig: GDB_SIGNAL.TRAP };
      // A slice ended. If it ended just before a breakpoint whose hook did not fire yet, that
      // is the breakpoint's stop (the instruction has not run).
      if (r.rip !== start && this.breakpoints.has(r.rip)) return this.trapAt(r.rip);
      if (!this.interrupted && !this.closed) await nextTurn();
      if (this.closed) return { kind: 'signal', sig: GDB_SIGNAL.INT };
      if (this.interrupted) return { kind: 'signal', sig: GDB_SIGNAL.INT };
    }
  }

  private trapAt(rip: bigint): Stop {
    const reason = this.breakpoints.get(rip);
    return reason ? { kind: 'signal', sig: GDB_SIGNAL.TRAP, reason } : { kind: 'signal', sig: GDB_SIGNAL.TRAP };
  }

  /** A guest fault stops at the faulting instruction with the signal Linux would send. */
  private faultStop(e: unknown): Stop {
    if (e instanceof GuestFault) {
      if (e.exact) this.machine.regs.rip = e.rip;
      const sig = e.kind === 'invalid-insn' || e.kind === 'exception' ? GDB_SIGNAL.ILL : GDB_SIGNAL.SEGV;
      return { kind: 'signal', sig, message: e.message };
    }
    const msg = e instanceof Error ? e.message : String(e);
    return { kind: 'signal', sig: GDB_SIGNAL.ABRT, message: `bpfemu: ${msg.split('\n')[0]}` };
  }

  /** T05… with rbp, rsp, rip expedited (saves gdb three `p` round trips), or W + rax's low byte. */
  private stopReply(s: Stop): string {
    if (s.kind === 'exit') return `W${hex2(Number(s.rax & 0xffn))}`;
    let r = `T${hex2(s.sig)}`;
    for (const name of ['rbp', 'rsp', 'rip']) {
      const n = GDB_REG_NUM[name]!;
      r += `${hex2(n)}:${encodeReg(GDB_REGS[n]!, this.readReg(n))};`;
    }
    r += `thread:${THREAD.toString(16)};`;
    if (s.reason) r += `${s.reason}:;`;
    if (this.librariesChanged()) r += 'library:;'; // gdb re-reads qXfer:libraries:read
    return r;
  }

  // --- the symbol-file library ---------------------------------------------------------------

  private symbolKey(syms: readonly ElfSymbol[]): string {
    return syms.map((s) => `${s.name}@${s.address.toString(16)}+${s.size}`).join(',');
  }

  private currentLibrary(): { path: string; address: bigint; key: string } | undefined {
    const syms = this.opts.symbols?.() ?? [];
    if (syms.length === 0) return undefined;
    const key = this.symbolKey(syms);
    if (this.library?.key === key) return this.library;
    this.symDir ??= mkdtempSync(join(tmpdir(), 'bpfemu-gdb-'));
    const path = join(this.symDir, `bpfemu-jit-${++this.libraryGen}.elf`);
    writeFileSync(path, writeSymbolFile(syms));
    this.library = { path, address: symbolSpan(syms).start, key };
    return this.library;
  }

  private librariesChanged(): boolean {
    if (!this.library || !this.opts.symbols) return false; // gdb has not read the list yet
    return this.symbolKey(this.opts.symbols()) !== this.library.key;
  }

  private libraryXml(): string {
    const lib = this.currentLibrary();
    const body = lib ? `<library name="${xmlEscape(lib.path)}"><segment address="0x${lib.address.toString(16)}"/></library>` : '';
    return `<library-list version="1.0">${body}</library-list>`;
  }
}
