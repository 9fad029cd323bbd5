/**
 * @fileoverview The verifier log (struct bpf_verifier_log): a text that grows as the verifier
 * writes and is cut back to a saved position when a finished path is popped (so that at level
 * 1 a rejected program's log shows the path that failed). Level bits: 1 (BPF_LOG_LEVEL1) the
 * instructions walked and states at branch points, 2 (BPF_LOG_LEVEL2) the state at every
 * instruction, 4 (BPF_LOG_STATS) the verification time and stack depths. Errors and the
 * `processed N insns` line are written at every level.
 */
export const BPF_LOG_LEVEL1 = 1, BPF_LOG_LEVEL2 = 2, BPF_LOG_STATS = 4;
export const BPF_LOG_LEVEL = BPF_LOG_LEVEL1 | BPF_LOG_LEVEL2;

export class VerifierLog {
  readonly level: number;
  private chunks: string[] = [];
  private len = 0;

  constructor(level: number) { this.level = level; }

  write(s: string): void {
    this.chunks.push(s);
    this.len += s.length;
  }

  /** The current length: what reset() cuts back to. */
  get pos(): number { return this.len; }

  /** bpf_vlog_reset: drop everything after `pos`. */
  reset(pos: number): void {
    if (pos >= this.len) return;
    const text = this.text().slice(0, pos);
    this.chunks = [text];
    this.len = text.length;
  }

  text(): string {
    if (this.chunks.length > 1) this.chunks = [this.chunks.join('')];
    return this.chunks[0] ?? '';
  }

  /** The log as lines (the trailing newline gives no empty last line). */
  lines(): string[] {
    const t = this.text();
    if (!t) return [];
    const l = t.split('\n');
    if (l.at(-1) === '') l.pop();
    return l;
  }
}
