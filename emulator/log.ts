/**
 * @fileoverview The project's logger: pino, JSON lines to stderr, level from BPFEMU_LOG
 * (silent unless set, so tests and CLI output stay clean).
 */
import { pino } from 'pino';

export const logger = pino(
  { name: 'bpfemu', level: process.env.BPFEMU_LOG ?? 'silent' },
  pino.destination(2),
);
