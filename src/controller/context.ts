// What the controller's two halves (origin-side.ts, rescuer-side.ts) share with the loop that
// drives them: the session table, settings, mode, and the few ways to act on peers.
import type { Logger } from 'pino';
import type { Peer, ReplyBodies, RequestBodies, RequestType } from '../../rescue-protocol/index.js';
import type { RescueMode } from '../config/schema.js';
import type { Session } from '../sessions/session.js';
import type { SessionTable } from '../sessions/table.js';
import type { LedgerFlow } from './ledger-flow.js';
import type { Measure } from './policy.js';
import type { RescueSettings } from './settings.js';

/** How the controller talks to peers; ControlClient fits. */
export interface RescueTransport {
  send<T extends RequestType>(
    peer: Peer,
    type: T,
    body: RequestBodies[T],
  ): Promise<{ readonly body: ReplyBodies[T] }>;
}

/**
 * Where rescue candidates come from besides the static `peers` list: the registry (issue 5).
 * Synchronous reads of a cache the registry client keeps fresh; refresh() asks for more.
 */
export interface PeerDiscovery {
  /** The last lookup's candidates, best first (may be empty). */
  candidates(): readonly Peer[];
  /** Ask the registry for fresh candidates, leaving out these member ids (throttled, async). */
  refresh(exclude: readonly string[]): void;
  /** A member the registry told us about, by id (to reach the peer of a session). */
  peer(id: string): Peer | undefined;
}

export interface ControlContext {
  readonly table: SessionTable;
  readonly transport: RescueTransport;
  readonly log: Logger;
  /** Flood-insurance communities only: the token ledger's touch points. */
  readonly ledger?: LedgerFlow;
  settings(): RescueSettings;
  /** The registry, when one is configured. */
  readonly discovery: PeerDiscovery | undefined;
  mode(): RescueMode;
  /** The latest measurement, or null before the first sample. */
  measure(): Measure | null;
  closed(): boolean;
  /** Acts when mode is on; in observe mode says what it would do instead. */
  act(action: string, fn: () => void): void;
  /** Observe mode: says (once) what it would do. */
  would(action: string): void;
  decided(action: string): void;
  /** Ends a session on our side and tells the peer. */
  shutdown(session: Session, reason: string): void;
  /** Sends a session message; a peer answering "no such session" ends ours. */
  send<T extends RequestType>(
    session: Session,
    type: T,
    body: RequestBodies[T],
    onOk?: (reply: ReplyBodies[T]) => void,
  ): void;
  /** Keeps a message in flight until it settles (tick() and close() wait for these). */
  track(p: Promise<unknown>): void;
}

export const sumRates = (ss: readonly Session[]): number => ss.reduce((a, s) => a + s.rate, 0);
