// Upstream runtime state: per upstream origin one undici Pool and one raw-socket H1Pool
// (h1-upstream.ts; both open connections only when used), round-robin selection with
// passive health (an upstream that refused a connection is skipped for a while). Pools are
// runtime state kept apart from config (Caddy's hosts.go idea): a reload that keeps an
// upstream with the same pool settings keeps its Pool and its warm keep-alive sockets.
import { Pool } from 'undici';
import type { ProxyConfig } from '../src/config/schema.js';
import { H1Pool } from './h1-upstream.js';

/** How long an upstream that failed to connect is skipped (unless all are down). */
const DOWN_MS = 2_000;

export class Upstream {
  /** Host header value in host_header: "upstream" mode, e.g. "127.0.0.1:8081". */
  readonly host: string;
  /** performance.now() until which selection skips this upstream. */
  downUntil = 0;
  /** The fast client's pool (requests without a body, unless proxy.upstream_client is undici). */
  readonly h1: H1Pool;
  constructor(
    readonly key: string,
    readonly origin: string,
    readonly pool: Pool,
    cfg: ProxyConfig,
  ) {
    const url = new URL(origin);
    this.host = url.host;
    const t = cfg.timeouts;
    const host = url.hostname.replace(/^\[|\]$/g, '');
    this.h1 = new H1Pool(
      host,
      Number(url.port || 80),
      cfg.connections,
      t.connect_ms,
      t.upstream_keepalive_ms,
    );
  }

  /** Graceful: idle connections close now, busy ones after their response. */
  close(): Promise<void> {
    return Promise.all([this.pool.close(), this.h1.close()]).then(() => undefined);
  }

  destroy(): Promise<void> {
    return Promise.all([this.pool.destroy(), this.h1.destroy()]).then(() => undefined);
  }
}

/** Settings that are baked into a Pool; a change means a new Pool. */
function poolKey(origin: string, cfg: ProxyConfig): string {
  const t = cfg.timeouts;
  return `${origin}|${cfg.connections}|${t.connect_ms}|${t.upstream_keepalive_ms}`;
}

export function createPool(origin: string, cfg: ProxyConfig): Pool {
  const t = cfg.timeouts;
  return new Pool(origin, {
    connections: cfg.connections,
    // No pipelining to upstreams: a reset would take several requests with it.
    pipelining: 1,
    keepAliveTimeout: t.upstream_keepalive_ms,
    keepAliveMaxTimeout: t.upstream_keepalive_ms,
    connect: { timeout: t.connect_ms },
    headersTimeout: t.header_ms,
    bodyTimeout: t.body_idle_ms,
  });
}

/** The upstreams of one snapshot. `pick()` is on the hot path: a counter and a time check. */
export class UpstreamSet {
  readonly list: readonly Upstream[];
  private next = 0;

  constructor(list: Upstream[]) {
    this.list = list;
  }

  /**
   * Build the set for `cfg`, reusing `previous` upstreams whose pool settings are unchanged.
   * Returns the set and the upstreams of `previous` no longer used (the caller closes them).
   */
  static prepare(cfg: ProxyConfig, previous: UpstreamSet | null): { set: UpstreamSet; retired: Upstream[] } {
    const old = new Map<string, Upstream>();
    for (const u of previous?.list ?? []) old.set(u.key, u);
    const list: Upstream[] = [];
    for (const url of cfg.upstreams) {
      const origin = new URL(url).origin;
      const key = poolKey(origin, cfg);
      let u = old.get(key);
      if (u !== undefined) old.delete(key);
      else if (list.some((x) => x.key === key))
        continue; // same upstream listed twice
      else u = new Upstream(key, origin, createPool(origin, cfg), cfg);
      list.push(u);
    }
    return { set: new UpstreamSet(list), retired: [...old.values()] };
  }

  /** Round-robin over upstreams not marked down; if all are down, plain round-robin. */
  pick(avoid?: Upstream): Upstream {
    const list = this.list;
    const n = list.length;
    if (n === 1) return list[0]!;
    const now = performance.now();
    for (let i = 0; i < n; i++) {
      const u = list[this.next]!;
      this.next = (this.next + 1) % n;
      if (u.downUntil <= now && u !== avoid) return u;
    }
    const u = list[this.next]!;
    this.next = (this.next + 1) % n;
    return u;
  }

  static markDown(u: Upstream): void {
    u.downUntil = performance.now() + DOWN_MS;
  }
}
