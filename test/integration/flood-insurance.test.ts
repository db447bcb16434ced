// Issue 5, "a flood-insurance community moves tokens on each rescue", end to end with processes on
// 127.0.0.x: a `dotslash registry` with a flood-insurance community, members admitted with
// `dotslash registry admit`, an origin and two rescuers (`dotslash start`) that find each other
// through it. A crowd gets the origin rescued and released; the registry's ledger then shows the
// rescuers paid, the origin charged the same total, and one countersigned receipt per closed
// session. The origin, spent out by that rescue, asks again under a second crowd and is declined
// (CTL_ERR_NO_TOKENS) without a token moving.
import { dirname, join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { loadPrivateKey } from '../../rescue-protocol/keys.js';
import { DEMO_COMMUNITY, type Community } from '../../src/demo/community.js';
import { crowdFor, waitForRelease } from '../../src/demo/run.js';
import { memberStatus } from '../../src/demo/status.js';
import type { Balance } from '../../src/registry/ledger/index.js';
import { LEDGER_BALANCE_PATH } from '../../src/registry/messages.js';
import { sealRequest } from '../../src/registry/signed.js';
import { runCli } from '../e2e/helpers.js';
import { hostsFrom, logLines, makeCommunity, sleep, stopAll, until } from './helpers.js';

afterEach(stopAll);

const ORIGIN_RPS = 10;
// One token per request served (so any real rescue costs more than the origin's spare tokens),
// two concurrent spends fit in the starting balance, and an unsettled spend stops holding soon.
const POLICY = {
  starting_balance: 100,
  spend_amount: 40,
  price_per_1k_requests: 1_000,
  price_per_gb: 0,
  hold_ms: 30_000,
};

interface Receipt {
  readonly session: string;
  readonly origin: string;
  readonly rescuer: string;
  readonly cost: number;
}

/** A member's balance from the registry API, asked as the origin (a registered member signs the request). */
async function balanceOf(c: Community, account: string): Promise<Balance> {
  const { privateKey } = loadPrivateKey(c.origin.keyFile);
  const body = { community: DEMO_COMMUNITY, account };
  const sealed = sealRequest(c.origin.name, DEMO_COMMUNITY, 'ledger-balance', body, privateKey);
  const res = await fetch(c.registry!.url + LEDGER_BALANCE_PATH, {
    method: 'POST',
    headers: sealed.headers,
    body: sealed.bytes,
    signal: AbortSignal.timeout(5_000),
  });
  const answer = (await res.json()) as { balance?: Balance; error?: unknown };
  if (!res.ok || !answer.balance)
    throw new Error(`balance of ${account}: ${res.status} ${JSON.stringify(answer)}`);
  return answer.balance;
}

async function balances(c: Community): Promise<Record<string, Balance>> {
  const all = await Promise.all(c.members.map((m) => balanceOf(c, m.name)));
  return Object.fromEntries(all.map((b) => [b.account, b]));
}

/** The receipts in the registry's own store (its replicated 'ledger' records), read-only (WAL). */
function registryReceipts(c: Community): Receipt[] {
  const db = new Database(join(dirname(c.registry!.configFile), 'registry.db'), {
    readonly: true,
    fileMustExist: true,
  });
  try {
    const rows = db.prepare("SELECT payload FROM records WHERE kind = 'ledger' AND deleted = 0").all() as {
      payload: string;
    }[];
    const out: Receipt[] = [];
    for (const { payload } of rows) {
      const rec = (JSON.parse(payload) as { record: { type: string; body: Record<string, unknown> } }).record;
      if (rec.type !== 'receipt') continue;
      const b = rec.body as {
        session: string;
        origin: { id: string };
        rescuer: { id: string };
        cost: number;
      };
      out.push({ session: b.session, origin: b.origin.id, rescuer: b.rescuer.id, cost: b.cost });
    }
    return out;
  } finally {
    db.close();
  }
}

/** Ids of the sessions the origin opened (accepted by a rescuer) and closed, from its state file. */
function closedOriginSessions(c: Community): { opened: number; closed: string[] } {
  const db = new Database(c.origin.stateFile, { readonly: true, fileMustExist: true });
  try {
    const rows = db
      .prepare("SELECT id, closed_at FROM sessions WHERE role = 'origin' AND id IS NOT NULL")
      .all() as { id: string; closed_at: number | null }[];
    return {
      opened: rows.length,
      closed: rows
        .filter((r) => r.closed_at !== null)
        .map((r) => r.id)
        .sort(),
    };
  } finally {
    db.close();
  }
}

/** A flash crowd on the origin: ramps up in seconds to `peak` req/s, holds up to `holdMs` (or until `done`). */
async function flashCrowd(
  c: Community,
  peak: number,
  holdMs: number,
  done = (): boolean => false,
): Promise<void> {
  const crowd = crowdFor(c);
  try {
    for (let i = 1; i <= 4; i++) {
      crowd.setRate((peak * i) / 4);
      await sleep(1_000);
    }
    const end = Date.now() + holdMs;
    while (!done() && Date.now() < end) await sleep(250);
  } finally {
    await crowd.close();
  }
}

describe('flood-insurance community', () => {
  it(
    'a rescue moves tokens from the origin to its rescuers (receipt per session); a spent-out origin is declined',
    { timeout: 180_000 },
    async () => {
      const t0 = performance.now();
      const c = await makeCommunity({
        hosts: hostsFrom(110, 3),
        names: ['origin.test', 'rescue-a.test', 'rescue-b.test'],
        originRps: ORIGIN_RPS,
        // Small enough that one rescuer alone is not plenty: both are asked.
        rescuerRps: 4 * ORIGIN_RPS,
        discovery: 'registry',
        community: { type: 'flood-insurance', policy: POLICY },
      });
      await c.startRegistry();
      // A closed community: every member's key is admitted by the administrator's CLI first.
      const admits = c.members.map((m) =>
        runCli([
          'registry',
          'admit',
          m.publicKey,
          '-c',
          c.registry!.configFile,
          '--community',
          DEMO_COMMUNITY,
        ]),
      );
      for (const a of admits) {
        expect(await a.exited, a.out.stderr).toBe(0);
        expect(JSON.parse(a.out.stdout)).toMatchObject({ community: DEMO_COMMUNITY, admitted: true });
      }
      await c.start();
      // Registered (the balance route answers only a registered member) and at the starting balance.
      const before = await until(() => balances(c), 30_000, 'members registered with the registry');
      for (const b of Object.values(before)) expect(b.balance).toBe(POLICY.starting_balance);

      // Phase 1: a crowd of 8x the origin's capacity, then release.
      await flashCrowd(c, 8 * ORIGIN_RPS, 14_000);
      expect(await waitForRelease(c.origin, 60_000)).toBe(true);
      const atRelease = closedOriginSessions(c);
      expect(atRelease.opened, 'the origin was rescued').toBeGreaterThanOrEqual(1);
      expect(atRelease.closed).toHaveLength(atRelease.opened);
      // Receipts are countersigned at SHUTDOWN and submitted by both sides: wait for them. An SOS
      // still in flight at release (its row gets an id only once accepted) can open and close one
      // more session meanwhile (seen once in CI), so the sessions are read again with the receipts.
      const { sessions, receipts } = (await until(
        () => {
          const s = closedOriginSessions(c);
          if (s.closed.length !== s.opened) return undefined;
          const r = registryReceipts(c);
          const ids = [...new Set(r.map((x) => x.session))].sort();
          return ids.join() === s.closed.join() ? { sessions: s, receipts: r } : undefined;
        },
        20_000,
        'a receipt per closed session at the registry, every session closed',
      ))!;
      expect(sessions.closed.length).toBeGreaterThanOrEqual(atRelease.closed.length);
      expect(receipts.every((r) => r.origin === c.origin.name)).toBe(true);

      const after = await balances(c);
      const paid = receipts.reduce((a, r) => a + r.cost, 0);
      expect(paid, 'the rescue cost tokens').toBeGreaterThan(0);
      const gained = c.rescuers.map((r) => after[r.name]!.balance - POLICY.starting_balance);
      for (const r of c.rescuers) {
        const earned = receipts.filter((x) => x.rescuer === r.name).reduce((a, x) => a + x.cost, 0);
        // Each rescuer earned exactly what its receipts say; one that served rose.
        expect(after[r.name]!.earned).toBe(earned);
        expect(after[r.name]!.balance).toBe(POLICY.starting_balance + earned);
      }
      expect(gained.filter((g) => g > 0).length, 'rescuers paid').toBeGreaterThanOrEqual(1);
      // Conservation: the origin paid what the rescuers gained; nothing held, nothing minted.
      const origin = after[c.origin.name]!;
      expect(origin.charged).toBe(paid);
      expect(POLICY.starting_balance - origin.balance).toBe(gained.reduce((a, g) => a + g, 0));
      expect(origin.held).toBe(0);
      expect(Object.values(after).reduce((a, b) => a + b.balance, 0)).toBe(3 * POLICY.starting_balance);
      process.stdout.write(
        `flood-insurance: ${sessions.closed.length} sessions, ${receipts.length} receipt records, ` +
          `origin ${POLICY.starting_balance} -> ${origin.balance} (available ${origin.available}); ` +
          c.rescuers.map((r) => `${r.name} -> ${after[r.name]!.balance}`).join(', ') +
          ` after ${Math.round((performance.now() - t0) / 1000)} s\n`,
      );

      // Phase 2: spent out, the origin asks again and every rescuer declines; no token moves.
      expect(origin.available).toBeLessThan(POLICY.spend_amount);
      const declined = (): boolean =>
        logLines(c.origin.logFile).some((l) => String(l.reason ?? '').includes('CTL_ERR_NO_TOKENS'));
      await flashCrowd(c, 8 * ORIGIN_RPS, 30_000, declined);
      expect(declined(), 'an SOS declined with CTL_ERR_NO_TOKENS').toBe(true);
      const refusals = c.rescuers.flatMap((r) =>
        logLines(r.logFile).filter((l) => l.code === 'CTL_ERR_NO_TOKENS' && l.origin === c.origin.name),
      );
      expect(refusals.length).toBeGreaterThanOrEqual(1);
      expect(refusals.every((l) => l.ledger === 'LGR_ERR_INSUFFICIENT_TOKENS')).toBe(true);
      expect(closedOriginSessions(c).opened, 'no rescue without tokens').toBe(sessions.opened);
      expect((await memberStatus(c.origin)).sessions.filter((s) => s.role === 'origin' && s.id)).toEqual([]);
      const end = await balances(c);
      for (const m of c.members) expect(end[m.name]!.balance).toBe(after[m.name]!.balance);
      process.stdout.write(
        `flood-insurance: spent-out origin declined ${refusals.length}x (CTL_ERR_NO_TOKENS); ` +
          `test body ${Math.round((performance.now() - t0) / 1000)} s\n`,
      );
    },
  );
});
