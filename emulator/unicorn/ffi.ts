/**
 * @fileoverview Declarations of libunicorn.so.2 (Debian's libunicorn2) for koffi. Declarations only:
 * every status is checked in engine.ts, which is the only importer of this file.
 */
import koffi from 'koffi';

const lib = koffi.load('libunicorn.so.2');

// The engine handle stays opaque: callbacks receive it as a plain pointer they ignore.
export const ucEnginePtr = koffi.pointer(koffi.opaque('uc_engine'));

export const uc_version = lib.func('unsigned int uc_version(void *major, void *minor)');
export const uc_open = lib.func('int uc_open(int arch, int mode, _Out_ void **uc)');
export const uc_close = lib.func('int uc_close(void *uc)');
export const uc_strerror = lib.func('const char *uc_strerror(int code)');
export const uc_errno = lib.func('int uc_errno(void *uc)');
export const uc_query = lib.func('int uc_query(void *uc, int type, _Out_ uint64_t *result)');
// Value pointers are passed as BigUint64Array/Int32Array buffers (koffi hands over their memory).
export const uc_reg_read = lib.func('int uc_reg_read(void *uc, int regid, void *value)');
export const uc_reg_write = lib.func('int uc_reg_write(void *uc, int regid, void *value)');
export const uc_reg_read_batch = lib.func('int uc_reg_read_batch(void *uc, void *regs, void *vals, int count)');
export const uc_reg_write_batch = lib.func('int uc_reg_write_batch(void *uc, void *regs, void *vals, int count)');
export const uc_mem_map_ptr = lib.func('int uc_mem_map_ptr(void *uc, uint64_t address, size_t size, uint32_t perms, uint64_t ptr)');
export const uc_mem_unmap = lib.func('int uc_mem_unmap(void *uc, uint64_t address, size_t size)');
export const uc_mem_protect = lib.func('int uc_mem_protect(void *uc, uint64_t address, size_t size, uint32_t perms)');
export const uc_mem_read = lib.func('int uc_mem_read(void *uc, uint64_t address, void *bytes, size_t size)');
export const uc_mem_write = lib.func('int uc_mem_write(void *uc, uint64_t address, void *bytes, size_t size)');
export const uc_emu_start = lib.func('int uc_emu_start(void *uc, uint64_t begin, uint64_t until, uint64_t timeout, size_t count)');
export const uc_emu_stop = lib.func('int uc_emu_stop(void *uc)');
export const uc_hook_add = lib.func('int uc_hook_add(void *uc, _Out_ uint64_t *hh, int type, void *callback, void *user_data, uint64_t begin, uint64_t end)');
// The same entry point with its variadic tail: UC_HOOK_INSN passes the instruction id there.
export const uc_hook_add_insn = lib.func('int uc_hook_add(void *uc, _Out_ uint64_t *hh, int type, void *callback, void *user_data, uint64_t begin, uint64_t end, ...)');
export const uc_hook_del = lib.func('int uc_hook_del(void *uc, uint64_t hh)');
export const uc_ctl = lib.func('int uc_ctl(void *uc, int control, ...)');
export const uc_context_alloc = lib.func('int uc_context_alloc(void *uc, _Out_ void **context)');
export const uc_context_save = lib.func('int uc_context_save(void *uc, void *context)');
export const uc_context_restore = lib.func('int uc_context_restore(void *uc, void *context)');
export const uc_context_free = lib.func('int uc_context_free(void *context)');

// Callback prototypes, declared once (koffi refuses a named prototype declared twice).
export const CodeHookProto = koffi.proto('void bpfemu_uc_code_cb(void *uc, uint64_t address, uint32_t size, void *user)');
export const MemHookProto = koffi.proto('void bpfemu_uc_mem_cb(void *uc, int type, uint64_t address, int size, int64_t value, void *user)');
export const MemInvalidHookProto = koffi.proto('bool bpfemu_uc_mem_invalid_cb(void *uc, int type, uint64_t address, int size, int64_t value, void *user)');
export const IntrHookProto = koffi.proto('void bpfemu_uc_intr_cb(void *uc, uint32_t intno, void *user)');
export const InsnSyscallHookProto = koffi.proto('void bpfemu_uc_insn_syscall_cb(void *uc, void *user)');
export const InsnInvalidHookProto = koffi.proto('bool bpfemu_uc_insn_invalid_cb(void *uc, void *user)');

export { koffi };
