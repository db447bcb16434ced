// The token ledger inside registries: spends and receipts through the member API, replicated by
// the mesh; a double spend sent to two registries is refused once they converge; a forged receipt
// is refused with its ledger code; balances agree everywhere.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { RegistryClient } from '../../src/registry/client.js';
import {
  DEFAULT_LEDGER_POLICY,
  LEDGER_VERSION,
  signSpend,
  type SpendRecord,
} from '../../src/registry/ledger/index.js';
import { RegistryService } from '../../src/registry/service.js';
import { freePort, member, registryConfig, registryKey, tempDir, until, type Member } from './helpers.js';

const COMMUNITY = 'flood';
const services: RegistryService[] = [];
const clients: RegistryClient[] = [];
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await Promise.all(services.splice(0).map((s) => s.close()));
});

async function pair(): Promise<[RegistryService, RegistryService]> {
  const keys = [registryKey('ra.test'), registryKey('rb.test')];
  const ports = [await freePort(), await freePort()];
  const out: RegistryService[] = [];
  for (let i = 0; i < 2; i++) {
    const dir = tempDir();
    writeFileSync(join(dir, 'registry.key'), keys[i]!.pem, { mode: 0o600 });
    const o = 1 - i;
    const svc = new RegistryService(
      registryConfig(dir, {
        id: keys[i]!.id,
        listen: `127.0.0.1:${ports[i]}`,
        communities: [{ name: COMMUNITY, type: 'flood-insurance', policy: { starting_balance: 150 } }],
        peers: [{ id: keys[o]!.id, url: `http://127.0.0.1:${ports[o]}`, public_key: keys[o]!.publicKey }],
      }),
      { adminToken: 't' },
    );
    services.push(svc);
    await svc.start();
    out.push(svc);
  }
  return out as [RegistryService, RegistryService];
}

async function admitAll(svc: RegistryService, ...ms: Member[]): Promise<void> {
  for (const m of ms) {
    const res = await fetch(`${svc.adminUrl}/v1/admin/admit`, {
      method: 'POST',
      headers: { authorization: 'Bearer t', 'content-type': 'application/json' },
      body: JSON.stringify({ community: COMMUNITY, public_key: m.publicKey }),
    });
    expect(res.status).toBe(200);
  }
}

function client(m: Member, url: string): RegistryClient {
  const c = new RegistryClient({
    self: { id: m.id, privateKey: m.privateKey },
    registration: (({ spare: _s, ...r }) => r)(m.registration()),
    registries: [url],
  });
  clients.push(c);
  return c;
}

function spendOf(from: Member, payee: Member, seq: number): SpendRecord {
  return signSpend(
    {
      v: LEDGER_VERSION,
      kind: 'spend',
      community: COMMUNITY,
      account: from.id,
      key: from.publicKey,
      seq,
      amount: DEFAULT_LEDGER_POLICY.spend_amount,
      payee: payee.id,
      ts: Date.now(),
    },
    from.privateKey,
  );
}

describe('token ledger in the registry mesh', () => {
  it('admits a paying spend once, refuses the double spend on the other registry, agrees on balances', async () => {
    const [a, b] = await pair();
    const origin = member('origin.test', COMMUNITY);
    const r1 = member('r1.test', COMMUNITY);
    const r2 = member('r2.test', COMMUNITY);
    await admitAll(a, origin, r1, r2);
    const [co, c1, c2] = [client(origin, a.url), client(r1, a.url), client(r2, b.url)];
    await until(() => b.directory.isAdmitted(COMMUNITY, r2.publicKey), 10_000, 'admissions replicated');
    for (const c of [co, c1, c2]) await c.start();
    await until(
      () => b.directory.live(COMMUNITY, origin.id) !== undefined,
      10_000,
      'registrations replicated',
    );

    // Spend seq 1 to r1 on registry a: good. The same seq paying r2 on b: a double spend.
    expect(await c1.admitSpend(spendOf(origin, r1, 1), r1.id)).toMatchObject({ ok: true });
    await until(() => b.ledgers.get(COMMUNITY).size === 1, 10_000, 'spend replicated');
    const twice = await c2.admitSpend(spendOf(origin, r2, 1), r2.id);
    expect(twice).toMatchObject({ ok: false, code: 'LGR_ERR_DOUBLE_SPEND' });
    // 150 starting, 100 held: a second spend of 100 has no cover.
    const broke = await c2.admitSpend(spendOf(origin, r2, 2), r2.id);
    expect(broke).toMatchObject({ ok: false, code: 'LGR_ERR_INSUFFICIENT_TOKENS' });
    // A spend forged by r2 in origin's name: refused.
    const forged = signSpend({ ...spendOf(origin, r2, 3).body }, r2.privateKey);
    expect(await c2.admitSpend(forged, r2.id)).toMatchObject({ ok: false, code: 'LGR_ERR_BAD_SIGNATURE' });
    // A forged record submitted directly: refused with the ledger's code, nothing stored.
    await expect(c2.submit(forged)).rejects.toThrow(/REG_ERR_LEDGER|LGR_ERR_BAD_SIGNATURE/);
    await until(
      async () => {
        const [x, y] = [await co.balance(), await c2.balance(origin.id)];
        return x.held === 100 && y.held === 100 && x.available === y.available;
      },
      10_000,
      'equal balances on both registries',
    );
  });
});
