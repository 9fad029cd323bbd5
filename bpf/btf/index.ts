/**
 * @fileoverview bpf/btf's public surface: the reader and its checks, layout, dumps, .BTF.ext,
 * CO-RE relocations and the builder.
 */
export * from './uapi.ts';
export { Btf, type BtfOptions } from './btf.ts';
export { BtfError, BTF_ERRORS, type BtfErrorCode } from './errors.ts';
export { validateBtf, type ValidateOptions } from './verifier.ts';
export { resolveSize, alignOf, findMember, type FoundMember } from './layout.ts';
export { dumpBtfRaw, dumpBtfJson, btfTypeRaw, btfTypeJson } from './dump.ts';
export { dumpBtfC } from './dump_c.ts';
export { BtfExt, type BtfExtHeader, type BpfFuncInfo, type BpfLineInfo, type BpfCoreRelo, type BtfExtSection } from './btf_ext.ts';
export {
  resolveCoreRelo, parseCoreSpec, formatCoreSpec, coreCandidates, essentialName, CoreReloError, CORE_RELO_KIND_STR,
  type CoreRelo, type CoreReloResult, type CoreSpec,
} from './core.ts';
export { BtfBuilder, type RawType, type MemberSpec, type BtfName } from './builder.ts';
