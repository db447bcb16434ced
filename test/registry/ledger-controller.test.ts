// Flood insurance in the controller (issue 5 items 3 and 5): the origin's SOS carries a signed
// spend, the rescuer accepts only when the ledger says it pays, and SHUTDOWN produces a receipt
// both sign that moves tokens. Members talk through the in-process loopback of test/controller.
import { describe, expect, it } from 'vitest';
import { parsePrivateKey, generateKeyPair } from '../../rescue-protocol/keys.js';
import { parseRequestBody, type VerifiedMessage } from '../../rescue-protocol/index.js';
import {
  DEFAULT_LEDGER_POLICY,
  Ledger,
  MemberLedger,
  type LedgerPolicy,
  type LedgerRecord,
} from '../../src/registry/ledger/index.js';
import { LoopNet, ManualClock, member, memberConfig, run, sample } from '../controller/control-helpers.js';
import { COMMUNITY, keysOf, newMember, type Member } from './ledger-helpers.js';

const O = newMember('origin.example');
const A = newMember('a.example');
const USAGE = {
  requests: 120_000,
  bytes: 240_000_000,
  by_redirect: { requests: 100_000, bytes: 200_000_000 },
  by_dns: { requests: 20_000, bytes: 40_000_000 },
};
const COST = 123; // 120 (requests) + 2.4 (bytes), rounded up

/** One registry's ledger, the SpendChecker and ReceiptSink members use, and what reached it. */
function registry(
  clock: ManualClock,
  policy: LedgerPolicy,
  opts: { down?: boolean; whileChecking?: () => void } = {},
) {
  const ledger = new Ledger({ community: COMMUNITY, policy, keys: keysOf(O, A) });
  const submitted: LedgerRecord[] = [];
  return {
    ledger,
    submitted,
    checker: {
      admitSpend: async (spend: unknown, payee: string) => {
        if (opts.down) throw new Error('connect ECONNREFUSED 127.0.0.1:1');
        opts.whileChecking?.();
        return ledger.admitSpend(spend, clock.wall(), payee);
      },
    },
    sink: {
      submit: async (r: LedgerRecord) => {
        submitted.push(r);
        ledger.add(r);
      },
    },
  };
}

function memberLedger(
  self: Member,
  peers: Member[],
  reg: ReturnType<typeof registry>,
  clock: ManualClock,
  policy: LedgerPolicy,
): MemberLedger {
  const keys = new Map(peers.map((p) => [p.id, p.keyObject]));
  return new MemberLedger({
    community: COMMUNITY,
    policy,
    self: { id: self.id, privateKey: self.privateKey },
    peerKey: (m) => keys.get(m),
    registry: reg.checker,
    sink: reg.sink,
    wall: clock.wall,
  });
}

function community(
  opts: {
    policy?: Partial<LedgerPolicy>;
    originLedger?: 'none' | 'impostor';
    registryDown?: boolean;
    whileChecking?: () => void;
  } = {},
) {
  const net = new LoopNet();
  const clock = new ManualClock();
  const policy = { ...DEFAULT_LEDGER_POLICY, ...opts.policy };
  const reg = registry(clock, policy, { down: opts.registryDown, whileChecking: opts.whileChecking });
  const impostor = { ...O, privateKey: parsePrivateKey(generateKeyPair().privateKeyPem) };
  const originLedger =
    opts.originLedger === 'none'
      ? undefined
      : memberLedger(opts.originLedger === 'impostor' ? impostor : O, [A], reg, clock, policy);
  const origin = member(net, clock, memberConfig(O.id, [A.id]), undefined, undefined, originLedger);
  const a = member(
    net,
    clock,
    memberConfig(A.id, [O.id], { rescue: { max_share: 1 } }),
    undefined,
    () => USAGE,
    memberLedger(A, [O], reg, clock, policy),
  );
  a.controller.observe(sample('light', 0.1));
  return { net, clock, reg, origin, a, all: [origin, a] };
}

const lastSos = (net: LoopNet) => net.sent.filter((s) => s.type === 'SOS').at(-1)!;

describe('flood insurance: SOS pays with a signed spend; SHUTDOWN signs a receipt that moves tokens', () => {
  it('origin releases: the rescuer signs its half in the ACK, the origin countersigns and submits; the rescuer earns, the origin pays', async () => {
    const { net, clock, reg, origin, a, all } = community();
    origin.controller.observe(sample('heavy', 1.2, 1000));
    await run(all, clock, 3);
    expect(origin.table.list('origin', ['active'])).toHaveLength(1);
    const token = (lastSos(net).body as { token?: string }).token;
    expect(token).toBeDefined();
    // The rescuer checked it through the registry, which recorded the spend (tokens held).
    expect(reg.ledger.balance(O.id, clock.wall())).toMatchObject({ held: 100, available: 900 });
    expect(a.table.list('rescuer', ['active'])[0]!.token).toBe(token);

    origin.controller.observe(sample('light', 0.1, 100));
    await run(all, clock, 60);
    expect(net.count('SHUTDOWN', O.id, A.id)).toBe(1);
    expect(reg.submitted).toHaveLength(1);
    const [r] = reg.submitted;
    expect(r).toMatchObject({
      type: 'receipt',
      body: { origin: { id: O.id }, rescuer: { id: A.id }, usage: USAGE, cost: COST },
    });
    expect(Object.keys(r!.sigs).sort()).toEqual(['origin', 'rescuer']);
    expect(reg.ledger.balance(A.id, clock.wall())).toMatchObject({ earned: COST, balance: 1000 + COST });
    expect(reg.ledger.balance(O.id, clock.wall())).toMatchObject({
      charged: COST,
      held: 0, // the receipt settled the spend
      balance: 1000 - COST,
      available: 1000 - COST,
    });
  });

  it('rescuer shuts down: its SHUTDOWN carries its half, the origin countersigns in the ACK; both submit, once counted', async () => {
    const { net, clock, reg, origin, a, all } = community();
    origin.controller.observe(sample('heavy', 1.2, 1000));
    await run(all, clock, 3);
    expect(a.table.list('rescuer', ['active'])).toHaveLength(1);
    a.controller.setMode('off');
    await run(all, clock, 2);
    expect(net.count('SHUTDOWN', A.id, O.id)).toBe(1);
    const shutdown = net.sent.find((s) => s.type === 'SHUTDOWN')!.body as { receipt?: { sigs: object } };
    expect(Object.keys(shutdown.receipt!.sigs)).toEqual(['rescuer']);
    expect(reg.submitted).toHaveLength(2); // origin and rescuer each submitted the same receipt
    expect(reg.ledger.size).toBe(2); // the spend and one receipt
    expect(reg.ledger.balance(A.id, clock.wall()).earned).toBe(COST);
    expect(reg.ledger.balance(O.id, clock.wall())).toMatchObject({ charged: COST, held: 0 });
    expect(origin.table.list('origin', ['active'])).toHaveLength(0);
  });
});

describe('flood insurance: no tokens, no rescue', () => {
  async function declinedWith(c: ReturnType<typeof community>): Promise<string> {
    const { clock, origin, a, all } = c;
    origin.controller.observe(sample('heavy', 1.2, 1000));
    await run(all, clock, 1);
    expect(a.table.list('rescuer')).toHaveLength(0);
    expect(origin.table.list('origin', ['active'])).toHaveLength(0);
    const row = origin.db.sessions().find((r) => r.peer === A.id)!;
    expect(row.state).toBe('closed');
    return row.reason ?? '';
  }

  it('a member with zero tokens is declined (CTL_ERR_NO_TOKENS), and nothing is held', async () => {
    const c = community({ policy: { starting_balance: 0 } });
    expect(await declinedWith(c)).toMatch(/CTL_ERR_NO_TOKENS: .*LGR_ERR_INSUFFICIENT_TOKENS/);
    expect(c.reg.ledger.size).toBe(0);
  });

  it('an SOS without a token is declined (CTL_ERR_NO_TOKENS)', async () => {
    expect(await declinedWith(community({ originLedger: 'none' }))).toMatch(
      /CTL_ERR_NO_TOKENS: .*LGR_ERR_NO_TOKEN/,
    );
  });

  it("a spend signed with a key that is not the origin's is declined (CTL_ERR_BAD_TOKEN)", async () => {
    expect(await declinedWith(community({ originLedger: 'impostor' }))).toMatch(
      /CTL_ERR_BAD_TOKEN: .*LGR_ERR_/,
    );
  });

  it('the token passed but the rescuer turned heavy meanwhile: declined, and the spend is released (nothing held)', async () => {
    const rescuer: { a?: ReturnType<typeof community>['a'] } = {};
    const c = community({ whileChecking: () => rescuer.a?.controller.observe(sample('heavy', 0.95)) });
    rescuer.a = c.a;
    expect(await declinedWith(c)).toMatch(/CTL_ERR_HEAVY/);
    await run(c.all, c.clock, 1);
    expect(c.reg.submitted.map((r) => r.type)).toEqual(['release']);
    expect(c.reg.ledger.balance(O.id, c.clock.wall())).toMatchObject({ held: 0, available: 1000 });
  });

  it('an unreachable registry declines the rescue (CTL_ERR_LEDGER_UNAVAILABLE)', async () => {
    expect(await declinedWith(community({ registryDown: true }))).toMatch(/CTL_ERR_LEDGER_UNAVAILABLE/);
  });
});

describe('flood insurance: bad receipts at SHUTDOWN change nothing but the session ending', () => {
  it('a SHUTDOWN whose receipt is not a receipt is refused by the schema (RSC_ERR_BAD_MESSAGE)', () => {
    for (const receipt of [
      'x',
      { type: 'receipt', body: {}, sigs: { origin: 5 } },
      { type: 'spend', body: {}, sigs: {} },
    ]) {
      expect(() => parseRequestBody('SHUTDOWN', { session: 's1.a.example', reason: '', receipt })).toThrow(
        expect.objectContaining({ code: 'RSC_ERR_BAD_MESSAGE' }),
      );
    }
  });

  it('a forged receipt from the rescuer is not countersigned: the ACK carries none, nothing is submitted, the session ends', async () => {
    const { clock, reg, origin, all } = community();
    origin.controller.observe(sample('heavy', 1.2, 1000));
    await run(all, clock, 3);
    const [s] = origin.table.list('origin', ['active']);
    const forged = { type: 'receipt', body: { session: s!.id }, sigs: { rescuer: 'A'.repeat(86) } };
    const msg = {
      v: 1,
      type: 'SHUTDOWN',
      from: A.id,
      to: O.id,
      ts: Date.now(),
      nonce: 'n'.repeat(22),
      body: { session: s!.id!, reason: 'test', receipt: forged },
    } as VerifiedMessage;
    expect(await origin.controller.onMessage(msg)).toEqual({ ok: true, session: s!.id });
    expect(s!.state).toBe('closed');
    expect(reg.submitted.filter((r) => r.type === 'receipt')).toHaveLength(0);
  });
});
