/**
 * @fileoverview The interactive shell driven through a real pseudo-terminal (tmux): commands run
 * on one machine, Tab completes command words, errors don't end the shell.
 */
import { describe, it, expect } from 'vitest';
import { spawnSync, execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const BIN = fileURLToPath(new URL('../../bin/bpfemu.js', import.meta.url));
const hasTmux = spawnSync('tmux', ['-V']).status === 0;
const tmux = (...a: string[]): string => execFileSync('tmux', a, { encoding: 'utf8' });
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function waitFor(session: string, re: RegExp, ms = 20_000): Promise<string> {
  const end = Date.now() + ms;
  let screen = '';
  while (Date.now() < end) {
    screen = tmux('capture-pane', '-p', '-t', session);
    if (re.test(screen)) return screen;
    await sleep(100);
  }
  throw new Error(`timed out waiting for ${re} in:\n${screen}`);
}

describe.skipIf(!hasTmux)('bpfemu shell in a pseudo-terminal', () => {
  it('runs commands on one machine, completes with Tab, survives errors', async () => {
    const s = `bpfemu-test-${process.pid}`;
    tmux('new-session', '-d', '-s', s, '-x', '200', '-y', '50', process.execPath, BIN, 'shell');
    try {
      await waitFor(s, /^bpfemu>/m);
      tmux('send-keys', '-t', s, 'call bpf_fentry_test1 41', 'Enter');
      await waitFor(s, /^42$/m);
      tmux('send-keys', '-t', s, 'nosuchcmd', 'Enter');
      await waitFor(s, /Error: unknown command 'nosuchcmd'/);
      tmux('send-keys', '-t', s, 'ftr', 'Tab');
      await waitFor(s, /bpfemu> ftrace/);
      tmux('send-keys', '-t', s, ' list', 'Enter');
      await waitFor(s, /^eth_type_trans$/m);
      tmux('send-keys', '-t', s, 'quit', 'Enter');
      await sleep(500);
    } finally {
      spawnSync('tmux', ['kill-session', '-t', s]);
    }
  }, 60_000);
});
