// A member's side of the ledger (pure, crypto only): the origin signs spends (the SOS token) and
// countersigns receipts; the rescuer checks tokens (locally, then through the registry) and signs
// its receipt half. The registry client implements SpendChecker and ReceiptSink.
import { createPublicKey, type KeyObject } from 'node:crypto';
import { publicKeyText } from '../../../rescue-protocol/keys.js';
import { canonicalJson } from './canonical.js';
import { LedgerError } from './errors.js';
import type { SpendVerdict } from './ledger.js';
import { priceOf, type LedgerPolicy } from './policy.js';
import {
  LEDGER_VERSION,
  parseRecord,
  type LedgerRecord,
  type ReceiptBody,
  type ReceiptRecord,
  type SpendRecord,
} from './records.js';
import { signReceipt, signRelease, signSpend, verifyReceiptHalf, verifyRecord } from './verify.js';

/** Where completed receipts and admitted spends go: the registry (its client implements this). */
export interface ReceiptSink {
  submit(record: LedgerRecord): Promise<void>;
}

/** The registry's spend check: verify, check the balance and record the spend (Ledger.admitSpend). */
export interface SpendChecker {
  admitSpend(spend: SpendRecord, payee: string): Promise<SpendVerdict>;
}

export interface MemberLedgerOptions {
  readonly community: string;
  readonly policy: LedgerPolicy;
  /** This member's id and signing key (the rescue protocol's identity). */
  readonly self: { readonly id: string; readonly privateKey: KeyObject };
  /** Peers' public keys (config peers, or the registry's admissions). */
  readonly peerKey: (member: string) => KeyObject | undefined;
  readonly registry: SpendChecker;
  readonly sink: ReceiptSink;
  /** Wall clock, epoch ms. */
  readonly wall?: () => number;
}

/** The usage a rescuer reports in SHUTDOWN (parts optional on the wire; zeros in a receipt). */
export interface ReportedUsage {
  readonly requests: number;
  readonly bytes: number;
  readonly by_redirect?: { readonly requests: number; readonly bytes: number };
  readonly by_dns?: { readonly requests: number; readonly bytes: number };
}

export interface ReceiptFacts {
  readonly session: string;
  readonly origin: string;
  readonly usage: ReportedUsage;
  /** Wall clock, epoch ms. */
  readonly started: number;
  readonly ended: number;
  /** The SOS token that paid for the session (its spend's seq goes in the receipt). */
  readonly token?: string | null;
}

/**
 * Sequence numbers that grow across restarts without being stored: the next is
 * max(previous + 1, wall clock ms). Safe unless the wall clock steps back past the last seq.
 */
class WallSeq {
  private last = 0;
  constructor(private readonly wall: () => number) {}
  next(): number {
    this.last = Math.max(this.last + 1, Math.floor(this.wall()));
    return this.last;
  }
}

export class MemberLedger {
  readonly community: string;
  readonly policy: LedgerPolicy;
  readonly id: string;
  readonly publicKey: string;
  private readonly opts: MemberLedgerOptions;
  private readonly wall: () => number;
  private readonly spendSeq: WallSeq;
  private readonly receiptSeq: WallSeq;

  constructor(opts: MemberLedgerOptions) {
    this.opts = opts;
    this.community = opts.community;
    this.policy = opts.policy;
    this.id = opts.self.id;
    this.publicKey = publicKeyText(createPublicKey(opts.self.privateKey));
    this.wall = opts.wall ?? Date.now;
    this.spendSeq = new WallSeq(this.wall);
    this.receiptSeq = new WallSeq(this.wall);
  }

  // ---- origin ------------------------------------------------------------------------------------

  /** A new signed spend of policy.spend_amount to `payee`, as the SOS `token` text. */
  token(payee: string): string {
    const spend = signSpend(
      {
        v: LEDGER_VERSION,
        kind: 'spend',
        community: this.community,
        account: this.id,
        key: this.publicKey,
        seq: this.spendSeq.next(),
        amount: this.policy.spend_amount,
        payee,
        ts: Math.floor(this.wall()),
      },
      this.opts.self.privateKey,
    );
    return JSON.stringify(spend);
  }

  /**
   * The origin's countersignature: `wire` (from SHUTDOWN or its ACK) must be a receipt for our
   * session with `rescuer`, naming us with our key, signed by the rescuer with its known key, and
   * costing exactly the policy's price of its usage. Returns the completed receipt.
   */
  countersign(rescuer: string, session: string, wire: unknown, token?: string | null): ReceiptRecord {
    const r = asReceipt(wire);
    const b = r.body;
    if (b.community !== this.community)
      throw new LedgerError('LGR_ERR_WRONG_COMMUNITY', `${b.community}, not ${this.community}`);
    if (b.session !== session)
      throw new LedgerError('LGR_ERR_MALFORMED', `session ${b.session}, not ${session}`);
    if (b.origin.id !== this.id || b.origin.key !== this.publicKey)
      throw new LedgerError('LGR_ERR_WRONG_KEY', `the receipt names origin ${b.origin.id} ${b.origin.key}`);
    this.checkPeer('rescuer', rescuer, b.rescuer);
    verifyReceiptHalf(r, 'rescuer');
    const price = priceOf(b.usage, this.policy);
    if (b.cost !== price)
      throw new LedgerError('LGR_ERR_BAD_COST', `cost ${b.cost}, price of usage ${price}`);
    const seq = spendSeqOf(token);
    if (seq !== undefined && b.spend_seq !== seq)
      throw new LedgerError('LGR_ERR_MALFORMED', `spend_seq ${b.spend_seq}, our spend was ${seq}`);
    return signReceipt(r, 'origin', this.opts.self.privateKey);
  }

  // ---- rescuer -----------------------------------------------------------------------------------

  /**
   * Checks an SOS token from `origin`: locally (schema, community, account, payee, the origin's
   * known key and signature), then through the registry (age, size, double spend, balance; the
   * registry records the spend when it passes). Never throws: a verdict.
   */
  async checkToken(origin: string, token: string | undefined): Promise<SpendVerdict> {
    let spend: SpendRecord;
    try {
      if (token === undefined) throw new LedgerError('LGR_ERR_NO_TOKEN');
      spend = this.localSpendCheck(origin, token);
    } catch (err) {
      if (err instanceof LedgerError) return { ok: false, code: err.code, message: err.message };
      throw err;
    }
    try {
      return await this.opts.registry.admitSpend(spend, this.id);
    } catch (err) {
      return { ok: false, code: 'LGR_ERR_UNAVAILABLE', message: `${(err as Error).message}` };
    }
  }

  /** The rescuer's half of the receipt for an ending session (its own counts, priced by policy). */
  rescuerHalf(facts: ReceiptFacts): ReceiptRecord {
    const originKey = this.opts.peerKey(facts.origin);
    if (originKey === undefined) throw new LedgerError('LGR_ERR_UNKNOWN_MEMBER', `origin ${facts.origin}`);
    const zero = { requests: 0, bytes: 0 };
    const usage = {
      requests: facts.usage.requests,
      bytes: facts.usage.bytes,
      by_redirect: { ...(facts.usage.by_redirect ?? zero) },
      by_dns: { ...(facts.usage.by_dns ?? zero) },
    };
    const seq = spendSeqOf(facts.token);
    const body: ReceiptBody = {
      v: LEDGER_VERSION,
      kind: 'receipt',
      community: this.community,
      session: facts.session,
      origin: { id: facts.origin, key: publicKeyText(originKey) },
      rescuer: { id: this.id, key: this.publicKey },
      usage,
      cost: priceOf(usage, this.policy),
      started: Math.floor(facts.started),
      ended: Math.max(Math.floor(facts.ended), Math.floor(facts.started)),
      seq: this.receiptSeq.next(),
      ...(seq !== undefined ? { spend_seq: seq } : {}),
    };
    return signReceipt(body, 'rescuer', this.opts.self.privateKey);
  }

  /**
   * Rescuer: gives up a spend it admitted but will not serve (the SOS was declined after the
   * ledger check); undefined when `token` is not a spend to us.
   */
  release(token: string | undefined): LedgerRecord | undefined {
    let spend: SpendRecord;
    try {
      const r = parseRecord(JSON.parse(token ?? 'null'));
      if (r.type !== 'spend' || r.body.payee !== this.id) return undefined;
      spend = r;
    } catch {
      return undefined;
    }
    return signRelease(
      {
        v: LEDGER_VERSION,
        kind: 'release',
        community: this.community,
        payee: this.id,
        key: this.publicKey,
        account: spend.body.account,
        seq: spend.body.seq,
        ts: Math.floor(this.wall()),
      },
      this.opts.self.privateKey,
    );
  }

  /** The rescuer checks the origin's countersignature on the receipt it sent (the ACK's). */
  completed(sent: ReceiptRecord, wire: unknown): ReceiptRecord {
    const r = asReceipt(wire);
    if (canonicalJson(r.body) !== canonicalJson(sent.body))
      throw new LedgerError('LGR_ERR_TAMPERED', 'the countersigned receipt differs from the one sent');
    verifyReceiptHalf(r, 'origin');
    return { ...r, sigs: { rescuer: sent.sigs.rescuer, origin: r.sigs.origin } };
  }

  /** Hands a record to the registry; the promise never rejects (the caller logs `onError`). */
  submit(record: LedgerRecord, onError: (err: unknown) => void): Promise<void> {
    return this.opts.sink.submit(record).catch(onError);
  }

  private localSpendCheck(origin: string, token: string): SpendRecord {
    let value: unknown;
    try {
      value = JSON.parse(token);
    } catch (err) {
      throw new LedgerError('LGR_ERR_MALFORMED', `token is not JSON: ${(err as Error).message}`);
    }
    const r = parseRecord(value);
    if (r.type !== 'spend') throw new LedgerError('LGR_ERR_MALFORMED', 'type: a token must be a spend');
    if (r.body.account !== origin)
      throw new LedgerError('LGR_ERR_WRONG_ACCOUNT', `spend of ${r.body.account}, SOS from ${origin}`);
    if (r.body.payee !== this.id) throw new LedgerError('LGR_ERR_WRONG_PAYEE', `pays ${r.body.payee}`);
    verifyRecord(r, this.community, {
      keyOf: (m) => {
        const k = this.opts.peerKey(m);
        return k === undefined ? undefined : publicKeyText(k);
      },
    });
    return r;
  }

  private checkPeer(role: string, expected: string, named: { id: string; key: string }): void {
    const key = this.opts.peerKey(expected);
    if (named.id !== expected)
      throw new LedgerError('LGR_ERR_MALFORMED', `${role} ${named.id}, not ${expected}`);
    if (key === undefined) throw new LedgerError('LGR_ERR_UNKNOWN_MEMBER', `${role} ${expected}`);
    if (publicKeyText(key) !== named.key)
      throw new LedgerError('LGR_ERR_WRONG_KEY', `${role} ${expected} signed with ${named.key}`);
  }
}

function asReceipt(wire: unknown): ReceiptRecord {
  const r = parseRecord(wire);
  if (r.type !== 'receipt') throw new LedgerError('LGR_ERR_MALFORMED', 'type: expected a receipt');
  return r;
}

/** The seq of the spend in an SOS token, if the token is one. */
export function spendSeqOf(token: string | null | undefined): number | undefined {
  if (token === null || token === undefined) return undefined;
  try {
    const r = parseRecord(JSON.parse(token));
    return r.type === 'spend' ? r.body.seq : undefined;
  } catch {
    return undefined;
  }
}
