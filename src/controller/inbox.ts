// Handles verified control messages (the ControlServer's onMessage, issue 3 item 4): SOS goes to the
// controller's policy; TOKEN, RATE, KEEPALIVE, SHUTDOWN and PURGE act on one session, and only
// when the sender is that session's party in the right role and the session is in a state that
// allows it. Anything else changes nothing and is refused with its RSC_ERR_* code.
import {
  RescueError,
  type OkBody,
  type ReplyBody,
  type SosBody,
  type VerifiedMessage,
} from '../../rescue-protocol/index.js';
import type { Session, SessionRole, SessionState } from '../sessions/session.js';
import type { SessionTable } from '../sessions/table.js';

export interface PurgeRequest {
  readonly session: string;
  readonly origin: string;
  readonly urls: readonly string[];
}

export interface InboxHost {
  readonly table: SessionTable;
  /** The 200 OK to an SOS: accept or decline (the controller's policy, slide 18 "provide rescue"). */
  answerSos(from: string, body: SosBody): OkBody;
  purge(req: PurgeRequest): void;
  /**
   * Flood-insurance communities: the SOS token is checked (through the registry) only when the
   * policy would accept (`precheck` null), so a busy member never holds an origin's tokens.
   */
  readonly tokens?: {
    precheck(from: string, body: SosBody): OkBody | null;
    check(from: string, token: string | undefined): Promise<OkBody | null>;
    /** The token passed but the policy then declined: give the spend back. */
    release(from: string, token: string | undefined): void;
  };
  /**
   * Flood-insurance communities, at SHUTDOWN of `s`: the receipt for the ACK (the rescuer's signed
   * half, or the origin's countersignature of `receipt`), or undefined.
   */
  settle?(s: Session, receipt: unknown): unknown;
}

/**
 * The session `id` as `from` may address it. `ours`: the role this member must have in it (RATE
 * comes only from a rescuer, so we must be its origin; TOKEN and PURGE only from an origin).
 * Closed sessions have left the table: for them the answer is RSC_ERR_UNKNOWN_SESSION.
 */
function party(table: SessionTable, from: string, id: string, type: string, ours?: SessionRole): Session {
  const matches = table.list().filter((s) => s.id === id);
  if (matches.length === 0)
    throw new RescueError('RSC_ERR_UNKNOWN_SESSION', `${type}: no live session ${id}`);
  const s = matches.find((m) => m.peer === from);
  if (s === undefined)
    throw new RescueError('RSC_ERR_NOT_A_PARTY', `${type}: ${from} is not a party to session ${id}`);
  if (ours !== undefined && s.role !== ours) {
    const sender = ours === 'origin' ? 'rescuer' : 'origin';
    throw new RescueError(
      'RSC_ERR_NOT_A_PARTY',
      `${type} comes only from the session's ${sender}; ${from} is its ${s.role === 'origin' ? 'rescuer' : 'origin'}`,
    );
  }
  return s;
}

function inState(s: Session, type: string, allowed: readonly SessionState[]): void {
  if (!allowed.includes(s.state)) {
    throw new RescueError(
      'RSC_ERR_OUT_OF_STATE',
      `${type}: session ${s.id} is ${s.state} here (allowed: ${allowed.join(', ')})`,
    );
  }
}

export function handleMessage(host: InboxHost, msg: VerifiedMessage): ReplyBody | Promise<ReplyBody> {
  const { table } = host;
  switch (msg.type) {
    case 'SOS': {
      if (msg.body.origin.id !== msg.from) {
        throw new RescueError(
          'RSC_ERR_NOT_A_PARTY',
          `SOS: ${msg.from} may ask for rescue only for itself, not ${msg.body.origin.id}`,
        );
      }
      const { tokens } = host;
      if (tokens === undefined) return host.answerSos(msg.from, msg.body);
      const early = tokens.precheck(msg.from, msg.body);
      if (early !== null) return early;
      const body = msg.body;
      // The policy decides again after the ledger answered: things may have changed meanwhile.
      return tokens.check(msg.from, body.token).then((no) => {
        if (no !== null) return no;
        const answer = host.answerSos(msg.from, body);
        if (!answer.accepted) tokens.release(msg.from, body.token);
        return answer;
      });
    }
    case 'TOKEN': {
      const s = party(table, msg.from, msg.body.session, 'TOKEN', 'rescuer');
      inState(s, 'TOKEN', ['active']);
      table.renew(s);
      // Only stored: the ledger takes the spend from the SOS token (docs/PROTOCOL.md "Token ledger").
      table.setToken(s, msg.body.token);
      return { ok: true, session: s.id! };
    }
    case 'RATE': {
      const s = party(table, msg.from, msg.body.session, 'RATE', 'origin');
      inState(s, 'RATE', ['active']);
      table.renew(s);
      table.setRate(s, msg.body.rate);
      return { ok: true, session: s.id! };
    }
    case 'KEEPALIVE': {
      const s = party(table, msg.from, msg.body.session, 'KEEPALIVE');
      inState(s, 'KEEPALIVE', s.role === 'origin' ? ['active', 'ending'] : ['active']);
      table.renew(s);
      return { ok: true, session: s.id!, lease_ms: s.leaseMs };
    }
    case 'SHUTDOWN': {
      const s = party(table, msg.from, msg.body.session, 'SHUTDOWN');
      inState(s, 'SHUTDOWN', s.role === 'origin' ? ['active', 'ending'] : ['active']);
      if (msg.body.usage !== undefined) table.setUsage(s, msg.body.usage);
      const receipt = host.settle?.(s, msg.body.receipt);
      table.end(s, `SHUTDOWN from ${msg.from}${msg.body.reason ? `: ${msg.body.reason}` : ''}`);
      return receipt === undefined
        ? { ok: true, session: msg.body.session }
        : ({ ok: true, session: msg.body.session, receipt } as ReplyBody);
    }
    case 'PURGE': {
      const s = party(table, msg.from, msg.body.session, 'PURGE', 'rescuer');
      inState(s, 'PURGE', ['active', 'draining']);
      host.purge({ session: s.id!, origin: s.peer, urls: msg.body.urls });
      return { ok: true, session: s.id! };
    }
  }
}
