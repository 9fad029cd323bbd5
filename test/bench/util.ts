/**
 * @fileoverview Benchmark helpers: interleaved timing (A B A B …) and `name: value` output.
 */
export type Line = [name: string, value: number | string];

/** Runs each fn once per round, in turn, `rounds` times; returns the ms of each run per fn. */
export function interleave(rounds: number, fns: (() => unknown)[]): number[][] {
  const times = fns.map(() => [] as number[]);
  fns.forEach((f) => f()); // warm-up: translate the code, JIT the TypeScript
  for (let r = 0; r < rounds; r++) {
    fns.forEach((f, i) => {
      const t = performance.now();
      f();
      times[i]!.push(performance.now() - t);
    });
  }
  return times;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export function report(lines: Line[]): void {
  for (const [name, value] of lines) process.stdout.write(`${name}: ${value}\n`);
}
