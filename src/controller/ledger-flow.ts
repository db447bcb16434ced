// Flood-insurance communities (issue 5 item 3): the controller's few touch points with the token
// ledger. Origin: a signed spend as the SOS token; countersign the rescuer's receipt at SHUTDOWN.
// Rescuer: check the token (through the registry) before accepting; sign its receipt half at
// SHUTDOWN. Completed receipts go to the registry (ReceiptSink) from whoever holds them.
import type { Logger } from 'pino';
import type { OkBody, ShutdownBody } from '../../rescue-protocol/index.js';
import type { LedgerErrorCode, MemberLedger, ReceiptRecord } from '../registry/ledger/index.js';
import { LedgerError } from '../registry/ledger/index.js';
import type { Session } from '../sessions/session.js';
import type { Clock } from '../sessions/table.js';
import { ControllerErrors, type ControllerErrorCode } from './errors.js';

/** Why a spend did not pay, as the decline code the origin sees. */
function declineCode(code: LedgerErrorCode): ControllerErrorCode {
  if (code === 'LGR_ERR_UNAVAILABLE') return 'CTL_ERR_LEDGER_UNAVAILABLE';
  if (
    code === 'LGR_ERR_NO_TOKEN' ||
    code === 'LGR_ERR_INSUFFICIENT_TOKENS' ||
    code === 'LGR_ERR_SPEND_TOO_SMALL'
  )
    return 'CTL_ERR_NO_TOKENS';
  return 'CTL_ERR_BAD_TOKEN';
}

export class LedgerFlow {
  constructor(
    private readonly ledger: MemberLedger,
    private readonly clock: Clock,
    private readonly log: Logger,
  ) {}

  /** Origin: the token for an SOS to `payee`. */
  token(payee: string): string {
    return this.ledger.token(payee);
  }

  /** Rescuer: null when the token pays for the rescue, else the decline to answer with. */
  async check(from: string, token: string | undefined): Promise<OkBody | null> {
    const verdict = await this.ledger.checkToken(from, token);
    if (verdict.ok) return null;
    const code = declineCode(verdict.code);
    const reason = `${ControllerErrors[code].message}: ${verdict.code}: ${verdict.message}`.slice(0, 500);
    this.log.info({ origin: from, code, ledger: verdict.code }, `SOS from ${from} declined: ${reason}`);
    return { accepted: false, code, reason };
  }

  /** Rescuer: the token passed, then the policy declined (things changed meanwhile): release the spend. */
  release(from: string, token: string | undefined): void {
    const record = this.ledger.release(token);
    if (record === undefined) return;
    this.log.info({ origin: from }, `released the spend of ${from} (SOS declined after the token check)`);
    void this.ledger.submit(record, (err) =>
      this.log.warn({ origin: from, err: (err as Error).message }, 'release not submitted to the registry'),
    );
  }

  /** Rescuer: its signed half of the receipt for an ending session, or undefined without usage. */
  rescuerHalf(s: Session, usage: ShutdownBody['usage'] | undefined): ReceiptRecord | undefined {
    if (s.id === null) return undefined;
    const now = this.clock.now();
    const wall = this.clock.wall();
    const started = wall - (now - (s.activeSinceMs ?? s.openedMs));
    const facts = {
      session: s.id,
      origin: s.peer,
      usage: usage ?? { requests: 0, bytes: 0 },
      started,
      ended: wall,
      token: s.token,
    };
    return this.attempt(s, 'sign the receipt', () => this.ledger.rescuerHalf(facts));
  }

  /** Origin: countersigns the rescuer's receipt, submits it, and returns it (for the ACK). */
  countersign(s: Session, wire: unknown): ReceiptRecord | undefined {
    if (s.id === null) return undefined;
    const done = this.attempt(s, 'countersign the receipt', () =>
      this.ledger.countersign(s.peer, s.id!, wire, s.token),
    );
    if (done !== undefined) this.submit(s, done);
    return done;
  }

  /** Rescuer: the origin's ACK carried the countersigned receipt: check it and submit it. */
  completed(s: Session, sent: ReceiptRecord, wire: unknown): void {
    const done = this.attempt(s, 'accept the countersigned receipt', () => this.ledger.completed(sent, wire));
    if (done !== undefined) this.submit(s, done);
  }

  private submit(s: Session, record: ReceiptRecord): void {
    this.log.info(
      { session: s.id, peer: s.peer, cost: record.body.cost },
      `receipt for ${s.id}: ${record.body.cost} tokens from ${record.body.origin.id} to ${record.body.rescuer.id}`,
    );
    void this.ledger.submit(record, (err) =>
      this.log.warn({ session: s.id, err: (err as Error).message }, 'receipt not submitted to the registry'),
    );
  }

  /** Ledger refusals are logged, never thrown into the session flow (the session still ends). */
  private attempt<T>(s: Session, what: string, fn: () => T): T | undefined {
    try {
      return fn();
    } catch (err) {
      if (!(err instanceof LedgerError)) throw err;
      this.log.warn({ session: s.id, peer: s.peer, code: err.code }, `could not ${what}: ${err.message}`);
      return undefined;
    }
  }
}
