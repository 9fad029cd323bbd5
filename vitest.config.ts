import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Each file boots its own machines; Unicorn instances are per-process state.
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 120_000,
    setupFiles: ['test/setup/yield.ts'],
    env: { BPFEMU_LOG: process.env.BPFEMU_LOG ?? 'silent' },
  },
});
