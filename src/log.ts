// The daemon's operational logger: pino, JSON lines to stderr, so stdout stays free for the
// access log (its default output) and for machine-readable command output.
import pino from 'pino';
import type { Config } from './config/schema.js';

export type LogLevel = Config['log']['level'];

/**
 * A logger writing synchronously to stderr (fd 2). Synchronous because operational logs are
 * rare (not per request) and must not be lost when the process exits right after writing.
 */
export function createLogger(
  level: LogLevel = 'info',
  destination: pino.DestinationStream = stderr(),
): pino.Logger {
  return pino({ level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime }, destination);
}

function stderr(): pino.DestinationStream {
  return pino.destination({ dest: 2, sync: true });
}
