// The token ledger (issue 5 item 3, flood insurance): balances from signed records, double spends
// refused once registries converge (in either order), forged receipts refused with distinct codes.
import { describe, expect, it } from 'vitest';
import { signBytes } from '../../rescue-protocol/keys.js';
import {
  canonicalJson,
  DEFAULT_LEDGER_POLICY,
  type Ledger,
  LedgerError,
  ledgerPolicySchema,
  MemberLedger,
  priceOf,
  recordId,
  signReceipt,
  type LedgerErrorCode,
  type LedgerRecord,
} from '../../src/registry/ledger/index.js';
import { COMMUNITY, newLedger, newMember, NOW, receipt, release, spend } from './ledger-helpers.js';

const O = newMember('origin.example');
const A = newMember('a.example');
const B = newMember('b.example');
const ALL = [O, A, B];

function refusal(fn: () => unknown): LedgerErrorCode | 'none' {
  try {
    fn();
    return 'none';
  } catch (err) {
    if (err instanceof LedgerError) return err.code;
    throw err;
  }
}

/** Every member's balance, as one comparable value. */
const balances = (l: Ledger, now = NOW) => ALL.map((m) => l.balance(m.id, now));

describe('balances from signed records', () => {
  it('start at starting_balance; a receipt credits the rescuer and debits the origin its cost; tokens are conserved', () => {
    const l = newLedger(ALL);
    expect(l.balance(O.id, NOW)).toMatchObject({ balance: 1000, available: 1000, held: 0, flagged: false });
    // 50 000 requests of 1 KB: 50 tokens for requests + ceil(0.05 GB x 10) ... priced together.
    const r1 = receipt(O, A, 1, 50_000);
    const cost = r1.body.cost;
    expect(cost).toBe(priceOf({ requests: 50_000, bytes: 50_000_000 }, DEFAULT_LEDGER_POLICY));
    expect(cost).toBe(51); // 50 + 0.5, rounded up
    expect(l.add(r1)).toMatchObject({ added: true });
    expect(l.balance(O.id, NOW)).toMatchObject({ charged: cost, balance: 1000 - cost });
    expect(l.balance(A.id, NOW)).toMatchObject({ earned: cost, balance: 1000 + cost });
    l.add(receipt(A, B, 1, 10_000));
    const total = balances(l).reduce((t, b) => t + b.balance, 0);
    expect(total).toBe(3 * 1000);
  });

  it('a spend holds its amount until a receipt from its payee settles it; unsettled after hold_ms, it pays the payee in full', () => {
    const l = newLedger(ALL, { hold_ms: 60_000 });
    l.add(spend(O, A, 7));
    expect(l.balance(O.id, NOW)).toMatchObject({ balance: 1000, held: 100, available: 900 });
    // Nobody countersigned: after the hold the spend is paid to A (an origin cannot dodge paying).
    expect(l.balance(O.id, NOW + 60_000)).toMatchObject({ held: 0, lapsed_out: 100, balance: 900 });
    expect(l.balance(A.id, NOW + 60_000)).toMatchObject({ lapsed_in: 100, earned: 100, balance: 1100 });
    // A receipt from another rescuer does not settle it ...
    l.add(receipt(O, B, 1, 2_000, { spend_seq: 7 }));
    expect(l.balance(O.id, NOW)).toMatchObject({ held: 100, charged: 3 });
    // ... the payee's does: the actual cost replaces the reservation, before or after the hold.
    l.add(receipt(O, A, 1, 2_000, { spend_seq: 7 }));
    for (const t of [NOW, NOW + 60_000]) {
      expect(l.balance(O.id, t)).toMatchObject({ held: 0, charged: 6, balance: 994, available: 994 });
      expect(l.balance(A.id, t)).toMatchObject({ lapsed_in: 0, earned: 3 });
    }
    const total = ALL.reduce((t, m) => t + l.balance(m.id, NOW + 60_000).balance, 0);
    expect(total).toBe(3000);
  });

  it('a release signed by the payee settles a spend at no cost; nobody else can release it', () => {
    const l = newLedger(ALL, { hold_ms: 60_000 });
    l.add(spend(O, A, 9));
    const rel = release(A, O, 9);
    expect(l.add(rel).added).toBe(true);
    expect(l.add(rel).added).toBe(false);
    for (const t of [NOW, NOW + 60_000]) {
      expect(l.balance(O.id, t)).toMatchObject({ held: 0, charged: 0, balance: 1000 });
      expect(l.balance(A.id, t)).toMatchObject({ earned: 0, balance: 1000 });
    }
    // B cannot release a spend to A: it would have to sign as A.
    expect(refusal(() => l.add({ ...release(A, O, 10), sigs: release(B, O, 10).sigs }))).toBe(
      'LGR_ERR_BAD_SIGNATURE',
    );
    const impostor = { ...newMember(A.id) };
    expect(refusal(() => l.add(release(impostor, O, 10)))).toBe('LGR_ERR_WRONG_KEY');
  });

  it('trusted reloads (a registry re-reading its own store) skip signature checks but not the schema', () => {
    const r = receipt(O, A, 1, 100);
    const l = newLedger(ALL);
    expect(l.add({ ...r, sigs: {} }, { trusted: true }).added).toBe(true);
    expect(refusal(() => l.add({ ...r, type: 'nope' }, { trusted: true }))).toBe('LGR_ERR_MALFORMED');
  });

  it('replays are idempotent: the same record again (any key order) changes nothing', () => {
    const l = newLedger(ALL);
    const r = receipt(O, A, 1, 5_000);
    expect(l.add(r).added).toBe(true);
    const reordered = JSON.parse(JSON.stringify({ sigs: r.sigs, body: r.body, type: r.type })) as unknown;
    expect(l.add(reordered)).toEqual({ id: recordId(r), added: false });
    expect(l.merge([r, r, reordered])).toEqual({ added: 0, duplicates: 3, refused: [] });
    expect(l.size).toBe(1);
    expect(l.balance(A.id, NOW).earned).toBe(r.body.cost);
  });
});

describe('double spend: refused once registries converge, whatever the order', () => {
  it('two registries take conflicting spends (same account and seq), exchange records both ways, and agree', () => {
    const s1 = spend(O, A, 42);
    const s2 = spend(O, B, 42);
    const r1 = newLedger(ALL);
    const r2 = newLedger(ALL);
    // Before they talk, each registry admits "its" spend: neither can see the other one.
    expect(r1.admitSpend(s1, NOW, A.id)).toMatchObject({ ok: true });
    expect(r2.admitSpend(s2, NOW, B.id)).toMatchObject({ ok: true });
    // Anti-entropy, in both orders.
    expect(r1.merge(r2.records())).toMatchObject({ added: 1, refused: [] });
    expect(r2.merge(r1.records())).toMatchObject({ added: 1, refused: [] });
    for (const l of [r1, r2]) {
      expect(l.size).toBe(2); // both kept as evidence
      const [c] = l.conflicts();
      expect(c).toMatchObject({ key: `spend ${O.id} 42`, member: O.id });
      expect(c!.winner).toBe([recordId(s1), recordId(s2)].sort()[0]);
      expect(l.accepted(c!.winner)).toBe(true);
      expect(l.accepted(c!.ids[1]!)).toBe(false);
      expect(l.balance(O.id, NOW)).toMatchObject({ flagged: true, held: 100 }); // only the winner holds
      // A flagged account gets no more rescue.
      const next = l.checkSpend(spend(O, A, 43), NOW, A.id);
      expect(next).toMatchObject({ ok: false, code: 'LGR_ERR_DOUBLE_SPEND' });
    }
    expect(balances(r1)).toEqual(balances(r2));
    expect(r1.conflicts()).toEqual(r2.conflicts());
    // Once converged, the losing spend is refused outright.
    expect(r1.checkSpend(s2, NOW, B.id)).toMatchObject({ ok: false, code: 'LGR_ERR_DOUBLE_SPEND' });
  });

  it('any arrival order of a record set gives the same balances, conflicts and acceptance (anti-entropy)', () => {
    const set: LedgerRecord[] = [
      spend(O, A, 1),
      spend(O, B, 1), // double spend of seq 1
      spend(O, A, 3), // seq 2 never seen: gaps are allowed
      receipt(O, A, 10, 4_000, { spend_seq: 1 }),
      receipt(O, B, 10, 9_000),
      receipt(A, B, 11, 1_000),
      receipt(A, B, 11, 2_000), // B issued two receipts with one seq
    ];
    const reference = newLedger(ALL);
    reference.merge(set);
    const expected = { b: balances(reference), c: reference.conflicts() };
    let seed = 7;
    const rnd = (): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    for (let i = 0; i < 20; i++) {
      const shuffled = [...set].sort(() => rnd() - 0.5);
      const l = newLedger(ALL);
      // Delivered in two halves, the second twice (resends).
      l.merge(shuffled.slice(0, 3));
      l.merge(shuffled.slice(3));
      l.merge(shuffled.slice(3));
      expect({ b: balances(l), c: l.conflicts() }).toEqual(expected);
    }
    expect(reference.balance(B.id, NOW)).toMatchObject({
      flagged: true,
      conflicts: [`receipt ${B.id} 11`, `session ${B.id} s11.${B.id}`],
    });
    expect(reference.balance(A.id, NOW).flagged).toBe(false);
  });
});

describe('forged receipts and spends are refused, each with its code', () => {
  const l = newLedger(ALL);

  it('bad signature: one signature is not over these bytes', () => {
    const r = receipt(O, A, 1, 1000);
    const forged = {
      ...r,
      sigs: { ...r.sigs, origin: signBytes(Buffer.from('something else'), O.privateKey) },
    };
    expect(refusal(() => l.add(forged))).toBe('LGR_ERR_BAD_SIGNATURE');
    const garbage = { ...r, sigs: { ...r.sigs, rescuer: 'A'.repeat(86) } };
    expect(refusal(() => l.add(garbage))).toBe('LGR_ERR_BAD_SIGNATURE');
  });

  it('wrong key: signed consistently, but with a key that is not the admitted key of that member', () => {
    const impostor = { ...newMember(O.id) }; // claims to be the origin, with its own key
    expect(refusal(() => l.add(receipt(impostor, A, 2, 1000)))).toBe('LGR_ERR_WRONG_KEY');
    expect(refusal(() => l.add(spend(impostor, A, 5)))).toBe('LGR_ERR_WRONG_KEY');
  });

  it('tampered usage: changed after both signed, so neither signature verifies', () => {
    const r = receipt(O, A, 3, 1000);
    const tampered = { ...r, body: { ...r.body, usage: { ...r.body.usage, requests: 1_000_000 } } };
    expect(refusal(() => l.add(tampered))).toBe('LGR_ERR_TAMPERED');
    const cheaper = { ...r, body: { ...r.body, cost: 0 } };
    expect(refusal(() => l.add(cheaper))).toBe('LGR_ERR_TAMPERED');
  });

  it('only one signature', () => {
    expect(refusal(() => l.add(receipt(O, A, 4, 1000, {}, 'rescuer')))).toBe('LGR_ERR_MISSING_SIGNATURE');
    expect(refusal(() => l.add(receipt(O, A, 4, 1000, {}, 'origin')))).toBe('LGR_ERR_MISSING_SIGNATURE');
  });

  it('strangers, other communities, self-dealing, inconsistent usage and malformed records', () => {
    const stranger = newMember('stranger.example');
    expect(refusal(() => l.add(receipt(O, stranger, 5, 1000)))).toBe('LGR_ERR_UNKNOWN_MEMBER');
    expect(refusal(() => l.add(receipt(O, A, 6, 1000, { community: 'other.example' })))).toBe(
      'LGR_ERR_WRONG_COMMUNITY',
    );
    expect(refusal(() => l.add(receipt(A, A, 7, 1000)))).toBe('LGR_ERR_SELF_DEALING');
    expect(refusal(() => l.add(spend(O, O, 8)))).toBe('LGR_ERR_SELF_DEALING');
    const bad = receipt(O, A, 9, 1000);
    const over = receipt(O, A, 9, 1000, {
      usage: { ...bad.body.usage, by_dns: { requests: 1, bytes: 0 } },
    });
    expect(refusal(() => l.add(over))).toBe('LGR_ERR_BAD_USAGE');
    expect(refusal(() => l.add(receipt(O, A, 10, 1, { ended: NOW - 120_000 })))).toBe('LGR_ERR_BAD_USAGE');
    for (const junk of [null, 'x', {}, { type: 'spend' }, { ...spend(O, A, 11), extra: 1 }]) {
      expect(refusal(() => l.add(junk))).toBe('LGR_ERR_MALFORMED');
    }
    const float = { ...spend(O, A, 12), body: { ...spend(O, A, 12).body, amount: 1.5 } };
    expect(refusal(() => l.add(float))).toBe('LGR_ERR_MALFORMED');
    expect(refusal(() => canonicalJson({ a: 0.5 }))).toBe('LGR_ERR_NOT_CANONICAL');
    expect(l.size).toBe(0); // nothing refused was stored
    // A batch reports each refusal and keeps the good ones.
    const m = l.merge([receipt(O, A, 20, 10), receipt(O, A, 21, 10, {}, 'origin'), 'junk']);
    expect(m).toMatchObject({ added: 1, duplicates: 0 });
    expect(m.refused.map((x) => [x.index, x.code])).toEqual([
      [1, 'LGR_ERR_MISSING_SIGNATURE'],
      [2, 'LGR_ERR_MALFORMED'],
    ]);
  });
});

describe('spending: what a rescuer asks before it accepts an SOS', () => {
  it('needs an available balance covering the spend', () => {
    const broke = newLedger(ALL, { starting_balance: 0 });
    expect(broke.checkSpend(spend(O, A, 1), NOW, A.id)).toMatchObject({
      ok: false,
      code: 'LGR_ERR_INSUFFICIENT_TOKENS',
    });
    const l = newLedger(ALL, { starting_balance: 250 });
    expect(l.admitSpend(spend(O, A, 1), NOW, A.id)).toMatchObject({ ok: true });
    expect(l.admitSpend(spend(O, B, 2), NOW, B.id)).toMatchObject({ ok: true });
    // 200 of 250 held: a third spend of 100 is not covered.
    expect(l.checkSpend(spend(O, A, 3), NOW, A.id)).toMatchObject({
      ok: false,
      code: 'LGR_ERR_INSUFFICIENT_TOKENS',
    });
    // Earning by rescuing others restores it.
    l.add(receipt(B, O, 1, 60_000));
    expect(l.checkSpend(spend(O, A, 3), NOW, A.id)).toMatchObject({ ok: true });
  });

  it('refuses other payees, stale, small and reused spends', () => {
    const l = newLedger(ALL);
    expect(l.checkSpend(spend(O, A, 1), NOW, B.id)).toMatchObject({ code: 'LGR_ERR_WRONG_PAYEE' });
    expect(l.checkSpend(spend(O, A, 1, { ts: NOW - 600_000 }), NOW, A.id)).toMatchObject({
      code: 'LGR_ERR_STALE_SPEND',
    });
    expect(l.checkSpend(spend(O, A, 1, { amount: 1 }), NOW, A.id)).toMatchObject({
      code: 'LGR_ERR_SPEND_TOO_SMALL',
    });
    const s = spend(O, A, 1);
    expect(l.admitSpend(s, NOW, A.id)).toMatchObject({ ok: true });
    expect(l.admitSpend(s, NOW, A.id)).toMatchObject({ ok: false, code: 'LGR_ERR_SPEND_REUSED' });
    expect(l.checkSpend(receipt(O, A, 1, 1), NOW, A.id)).toMatchObject({ code: 'LGR_ERR_MALFORMED' });
  });
});

describe('ledgerPolicySchema', () => {
  it('has defaults, refuses unknown keys and bad values', () => {
    expect(ledgerPolicySchema.parse({})).toEqual(DEFAULT_LEDGER_POLICY);
    expect(ledgerPolicySchema.safeParse({ price_per_gb: -1 }).success).toBe(false);
    expect(ledgerPolicySchema.safeParse({ starting_balnce: 5 }).success).toBe(false);
    expect(ledgerPolicySchema.safeParse({ starting_balance: 1.5 }).success).toBe(false);
    const p = ledgerPolicySchema.parse({ price_per_gb: 0.1, price_per_1k_requests: 0.2 });
    // 1 GB + 1k requests = 0.1 + 0.2, exactly 1 token after rounding up (no float noise).
    expect(priceOf({ requests: 1000, bytes: 1e9 }, p)).toBe(1);
    expect(priceOf({ requests: 0, bytes: 0 }, p)).toBe(0);
  });
});

describe('MemberLedger: what each party checks before signing', () => {
  const policy = DEFAULT_LEDGER_POLICY;
  const ledgerOf = (self: typeof O, l: Ledger) =>
    new MemberLedger({
      community: COMMUNITY,
      policy,
      self: { id: self.id, privateKey: self.privateKey },
      peerKey: (m) => ALL.find((x) => x.id === m)?.keyObject,
      registry: { admitSpend: async (s, payee) => l.admitSpend(s, NOW, payee) },
      sink: { submit: async (r) => void l.add(r) },
      wall: () => NOW,
    });
  const facts = {
    session: 's1.a.example',
    origin: O.id,
    usage: { requests: 5000, bytes: 1e6 },
    started: NOW - 1000,
    ended: NOW,
  };

  it('tokens: the rescuer refuses a spend from another account, to another payee, or malformed', async () => {
    const l = newLedger(ALL);
    const o = ledgerOf(O, l);
    const a = ledgerOf(A, l);
    expect(await a.checkToken(O.id, o.token(A.id))).toMatchObject({ ok: true });
    expect(await a.checkToken(B.id, o.token(A.id))).toMatchObject({
      ok: false,
      code: 'LGR_ERR_WRONG_ACCOUNT',
    });
    expect(await a.checkToken(O.id, o.token(B.id))).toMatchObject({ ok: false, code: 'LGR_ERR_WRONG_PAYEE' });
    expect(await a.checkToken(O.id, '{not json')).toMatchObject({ ok: false, code: 'LGR_ERR_MALFORMED' });
    expect(await a.checkToken(O.id, undefined)).toMatchObject({ ok: false, code: 'LGR_ERR_NO_TOKEN' });
  });

  it('receipts: the origin countersigns only its price of the usage, for its session, from the known rescuer key', () => {
    const l = newLedger(ALL);
    const o = ledgerOf(O, l);
    const a = ledgerOf(A, l);
    const half = a.rescuerHalf(facts);
    expect(half.body.cost).toBe(priceOf(facts.usage, policy));
    const done = o.countersign(A.id, facts.session, half);
    expect(l.add(a.completed(half, done)).added).toBe(true);
    const overpriced = signReceipt({ ...half.body, cost: half.body.cost + 1 }, 'rescuer', A.privateKey);
    expect(refusal(() => o.countersign(A.id, facts.session, overpriced))).toBe('LGR_ERR_BAD_COST');
    expect(refusal(() => o.countersign(A.id, 'other-session', half))).toBe('LGR_ERR_MALFORMED');
    expect(refusal(() => o.countersign(B.id, facts.session, half))).toBe('LGR_ERR_MALFORMED');
    const forged = { ...half, sigs: { rescuer: signBytes(Buffer.from('x'), A.privateKey) } };
    expect(refusal(() => o.countersign(A.id, facts.session, forged))).toBe('LGR_ERR_BAD_SIGNATURE');
    // The rescuer accepts back only the receipt it sent, with a good origin signature.
    const changed = { ...done, body: { ...done.body, cost: 0 } };
    expect(refusal(() => a.completed(half, changed))).toBe('LGR_ERR_TAMPERED');
    expect(refusal(() => a.completed(half, { ...done, sigs: { rescuer: half.sigs.rescuer } }))).toBe(
      'LGR_ERR_MISSING_SIGNATURE',
    );
  });
});
