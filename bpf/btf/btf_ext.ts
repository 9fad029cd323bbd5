/**
 * @fileoverview The .BTF.ext section of a BPF object (libbpf_internal.h's btf_ext_header and
 * btf.c's btf_ext__new()): per ELF section, the BTF FUNC of each function (func_info), the
 * source line of instructions (line_info) and the CO-RE relocations (core_relo). Names and
 * source text are offsets into the .BTF string section. Instruction offsets are in bytes, as
 * in the file (libbpf divides by 8 for the kernel).
 *
 *   struct btf_ext_header { u16 magic; u8 version; u8 flags; u32 hdr_len;
 *                           u32 func_info_off, func_info_len, line_info_off, line_info_len;
 *                           u32 core_relo_off, core_relo_len; }   // the last two optional
 *   each info block:  u32 rec_size; then per section { u32 sec_name_off; u32 num_info; rec[num_info] }
 *   func_info rec:    { u32 insn_off; u32 type_id; }
 *   line_info rec:    { u32 insn_off; u32 file_name_off; u32 line_off; u32 line_col; }   line = line_col >> 10, col = line_col & 0x3ff
 *   core_relo rec:    { u32 insn_off; u32 type_id; u32 access_str_off; u32 kind; }      kind: enum bpf_core_relo_kind
 */
import { BTF_MAGIC, BTF_VERSION, type BpfCoreReloKind } from './uapi.ts';
import { btfFail } from './errors.ts';
import type { Btf } from './btf.ts';

export interface BtfExtHeader {
  magic: number; version: number; flags: number; hdrLen: number;
  funcInfoOff: number; funcInfoLen: number; lineInfoOff: number; lineInfoLen: number;
  /** 0/0 when the header is the short (pre-CO-RE) one. */
  coreReloOff: number; coreReloLen: number;
}

export interface BpfFuncInfo { insnOff: number; typeId: number }
export interface BpfLineInfo {
  insnOff: number; fileNameOff: number; lineOff: number; lineCol: number;
  line: number; col: number;
  /** The source file and line text, from the .BTF strings (undefined if the offset is bad). */
  fileName: string | undefined; lineText: string | undefined;
}
export interface BpfCoreRelo {
  insnOff: number; typeId: number; accessStrOff: number; kind: BpfCoreReloKind;
  /** The access string ("0:1:2"), from the .BTF strings. */
  accessStr: string | undefined;
}

/** The records of one ELF section (a program's section, e.g. "fentry/bpf_fentry_test7"). */
export interface BtfExtSection<R> { secNameOff: number; secName: string; records: R[] }
export interface BtfExtInfo<R> { recSize: number; sections: BtfExtSection<R>[] }

const HDR_MIN = 8; // offsetofend(struct btf_ext_header, hdr_len)
const HDR_CORE = 32; // offsetofend(struct btf_ext_header, core_relo_len)

/** A parsed .BTF.ext; `btf` is the object's .BTF, whose strings it uses. */
export class BtfExt {
  readonly hdr: BtfExtHeader;
  readonly funcInfo: BtfExtInfo<BpfFuncInfo>;
  readonly lineInfo: BtfExtInfo<BpfLineInfo>;
  readonly coreRelos: BtfExtInfo<BpfCoreRelo>;

  constructor(data: Uint8Array, btf: Btf) {
    const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
    const u32 = (o: number): number => dv.getUint32(o, true);
    // btf_ext_parse_hdr()
    if (data.length < HDR_MIN || data.length < u32(4)) btfFail('EXT_HDR_NOT_FOUND', {});
    const hdrLen = u32(4);
    const field = (o: number): number => (o + 4 <= hdrLen ? u32(o) : 0);
    const hdr: BtfExtHeader = {
      magic: dv.getUint16(0, true), version: data[2]!, flags: data[3]!, hdrLen,
      funcInfoOff: field(8), funcInfoLen: field(12), lineInfoOff: field(16), lineInfoLen: field(20),
      coreReloOff: field(24), coreReloLen: field(28),
    };
    if (hdr.magic !== BTF_MAGIC) btfFail('EXT_INVALID_MAGIC', {}, hdr.magic);
    if (hdr.version !== BTF_VERSION) btfFail('EXT_UNSUPPORTED_VERSION', {}, hdr.version);
    if (hdr.flags) btfFail('EXT_UNSUPPORTED_FLAGS', {}, hdr.flags);
    if (data.length === hdrLen) btfFail('EXT_NO_DATA', {});
    this.hdr = hdr;

    const str = (off: number): string | undefined => btf.strAt(off);
    // Each block: where it is, its name in messages, its minimum record size, the decoder.
    const block = <R>(off: number, len: number, desc: string, minRec: number, rec: (o: number) => R): BtfExtInfo<R> => {
      const out: BtfExtInfo<R> = { recSize: 0, sections: [] };
      if (len === 0) return out;
      // btf_ext_setup_info()
      if (off & 3) btfFail('EXT_UNALIGNED', {}, desc);
      const start = hdrLen + off;
      if (start + len > data.length) btfFail('EXT_BEYOND_END', {}, desc, off, len);
      if (len < 4) btfFail('EXT_NO_RECORD_SIZE', {}, desc);
      const recSize = u32(start);
      if (recSize < minRec || recSize & 3) btfFail('EXT_BAD_RECORD_SIZE', {}, desc, recSize);
      out.recSize = recSize;
      let o = start + 4, left = len - 4;
      if (!left) btfFail('EXT_NO_RECORDS', {}, desc);
      while (left) {
        if (left < 8) btfFail('EXT_NO_SEC_HDR', {}, desc);
        const secNameOff = u32(o), num = u32(o + 4);
        if (num === 0 || left < 8 + num * recSize) btfFail('EXT_BAD_NUM_RECORDS', {}, desc);
        const secName = str(secNameOff);
        if (secName === undefined || secName === '') btfFail('EXT_BAD_SEC_NAME', {}, desc, secNameOff);
        const records: R[] = [];
        for (let i = 0; i < num; i++) records.push(rec(o + 8 + i * recSize));
        out.sections.push({ secNameOff, secName, records });
        o += 8 + num * recSize;
        left -= 8 + num * recSize;
      }
      return out;
    };

    this.funcInfo = block(hdr.funcInfoOff, hdr.funcInfoLen, 'func_info', 8, (o) => ({ insnOff: u32(o), typeId: u32(o + 4) }));
    this.lineInfo = block(hdr.lineInfoOff, hdr.lineInfoLen, 'line_info', 16, (o) => {
      const lineCol = u32(o + 12);
      return {
        insnOff: u32(o), fileNameOff: u32(o + 4), lineOff: u32(o + 8), lineCol,
        line: lineCol >>> 10, col: lineCol & 0x3ff, fileName: str(u32(o + 4)), lineText: str(u32(o + 8)),
      };
    });
    this.coreRelos = hdrLen >= HDR_CORE
      ? block(hdr.coreReloOff, hdr.coreReloLen, 'core_relo', 16, (o) => ({
        insnOff: u32(o), typeId: u32(o + 4), accessStrOff: u32(o + 8), kind: u32(o + 12) as BpfCoreReloKind, accessStr: str(u32(o + 8)),
      }))
      : { recSize: 0, sections: [] };
  }

  /** The records of one ELF section, or empty lists. */
  section(secName: string): { funcInfo: BpfFuncInfo[]; lineInfo: BpfLineInfo[]; coreRelos: BpfCoreRelo[] } {
    const pick = <R>(info: BtfExtInfo<R>): R[] => info.sections.find((s) => s.secName === secName)?.records ?? [];
    return { funcInfo: pick(this.funcInfo), lineInfo: pick(this.lineInfo), coreRelos: pick(this.coreRelos) };
  }
}
