// One community's token ledger: a set of verified spend and receipt records and the balances they
// imply. Every answer is a pure function of the record SET (and the time, for lapsed holds), never
// of arrival order, so registries that exchanged records by anti-entropy agree.
import { canonicalJson } from './canonical.js';
import { LedgerError, type LedgerErrorCode } from './errors.js';
import type { LedgerPolicy } from './policy.js';
import { conflictKeys, memberAtFault, parseRecord, recordId, type LedgerRecord } from './records.js';
import { verifyRecord, type MemberKeys } from './verify.js';

export interface LedgerOptions {
  readonly community: string;
  readonly policy: LedgerPolicy;
  /** Admitted member keys (the registry's admissions). */
  readonly keys: MemberKeys;
}

export interface AddResult {
  readonly id: string;
  /** false: the record was already there (a replay or an anti-entropy resend): nothing changed. */
  readonly added: boolean;
}

export interface MergeResult {
  readonly added: number;
  readonly duplicates: number;
  /** Records refused, with why (the input index, and the record id when it parsed). */
  readonly refused: readonly {
    readonly index: number;
    readonly code: LedgerErrorCode;
    readonly message: string;
  }[];
}

export interface Balance {
  readonly account: string;
  readonly starting: number;
  /** Costs of accepted receipts where the account was the rescuer, plus lapsed spends paid to it. */
  readonly earned: number;
  /** Costs of accepted receipts where the account was the origin, plus its lapsed spends. */
  readonly charged: number;
  /** Amounts of its accepted spends that no receipt settled yet and whose hold has not lapsed. */
  readonly held: number;
  /** Of earned and charged: unsettled spends whose hold lapsed, paid in full to their payee. */
  readonly lapsed_in: number;
  readonly lapsed_out: number;
  /** starting + earned - charged. */
  readonly balance: number;
  /** balance - held: what a new spend may reserve. */
  readonly available: number;
  /** It double spent (or issued conflicting receipts): rescuers refuse its spends. */
  readonly flagged: boolean;
  /** The conflict keys that flag it, e.g. "spend a.example 7". */
  readonly conflicts: readonly string[];
}

export interface Conflict {
  readonly key: string;
  /** Every record id in the conflict, sorted; all are kept as evidence. */
  readonly ids: readonly string[];
  /** The one that counts: the smallest id (deterministic on every registry). */
  readonly winner: string;
  /** The member at fault: the spend's account, or the receipts' rescuer. */
  readonly member: string;
}

export type SpendVerdict =
  | { readonly ok: true; readonly balance: Balance }
  | { readonly ok: false; readonly code: LedgerErrorCode; readonly message: string };

interface Stored {
  readonly record: LedgerRecord;
  readonly text: string;
  /** conflictKeys(record), kept: balances ask for them per record. */
  readonly keys: readonly string[];
}

export class Ledger {
  readonly community: string;
  readonly policy: LedgerPolicy;
  private readonly keys: MemberKeys;
  private readonly byId = new Map<string, Stored>();
  /** Conflict key -> ids of the records under it. */
  private readonly groups = new Map<string, Set<string>>();
  /** Member id -> ids of records where it is account, payee, origin or rescuer. */
  private readonly byMember = new Map<string, Set<string>>();
  /** "<origin> <spend seq> <rescuer>" -> ids of receipts that settle that spend. */
  private readonly settlers = new Map<string, Set<string>>();

  constructor(opts: LedgerOptions) {
    this.community = opts.community;
    this.policy = opts.policy;
    this.keys = opts.keys;
  }

  get size(): number {
    return this.byId.size;
  }

  has(id: string): boolean {
    return this.byId.has(id);
  }

  /**
   * Verifies and stores one record (untrusted JSON value). Idempotent: the same body again is a
   * no-op. Throws LedgerError (LGR_ERR_*) and stores nothing when the record is not valid.
   * `trusted`: skip the signature and admission checks (only the schema is checked), for records
   * a registry reloads from its own store after verifying them once when they arrived.
   */
  add(value: unknown, opts: { readonly trusted?: boolean } = {}): AddResult {
    const record = parseRecord(value);
    const id = recordId(record);
    const text = canonicalJson(record);
    const old = this.byId.get(id);
    // An exact resend (anti-entropy, a replay) of a stored record: verified already.
    if (old !== undefined && old.text === text) return { id, added: false };
    if (opts.trusted !== true) verifyRecord(record, this.community, this.keys);
    // The same body with other (also valid) signature text: keep the smaller, so every registry keeps the same one.
    if (old !== undefined) {
      if (text < old.text) this.byId.set(id, { ...old, record, text });
      return { id, added: false };
    }
    const keys = conflictKeys(record);
    this.byId.set(id, { record, text, keys });
    for (const key of keys) setOf(this.groups, key).add(id);
    for (const m of membersOf(record)) setOf(this.byMember, m).add(id);
    const b = record.body;
    if (b.kind === 'receipt' && b.spend_seq !== undefined)
      setOf(this.settlers, `${b.origin.id} ${b.spend_seq} ${b.rescuer.id}`).add(id);
    if (b.kind === 'release') setOf(this.settlers, `${b.account} ${b.seq} ${b.payee}`).add(id);
    return { id, added: true };
  }

  /** Adds many records (one anti-entropy batch); never throws for a bad record, reports it. */
  merge(values: readonly unknown[]): MergeResult {
    let added = 0;
    let duplicates = 0;
    const refused: { index: number; code: LedgerErrorCode; message: string }[] = [];
    values.forEach((v, index) => {
      try {
        if (this.add(v).added) added++;
        else duplicates++;
      } catch (err) {
        if (!(err instanceof LedgerError)) throw err;
        refused.push({ index, code: err.code, message: err.message });
      }
    });
    return { added, duplicates, refused };
  }

  /** Every stored record, by id (conflicting ones included, as evidence). */
  records(): LedgerRecord[] {
    return [...this.byId.keys()].sort().map((id) => this.byId.get(id)!.record);
  }

  get(id: string): LedgerRecord | undefined {
    return this.byId.get(id)?.record;
  }

  /** Counts toward balances: it is the smallest id in every conflict group it belongs to. */
  accepted(id: string): boolean {
    const stored = this.byId.get(id);
    if (stored === undefined) return false;
    return stored.keys.every((k) => {
      const group = this.groups.get(k)!;
      return group.size === 1 || minOf(group) === id;
    });
  }

  conflicts(): Conflict[] {
    const out: Conflict[] = [];
    for (const [key, ids] of this.groups) {
      if (ids.size < 2) continue;
      const sorted = [...ids].sort();
      const r = this.byId.get(sorted[0]!)!.record;
      const member = memberAtFault(r);
      out.push({ key, ids: sorted, winner: sorted[0]!, member });
    }
    return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  /**
   * The account's balance at wall time `now` (epoch ms). A spend reserves its amount until a
   * receipt from its payee settles it; if none has when hold_ms passes, the spend is paid to the
   * payee in full (a member that never countersigns does not get rescue for free).
   */
  balance(account: string, now: number): Balance {
    let earned = 0;
    let charged = 0;
    let held = 0;
    let lapsedIn = 0;
    let lapsedOut = 0;
    const conflicts = new Set<string>();
    for (const id of this.byMember.get(account) ?? []) {
      const stored = this.byId.get(id)!;
      const r = stored.record;
      const b = r.body;
      const atFault = memberAtFault(r);
      if (atFault === account)
        for (const k of stored.keys) if (this.groups.get(k)!.size > 1) conflicts.add(k);
      if (b.kind === 'release' || !this.accepted(id)) continue;
      if (b.kind === 'receipt') {
        if (b.rescuer.id === account) earned += b.cost;
        if (b.origin.id === account) charged += b.cost;
        continue;
      }
      if (this.settled(b.account, b.seq, b.payee)) continue;
      const lapsed = now - b.ts >= this.policy.hold_ms;
      if (b.account === account) {
        if (lapsed) lapsedOut += b.amount;
        else held += b.amount;
      } else if (lapsed) lapsedIn += b.amount;
    }
    const starting = this.policy.starting_balance;
    const balance = starting + earned + lapsedIn - charged - lapsedOut;
    return {
      account,
      starting,
      earned: earned + lapsedIn,
      charged: charged + lapsedOut,
      held,
      lapsed_in: lapsedIn,
      lapsed_out: lapsedOut,
      balance,
      available: balance - held,
      flagged: conflicts.size > 0,
      conflicts: [...conflicts].sort(),
    };
  }

  /** Some accepted receipt from the payee, or its release, settles this spend. */
  private settled(account: string, seq: number, payee: string): boolean {
    const ids = this.settlers.get(`${account} ${seq} ${payee}`);
    return ids !== undefined && [...ids].some((id) => this.accepted(id));
  }

  /**
   * May this spend pay `payee` for a rescue now? Verifies it like add, then: payee, age, size, no
   * other spend with its account and seq (LGR_ERR_DOUBLE_SPEND), not used already
   * (LGR_ERR_SPEND_REUSED), and the account's available balance covers it. Stores nothing.
   */
  checkSpend(value: unknown, now: number, payee?: string): SpendVerdict {
    try {
      return { ok: true, balance: this.assertSpendable(value, now, payee) };
    } catch (err) {
      if (!(err instanceof LedgerError)) throw err;
      return { ok: false, code: err.code, message: err.message };
    }
  }

  /** checkSpend, then records the spend when it passes (one registry's check and record, atomic). */
  admitSpend(value: unknown, now: number, payee?: string): SpendVerdict {
    const verdict = this.checkSpend(value, now, payee);
    if (verdict.ok) this.add(value);
    return verdict;
  }

  private assertSpendable(value: unknown, now: number, payee: string | undefined): Balance {
    const record = parseRecord(value);
    if (record.type !== 'spend') throw new LedgerError('LGR_ERR_MALFORMED', 'type: a token must be a spend');
    verifyRecord(record, this.community, this.keys);
    const b = record.body;
    if (payee !== undefined && b.payee !== payee)
      throw new LedgerError('LGR_ERR_WRONG_PAYEE', `pays ${b.payee}, not ${payee}`);
    if (Math.abs(now - b.ts) > this.policy.spend_max_age_ms)
      throw new LedgerError('LGR_ERR_STALE_SPEND', `signed ${Math.round((now - b.ts) / 1000)} s ago`);
    if (b.amount < this.policy.spend_amount)
      throw new LedgerError('LGR_ERR_SPEND_TOO_SMALL', `${b.amount} < ${this.policy.spend_amount}`);
    const id = recordId(record);
    const same = this.groups.get(conflictKeys(record)[0]!);
    if (same !== undefined && [...same].some((x) => x !== id))
      throw new LedgerError('LGR_ERR_DOUBLE_SPEND', `${b.account} seq ${b.seq}`);
    if (this.byId.has(id)) throw new LedgerError('LGR_ERR_SPEND_REUSED', `${b.account} seq ${b.seq}`);
    const bal = this.balance(b.account, now);
    if (bal.flagged)
      throw new LedgerError('LGR_ERR_DOUBLE_SPEND', `${b.account} is flagged: ${bal.conflicts.join(', ')}`);
    if (bal.available <= 0 || bal.available < b.amount)
      throw new LedgerError(
        'LGR_ERR_INSUFFICIENT_TOKENS',
        `${b.account} has ${bal.available} available, spends ${b.amount}`,
      );
    return bal;
  }
}

function membersOf(r: LedgerRecord): string[] {
  return r.body.kind === 'receipt' ? [r.body.origin.id, r.body.rescuer.id] : [r.body.account, r.body.payee];
}

function setOf<K, V>(m: Map<K, Set<V>>, k: K): Set<V> {
  let s = m.get(k);
  if (s === undefined) m.set(k, (s = new Set()));
  return s;
}

function minOf(ids: Set<string>): string {
  let min: string | undefined;
  for (const id of ids) if (min === undefined || id < min) min = id;
  return min!;
}
