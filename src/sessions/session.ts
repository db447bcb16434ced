// One rescue session on one side: its state machine (origin: requested -> active -> ending -> closed;
// rescuer: active -> draining -> closed) and its lease (issue 3, DESIGN.md "Rescue protocol").
import type { SessionRole } from '../storage/state-db.js';

export type { SessionRole };
export type OriginState = 'requested' | 'active' | 'ending' | 'closed';
export type RescuerState = 'active' | 'draining' | 'closed';
export type SessionState = OriginState | RescuerState;

/**
 * Allowed moves. Origin: an SOS is `requested` until the rescuer's 200 OK (accepted: active;
 * declined or unreachable: closed); `ending` while our SHUTDOWN is in flight. Rescuer: an
 * accepted SOS is `active`; `draining` once it ends (its names pass through to the origin for
 * the drain time, DESIGN.md "Request paths"), then `closed`.
 */
export const TRANSITIONS: Readonly<Record<SessionRole, Readonly<Record<string, readonly SessionState[]>>>> = {
  origin: { requested: ['active', 'closed'], active: ['ending', 'closed'], ending: ['closed'], closed: [] },
  rescuer: { active: ['draining', 'closed'], draining: ['closed'], closed: [] },
};

/** What the rescuer knows of the origin it serves (from the SOS). */
export interface OriginInfo {
  readonly id: string;
  readonly names: readonly string[];
  readonly front_url: string;
  readonly content: 'static' | 'dynamic';
  readonly micro_cache: { readonly paths: readonly string[]; readonly ttl_s: number } | null;
}

/**
 * Mutable record owned by a SessionTable; only the table changes `state` (so every change is
 * persisted and logged). Times ending in Ms are monotonic (performance.now()).
 */
export class Session {
  readonly key: number;
  readonly role: SessionRole;
  /** The other party's member id. */
  readonly peer: string;
  state: SessionState;
  /** Protocol session id (chosen by the rescuer); null while requested. */
  id: string | null = null;
  vhost: string | null = null;
  vhostUrl: string | null = null;
  /** Origin side: the rescuer's public addresses from its OK (DNS round robin); not persisted. */
  addresses: readonly string[] = [];
  /** Rr: requests/s the rescuer allows the origin. */
  rate = 0;
  /** Requests/s the origin asked for. */
  want: number;
  leaseMs: number;
  readonly openedMs: number;
  /** When it became active (hold times count from here). */
  activeSinceMs: number | null = null;
  /** Last time the peer showed it is alive for this session (its message, or its answer to ours). */
  lastHeardMs: number;
  lastKeepaliveSentMs: number;
  /** Rescuer side, while draining: until when its names pass through. */
  drainUntilMs: number | null = null;
  /** Rescuer side: the origin, from the SOS. */
  origin: OriginInfo | null = null;
  token: string | null = null;

  constructor(init: {
    key: number;
    role: SessionRole;
    peer: string;
    state: SessionState;
    leaseMs: number;
    want: number;
    nowMs: number;
  }) {
    this.key = init.key;
    this.role = init.role;
    this.peer = init.peer;
    this.state = init.state;
    this.leaseMs = init.leaseMs;
    this.want = init.want;
    this.openedMs = init.nowMs;
    this.lastHeardMs = init.nowMs;
    this.lastKeepaliveSentMs = init.nowMs;
  }

  /** True while the lease matters: the session is live on this side. */
  get live(): boolean {
    return this.state === 'active' || this.state === 'ending' || this.state === 'requested';
  }

  canMoveTo(to: SessionState): boolean {
    return TRANSITIONS[this.role][this.state]?.includes(to) ?? false;
  }

  /** No sign of life from the peer for longer than the lease (monotonic clock). */
  leaseLapsed(nowMs: number): boolean {
    return this.state === 'active' && nowMs - this.lastHeardMs > this.leaseMs;
  }

  /** KEEPALIVE goes out every lease/3 (issue 3), so two may be lost before the lease lapses. */
  keepaliveDue(nowMs: number): boolean {
    return this.state === 'active' && nowMs - this.lastKeepaliveSentMs >= this.leaseMs / 3;
  }

  /** Lease time left, ms (for /status). */
  leaseLeftMs(nowMs: number): number {
    return Math.max(0, this.leaseMs - (nowMs - this.lastHeardMs));
  }
}
