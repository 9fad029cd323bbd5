/**
 * @fileoverview Page-aligned host memory from libc mmap (the one file that owns libc), with a
 * zero-copy view: TypeScript reads and writes what the guest sees with no FFI call.
 */
import koffi from 'koffi';

const libc = koffi.load('libc.so.6');
const mmap = libc.func('void *mmap(void *addr, size_t length, int prot, int flags, int fd, int64_t offset)');
const munmap = libc.func('int munmap(void *addr, size_t length)');

const PROT_READ = 1, PROT_WRITE = 2;
const MAP_PRIVATE = 0x02, MAP_ANONYMOUS = 0x20;
export const PAGE_SIZE = 4096;

/** Host pages that can back one or more guest mappings. */
export class HostRegion {
  readonly size: number;
  readonly bytes: Uint8Array;
  readonly view: DataView;
  private ptr: unknown;

  constructor(size: number) {
    if (size <= 0 || size % PAGE_SIZE !== 0) throw new RangeError(`host region size ${size} is not a positive multiple of ${PAGE_SIZE}`);
    const p = mmap(null, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p === null || koffi.address(p) === 0xffffffffffffffffn) throw new Error(`mmap(${size}) failed: errno ${koffi.errno()}`);
    this.ptr = p;
    this.size = size;
    const ab = koffi.view(p, size) as ArrayBuffer;
    this.bytes = new Uint8Array(ab);
    this.view = new DataView(ab);
  }

  /** The host address `offset` bytes in, for uc_mem_map_ptr. */
  hostAddress(offset = 0): bigint {
    if (this.ptr === null) throw new Error('host region already freed');
    return BigInt(koffi.address(this.ptr) as bigint) + BigInt(offset);
  }

  get freed(): boolean { return this.ptr === null; }

  free(): void {
    if (this.ptr === null) return;
    munmap(this.ptr, this.size);
    this.ptr = null;
  }
}
