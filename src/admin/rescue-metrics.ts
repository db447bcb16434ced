// Prometheus metrics of the rescue loop (issue 3): redirects, the rescue cache, the member's
// state, Pr and sessions. The admin listener imports no controller: the daemon hands it these
// read functions, called at scrape time.
import { Counter, Gauge, type Registry } from 'prom-client';

/** What the controller reports, structurally (a subset of its ControllerStatus). */
export interface RescueStatusView {
  readonly mode: string;
  readonly state: string;
  readonly pr_published: number;
  readonly sessions: readonly {
    readonly id: string | null;
    readonly role: string;
    readonly peer: string;
    readonly state: string;
    readonly rate: number;
  }[];
}

/** The rescue cache's cumulative counters and store size (null until a rescue view was set). */
export interface RescueCacheView {
  readonly counters: {
    readonly requests: number;
    readonly hits: number;
    readonly misses: number;
    readonly stale: number;
    readonly bypass: number;
    readonly coalesced: number;
    readonly originFetches: number;
    readonly originErrors: number;
  };
  readonly store: { readonly bytes: number; readonly entries: number; readonly maxBytes: number };
}

export interface RescueMetricsSource {
  /** null when rescue is off (no controller). */
  status(): RescueStatusView | null;
  redirects(): { readonly redirects: number; readonly noTokens: number };
  cache(): RescueCacheView | null;
}

const MEMBER_STATES = ['normal', 'sos', 'rescue'] as const;
const MODES = ['on', 'observe', 'off'] as const;

export function registerRescueMetrics(registry: Registry, src: RescueMetricsSource): void {
  const counter = (name: string, help: string, read: () => number): void => {
    new Counter({
      name,
      help,
      registers: [registry],
      collect() {
        this.reset();
        this.inc(read());
      },
    });
  };
  counter(
    'dotslash_redirects_total',
    'Requests answered with a 302 to a rescuer (origin side).',
    () => src.redirects().redirects,
  );
  counter(
    'dotslash_redirect_no_tokens_total',
    'Requests drawn for a redirect but served locally: every session had used its rate (Rr).',
    () => src.redirects().noTokens,
  );
  new Counter({
    name: 'dotslash_rescue_cache_requests_total',
    help: 'Requests for rescued sites, by how the rescue cache answered them.',
    labelNames: ['result'],
    registers: [registry],
    collect() {
      this.reset();
      const c = src.cache()?.counters;
      if (c === undefined) return;
      this.inc({ result: 'hit' }, c.hits);
      this.inc({ result: 'miss' }, c.misses);
      this.inc({ result: 'stale' }, c.stale);
      this.inc({ result: 'bypass' }, c.bypass);
    },
  });
  counter(
    'dotslash_rescue_cache_coalesced_total',
    "Misses that waited on another request's origin fetch.",
    () => src.cache()?.counters.coalesced ?? 0,
  );
  counter(
    'dotslash_rescue_origin_fetches_total',
    'Fetches a rescuer made from the origins it rescues.',
    () => src.cache()?.counters.originFetches ?? 0,
  );
  counter(
    'dotslash_rescue_origin_errors_total',
    'Failed fetches from rescued origins.',
    () => src.cache()?.counters.originErrors ?? 0,
  );
  new Gauge({
    name: 'dotslash_rescue_cache_bytes',
    help: 'Bytes held by the rescue cache, and its bound.',
    labelNames: ['kind'],
    registers: [registry],
    collect() {
      this.reset();
      const s = src.cache()?.store;
      if (s === undefined) return;
      this.set({ kind: 'used' }, s.bytes);
      this.set({ kind: 'max' }, s.maxBytes);
    },
  });
  new Gauge({
    name: 'dotslash_rescue_state',
    help: 'Member state (1 for the current one): normal, sos (being rescued) or rescue (rescuing others).',
    labelNames: ['state'],
    registers: [registry],
    collect() {
      this.reset();
      const st = src.status();
      if (st === null) return;
      for (const s of MEMBER_STATES) this.set({ state: s }, st.state === s ? 1 : 0);
    },
  });
  new Gauge({
    name: 'dotslash_rescue_mode',
    help: 'rescue.mode (1 for the current one): on, observe or off.',
    labelNames: ['mode'],
    registers: [registry],
    collect() {
      this.reset();
      const st = src.status();
      for (const m of MODES) this.set({ mode: m }, (st?.mode ?? 'off') === m ? 1 : 0);
    },
  });
  new Gauge({
    name: 'dotslash_redirect_probability',
    help: 'Pr the redirector applies (0 unless rescue.mode is on and the member is rescued).',
    registers: [registry],
    collect() {
      this.set(src.status()?.pr_published ?? 0);
    },
  });
  new Gauge({
    name: 'dotslash_rescue_sessions',
    help: 'Rescue sessions by role (origin = we are rescued, rescuer = we rescue) and state.',
    labelNames: ['role', 'state'],
    registers: [registry],
    collect() {
      this.reset();
      const counts = new Map<string, { role: string; state: string; n: number }>();
      for (const s of src.status()?.sessions ?? []) {
        const key = `${s.role}\n${s.state}`;
        const c = counts.get(key) ?? { role: s.role, state: s.state, n: 0 };
        c.n++;
        counts.set(key, c);
      }
      for (const c of counts.values()) this.set({ role: c.role, state: c.state }, c.n);
    },
  });
  new Gauge({
    name: 'dotslash_rescue_session_rate',
    help: 'Granted rate Rr (requests/s) per live session.',
    labelNames: ['role', 'peer', 'session'],
    registers: [registry],
    collect() {
      this.reset();
      for (const s of src.status()?.sessions ?? []) {
        if (s.id !== null) this.set({ role: s.role, peer: s.peer, session: s.id }, s.rate);
      }
    },
  });
}
