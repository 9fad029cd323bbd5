/**
 * Lets the worker's event loop poll between tests. Most of this suite is synchronous (Unicorn
 * runs, spawnSync of the CLI), and a file of synchronous tests never returns to the poll phase:
 * vitest's worker→main RPC (onTaskUpdate) then reads as unanswered after 60 s and fails the run
 * with "Timeout calling onTaskUpdate" although every test passed (vitest-dev/vitest#8164).
 */
import { afterEach } from 'vitest';

afterEach(() => new Promise<void>((resolve) => setImmediate(resolve)));
