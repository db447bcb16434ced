// The rescuer's side of the data path (issue 3 item 5): which rescue session a host name
// belongs to, the one origin front each session may fetch from (an undici Pool that lives as
// long as the session), the pull-through cache, drains, and the end of a session's names.
import type { IncomingMessage } from 'node:http';
import type pino from 'pino';
import type { Dispatcher, Pool } from 'undici';
import type { MemberIdentity } from '../../rescue-protocol/keys.js';
import { MemoryStore } from '../cache/memory-store.js';
import { PullThroughCache, type CacheOrigin } from '../cache/pull-through.js';
import type { ProxyResponse } from '../exchange.js';
import type { Snapshot } from '../snapshot.js';
import { createPool } from '../upstreams.js';
import { markerInterceptor } from './marker.js';
import type { OwnResponse } from './own-response.js';
import { UsageBook } from './usage.js';
import { EMPTY_SERVING_VIEW, type RescueServingEntry, type RescueServingView } from './view.js';

export interface RescueServingOptions {
  /** Byte bound of the rescue cache (all sessions together). Default 256 MiB. */
  cacheBytes?: number;
  /** Largest response stored. Default: the store's (min(8 MiB, cacheBytes / 4)). */
  cacheEntryBytes?: number;
  /**
   * After the last session leaves the view, our vhN names keep answering 421 this long (late
   * redirects, stale links) before the front drops back to its one-check fast path. Default 10 min.
   */
  endedLingerMs?: number;
}

/** vhN.<name>: a name made by this rescuer for one session (N never reused). */
const VH = /^vh\d+\./;

/** One live session's runtime state: kept across view swaps while the session stays. */
interface SessionRuntime {
  readonly id: string;
  entry: RescueServingEntry;
  readonly frontUrl: string;
  readonly pool: Pool;
  readonly dispatcher: Dispatcher;
  origin: CacheOrigin;
  /** Its vhN names (arrivals by redirect); every other name of the entry is a site name (DNS). */
  vhNames: ReadonlySet<string>;
  drainTimer: NodeJS.Timeout | null;
  /** Drain over: names answer 421, cache dropped, pool closed. */
  ended: boolean;
}

export class RescueServing {
  private view: RescueServingView = EMPTY_SERVING_VIEW;
  private readonly runtimes = new Map<string, SessionRuntime>();
  private cacheInstance: PullThroughCache | null = null;
  readonly usage = new UsageBook();
  private self: MemberIdentity | null = null;
  private ownVh: RegExp | null = null;
  private readonly selfRef = (): MemberIdentity | null => this.self;
  /** Consulted per request after the last session left, until this timer fires. */
  private linger: NodeJS.Timeout | null = null;

  constructor(
    private readonly opts: RescueServingOptions,
    private readonly snapshot: () => Snapshot,
    private readonly logger: pino.Logger,
    /** Called when `active` may have changed outside a setView() (the linger ran out). */
    private readonly onChange: () => void,
  ) {}

  /** True while some host name maps to a session, or just after (the front then consults us per request). */
  get active(): boolean {
    return this.view.hosts.size > 0 || this.linger !== null;
  }

  get cache(): PullThroughCache | null {
    return this.cacheInstance;
  }

  setSelf(self: MemberIdentity | null): void {
    this.self = self;
    this.ownVh = self === null ? null : new RegExp(`^vh\\d+\\.${escapeRe(self.id.toLowerCase())}$`);
    for (const rt of this.runtimes.values()) rt.vhNames = this.vhNamesOf(rt.entry);
  }

  /** Swap in a new view: new sessions get a pool, gone ones lose cache and pool, drains get a timer. */
  setView(view: RescueServingView): void {
    const old = this.view;
    this.view = view;
    for (const [id, rt] of this.runtimes) {
      if (!view.sessions.has(id)) {
        this.endSession(rt, 'left the view');
        this.runtimes.delete(id);
        this.usage.end(id);
      }
    }
    for (const [id, entry] of view.sessions) {
      let rt = this.runtimes.get(id);
      if (rt !== undefined && (rt.frontUrl !== entry.front_url || (rt.ended && entry.state === 'serve'))) {
        this.endSession(rt, 'front changed');
        rt = undefined;
      }
      if (rt === undefined) {
        rt = this.newRuntime(entry);
        this.runtimes.set(id, rt);
      } else if (rt.entry !== entry) {
        rt.entry = entry;
        rt.origin = this.cacheOrigin(entry, rt.dispatcher);
        rt.vhNames = this.vhNamesOf(entry);
      }
      this.usage.cell(id);
      this.armDrain(rt);
    }
    if (old.version !== view.version) this.logger.debug({ version: view.version }, 'rescue serving view');
    if (view.hosts.size > 0) this.stopLinger();
    else if (old.hosts.size > 0) this.startLinger();
  }

  private startLinger(): void {
    this.stopLinger();
    this.linger = setTimeout(() => {
      this.linger = null;
      this.onChange();
    }, this.opts.endedLingerMs ?? 600_000);
    this.linger.unref();
  }

  private stopLinger(): void {
    if (this.linger !== null) clearTimeout(this.linger);
    this.linger = null;
  }

  /**
   * Answer a request whose Host (lower case, no port) is `name`, if it is a rescued name:
   * returns false when the name is not ours to rescue (the front proxies it as usual).
   * `start()` makes the accounting record once we know we answer.
   */
  handle(
    name: string,
    req: IncomingMessage,
    res: ProxyResponse,
    start: () => OwnResponse,
    via: string,
  ): boolean {
    const entry = this.view.hosts.get(name);
    if (entry === undefined) {
      // A vhN name of ours whose session is gone (late redirect, stale bookmark): say so.
      if (this.ownVh === null || !this.ownVh.test(name)) return false;
      start().error('PRX_ERR_RESCUE_ENDED', via);
      return true;
    }
    const own = start();
    const rt = this.runtimes.get(entry.session);
    if (rt === undefined || rt.ended) {
      own.error('PRX_ERR_RESCUE_ENDED', via);
      return true;
    }
    own.usage = this.usage.cell(rt.id);
    own.byRedirect = rt.vhNames.has(name);
    const max = this.snapshot().maxBodyBytes;
    if (max > 0 && Number(req.headers['content-length']) > max) {
      own.error('PRX_ERR_BODY_TOO_LARGE', via);
      return true;
    }
    const cache = this.cacheInstance!;
    if (entry.state === 'serve') cache.handle(req, res, rt.origin);
    else if (entry.drain_until !== null && performance.now() < entry.drain_until)
      cache.passThrough(req, res, rt.origin);
    else {
      // The drain is over; the timer may not have fired yet.
      this.endSession(rt, 'drain over');
      own.error('PRX_ERR_RESCUE_ENDED', via);
    }
    return true;
  }

  /** A rescued name, or a vhN name of ours (live or not). */
  claims(name: string): boolean {
    return this.view.hosts.has(name) || (this.ownVh !== null && this.ownVh.test(name));
  }

  /** PURGE from the session's origin: drop these cached paths ("/a", "/img/*"). */
  purge(session: string, paths: readonly string[]): number {
    return this.cacheInstance?.purge(session, paths) ?? 0;
  }

  /** Close every pool and forget every session (front shutdown). */
  async close(): Promise<void> {
    this.stopLinger();
    const pools: Promise<void>[] = [];
    for (const rt of this.runtimes.values()) {
      if (rt.drainTimer !== null) clearTimeout(rt.drainTimer);
      rt.drainTimer = null;
      rt.ended = true;
      pools.push(rt.pool.destroy().catch(() => {}));
      this.cacheInstance?.dropOrigin(rt.id);
    }
    this.runtimes.clear();
    this.view = EMPTY_SERVING_VIEW;
    await Promise.all(pools);
  }

  // ---- sessions -------------------------------------------------------------------------------

  private newRuntime(entry: RescueServingEntry): SessionRuntime {
    const snap = this.snapshot();
    if (this.cacheInstance === null) {
      const t = snap.config.timeouts;
      const store = new MemoryStore({
        maxBytes: this.opts.cacheBytes ?? 256 << 20,
        ...(this.opts.cacheEntryBytes !== undefined ? { maxEntryBytes: this.opts.cacheEntryBytes } : {}),
      });
      this.cacheInstance = new PullThroughCache({
        store,
        headersTimeoutMs: t.header_ms,
        bodyTimeoutMs: t.body_idle_ms,
        logger: this.logger,
        maxBodyBytes: () => this.snapshot().maxBodyBytes,
      });
    }
    const front = new URL(entry.front_url);
    // Only the session's origin front: the pool is bound to it, whatever a request says.
    const pool = createPool(front.origin, snap.config);
    const dispatcher = pool.compose(markerInterceptor(this.selfRef, siteHost(entry, this.vhNamesOf(entry))));
    this.logger.info(
      { session: entry.session, origin: entry.origin, front: entry.front_url, names: entry.names },
      'rescue serving: session names mapped',
    );
    return {
      id: entry.session,
      entry,
      frontUrl: entry.front_url,
      pool,
      dispatcher,
      origin: this.cacheOrigin(entry, dispatcher),
      vhNames: this.vhNamesOf(entry),
      drainTimer: null,
      ended: false,
    };
  }

  private cacheOrigin(entry: RescueServingEntry, dispatcher: Dispatcher): CacheOrigin {
    const mc = entry.micro_cache;
    return Object.freeze({
      id: entry.session,
      fetchBase: new URL(entry.front_url),
      dispatcher,
      ...(mc !== null ? { microCache: { paths: mc.paths, ttlS: mc.ttl_s } } : {}),
    });
  }

  private vhNamesOf(entry: RescueServingEntry): ReadonlySet<string> {
    const own = this.ownVh;
    return new Set(entry.names.filter((n) => (own !== null ? own.test(n) : VH.test(n))));
  }

  /** A draining session ends (421, cache dropped, pool closed) when its drain_until passes. */
  private armDrain(rt: SessionRuntime): void {
    if (rt.drainTimer !== null) {
      clearTimeout(rt.drainTimer);
      rt.drainTimer = null;
    }
    const e = rt.entry;
    if (e.state !== 'drain' || rt.ended) return;
    const left = (e.drain_until ?? 0) - performance.now();
    if (left <= 0) {
      this.endSession(rt, 'drain over');
      return;
    }
    rt.drainTimer = setTimeout(() => {
      rt.drainTimer = null;
      this.endSession(rt, 'drain over');
    }, left + 1);
    rt.drainTimer.unref();
  }

  private endSession(rt: SessionRuntime, reason: string): void {
    if (rt.drainTimer !== null) clearTimeout(rt.drainTimer);
    rt.drainTimer = null;
    if (rt.ended) return;
    rt.ended = true;
    const counters = this.cacheInstance?.dropOrigin(rt.id);
    // close() lets requests already sent finish; destroy only if that fails.
    rt.pool.close().catch(() => rt.pool.destroy().catch(() => {}));
    this.logger.info(
      { session: rt.id, origin: rt.entry.origin, reason, cache: counters },
      'rescue serving: session ended',
    );
  }
}

/** Host sent to the origin: its first site name (not a vhN name), else the front's host. */
function siteHost(entry: RescueServingEntry, vh: ReadonlySet<string>): string {
  for (const n of entry.names) if (!vh.has(n)) return n;
  return new URL(entry.front_url).host;
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
