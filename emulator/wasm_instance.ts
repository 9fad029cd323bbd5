/**
 * @fileoverview What capstone-js and keystone-js (emscripten WASM builds) have in common: a WASM
 * trap inside a call leaves the instance's memory in an unknown state, so the instance is
 * marked poisoned and the next load initialises a fresh one; the first load is shared by
 * concurrent callers, and a failed initialisation is retried by the next caller.
 */

/** A library instance that remembers whether a WASM trap poisoned it. */
export interface TrappableInstance {
  readonly trapped: boolean;
}

/** WebAssembly.RuntimeError: a trap (out-of-bounds access, unreachable) inside the module. */
export const isWasmTrap = (e: unknown): e is Error => e instanceof Error && e.name === 'RuntimeError';

/** One lazily initialised, replace-after-trap instance per process. */
export class WasmInstanceLoader<T extends TrappableInstance> {
  #loading: Promise<T> | undefined;
  readonly #init: () => Promise<T>;
  readonly #initError: (e: unknown) => Error;

  /** `init` builds an instance; `initError` is the error a failed initialisation is reported as. */
  constructor(init: () => Promise<T>, initError: (e: unknown) => Error) {
    this.#init = init;
    this.#initError = initError;
  }

  /** The live instance, or a fresh one when there is none yet or the last one trapped. */
  async get(): Promise<T> {
    if (this.#loading) {
      const inst = await this.#loading.catch(() => undefined); // a failed init is retried below
      if (inst && !inst.trapped) return inst;
    }
    const p = this.#init();
    this.#loading = p;
    p.catch(() => {
      if (this.#loading === p) this.#loading = undefined;
    });
    try {
      return await p;
    } catch (e) {
      throw this.#initError(e);
    }
  }
}
