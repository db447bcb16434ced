// The controller's plain-JSON status for /status: member state, Pr, and every session with its
// rate and lease times (issue 3 item 3).
import type { RescueMode } from '../config/schema.js';
import type { Session } from '../sessions/session.js';
import type { Measure } from './policy.js';

export type MemberState = 'normal' | 'sos' | 'rescue';

export interface SessionStatus {
  readonly id: string | null;
  readonly role: 'origin' | 'rescuer';
  readonly peer: string;
  readonly state: string;
  readonly vhost: string | null;
  readonly vhost_url: string | null;
  readonly rate: number;
  readonly want: number;
  readonly lease_ms: number;
  readonly lease_left_ms: number;
  readonly drain_left_ms: number | null;
}

export interface ControllerStatus {
  readonly mode: RescueMode;
  readonly state: MemberState;
  /** Pr the controller steers; `pr_published` is what the redirector got (0 unless mode on). */
  readonly pr: number;
  readonly pr_published: number;
  readonly measure: Measure | null;
  readonly predicted_rate: number | null;
  readonly sessions: readonly SessionStatus[];
}

export function sessionStatus(s: Session, nowMs: number): SessionStatus {
  return {
    id: s.id,
    role: s.role,
    peer: s.peer,
    state: s.state,
    vhost: s.vhost,
    vhost_url: s.vhostUrl,
    rate: s.rate,
    want: s.want,
    lease_ms: s.leaseMs,
    lease_left_ms: Math.round(s.leaseLeftMs(nowMs)),
    drain_left_ms: s.drainUntilMs === null ? null : Math.max(0, Math.round(s.drainUntilMs - nowMs)),
  };
}
