import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import { connect, type Socket } from 'node:net';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Machine } from '../../emulator/machine.ts';
import { PROT_R, PROT_W, PROT_X } from '../../emulator/memory.ts';
import { GdbStub } from '../../emulator/gdbstub.ts';
import { RspReader, checksum, frame, escapeBinary, unescapeBinary } from '../../emulator/gdb_rsp.ts';
import { GDB_REGS, GDB_REG_NUM, G_PACKET_HEX, targetXml, encodeReg, decodeReg } from '../../emulator/gdb_regs.ts';
import { writeSymbolFile } from '../../emulator/gdb_symfile.ts';
import { ElfFile, PT_LOAD, STT_FUNC, STB_LOCAL, STB_GLOBAL } from '../../kernel/elf.ts';
import { bootAndLoad } from '../../cli/bpfobj.ts';

// --- a bare machine: three small functions and a stack -------------------------------------

const CODE = 0x400000n, STACK = 0x800000n;
const ADD = CODE;             // mov rax, rdi; add rax, rsi; ret
const LOOP = CODE + 0x10n;    // jmp $
const FAULT = CODE + 0x20n;   // mov rax, [0]; ret
const CODE_BYTES: [bigint, number[]][] = [
  [ADD, [0x48, 0x89, 0xf8, /* mov rax, rdi */ 0x48, 0x01, 0xf0, /* add rax, rsi */ 0xc3 /* ret */]],
  [LOOP, [0xeb, 0xfe /* jmp $ */]],
  [FAULT, [0x48, 0x8b, 0x04, 0x25, 0x00, 0x00, 0x00, 0x00, /* mov rax, [0] */ 0xc3]],
];
const EXEC = '/images/build/vmlinux-for-the-test';

function testMachine(): Machine {
  const m = new Machine({ stackTop: STACK + 0x4000n });
  m.mem.map(CODE, 0x1000, PROT_R | PROT_X, { name: 'code' });
  m.mem.map(STACK, 0x4000, PROT_R | PROT_W, { name: 'stack' });
  for (const [a, b] of CODE_BYTES) m.writeCode(a, Uint8Array.from(b));
  return m;
}

const le = (v: bigint, bytes = 8): string => encodeReg({ name: '', bits: bytes * 8, machine: undefined, type: '', feature: 'core' }, v);

// --- a minimal RSP client, independent of the stub's own framing code ----------------------

class Client {
  ackMode = true;
  private buf = '';
  private wake: (() => void) | undefined;
  closed = false;
  readonly sock: Socket;
  constructor(sock: Socket) {
    this.sock = sock;
    sock.setNoDelay(true);
    sock.on('data', (d: Buffer) => { this.buf += d.toString('latin1'); this.wake?.(); });
    sock.on('close', () => { this.closed = true; this.wake?.(); });
    sock.on('error', () => {});
  }
  static connect(port: number): Promise<Client> {
    return new Promise((resolve, reject) => {
      const s = connect(port, '127.0.0.1', () => resolve(new Client(s)));
      s.once('error', reject);
    });
  }
  raw(s: string): void { this.sock.write(Buffer.from(s, 'latin1')); }
  send(data: string): void { this.raw(`$${data}#${sum(data)}`); }
  /** The next '+', '-' or whole '$…#cs' from the stub. */
  async next(timeoutMs = 10_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.buf[0] === '+' || this.buf[0] === '-') { const c = this.buf[0]; this.buf = this.buf.slice(1); return c; }
      if (this.buf[0] === '$') {
        const h = this.buf.indexOf('#');
        if (h >= 0 && this.buf.length >= h + 3) { const p = this.buf.slice(0, h + 3); this.buf = this.buf.slice(h + 3); return p; }
      } else if (this.buf.length > 0) throw new Error(`junk from the stub: ${JSON.stringify(this.buf)}`);
      if (this.closed) throw new Error('closed');
      if (Date.now() > deadline) throw new Error('timeout');
      await new Promise<void>((r) => { this.wake = r; setTimeout(r, 50); });
    }
  }
  /** The next packet's payload (checksum verified, acked in ack mode); '+' before it skipped. */
  async packet(): Promise<string> {
    let p = await this.next();
    while (p === '+') p = await this.next();
    const m = /^\$([^#]*)#([0-9a-f]{2})$/s.exec(p);
    if (!m) throw new Error(`not a packet: ${p}`);
    expect(m[2]).toBe(sum(m[1]!));
    if (this.ackMode) this.raw('+');
    return m[1]!;
  }
  async req(data: string): Promise<string> {
    this.send(data);
    if (this.ackMode) expect(await this.next()).toBe('+');
    return this.packet();
  }
  close(): void { this.sock.destroy(); }
}
const sum = (data: string): string => {
  let s = 0;
  for (const c of Buffer.from(data, 'latin1')) s = (s + c) & 0xff;
  return s.toString(16).padStart(2, '0');
};

// --- framing, registers, symbol file (no socket) -------------------------------------------

describe('RSP framing', () => {
  it('checksums and frames as gdb does', () => {
    expect(checksum('OK')).toBe(0x9a);
    expect(frame('OK')).toBe('$OK#9a');
    expect(frame('')).toBe('$#00');
    expect(frame('qSupported')).toBe('$qSupported#37');
  });

  it('escapes # $ } * in binary data and undoes it', () => {
    const bytes = Uint8Array.from([0x23, 0x24, 0x7d, 0x2a, 0x00, 0xff, 0x41]);
    const esc = escapeBinary(bytes);
    expect(esc).toBe('}\x03}\x04}\x5d}\x0a\x00\xffA');
    expect(unescapeBinary(esc)).toEqual(bytes);
    expect(unescapeBinary('ab}')).toBeUndefined();
  });

  it('splits a byte stream into acks, interrupts and packets, flagging bad checksums', () => {
    const r = new RspReader();
    const ev = [...r.feed(Buffer.from('+-junk$g#67\x03$m0,4#00$qC')), ...r.feed(Buffer.from('#b4'))];
    expect(ev).toEqual([
      { kind: 'ack' }, { kind: 'nak' },
      { kind: 'packet', data: 'g', valid: true },
      { kind: 'interrupt' },
      { kind: 'packet', data: 'm0,4', valid: false },
      { kind: 'packet', data: 'qC', valid: true },
    ]);
    // An over-long packet is invalid (NAKed) rather than buffered without bound.
    expect(r.feed(Buffer.from(`$${'a'.repeat(0x5000)}#00`))).toEqual([{ kind: 'packet', data: 'a'.repeat(0x4000), valid: false }]);
  });
});

describe('registers and target description', () => {
  it("numbers registers as gdb's amd64 does", () => {
    expect(GDB_REGS.slice(0, 8).map((r) => r.name)).toEqual(['rax', 'rbx', 'rcx', 'rdx', 'rsi', 'rdi', 'rbp', 'rsp']);
    expect(GDB_REG_NUM).toMatchObject({ r8: 8, r15: 15, rip: 16, eflags: 17, cs: 18, gs: 23, st0: 24, fop: 39, fs_base: 40, gs_base: 41 });
    expect(G_PACKET_HEX).toBe(2 * (17 * 8 + 7 * 4 + 8 * 10 + 8 * 4 + 2 * 8));
  });

  it('encodes little-endian, unavailable as xx, and decodes back', () => {
    const rip = GDB_REGS[16]!, efl = GDB_REGS[17]!;
    expect(encodeReg(rip, 0xffffffff81000620n)).toBe('20060081ffffffff');
    expect(encodeReg(efl, 0x246n)).toBe('46020000');
    expect(encodeReg(GDB_REGS[24]!, undefined)).toBe('xx'.repeat(10));
    expect(decodeReg(rip, '20060081ffffffff')).toBe(0xffffffff81000620n);
    expect(decodeReg(efl, '4602')).toBeUndefined();
  });

  it('describes i386:x86-64 with the core and segments features', () => {
    const xml = targetXml();
    expect(xml).toContain('<architecture>i386:x86-64</architecture>');
    expect(xml).toContain('<feature name="org.gnu.gdb.i386.core">');
    expect(xml).toContain('<reg name="rip" bitsize="64" type="code_ptr" regnum="16"/>');
    expect(xml).toContain('<reg name="gs_base" bitsize="64" type="int" regnum="41"/>');
    expect(xml).toContain('<field name="ZF" start="6" end="6"/>');
  });
});

describe('symbol file', () => {
  it('is an ELF with a PT_LOAD and STT_FUNC symbols at their addresses', () => {
    const bytes = writeSymbolFile([
      { name: 'bpf_trampoline_158', address: 0xffffffffa0012000n, size: 0x800, local: true },
      { name: 'bpf_prog_f97fcfbfc80bd0a8_test1', address: 0xffffffffa0011004n, size: 0x4c },
      { name: '__bpf_prog_enter', address: 0xffffffffa0010000n, size: 8 },
    ]);
    const elf = new ElfFile(bytes);
    const load = elf.segments.filter((s) => s.type === PT_LOAD);
    expect(load).toHaveLength(1);
    expect(load[0]).toMatchObject({ vaddr: 0xffffffffa0010000n, filesz: 0, memsz: 0x3000 });
    const syms = elf.symbols().filter((s) => s.name);
    expect(syms.map((s) => [s.name, s.value, s.size, s.type, s.bind])).toEqual([
      ['bpf_trampoline_158', 0xffffffffa0012000n, 0x800, STT_FUNC, STB_LOCAL],
      ['bpf_prog_f97fcfbfc80bd0a8_test1', 0xffffffffa0011004n, 0x4c, STT_FUNC, STB_GLOBAL],
      ['__bpf_prog_enter', 0xffffffffa0010000n, 8, STT_FUNC, STB_GLOBAL],
    ]);
    expect(elf.sections[syms[0]!.shndx]!.name).toBe('.text');
  });
});

describe('Machine: a native function runs once however the run stops around it', () => {
  // movabs rax, NATIVE; call rax; ret
  const caller = (native: bigint): number[] => [0x48, 0xb8, ...new Uint8Array(new BigUint64Array([native]).buffer), 0xff, 0xd0, 0xc3];
  let m: Machine;
  beforeEach(() => { m = testMachine(); });
  afterEach(() => m.close());

  it('stepping: the step onto the slot stops before it, the next one runs it', () => {
    const nf = m.defineNative('bump', (a) => a + 1n, 1);
    m.writeCode(CODE + 0x40n, Uint8Array.from(caller(nf.address)));
    m.prepareCall(CODE + 0x40n, [41n]);
    const rips: bigint[] = [];
    for (let i = 0; i < 10; i++) {
      const r = m.step();
      if (r.kind === 'exit') { expect(r.rax).toBe(42n); break; }
      rips.push(r.rip);
      if (r.rip === nf.address) expect(nf.calls).toBe(0);
    }
    expect(rips).toEqual([CODE + 0x4an, nf.address, CODE + 0x4cn]);
    expect(nf.calls).toBe(1);
  });

  it('a breakpoint on the slot stops before the function; resuming runs it once', () => {
    const nf = m.defineNative('bump', (a) => a + 1n, 1);
    m.writeCode(CODE + 0x40n, Uint8Array.from(caller(nf.address)));
    m.prepareCall(CODE + 0x40n, [1n]);
    m.addBreakpoint(nf.address);
    expect(m.run()).toEqual({ kind: 'breakpoint', rip: nf.address });
    expect(nf.calls).toBe(0);
    expect(m.run()).toEqual({ kind: 'exit', rax: 2n });
    expect(nf.calls).toBe(1);
  });
});

// --- the stub over a socket ----------------------------------------------------------------

describe('gdb stub over a socket', () => {
  let m: Machine, stub: GdbStub, c: Client;
  const start = async (entry: bigint, args: bigint[] = [], opts: { sliceUs?: number } = {}): Promise<void> => {
    m.prepareCall(entry, args);
    stub = await GdbStub.listen(m, {
      execFile: EXEC, ...opts,
      symbols: () => [{ name: 'add_fn', address: ADD, size: 7 }, { name: 'loop_fn', address: LOOP, size: 2 }],
    });
    c = await Client.connect(stub.port);
  };
  beforeEach(() => { m = testMachine(); });
  afterEach(async () => { c?.close(); stub?.close(); await stub?.ended; m.close(); });

  it('qSupported advertises the packet size and the objects it serves', async () => {
    await start(ADD);
    const r = await c.req('qSupported:multiprocess+;swbreak+;hwbreak+;qRelocInsn+;xmlRegisters=i386');
    expect(r.split(';')).toEqual(expect.arrayContaining([
      'PacketSize=4000', 'QStartNoAckMode+', 'qXfer:features:read+', 'qXfer:exec-file:read+', 'qXfer:libraries:read+', 'swbreak+', 'hwbreak+',
    ]));
  });

  it('a bad checksum is NAKed and the retransmission answered; a NAKed reply is resent', async () => {
    await start(ADD);
    c.raw('$qC#00');
    expect(await c.next()).toBe('-');
    expect(await c.req('qC')).toBe('QC1');
    c.send('qAttached');
    expect(await c.next()).toBe('+');
    expect(await c.next()).toBe(frame('1'));
    c.raw('-');
    expect(await c.next()).toBe(frame('1')); // the same reply again
    c.raw('+');
  });

  it('answers the thread and status queries of a gdb connect', async () => {
    await start(ADD, [0x1234n, 0x102n]);
    expect(await c.req('qAttached')).toBe('1');
    expect(await c.req('qC')).toBe('QC1');
    expect(await c.req('qfThreadInfo')).toBe('m1');
    expect(await c.req('qsThreadInfo')).toBe('l');
    expect(await c.req('Hg0')).toBe('OK');
    expect(await c.req('Hc-1')).toBe('OK');
    expect(await c.req('qSymbol::')).toBe('OK');
    expect(await c.req('vCont?')).toBe('vCont;c;C;s;S');
    expect(await c.req('?')).toBe(`T0506:${le(0n)};07:${le(m.regs.rsp)};10:${le(ADD)};thread:1;`);
  });

  it('unknown packets get the empty reply; malformed ones an error', async () => {
    await start(ADD);
    for (const p of ['vMustReplyEmpty', 'qTStatus', 'qFrobnicate', '!', 'vFile:open:6a7573742070726f62696e67,0,1c0', 'Z2,400000,1', 'y']) expect(await c.req(p)).toBe('');
    for (const p of ['m', 'mzz,4', 'm400000', 'M400000,2:123', 'M400000,3:1234', 'pzz', 'p99', 'P10=12', 'P10', 'G00', 'Z0', 'Z0,zz,1', 'cxyz', 'vCont;q', 'qXfer:features:read:other.xml:0,10', 'X400000,2:a']) {
      expect([p, await c.req(p)]).toEqual([p, 'E16']);
    }
    expect(m.regs.rip).toBe(ADD); // nothing moved
  });

  it('random arguments to the read-only packets never break the stub', async () => {
    await start(ADD);
    let seed = 12345;
    const rnd = (n: number): number => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed % n; };
    const alphabet = '0123456789abcdefxX,:;=-+}*$#qmpgHTz?XfeatursXfer.';
    for (let i = 0; i < 300; i++) {
      let body = 'mpgqHTz?'[rnd(8)]!;
      for (let n = rnd(24); n > 0; n--) body += alphabet[rnd(alphabet.length)]!;
      body = body.replace(/[$#}*]/g, '0'); // framing bytes are escaped on the wire, never raw
      const r = await c.req(body);
      expect(r).toMatch(/^(|OK|E\d\d|[0-9a-fx]*|[ml].*|QC1|1|T05.*)$/s);
    }
    expect(await c.req('qC')).toBe('QC1');
    expect(m.regs.rip).toBe(ADD);
  });

  it('g/G and p/P read and write registers in gdb numbering', async () => {
    await start(ADD, [0x1234n, 0x102n]);
    const g = await c.req('g');
    expect(g).toHaveLength(G_PACKET_HEX);
    expect(g.slice(5 * 16, 6 * 16)).toBe(le(0x1234n)); // rdi
    expect(g.slice(16 * 16, 17 * 16)).toBe(le(ADD)); // rip
    expect(g.slice(24 * 16 + 8 * 8, 24 * 16 + 8 * 8 + 20)).toBe('x'.repeat(20)); // st0: unavailable
    expect(await c.req('p10')).toBe(le(ADD));
    expect(await c.req('p18')).toBe('x'.repeat(20));
    expect(await c.req('P3=efbeadde00000000')).toBe('OK');
    expect(m.regs.rdx).toBe(0xdeadbeefn);
    expect(await c.req('P18=00000000000000000000')).toBe('E01'); // st0: nothing behind it
    // G: the g packet back with rbx changed
    const g2 = g.slice(0, 16) + le(0x77n) + g.slice(32);
    expect(await c.req(`G${g2}`)).toBe('OK');
    expect(m.regs.rbx).toBe(0x77n);
    expect(m.regs.rdi).toBe(0x1234n);
  });

  it('m/M/X read and write memory; unmapped is E14, a read across the end is cut short', async () => {
    await start(ADD);
    expect(await c.req(`m${ADD.toString(16)},7`)).toBe('4889f84801f0c3');
    expect(await c.req('m0,4')).toBe('E14');
    expect(await c.req(`m${(CODE + 0xffen).toString(16)},8`)).toBe('0000'); // two bytes, then the hole
    const buf = STACK + 0x100n;
    expect(await c.req(`M${buf.toString(16)},4:deadbeef`)).toBe('OK');
    expect(m.mem.read(buf, 4)).toEqual(Uint8Array.from([0xde, 0xad, 0xbe, 0xef]));
    expect(await c.req('M10,2:abcd')).toBe('E14');
    expect(await c.req(`X${buf.toString(16)},0:`)).toBe('OK'); // gdb's probe
    expect(await c.req(`X${buf.toString(16)},4:${escapeBinary(Uint8Array.from([0x23, 0x7d, 0x00, 0x2a]))}`)).toBe('OK');
    expect(m.mem.read(buf, 4)).toEqual(Uint8Array.from([0x23, 0x7d, 0x00, 0x2a]));
  });

  it('serves target.xml, the exec file and the library list in pieces', async () => {
    await start(ADD);
    let xml = '';
    for (let off = 0; ;) {
      const r = await c.req(`qXfer:features:read:target.xml:${off.toString(16)},100`);
      expect(r[0]).toMatch(/[ml]/);
      xml += r.slice(1);
      off += r.length - 1;
      if (r[0] === 'l') break;
    }
    expect(xml).toBe(targetXml());
    expect(await c.req('qXfer:exec-file:read::0,fff')).toBe(`l${EXEC}`);
    expect(await c.req('qXfer:exec-file:read:1:0,fff')).toBe(`l${EXEC}`);
    expect(await c.req('qXfer:exec-file:read::fff,10')).toBe('l');
    const libs = await c.req('qXfer:libraries:read::0,fff');
    const lib = /^l<library-list version="1.0"><library name="([^"]+)"><segment address="0x400000"\/><\/library><\/library-list>$/.exec(libs);
    expect(lib).not.toBeNull();
    const elf = new ElfFile(new Uint8Array(readFileSync(lib![1]!)));
    expect(elf.symbols().filter((s) => s.name).map((s) => [s.name, s.value])).toEqual([['add_fn', ADD], ['loop_fn', LOOP]]);
  });

  it('a changed symbol set is announced in the next stop reply (library:) and served as a new file', async () => {
    const syms = [{ name: 'add_fn', address: ADD, size: 7 }];
    m.prepareCall(ADD, [1n, 2n]);
    stub = await GdbStub.listen(m, { symbols: () => syms });
    c = await Client.connect(stub.port);
    const first = /name="([^"]+)"/.exec(await c.req('qXfer:libraries:read::0,fff'))![1]!;
    expect(await c.req('s')).not.toContain('library:');
    syms.push({ name: 'jit_fn', address: LOOP, size: 2 }); // e.g. a program loaded meanwhile
    expect(await c.req('s')).toMatch(/;library:;$/);
    const second = /name="([^"]+)"/.exec(await c.req('qXfer:libraries:read::0,fff'))![1]!;
    expect(second).not.toBe(first);
    expect(new ElfFile(new Uint8Array(readFileSync(second))).symbols().map((s) => s.name)).toContain('jit_fn');
    expect(await c.req('s')).not.toContain('library:');
  });

  it('s and vCont;s step one instruction; c runs to the exit and reports W + the low byte of rax', async () => {
    await start(ADD, [0x1234n, 0x102n]);
    expect(await c.req('s')).toMatch(new RegExp(`^T05.*10:${le(ADD + 3n)};thread:1;$`));
    expect(m.regs.rax).toBe(0x1234n);
    expect(await c.req('vCont;s:1;c')).toMatch(new RegExp(`10:${le(ADD + 6n)};`));
    expect(await c.req('vCont;c')).toBe('W36');
    expect(await stub.ended).toEqual({ kind: 'exit', rax: 0x1336n });
    await expect(c.next(2000)).rejects.toThrow('closed');
  });

  it('Z0/Z1 stop before the instruction with swbreak/hwbreak; z removes them; machine memory is untouched', async () => {
    await start(ADD, [1n, 2n]);
    expect(await c.req(`Z0,${(ADD + 3n).toString(16)},1`)).toBe('OK');
    expect(await c.req(`Z1,${(ADD + 6n).toString(16)},1`)).toBe('OK');
    expect(await c.req(`m${ADD.toString(16)},7`)).toBe('4889f84801f0c3'); // no int3 written
    expect(await c.req('c')).toMatch(new RegExp(`10:${le(ADD + 3n)};thread:1;swbreak:;$`));
    expect(m.regs.rax).toBe(1n); // the add has not run
    expect(await c.req('c')).toMatch(new RegExp(`10:${le(ADD + 6n)};thread:1;hwbreak:;$`));
    expect(await c.req(`z1,${(ADD + 6n).toString(16)},1`)).toBe('OK');
    expect(await c.req(`z0,${(ADD + 3n).toString(16)},1`)).toBe('OK');
    expect(m.listBreakpoints()).toEqual([]);
    expect(await c.req('c')).toBe('W03');
  });

  it('QStartNoAckMode: no acks either way afterwards', async () => {
    await start(ADD);
    expect(await c.req('QStartNoAckMode')).toBe('OK');
    c.ackMode = false;
    c.raw('+'); // gdb's ack of that OK is ignored
    expect(await c.req('qC')).toBe('QC1');
    c.raw('$qC#00'); // a bad checksum is dropped silently now
    expect(await c.req('qAttached')).toBe('1');
  });

  it('a 0x03 interrupt stops a running c with SIGINT', async () => {
    await start(LOOP, [], { sliceUs: 5000 });
    c.send('c');
    expect(await c.next()).toBe('+');
    await new Promise((r) => setTimeout(r, 100));
    c.raw('\x03');
    expect(await c.packet()).toMatch(new RegExp(`^T02.*10:${le(LOOP)};thread:1;$`));
    expect(await c.req('p10')).toBe(le(LOOP)); // still serving
  });

  it('a guest fault stops with SIGSEGV at the faulting instruction, its message on the console', async () => {
    await start(FAULT);
    c.send('c');
    expect(await c.next()).toBe('+');
    const o = await c.packet();
    expect(o[0]).toBe('O');
    expect(Buffer.from(o.slice(1), 'hex').toString()).toMatch(/^guest fault: read access to unmapped memory at 0x0, rip 0x400020/);
    expect(await c.packet()).toMatch(new RegExp(`^T0b.*10:${le(FAULT)};`));
  });

  it('a client that disconnects mid-run ends the session; the machine is left usable', async () => {
    await start(LOOP, [], { sliceUs: 5000 });
    c.send('c');
    expect(await c.next()).toBe('+');
    await new Promise((r) => setTimeout(r, 50));
    c.close();
    expect(await stub.ended).toEqual({ kind: 'disconnect' });
    await new Promise((r) => setTimeout(r, 50)); // the slice loop notices and stops
    expect(m.regs.rip).toBe(LOOP);
    m.regs.rip = ADD;
    expect(m.step().kind).toBe('step');
  });

  it('a client that disconnects mid-step ends the session', async () => {
    await start(ADD, [1n, 2n]);
    c.send('s');
    c.close();
    expect(await stub.ended).toEqual({ kind: 'disconnect' });
  });

  it('D detaches (breakpoints removed), k and vKill kill', async () => {
    await start(ADD, [1n, 2n]);
    expect(await c.req(`Z0,${(ADD + 3n).toString(16)},1`)).toBe('OK');
    expect(await c.req('D')).toBe('OK');
    expect(await stub.ended).toEqual({ kind: 'detach' });
    expect(m.listBreakpoints()).toEqual([]);
    expect(m.run()).toEqual({ kind: 'exit', rax: 3n }); // the call runs on without gdb

    const m2 = testMachine();
    try {
      m2.prepareCall(ADD, []);
      const s2 = await GdbStub.listen(m2);
      const c2 = await Client.connect(s2.port);
      c2.send('k');
      expect(await s2.ended).toEqual({ kind: 'kill' });
      const s3 = await GdbStub.listen(m2);
      const c3 = await Client.connect(s3.port);
      expect(await c3.req('vKill;1')).toBe('OK');
      expect(await s3.ended).toEqual({ kind: 'kill' });
      c2.close(); c3.close();
    } finally { m2.close(); }
  });

  it('serves one client: a second connection is refused', async () => {
    await start(ADD);
    expect(await c.req('qC')).toBe('QC1');
    await expect(Client.connect(stub.port).then(async (c2) => { await c2.next(1000); })).rejects.toThrow();
    expect(await c.req('qC')).toBe('QC1');
  });
});

// --- the CLI under real gdb ----------------------------------------------------------------

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const BIN = `${ROOT}bin/bpfemu.js`;
const OBJ = `${ROOT}images/build/bpf/fentry_test.bpf.o`;
const hasGdb = spawnSync('gdb', ['--version']).status === 0;

interface Server { proc: ChildProcess; port: number; out: () => string; err: () => string; done: Promise<number | null> }

async function gdbserver(...command: string[]): Promise<Server> {
  const proc = spawn(process.execPath, [BIN, 'gdbserver', '--port', '0', '--', ...command], { env: { ...process.env, BPFEMU_LOG: 'silent' } });
  let out = '', err = '';
  proc.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
  const done = new Promise<number | null>((r) => proc.on('exit', (code) => r(code)));
  const port = await new Promise<number>((resolve, reject) => {
    proc.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
      const m = /listening on 127\.0\.0\.1:(\d+)/.exec(err);
      if (m) resolve(Number(m[1]));
    });
    void done.then(() => reject(new Error(`gdbserver exited: ${err}`)));
  });
  return { proc, port, out: () => out, err: () => err, done };
}

function gdb(port: number, cmds: string[]): Promise<string> {
  return new Promise((resolve) => {
    const args = ['-nx', '-batch', '-ex', `target remote 127.0.0.1:${port}`, ...cmds.flatMap((c) => ['-ex', c])];
    const p = spawn('gdb', args, { cwd: ROOT });
    let text = '';
    p.stdout.on('data', (d: Buffer) => { text += d.toString(); });
    p.stderr.on('data', (d: Buffer) => { text += d.toString(); });
    p.on('exit', () => resolve(text));
  });
}

describe.skipIf(!hasGdb || !existsSync(OBJ))(`real gdb attached to bpfemu gdbserver${hasGdb ? '' : ' (skipped: gdb is not installed)'}`, () => {
  it('steps from a traced kernel function into its trampoline, stops in the program, reads ctx, runs to the exit', async () => {
    // Where the trampoline and program land: the same boot and load as the server's.
    const { sys, obj } = await bootAndLoad(OBJ);
    obj.attachTracing();
    const tramp = sys.kernel.ksyms.all().find((s) => s.name.startsWith('bpf_trampoline_'))!;
    const prog = sys.kernel.ksyms.all().find((s) => /^bpf_prog_[0-9a-f]{16}_test1$/.test(s.name))!;
    obj.close(); sys.close();

    const srv = await gdbserver('trace', OBJ, '--call', 'bpf_fentry_test1', '1');
    const text = await gdb(srv.port, [
      'info symbol $pc', 'x/2i $pc', 'stepi', 'info registers rip', 'x/3i $pc',
      `break ${prog.name}`, 'continue', 'bt 3', 'x/2gx $rdi', 'delete', 'continue',
    ]);
    expect(await srv.done).toBe(0);
    // The kernel image's symbols and source, from qXfer:exec-file:read alone.
    expect(text).toContain(`Reading symbols from ${ROOT}images/build/vmlinux`);
    expect(text).toMatch(/bpf_fentry_test1 \(a=1\) at .*images\/kernel\/test_run\.c:\d+/);
    expect(text).toContain('bpf_fentry_test1 in section .text');
    // The ftrace site now calls the trampoline, named from the served symbol file.
    const ta = `0x${tramp.address.toString(16)}`;
    expect(text).toMatch(new RegExp(`=> 0xffffffff[0-9a-f]+ <bpf_fentry_test1>:\\s+call\\s+${ta} <${tramp.name}>`));
    expect(text).toMatch(new RegExp(`rip\\s+${ta}\\s+${ta} <${tramp.name}>`));
    expect(text).toMatch(new RegExp(`=> ${ta} <${tramp.name}>:\\s+push\\s+%rbp`));
    expect(text).toMatch(new RegExp(`<${tramp.name}\\+1>:\\s+mov\\s+%rsp,%rbp`));
    // In the program: the frames are program ← trampoline ← function; ctx slot 0 is a = 1.
    expect(text).toMatch(new RegExp(`Breakpoint 1, 0x0*${prog.address.toString(16)} in ${prog.name} \\(\\)`));
    expect(text).toMatch(new RegExp(`#1 +0x[0-9a-f]+ in ${tramp.name} \\(\\)`));
    expect(text).toMatch(/#2 +0x[0-9a-f]+ in bpf_fentry_test1 /);
    expect(text).toMatch(/0xffff8880[0-9a-f]+:\s+0x0000000000000001\s+0x[0-9a-f]{16}/);
    expect(text).toContain('[Inferior 1 (Remote target) exited with code 02]');
    // The command's own output: the program saw a = 1.
    expect(srv.out()).toMatch(/^return value: 2\ntest1_result = 1\n/);
    expect(srv.err()).toContain('gdbserver: the call returned: rax 0x2');
  });

  it('stepi through an fexit trampoline with stats on: each native call (TypeScript) runs once', async () => {
    const fexit = `${ROOT}images/build/bpf/fexit_test.bpf.o`;
    const srv = await gdbserver('trace', fexit, '--call', 'bpf_fentry_test2', '2', '3', '--stats');
    const text = await gdb(srv.port, ['stepi 12', 'x/i $pc', 'stepi 400']);
    expect(await srv.done).toBe(0);
    // 12 instructions in: __bpf_prog_enter, whose static key is a jmp to the stats path now.
    expect(text).toMatch(/=> 0x[0-9a-f]+ <__bpf_prog_enter>:\s+jmp\s+0x[0-9a-f]+ <__bpf_prog_enter\+\d+>/);
    expect(text).toContain('[Inferior 1 (Remote target) exited with code 05]');
    expect(srv.out()).toContain('test2_result = 1\n');
    expect(srv.out()).toMatch(/prog test2: run_cnt 1 run_time_ns \d+\n/);
  });

  it('call: gdb steps a plain kernel function by source line and sees the exit code', async () => {
    const srv = await gdbserver('call', 'bpf_fentry_test2', '2', '5');
    const text = await gdb(srv.port, ['next', 'info registers rip', 'continue']);
    expect(await srv.done).toBe(0);
    expect(text).toMatch(/bpf_fentry_test2 \(a=2, b=5\) at .*test_run\.c/);
    expect(text).toContain('[Inferior 1 (Remote target) exited with code 07]');
    expect(srv.out()).toBe('7\n');
  });

  it('gdb quitting without running to the end detaches: the call finishes on its own', async () => {
    const srv = await gdbserver('call', 'bpf_fentry_test1', '41');
    const text = await gdb(srv.port, ['stepi', 'info registers rip']);
    expect(text).toMatch(/rip\s+0x[0-9a-f]+/);
    expect(await srv.done).toBe(0);
    expect(srv.out()).toBe('42\n');
    expect(srv.err()).toContain('gdb detached');
  });

  it('gdb kill ends the command with an error', async () => {
    const srv = await gdbserver('call', 'bpf_fentry_test1', '1');
    await gdb(srv.port, ['kill']);
    expect(await srv.done).toBe(1);
    expect(srv.err()).toContain('Error: killed by gdb before the call returned');
  });
});

describe('bpfemu gdbserver without gdb', () => {
  it('a client that disconnects: the command fails with one line, the process exits', async () => {
    const srv = await gdbserver('call', 'bpf_fentry_test1', '1');
    const c = await Client.connect(srv.port);
    expect(await c.req('qC')).toBe('QC1');
    c.close();
    expect(await srv.done).toBe(1);
    expect(srv.err()).toMatch(/Error: gdb disconnected before the call returned\n$/);
  });

  it.each([
    [['frob'], /gdbserver cannot drive 'frob'/],
    [['call', 'no_such_func', '1'], /unknown kernel function: no_such_func/],
    [['call', 'bpf_fentry_test1'], /takes 1 argument/],
    [['trace', OBJ, '--call'], /needs --call FUNC/],
    [['trace', OBJ, '--bogus'], /unexpected '--bogus'/],
  ])('bad COMMAND %j: exit 2, one line', (words, msg) => {
    const r = spawnSync(process.execPath, [BIN, 'gdbserver', '--', ...words], { encoding: 'utf8', env: { ...process.env, BPFEMU_LOG: 'silent' } });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(msg);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });
});

