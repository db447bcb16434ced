// The registry in-process: registration under a lease, lookup ranking, closed communities, and
// refusals of bad input with clear codes and nothing stored.
import { afterEach, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { macRequest, sealRequest } from '../../src/registry/signed.js';
import { RegistryService } from '../../src/registry/service.js';
import { LOOKUP_PATH, REGISTER_PATH } from '../../src/registry/messages.js';
import { RegistryClient } from '../../src/registry/client.js';
import { member, registryConfig, tempDir, type Member } from './helpers.js';

const services: RegistryService[] = [];
afterEach(async () => {
  await Promise.all(services.splice(0).map((s) => s.close()));
});

async function start(
  raw: Record<string, unknown> = {},
  opts: { now?: () => number } = {},
): Promise<RegistryService> {
  const svc = new RegistryService(registryConfig(tempDir(), raw), { adminToken: 'test-token', ...opts });
  services.push(svc);
  await svc.start();
  return svc;
}

async function post(
  svc: RegistryService,
  m: Member,
  path: string,
  type: 'register' | 'lookup',
  body: unknown,
  to = 'default',
) {
  const sealed = sealRequest(m.id, to, type, body, m.privateKey);
  const res = await fetch(svc.url + path, { method: 'POST', headers: sealed.headers, body: sealed.bytes });
  return {
    status: res.status,
    body: (await res.json()) as Record<string, unknown> & { error?: { code: string; message: string } },
  };
}

async function admin(svc: RegistryService, path: string, body: unknown, token = 'test-token') {
  const res = await fetch(svc.adminUrl + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify(body),
  });
  return {
    status: res.status,
    body: (await res.json()) as Record<string, unknown> & { error?: { code: string } },
  };
}

describe('registry service', () => {
  it('registers members and ranks lookup candidates by spare capacity and measured RTT', async () => {
    const svc = await start();
    const origin = member('origin.test');
    const big = member('big.test');
    const small = member('small.test');
    const near = member('near.test');
    const unwilling = member('unwilling.test');
    for (const [m, spare, willing] of [
      [origin, 1, true],
      [big, 9_000_000, true],
      [small, 1_000_000, true],
      [near, 5_000_000, true],
      [unwilling, 50_000_000, false],
    ] as const) {
      const r = await post(
        svc,
        m,
        REGISTER_PATH,
        'register',
        m.registration({ spare: { uplink_bps: spare, cpu: 1, rps: 0 }, willing }),
      );
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      expect(r.body.registered).toBe(true);
    }
    const plain = await post(svc, origin, LOOKUP_PATH, 'lookup', { community: 'default', origin: origin.id });
    expect((plain.body.candidates as { id: string }[]).map((c) => c.id)).toEqual([
      'big.test',
      'near.test',
      'small.test',
    ]);
    // near measured at 5 ms, big at 400 ms: 5e6/1.05 beats 9e6/5.
    const rtt = await post(svc, origin, LOOKUP_PATH, 'lookup', {
      community: 'default',
      origin: origin.id,
      exclude: ['small.test'],
      rtt_ms: { 'near.test': 5, 'big.test': 400 },
    });
    expect((rtt.body.candidates as { id: string }[]).map((c) => c.id)).toEqual(['near.test', 'big.test']);
  });

  it('a lapsed lease drops the member from lookups (and the purge removes it)', async () => {
    let now = Date.now();
    const svc = await start({ lease: { min_ms: 1_000, max_ms: 60_000 } }, { now: () => now });
    const a = member('a.test');
    const b = member('b.test');
    expect((await post(svc, a, REGISTER_PATH, 'register', a.registration({ lease_ms: 60_000 }))).status).toBe(
      200,
    );
    expect((await post(svc, b, REGISTER_PATH, 'register', b.registration({ lease_ms: 1_000 }))).status).toBe(
      200,
    );
    const ids = async () =>
      (
        (await post(svc, a, LOOKUP_PATH, 'lookup', { community: 'default', origin: a.id })).body
          .candidates as { id: string }[]
      ).map((c) => c.id);
    expect(await ids()).toEqual(['b.test']);
    now += 1_500;
    expect(await ids()).toEqual([]);
    expect(svc.store.purgeExpired().map((r) => r.key)).toEqual(['default/b.test']);
  });

  it('refuses bad input with a clear code and stores nothing', async () => {
    const svc = await start({ communities: [{ name: 'default' }], lease: { min_ms: 1_000, max_ms: 60_000 } });
    const m = member('m.test');
    const cases: [unknown, string, string?][] = [
      [m.registration({ lease_ms: 10 }), 'REG_ERR_BAD_LEASE'],
      [m.registration({ lease_ms: 86_400_000_000 }), 'REG_ERR_BAD_LEASE'],
      [{ ...m.registration(), names: [] }, 'REG_ERR_BAD_REQUEST'],
      [{ ...m.registration(), extra: 1 }, 'REG_ERR_BAD_REQUEST'],
      [m.registration({ control_url: 'ftp://x' }), 'REG_ERR_BAD_REQUEST'],
      [m.registration({ spare: { uplink_bps: -1, cpu: 0, rps: 0 } }), 'REG_ERR_BAD_REQUEST'],
      [m.registration({ id: 'other.test' }), 'REG_ERR_BAD_REQUEST'],
      [m.registration({ community: 'nowhere' }), 'REG_ERR_UNKNOWN_COMMUNITY', 'nowhere'],
      [m.registration({ public_key: member('x.test').publicKey }), 'REG_ERR_BAD_SIGNATURE'],
    ];
    for (const [body, code, to] of cases) {
      const r = await post(svc, m, REGISTER_PATH, 'register', body, to);
      expect(r.body.error?.code, JSON.stringify(body).slice(0, 200)).toBe(code);
      expect(r.body.error?.message.length).toBeGreaterThan(10);
    }
    // Oversize, not JSON, unsigned, wrong type.
    const big = await fetch(svc.url + REGISTER_PATH, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: 'x'.repeat(100_000),
    });
    expect(big.status).toBe(413);
    expect(((await big.json()) as { error: { code: string } }).error.code).toBe('REG_ERR_TOO_LARGE');
    const unsigned = await fetch(svc.url + REGISTER_PATH, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(m.registration()),
    });
    expect(((await unsigned.json()) as { error: { code: string } }).error.code).toBe('REG_ERR_UNSIGNED');
    const text = await fetch(svc.url + REGISTER_PATH, {
      method: 'POST',
      headers: { 'content-type': 'text/plain' },
      body: 'x',
    });
    expect(text.status).toBe(415);
    // Replay of a good registration.
    const sealed = sealRequest(m.id, 'default', 'register', m.registration(), m.privateKey);
    const first = await fetch(svc.url + REGISTER_PATH, {
      method: 'POST',
      headers: sealed.headers,
      body: sealed.bytes,
    });
    expect(first.status).toBe(200);
    const again = await fetch(svc.url + REGISTER_PATH, {
      method: 'POST',
      headers: sealed.headers,
      body: sealed.bytes,
    });
    expect(((await again.json()) as { error: { code: string } }).error.code).toBe('REG_ERR_REPLAYED_NONCE');
    expect(svc.store.count('member')).toBe(1); // only the good one
    // Someone else cannot take over a live id with another key.
    const thief = member('m.test');
    expect((await post(svc, thief, REGISTER_PATH, 'register', thief.registration())).body.error?.code).toBe(
      'REG_ERR_KEY_MISMATCH',
    );
    // A lookup by a stranger (no live registration) is refused.
    const stranger = member('s.test');
    expect(
      (await post(svc, stranger, LOOKUP_PATH, 'lookup', { community: 'default', origin: 's.test' })).body
        .error?.code,
    ).toBe('REG_ERR_UNKNOWN_SENDER');
  });

  it('lookups may carry a session-key MAC instead of a signature; registrations may not', async () => {
    const svc = await start();
    const m = member('m.test');
    const r = await post(svc, m, REGISTER_PATH, 'register', m.registration());
    const key = Buffer.from(String(r.body.session_key), 'base64url');
    expect(key.length).toBe(32);
    const send = async (path: string, type: 'lookup' | 'register', body: unknown, k: Buffer) => {
      const req = macRequest(m.id, 'default', type, body, k);
      const res = await fetch(svc.url + path, { method: 'POST', headers: req.headers, body: req.bytes });
      return (await res.json()) as { candidates?: unknown[]; error?: { code: string } };
    };
    expect(
      (await send(LOOKUP_PATH, 'lookup', { community: 'default', origin: m.id }, key)).candidates,
    ).toEqual([]);
    expect(
      (await send(LOOKUP_PATH, 'lookup', { community: 'default', origin: m.id }, randomBytes(32))).error
        ?.code,
    ).toBe('REG_ERR_BAD_SIGNATURE');
    expect((await send(REGISTER_PATH, 'register', m.registration(), key)).error?.code).toBe(
      'REG_ERR_UNSIGNED',
    );
  });

  it('a closed community refuses an unadmitted key; admit and revoke work through the admin API', async () => {
    const svc = await start({ communities: [{ name: 'club', type: 'closed' }] });
    const m = member('m.test', 'club');
    const o = member('o.test', 'club');
    expect((await post(svc, m, REGISTER_PATH, 'register', m.registration(), 'club')).body.error?.code).toBe(
      'REG_ERR_NOT_ADMITTED',
    );
    expect(svc.store.count('member')).toBe(0);
    expect(
      (await admin(svc, '/v1/admin/admit', { community: 'club', public_key: m.publicKey }, 'wrong')).status,
    ).toBe(401);
    expect(
      (await admin(svc, '/v1/admin/admit', { community: 'club', public_key: 'ed25519:nope' })).body.error
        ?.code,
    ).toBe('REG_ERR_BAD_REQUEST');
    expect(
      (await admin(svc, '/v1/admin/admit', { community: 'other', public_key: m.publicKey })).body.error?.code,
    ).toBe('REG_ERR_UNKNOWN_COMMUNITY');
    for (const k of [m.publicKey, o.publicKey])
      expect((await admin(svc, '/v1/admin/admit', { community: 'club', public_key: k })).status).toBe(200);
    expect((await post(svc, m, REGISTER_PATH, 'register', m.registration(), 'club')).status).toBe(200);
    expect((await post(svc, o, REGISTER_PATH, 'register', o.registration(), 'club')).status).toBe(200);
    const look = async () =>
      (
        (await post(svc, o, LOOKUP_PATH, 'lookup', { community: 'club', origin: o.id }, 'club')).body
          .candidates as { id: string }[]
      ).map((c) => c.id);
    expect(await look()).toEqual(['m.test']);
    expect(
      (await admin(svc, '/v1/admin/revoke', { community: 'club', public_key: m.publicKey })).status,
    ).toBe(200);
    expect(await look()).toEqual([]);
  });

  it('the client registers, renews, looks up and learns keys', async () => {
    const svc = await start();
    const learned: string[] = [];
    const mk = (m: Member) =>
      new RegistryClient({
        self: { id: m.id, privateKey: m.privateKey },
        registration: (({ spare: _s, ...r }) => r)(m.registration()),
        registries: ['http://127.0.0.1:1', svc.url], // the first is down: fail-over
        trustedKeys: [svc.publicKey],
        timeoutMs: 1_000,
        onMember: (id) => learned.push(id),
      });
    const a = mk(member('a.test'));
    const b = mk(member('b.test'));
    await a.start();
    await b.start();
    expect(a.registered && b.registered).toBe(true);
    expect(b.current).toBe(svc.url);
    const found = await a.lookup([]); // with the session key of a's registration (a MAC)
    expect(found.map((c) => c.id)).toEqual(['b.test']);
    expect(a.candidates().map((p) => p.id)).toEqual(['b.test']);
    expect(learned).toContain('a.test'); // b learned a from the directory
    await a.close();
    await b.close();
    expect(svc.directory.size('default')).toBe(0); // both deregistered
  });
});
