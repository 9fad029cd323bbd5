/**
 * @fileoverview The bpf_conformance suite (../shared/conformance, all 313 files, ISA v1-v4) on
 * both engines: every file gives its `-- result`; nothing is skipped.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { fileURLToPath } from 'node:url';
import { boot, type System } from '../../index.ts';
import { x86_64 } from '../../arch/x86_64/jit.ts';
import { BpfRuntime } from '../../bpf/prog.ts';
import { ConformanceRunner, conformanceFiles } from '../../bpf/conformance.ts';

const DIR = fileURLToPath(new URL('../../../shared/conformance/', import.meta.url));
const files = conformanceFiles(DIR);

let sys: System;
let runner: ConformanceRunner;
beforeAll(async () => {
  sys = await boot();
  runner = new ConformanceRunner(new BpfRuntime(sys.kernel, x86_64));
});
afterAll(() => { runner.free(); sys.close(); });

describe.each(['interp', 'jit'] as const)('conformance (%s)', (engine) => {
  it('has all 313 files', () => expect(files).toHaveLength(313));
  it.each(files.map((f) => [f.split('/').pop()!, f]))('%s', (_name, path) => {
    const r = runner.run(path, engine);
    expect(r.reason ?? '').not.toMatch(/./); // a failure prints its reason
    expect(r.status).toBe('pass');
  });
  it('leaves no JIT pages or kmalloc memory behind', () => {
    const pages = sys.kernel.execmem.pagesInUse, slab = sys.kernel.slab.inUse;
    runner.run(files[0]!, engine);
    expect(sys.kernel.execmem.pagesInUse).toBe(pages);
    expect(sys.kernel.slab.inUse).toBe(slab);
  });
});
