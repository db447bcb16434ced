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

/** Loggers made by createAccessLogger: their line format is known, so lines can be pre-formatted. */
const ownLoggers = new WeakSet<pino.Logger>();

/** Writes one access-log line. Made once per logger (see accessLineWriter), called per request. */
export type AccessLine = (
  remote: string | undefined,
  method: string | undefined,
  url: string | undefined,
  status: number,
  bytes: number,
  upstreamMs: number | null,
  totalMs: number,
  error: string | null,
  aborted: boolean,
) => void;

/**
 * The per-request access-log writer for `logger`, or null when it logs nothing at info level.
 * For loggers from createAccessLogger the line is formatted here, byte-for-byte what pino would
 * write (level, time, bindings, fields), straight into pino's destination: bench/proxy's
 * profile showed pino's generic serialiser (_asJson and friends) at ~10% of the 4 KiB hot
 * path. Other loggers get an ordinary `logger.info(object)`. Level changes after this call
 * are not seen (the proxy makes a new writer when it is given a new logger).
 */
export function accessLineWriter(logger: pino.Logger | null): AccessLine | null {
  if (logger === null || !logger.isLevelEnabled('info')) return null;
  if (!ownLoggers.has(logger)) {
    return (remote, method, url, status, bytes, upstreamMs, totalMs, error, aborted) => {
      const line: Record<string, unknown> = {
        remote,
        method,
        url,
        status,
        bytes,
        upstream_ms: upstreamMs,
        total_ms: totalMs,
      };
      if (error !== null) line.error = error;
      if (aborted) line.aborted = true;
      logger.info(line);
    };
  }
  const internals = logger as unknown as Record<symbol, unknown>;
  const stream = internals[pino.symbols.streamSym] as { write(s: string): unknown };
  const time = internals[pino.symbols.timeSym] as () => string;
  const head = '{"level":30';
  const bindings = internals[pino.symbols.chindingsSym] as string;
  return (remote, method, url, status, bytes, upstreamMs, totalMs, error, aborted) => {
    // remote is an IP address and method an HTTP token (llhttp checked it): no escaping
    // needed. The URL may hold '"' or '\', so it goes through JSON.stringify.
    // Like pino, a field whose value is undefined is left out (a socket already gone has no
    // remote address).
    let s = `${head}${time()}${bindings}`;
    if (remote !== undefined) s += `,"remote":"${remote}"`;
    if (method !== undefined) s += `,"method":"${method}"`;
    if (url !== undefined) s += `,"url":${JSON.stringify(url)}`;
    s += `,"status":${status},"bytes":${bytes},"upstream_ms":${upstreamMs},"total_ms":${totalMs}`;
    if (error !== null) s += `,"error":"${error}"`;
    if (aborted) s += ',"aborted":true';
    stream.write(s + '}\n');
  };
}

/** The part of pino's SonicBoom destination that LineBatch uses. */
interface Destination {
  write(s: string): boolean;
  flush(cb?: (err?: Error) => void): void;
  flushSync(): void;
  end(): void;
}

function writeBatch(batch: LineBatch): void {
  batch.push();
}

/**
 * Collects the lines of one event-loop turn into one string and hands it to the destination
 * once (setImmediate): SonicBoom's write() measures the UTF-8 length of its whole pending
 * buffer on every call (flattening the concatenated string, up to minLength bytes copied per
 * line), so line-at-a-time writes cost O(buffer) each. Every line goes through here (pino's
 * own writes too), so their order is kept; flush() and flushSync() push the batch first.
 */
/**
 * Lines reach the destination within this long even at low traffic: the destination only writes
 * once minLength (4 KiB) has gathered, so one request a minute would sit unwritten for half an
 * hour (and be lost by a crash). Like nginx's `access_log ... flush=1s`.
 */
export const ACCESS_LOG_FLUSH_MS = 1_000;

function periodicFlush(batch: LineBatch): void {
  batch.tick();
}

class LineBatch {
  private pending = '';
  private scheduled = false;
  /** Lines handed to the destination since the last periodic flush. */
  private wrote = false;
  /** Runs while lines arrive; stops after one idle period. */
  private timer: NodeJS.Timeout | null = null;
  constructor(private readonly dest: Destination) {}

  write(s: string): boolean {
    this.pending += s;
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(writeBatch, this);
    }
    return true;
  }

  push(): void {
    this.scheduled = false;
    const s = this.pending;
    if (s === '') return;
    this.pending = '';
    this.dest.write(s);
    this.wrote = true;
    if (this.timer === null) {
      this.timer = setInterval(periodicFlush, ACCESS_LOG_FLUSH_MS, this);
      this.timer.unref();
    }
  }

  /** Write what the destination holds; after an idle period (one last flush) the timer stops. */
  tick(): void {
    if (!this.wrote && this.timer !== null) {
      clearInterval(this.timer);
      this.timer = null;
    }
    this.wrote = false;
    this.dest.flush();
  }

  flush(cb?: (err?: Error) => void): void {
    this.push();
    this.dest.flush(cb);
  }

  flushSync(): void {
    this.push();
    this.dest.flushSync();
  }

  end(): void {
    this.push();
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    this.dest.end();
  }
}

/**
 * Create the access logger for `cfg`, or null when disabled (the proxy then pays one null
 * check per request). Output goes to "stdout", "stderr" or a file path (created if missing).
 * Lines are gathered per event-loop turn (LineBatch), then pino.destination with sync: false and
 * a 4 KiB minLength batches them into few writes, flushed at least every ACCESS_LOG_FLUSH_MS;
 * call `logger.flush()` (FrontProxy.close() does) before exit.
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
  const logger = pino(
    {
      level,
      // No pid/hostname on every line: they are constant and cost bytes per request.
      base: { log: 'access' },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    },
    new LineBatch(dest as unknown as Destination),
  );
  ownLoggers.add(logger);
  return logger;
}
