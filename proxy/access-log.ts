// The access log: one pino JSON line per request (method, url, status, bytes, upstream ms,
// total ms, remote address), written asynchronously so it costs little on the hot path.
import pino from 'pino';
import type { ProxyConfig } from '../src/config/schema.js';

/** Header paths redacted should a log line ever carry request/response headers. */
export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["proxy-authorization"]',
  'res.headers["set-cookie"]',
  'headers.authorization',
  'headers.cookie',
  'headers["set-cookie"]',
];

/**
 * Create the access logger for `cfg`, or null when disabled (the proxy then pays one null
 * check per request). Output goes to "stdout", "stderr" or a file path (created if missing).
 * pino.destination with sync: false and a 4 KiB minLength batches lines into few writes; call
 * `logger.flush()` (FrontProxy.close() does) before exit.
 */
export function createAccessLogger(
  cfg: ProxyConfig['access_log'],
  level: pino.Level = 'info',
): pino.Logger | null {
  if (!cfg.enabled) return null;
  const dest =
    cfg.output === 'stdout'
      ? pino.destination({ dest: 1, sync: false, minLength: 4096 })
      : cfg.output === 'stderr'
        ? pino.destination({ dest: 2, sync: false, minLength: 4096 })
        : pino.destination({ dest: cfg.output, sync: false, minLength: 4096, mkdir: true });
  return pino(
    {
      level,
      // No pid/hostname on every line: they are constant and cost bytes per request.
      base: { log: 'access' },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    },
    dest,
  );
}
