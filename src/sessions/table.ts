// Both roles' live sessions, the only place their states change: every transition is checked
// against the state machine, logged with its reason and stored with its history (issue 3 item 2).
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import type { StateDb } from '../storage/state-db.js';
import { Session, type OriginInfo, type SessionRole, type SessionState } from './session.js';

export interface Clock {
  /** Monotonic ms (performance.now()): leases and holds. */
  now(): number;
  /** Wall-clock epoch ms: what is stored and shown. */
  wall(): number;
}

export const systemClock: Clock = { now: () => performance.now(), wall: () => Date.now() };

export interface SessionChange {
  readonly session: Session;
  readonly from: SessionState | null;
  readonly to: SessionState;
  readonly reason: string;
}

export interface SessionTableOptions {
  readonly db: StateDb;
  readonly logger: Logger;
  readonly clock?: Clock;
  /** How long a rescuer's ended session drains (rescue.drain_ms, default 2 x dns_ttl_s). */
  readonly drainMs: number;
}

/** A transition the state machine does not allow: a bug in the caller, never a peer's doing. */
export class TransitionError extends Error {
  constructor(s: Session, to: SessionState) {
    super(`session ${s.id ?? `#${s.key}`} (${s.role}) cannot go from ${s.state} to ${to}`);
    this.name = 'TransitionError';
  }
}

/**
 * Emits 'change' (SessionChange) after every transition and 'rate' (Session) after a rate change.
 * Closed sessions leave the table (their rows stay in the state file).
 */
export class SessionTable extends EventEmitter {
  readonly clock: Clock;
  private readonly db: StateDb;
  private readonly log: Logger;
  private drainMs: number;
  private readonly byKey = new Map<number, Session>();

  constructor(opts: SessionTableOptions) {
    super();
    this.db = opts.db;
    this.log = opts.logger;
    this.clock = opts.clock ?? systemClock;
    this.drainMs = opts.drainMs;
  }

  /** The next virtual host number, from the persisted counter: never handed out twice, across restarts. */
  allocateVhostN(): number {
    return this.db.nextVhostN();
  }

  setDrainMs(ms: number): void {
    this.drainMs = ms;
  }

  /** Origin side: an SOS is about to go to `peer`. */
  openOrigin(peer: string, leaseMs: number, want: number, reason: string): Session {
    return this.insert('origin', peer, 'requested', leaseMs, want, reason, {});
  }

  /** Origin side: the rescuer accepted (requested -> active). */
  accept(
    s: Session,
    ok: {
      id: string;
      vhost: string;
      vhostUrl: string | null;
      rate: number;
      leaseMs: number;
      addresses?: readonly string[];
    },
    reason: string,
  ): void {
    s.id = ok.id;
    s.addresses = Object.freeze([...(ok.addresses ?? [])]);
    s.vhost = ok.vhost;
    s.vhostUrl = ok.vhostUrl;
    s.rate = ok.rate;
    s.leaseMs = ok.leaseMs;
    this.db.updateSession(s.key, {
      id: ok.id,
      vhost: ok.vhost,
      vhost_url: ok.vhostUrl,
      rate: ok.rate,
      lease_ms: ok.leaseMs,
    });
    this.transition(s, 'active', reason);
  }

  /** Rescuer side: an accepted SOS (created active). */
  openRescuer(init: {
    peer: string;
    id: string;
    vhost: string;
    vhostUrl: string;
    rate: number;
    want: number;
    leaseMs: number;
    origin: OriginInfo;
    reason: string;
  }): Session {
    return this.insert('rescuer', init.peer, 'active', init.leaseMs, init.want, init.reason, init);
  }

  transition(s: Session, to: SessionState, reason: string): void {
    if (!s.canMoveTo(to)) throw new TransitionError(s, to);
    const from = s.state;
    const now = this.clock.now();
    this.db.transition(s.key, from, to, reason, this.clock.wall());
    s.state = to;
    if (to === 'active') s.activeSinceMs = now;
    if (to === 'draining') s.drainUntilMs = now + this.drainMs;
    if (to === 'closed') this.byKey.delete(s.key);
    this.log.info(
      { session: s.id, key: s.key, role: s.role, peer: s.peer, from, to, reason },
      `session ${s.id ?? `#${s.key}`} ${from} -> ${to}: ${reason}`,
    );
    this.emit('change', { session: s, from, to, reason } satisfies SessionChange);
  }

  /**
   * Ends a session on this side for `reason`: an origin's closes, a rescuer's starts draining.
   * No-op for one already ending on this side. `sending`: the origin's own SHUTDOWN is in flight.
   */
  end(s: Session, reason: string, opts: { sending?: boolean } = {}): void {
    if (s.role === 'origin') {
      if (s.state === 'closed') return;
      if (opts.sending && s.state === 'active') this.transition(s, 'ending', reason);
      else this.transition(s, 'closed', reason);
    } else if (s.state === 'active') this.transition(s, 'draining', reason);
  }

  setRate(s: Session, rate: number): void {
    if (s.rate === rate) return;
    s.rate = rate;
    this.db.updateSession(s.key, { rate });
    this.emit('rate', s);
  }

  setToken(s: Session, token: string): void {
    s.token = token;
    this.db.updateSession(s.key, { token });
  }

  setUsage(s: Session, usage: unknown): void {
    this.db.updateSession(s.key, { usage });
  }

  /** The peer showed it is alive for this session. */
  renew(s: Session): void {
    s.lastHeardMs = this.clock.now();
  }

  /**
   * Applies leases and drains at the current time: active sessions whose lease lapsed end on
   * this side; draining sessions past their drain time close. Returns the sessions it changed.
   */
  expire(): Session[] {
    const now = this.clock.now();
    const changed: Session[] = [];
    for (const s of [...this.byKey.values()]) {
      if (s.leaseLapsed(now)) {
        this.end(
          s,
          `lease lapsed (nothing from ${s.peer} for ${Math.round(now - s.lastHeardMs)} ms > ${s.leaseMs} ms)`,
        );
        changed.push(s);
      } else if (s.state === 'draining' && s.drainUntilMs !== null && now >= s.drainUntilMs) {
        this.transition(s, 'closed', 'drain time over');
        changed.push(s);
      }
    }
    return changed;
  }

  get(key: number): Session | undefined {
    return this.byKey.get(key);
  }

  /** A session by protocol id, in either role (ids are the rescuer's; ours are unique on our side). */
  find(id: string, role?: SessionRole): Session | undefined {
    for (const s of this.byKey.values()) if (s.id === id && (role === undefined || s.role === role)) return s;
    return undefined;
  }

  list(role?: SessionRole, states?: readonly SessionState[]): Session[] {
    const out: Session[] = [];
    for (const s of this.byKey.values()) {
      if (role !== undefined && s.role !== role) continue;
      if (states !== undefined && !states.includes(s.state)) continue;
      out.push(s);
    }
    return out;
  }

  get size(): number {
    return this.byKey.size;
  }

  private insert(
    role: SessionRole,
    peer: string,
    state: SessionState,
    leaseMs: number,
    want: number,
    reason: string,
    extra: { id?: string; vhost?: string; vhostUrl?: string; rate?: number; origin?: OriginInfo },
  ): Session {
    const key = this.db.insertSession({
      id: extra.id ?? null,
      role,
      peer,
      vhost: extra.vhost ?? null,
      vhost_url: extra.vhostUrl ?? null,
      rate: extra.rate ?? 0,
      lease_ms: leaseMs,
      state,
      reason,
      at: this.clock.wall(),
    });
    const now = this.clock.now();
    const s = new Session({ key, role, peer, state, leaseMs, want, nowMs: now });
    s.id = extra.id ?? null;
    s.vhost = extra.vhost ?? null;
    s.vhostUrl = extra.vhostUrl ?? null;
    s.rate = extra.rate ?? 0;
    s.origin = extra.origin ?? null;
    if (state === 'active') s.activeSinceMs = now;
    this.byKey.set(key, s);
    this.log.info(
      { session: s.id, key, role, peer, to: state, reason },
      `session ${s.id ?? `#${key}`} opened ${state}: ${reason}`,
    );
    this.emit('change', { session: s, from: null, to: state, reason } satisfies SessionChange);
    return s;
  }
}
