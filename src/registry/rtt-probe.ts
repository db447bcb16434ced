// The origin's active RTT measurement: GET /v1/health on a member's control URL over a fresh
// connection, timed from "connected" to the answer's head, into an RttTable that registry
// lookups send as `rtt_ms`. Bounded: a few probes at a time, each member at most once per
// interval, at most 256 probes per interval; nothing here ever blocks the controller's tick.
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import { HEALTH_PATH } from '../../rescue-protocol/http-body.js';
import { MAX_RTT_ENTRIES, type RttTable } from './rtt.js';

/** Who to measure: a member id and its control listener's base URL. */
export interface ProbeTarget {
  readonly id: string;
  readonly control_url: string;
}

/** A health answer is `{"ok":true,"id":...,"v":1}`; anything much bigger is not one. */
const MAX_HEALTH_BYTES = 1024;
/** Probes in flight at once. */
export const PROBE_CONCURRENCY = 4;
/** The periodic round runs at least this often (new members get measured without waiting a whole interval). */
const MAX_ROUND_MS = 10_000;

function healthUrl(controlUrl: string): URL {
  const base = new URL(controlUrl);
  if (base.protocol !== 'http:' && base.protocol !== 'https:') throw new Error('control_url must be http(s)');
  return new URL(`${base.origin}${base.pathname.replace(/\/+$/, '')}${HEALTH_PATH}`);
}

/**
 * One round trip to `target`, ms: the time from the TCP (or TLS) connection being up to the
 * head of the answer to GET /v1/health, so one network round trip plus the member's time to
 * answer (a member whose event loop lags is as far away as it is slow). The connection is not
 * reused (`agent: false`): nothing is left open. Rejects on a refused or unanswered connection,
 * a timeout (connect included), a non-200 answer, or an answer from another member id (a stale
 * control URL now served by someone else).
 */
export function probeRtt(target: ProbeTarget, timeoutMs: number, signal?: AbortSignal): Promise<number> {
  return new Promise((resolve, reject) => {
    let url: URL;
    try {
      url = healthUrl(target.control_url);
    } catch (err) {
      reject(err instanceof Error ? err : new Error(String(err)));
      return;
    }
    const tls = url.protocol === 'https:';
    let connectedAt: number | null = null;
    let settled = false;
    const req = (tls ? httpsRequest : httpRequest)(url, {
      method: 'GET',
      agent: false,
      headers: { accept: 'application/json', connection: 'close' },
    });
    const finish = (err: Error | null, ms = 0): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      req.destroy();
      if (err) reject(err);
      else resolve(ms);
    };
    const timer = setTimeout(() => finish(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
    const onAbort = (): void => finish(new Error('probe aborted'));
    if (signal?.aborted) return onAbort();
    signal?.addEventListener('abort', onAbort, { once: true });
    req.once('socket', (socket: Socket) => {
      socket.once(tls ? 'secureConnect' : 'connect', () => (connectedAt = performance.now()));
    });
    req.once('response', (res: IncomingMessage) => {
      const answeredAt = performance.now();
      if (res.statusCode !== 200) return finish(new Error(`health answered HTTP ${res.statusCode}`));
      const chunks: Buffer[] = [];
      let total = 0;
      res.on('data', (chunk: Buffer) => {
        total += chunk.length;
        if (total > MAX_HEALTH_BYTES) finish(new Error('health answer too large'));
        else chunks.push(chunk);
      });
      res.once('error', (err) => finish(err));
      res.once('end', () => {
        let id: unknown;
        try {
          id = (JSON.parse(Buffer.concat(chunks).toString('utf8')) as { id?: unknown } | null)?.id;
        } catch {
          return finish(new Error('health answer is not JSON'));
        }
        if (id !== target.id) return finish(new Error(`answered as ${JSON.stringify(id)}, not ${target.id}`));
        if (connectedAt === null) return finish(new Error('answered before the connection was up'));
        finish(null, answeredAt - connectedAt);
      });
    });
    req.once('error', (err) => finish(err));
    req.end();
  });
}

export interface RttProberOptions {
  readonly table: RttTable;
  /** Each member is probed at most once per interval; at most 256 probes start per interval. */
  readonly intervalMs: number;
  /** Per probe, connect included. */
  readonly timeoutMs: number;
  /** Probes in flight at once (default 4). */
  readonly concurrency?: number;
  readonly logger?: Logger;
  /** Monotonic ms (performance.now by default); the table has its own. */
  readonly now?: () => number;
}

/** Where the periodic round finds members: the last lookup's candidates, and everyone the directory listed. */
export interface ProbeSources {
  candidates(): Iterable<ProbeTarget>;
  members(): Iterable<ProbeTarget>;
}

/**
 * Probes members and records their RTTs in the table. `probe()` only queues (it returns at once);
 * a probe that fails or times out is logged at debug and leaves the table as it was (a member
 * never measured stays unmeasured; an earlier measurement ages out by the table's limit).
 * Lifecycle: start() (optional periodic round), close() idempotent; aborts probes in flight.
 */
export class RttProber {
  private readonly opts: RttProberOptions;
  private readonly now: () => number;
  private readonly concurrency: number;
  /** Member id -> when its last probe was queued; in that order, so old entries prune from the front. */
  private readonly tried = new Map<string, number>();
  private readonly queue = new Map<string, ProbeTarget>();
  private readonly running = new Set<string>();
  private readonly aborter = new AbortController();
  private waiters: (() => void)[] = [];
  private timer: NodeJS.Timeout | null = null;
  private closed = false;

  constructor(opts: RttProberOptions) {
    this.opts = opts;
    this.now = opts.now ?? (() => performance.now());
    this.concurrency = Math.max(1, opts.concurrency ?? PROBE_CONCURRENCY);
  }

  /**
   * Queues, in the order given, each target not probed within the interval, while fewer than 256
   * probes started within it. O(targets); returns at once.
   */
  probe(targets: Iterable<ProbeTarget>): void {
    if (this.closed) return;
    const now = this.now();
    this.prune(now);
    for (const t of targets) {
      if (this.tried.size >= MAX_RTT_ENTRIES) break;
      if (this.tried.has(t.id) || this.running.has(t.id)) continue;
      this.tried.set(t.id, now);
      this.queue.set(t.id, t);
    }
    this.pump();
  }

  /**
   * Probes the sources every min(interval, 10 s), now included: the last lookup's candidates
   * first, then members measured before (kept fresh), then the rest of the directory in its order.
   */
  start(sources: ProbeSources): void {
    if (this.closed || this.timer) return;
    const round = (): void => {
      const first = [...sources.candidates()];
      const seen = new Set(first.map((c) => c.id));
      const measured: ProbeTarget[] = [];
      const rest: ProbeTarget[] = [];
      for (const m of sources.members()) {
        if (seen.has(m.id)) continue;
        (this.opts.table.get(m.id) !== undefined ? measured : rest).push(m);
      }
      this.probe([...first, ...measured, ...rest]);
    };
    this.timer = setInterval(round, Math.max(1, Math.min(this.opts.intervalMs, MAX_ROUND_MS)));
    this.timer.unref();
    round();
  }

  /** Resolves once nothing is queued or in flight. */
  settled(): Promise<void> {
    if (this.queue.size === 0 && this.running.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Stops the round, drops the queue, aborts probes in flight. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    this.queue.clear();
    this.aborter.abort();
    this.wake();
  }

  private pump(): void {
    while (!this.closed && this.running.size < this.concurrency && this.queue.size > 0) {
      const [id, target] = this.queue.entries().next().value!;
      this.queue.delete(id);
      this.running.add(id);
      probeRtt(target, this.opts.timeoutMs, this.aborter.signal)
        .then(
          (ms) => {
            if (this.closed) return;
            this.opts.table.record(id, ms);
            this.opts.logger?.trace({ member: id, rtt_ms: Math.round(ms * 10) / 10 }, 'RTT measured');
          },
          (err: unknown) => {
            if (this.closed) return;
            this.opts.logger?.debug(
              { member: id, control_url: target.control_url, err: (err as Error).message },
              'RTT probe failed; the member stays unmeasured',
            );
          },
        )
        .finally(() => {
          this.running.delete(id);
          this.pump();
          this.wake();
        });
    }
  }

  private wake(): void {
    if (this.queue.size > 0 || this.running.size > 0) return;
    for (const w of this.waiters.splice(0)) w();
  }

  private prune(now: number): void {
    for (const [id, at] of this.tried) {
      if (now - at < this.opts.intervalMs) return;
      this.tried.delete(id);
    }
  }
}
