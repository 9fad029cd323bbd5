/**
 * @fileoverview Aligning two disassemblies side by side (`bpfemu trampoline diff`), as
 * `diff -y` does: the longest common subsequence of the instruction texts anchors the rows, and
 * between two anchors the left-only and right-only instructions are paired as changed rows
 * (`|`), the surplus shown alone (`<` left only, `>` right only).
 *
 * The texts compared are normalised by the caller (tramp/image.ts): addresses become symbols
 * (`call <__bpf_prog_enter>`, `movabs rdi, <prog fentry>`), so two images at different
 * addresses line up wherever their instructions are the same.
 */

/** One row: an instruction index on each side (undefined: nothing there), and how they relate. */
export interface AlignedRow {
  a: number | undefined;
  b: number | undefined;
  /** `=` the same text; `|` changed; `<` only on the left; `>` only on the right. */
  op: '=' | '|' | '<' | '>';
}

/**
 * The LCS alignment of `a` and `b` (O(n·m) table: trampolines are at most a few hundred
 * instructions). Ties prefer keeping the left side's order first, as diff does.
 */
export function alignTexts(a: readonly string[], b: readonly string[]): AlignedRow[] {
  const n = a.length, m = b.length;
  // lcs[i][j]: the LCS length of a[i..] and b[j..], in one flat array.
  const lcs = new Uint32Array((n + 1) * (m + 1));
  const at = (i: number, j: number): number => i * (m + 1) + j;
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      lcs[at(i, j)] = a[i] === b[j] ? lcs[at(i + 1, j + 1)]! + 1 : Math.max(lcs[at(i + 1, j)]!, lcs[at(i, j + 1)]!);
    }
  }
  const rows: AlignedRow[] = [];
  let gapA: number[] = [], gapB: number[] = [];
  // A run of unmatched instructions between two anchors: paired up as changes, the rest alone.
  const flush = (): void => {
    const k = Math.min(gapA.length, gapB.length);
    for (let x = 0; x < k; x++) rows.push({ a: gapA[x], b: gapB[x], op: '|' });
    for (const i of gapA.slice(k)) rows.push({ a: i, b: undefined, op: '<' });
    for (const j of gapB.slice(k)) rows.push({ a: undefined, b: j, op: '>' });
    gapA = []; gapB = [];
  };
  let i = 0, j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && a[i] === b[j]) {
      flush();
      rows.push({ a: i++, b: j++, op: '=' });
    } else if (j >= m || (i < n && lcs[at(i + 1, j)]! >= lcs[at(i, j + 1)]!)) gapA.push(i++);
    else gapB.push(j++);
  }
  flush();
  return rows;
}

/** The side-by-side text: `OFF  TEXT  MARK  OFF  TEXT`, the left column padded to one width. */
export function renderSideBySide(
  rows: readonly AlignedRow[],
  left: readonly { offset: number; text: string }[],
  right: readonly { offset: number; text: string }[],
  titles?: [string, string],
  width = 56,
): string[] {
  const cell = (x: { offset: number; text: string } | undefined, w: number): string =>
    (x ? `${x.offset.toString(16).padStart(4)}  ${x.text}` : '').slice(0, w).padEnd(w);
  const w = Math.min(width, Math.max(20, ...left.map((x) => x.text.length + 6)));
  const mark = { '=': ' ', '|': '|', '<': '<', '>': '>' } as const;
  const head = titles ? [`${`      ${titles[0]}`.padEnd(w)}        ${titles[1]}`] : [];
  return [...head, ...rows.map((r) => `${cell(r.a === undefined ? undefined : left[r.a], w)}  ${mark[r.op]}  ${cell(r.b === undefined ? undefined : right[r.b], 1000)}`.trimEnd())];
}
