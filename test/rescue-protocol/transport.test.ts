// ControlServer <-> ControlClient over real sockets: every message type round trips, replies are verified.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  ControlClient,
  ControlServer,
  envelopeHead,
  generateKeyPair,
  parsePrivateKey,
  RescueError,
  routeByType,
  sealEnvelope,
  verifyBytes,
  parsePublicKey,
  type ReplyEnvelope,
  type VerifiedMessage,
} from '../../rescue-protocol/index.js';
import { echoHandler, startMembers, type TestMember } from './helpers.js';

const ORIGIN = 'origin.test';
const RESCUER = 'rescue-b.test';

let ctx: Awaited<ReturnType<typeof startMembers>>;
let origin: TestMember;
let rescuer: TestMember;

beforeEach(async () => {
  ctx = await startMembers([ORIGIN, RESCUER]);
  origin = ctx.members[ORIGIN]!;
  rescuer = ctx.members[RESCUER]!;
});
afterEach(() => ctx.close());

function expectFreshReply(reply: ReplyEnvelope, request: { nonce: string }, from: string, to: string): void {
  expect(reply.v).toBe(1);
  expect(reply.from).toBe(from);
  expect(reply.to).toBe(to);
  expect(reply.re).toBe(request.nonce);
  expect(reply.nonce).not.toBe(request.nonce);
  expect(Math.abs(reply.ts - Date.now())).toBeLessThan(5_000);
}

describe('round trip of every message type', () => {
  it('SOS -> OK accepted, with the body delivered intact and the reply bound to the request', async () => {
    const sos = {
      origin: { id: ORIGIN, names: ['origin.test', 'www.origin.test'], front_url: 'http://127.0.0.1:8080/' },
      content: 'static' as const,
      want_rate: 300,
      micro_cache: { paths: ['/news/'], ttl_s: 2 },
      token: 'tok-1',
    };
    const res = await origin.client.send(rescuer.peer(), 'SOS', sos);
    expect(res.type).toBe('OK');
    expect(res.body).toEqual({
      accepted: true,
      session: 's-1',
      vhost: `vh1.${RESCUER}`,
      rate: 200,
      lease_ms: 30_000,
    });
    expectFreshReply(res.reply, res.request, RESCUER, ORIGIN);
    expect(rescuer.received).toHaveLength(1);
    const got = rescuer.received[0]!;
    expect(got).toMatchObject({
      v: 1,
      type: 'SOS',
      from: ORIGIN,
      to: RESCUER,
      nonce: res.request.nonce,
      body: sos,
    });
  });

  it('SOS -> OK declined is an answer, not an error', async () => {
    const { members, close } = await startMembers(['o.test', 'r.test'], {
      handlers: { 'r.test': () => ({ accepted: false, reason: 'at capacity', code: 'RSC_ERR_DECLINED' }) },
    });
    try {
      const res = await members['o.test']!.client.send(members['r.test']!.peer(), 'SOS', {
        origin: { id: 'o.test', names: ['o.test'], front_url: 'https://o.test' },
        content: 'dynamic',
        want_rate: 1,
      });
      expect(res.body).toEqual({ accepted: false, reason: 'at capacity', code: 'RSC_ERR_DECLINED' });
    } finally {
      await close();
    }
  });

  it('TOKEN, RATE, KEEPALIVE (both ways), SHUTDOWN with usage, PURGE -> ACK', async () => {
    const token = await origin.client.send(rescuer.peer(), 'TOKEN', { session: 's-1', token: 'pay' });
    expect(token).toMatchObject({ type: 'ACK', body: { ok: true } });
    const rate = await rescuer.client.send(origin.peer(), 'RATE', { session: 's-1', rate: 120.5 });
    expect(rate).toMatchObject({ type: 'ACK', body: { ok: true } });
    expectFreshReply(rate.reply, rate.request, ORIGIN, RESCUER);
    const ka1 = await origin.client.send(rescuer.peer(), 'KEEPALIVE', { session: 's-1' });
    expect(ka1.body).toEqual({ ok: true, session: 's-1', lease_ms: 30_000 });
    const ka2 = await rescuer.client.send(origin.peer(), 'KEEPALIVE', { session: 's-1' });
    expect(ka2.body).toEqual({ ok: true, session: 's-1', lease_ms: 30_000 });
    const usage = {
      requests: 10,
      bytes: 4096,
      by_redirect: { requests: 7, bytes: 3000 },
      by_dns: { requests: 3, bytes: 1096 },
    };
    const shut = await rescuer.client.send(origin.peer(), 'SHUTDOWN', {
      session: 's-1',
      reason: 'need capacity',
      usage,
    });
    expect(shut.body).toEqual({ ok: true });
    const purge = await origin.client.send(rescuer.peer(), 'PURGE', {
      session: 's-1',
      urls: ['/a.html', '/b?x=1'],
    });
    expect(purge.body).toEqual({ ok: true });

    expect(rescuer.received.map((m) => m.type)).toEqual(['TOKEN', 'KEEPALIVE', 'PURGE']);
    expect(origin.received.map((m) => m.type)).toEqual(['RATE', 'KEEPALIVE', 'SHUTDOWN']);
    expect(origin.received[0]!.body).toEqual({ session: 's-1', rate: 120.5 });
    expect(origin.received[2]!.body).toEqual({ session: 's-1', reason: 'need capacity', usage });
    expect(rescuer.received[2]!.body).toEqual({ session: 's-1', urls: ['/a.html', '/b?x=1'] });
    // Every nonce differs.
    const nonces = [...origin.received, ...rescuer.received].map((m) => m.nonce);
    expect(new Set(nonces).size).toBe(nonces.length);
  });

  it('replies are signed envelopes over their exact bytes', async () => {
    const res = await origin.client.send(rescuer.peer(), 'KEEPALIVE', { session: 'x' });
    // Re-check independently: the reply the client returned was signed by the rescuer's key.
    const sealed = sealEnvelope(res.reply, rescuer.privateKey);
    expect(
      verifyBytes(
        sealed.bytes,
        sealed.headers['dotslash-signature']!.slice(8),
        parsePublicKey(rescuer.publicKey),
      ),
    ).toBe(true);
  });

  it('GET /v1/health answers with the member id', async () => {
    const r = await fetch(`${rescuer.server.url}/v1/health`);
    expect(r.status).toBe(200);
    expect(await r.json()).toEqual({ ok: true, id: RESCUER, v: 1 });
  });
});

describe('refusals by the session layer travel as signed ERRORs', () => {
  it.each([
    ['RSC_ERR_UNKNOWN_SESSION', 404],
    ['RSC_ERR_NOT_A_PARTY', 403],
    ['RSC_ERR_OUT_OF_STATE', 409],
    ['RSC_ERR_DECLINED', 503],
  ] as const)('%s -> HTTP %i, a RescueError with remote.authenticated', async (code, status) => {
    const { members, close } = await startMembers(['o.test', 'r.test'], {
      handlers: {
        'o.test': () => {
          throw new RescueError(code, 'session s-9');
        },
      },
    });
    try {
      const err = await members['r.test']!.client.send(members['o.test']!.peer(), 'RATE', {
        session: 's-9',
        rate: 5,
      }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(RescueError);
      expect(err).toMatchObject({ code, remote: { status, authenticated: true, code } });
      expect((err as Error).message).toContain('session s-9');
    } finally {
      await close();
    }
  });

  it('a handler crash is RSC_ERR_INTERNAL without its details, and the server keeps answering', async () => {
    let crash = true;
    const { members, close } = await startMembers(['o.test', 'r.test'], {
      handlers: {
        'r.test': (msg) => {
          if (crash) throw new Error('secret database detail');
          return echoHandler(msg);
        },
      },
    });
    try {
      const send = () =>
        members['o.test']!.client.send(members['r.test']!.peer(), 'PURGE', { session: 's', urls: ['/'] });
      const err = (await send().catch((e: unknown) => e)) as RescueError;
      expect(err.code).toBe('RSC_ERR_INTERNAL');
      expect(err.remote?.status).toBe(500);
      expect(err.message).not.toContain('secret');
      crash = false;
      expect((await send()).body).toEqual({ ok: true });
    } finally {
      await close();
    }
  });

  it('a handler answer that breaks the reply schema is RSC_ERR_INTERNAL', async () => {
    const { members, close } = await startMembers(['o.test', 'r.test'], {
      handlers: { 'r.test': () => ({ ok: true }) }, // SOS needs an OK body
    });
    try {
      const err = (await members['o.test']!.client.send(members['r.test']!.peer(), 'SOS', {
        origin: { id: 'o.test', names: ['o.test'], front_url: 'http://o.test' },
        content: 'static',
        want_rate: 5,
      }).catch((e: unknown) => e)) as RescueError;
      expect(err.code).toBe('RSC_ERR_INTERNAL');
    } finally {
      await close();
    }
  });
});

describe('routeByType', () => {
  it('gives each handler its typed message and refuses types nobody handles with RSC_ERR_OUT_OF_STATE', async () => {
    const rates: number[] = [];
    const { members, close } = await startMembers(['o.test', 'r.test'], {
      handlers: {
        'o.test': routeByType({
          RATE: (msg) => {
            rates.push(msg.body.rate); // typed: RateBody
            return { ok: true };
          },
          KEEPALIVE: async (msg) => ({ ok: true, session: msg.body.session, lease_ms: 9_000 }),
        }),
      },
    });
    try {
      const r = members['r.test']!.client;
      const o = members['o.test']!.peer();
      await r.send(o, 'RATE', { session: 's', rate: 42 });
      expect(rates).toEqual([42]);
      expect((await r.send(o, 'KEEPALIVE', { session: 's' })).body.lease_ms).toBe(9_000);
      await expect(r.send(o, 'PURGE', { session: 's', urls: ['/'] })).rejects.toMatchObject({
        code: 'RSC_ERR_OUT_OF_STATE',
        remote: { status: 409, authenticated: true },
      });
    } finally {
      await close();
    }
  });
});

describe('ControlClient failures', () => {
  it('a peer that does not know us refuses unsigned: the code is reported, marked unauthenticated', async () => {
    ctx.keys.delete(ORIGIN);
    const err = (await origin.client
      .send(rescuer.peer(), 'KEEPALIVE', { session: 's' })
      .catch((e: unknown) => e)) as RescueError;
    expect(err.code).toBe('RSC_ERR_UNKNOWN_SENDER');
    expect(err.remote).toEqual({ status: 403, authenticated: false, code: 'RSC_ERR_UNKNOWN_SENDER' });
    expect(rescuer.received).toHaveLength(0);
  });

  it('a wrong configured peer key makes every reply fail verification (RSC_ERR_BAD_REPLY)', async () => {
    const wrong = { ...rescuer.peer(), public_key: generateKeyPair().publicKey };
    const err = (await origin.client
      .send(wrong, 'KEEPALIVE', { session: 's' })
      .catch((e: unknown) => e)) as RescueError;
    expect(err.code).toBe('RSC_ERR_BAD_REPLY');
    expect(err.message).toContain('RSC_ERR_BAD_SIGNATURE');
  });

  it('a peer id that differs from the signer of the reply is refused', async () => {
    // Same URL and key, but we think it is someone else: the reply's signer/from do not match.
    const alias = { ...rescuer.peer(), id: 'alias.test' };
    ctx.keys.set('alias.test', parsePublicKey(rescuer.publicKey));
    const err = (await origin.client
      .send(alias, 'KEEPALIVE', { session: 's' })
      .catch((e: unknown) => e)) as RescueError;
    // The server refuses first: the request is addressed to alias.test, not to it.
    expect(err.code).toBe('RSC_ERR_BAD_REPLY');
  });

  it('unreachable peer -> RSC_ERR_PEER_UNREACHABLE', async () => {
    const dead = new ControlServer({
      listen: '127.0.0.1:0',
      self: { id: 'dead.test', privateKey: rescuer.privateKey },
      peers: ctx.keys,
      onMessage: echoHandler,
    });
    await dead.listen();
    const url = dead.url;
    await dead.close();
    const err = (await origin.client
      .send({ id: 'dead.test', control_url: url, public_key: rescuer.publicKey }, 'KEEPALIVE', {
        session: 's',
      })
      .catch((e: unknown) => e)) as RescueError;
    expect(err.code).toBe('RSC_ERR_PEER_UNREACHABLE');
    expect(err.message).toContain('ECONNREFUSED');
  });

  it('slow peer -> RSC_ERR_PEER_TIMEOUT', async () => {
    const { members, close } = await startMembers(['o.test', 'r.test'], {
      handlers: {
        'r.test': (msg) => new Promise((resolve) => setTimeout(() => resolve(echoHandler(msg)), 1_500)),
      },
    });
    try {
      const err = (await members['o.test']!.client.send(
        members['r.test']!.peer(),
        'KEEPALIVE',
        { session: 's' },
        { timeoutMs: 200 },
      ).catch((e: unknown) => e)) as RescueError;
      expect(err.code).toBe('RSC_ERR_PEER_TIMEOUT');
    } finally {
      await close();
    }
  });

  it('a peer that sends headers and then stalls the body -> RSC_ERR_PEER_TIMEOUT', async () => {
    const stall = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': '100' });
      res.write('{"v":1');
    });
    await new Promise<void>((r) => stall.listen(0, '127.0.0.1', r));
    try {
      const url = `http://127.0.0.1:${(stall.address() as AddressInfo).port}`;
      const err = (await origin.client
        .send({ ...rescuer.peer(), control_url: url }, 'KEEPALIVE', { session: 's' }, { timeoutMs: 300 })
        .catch((e: unknown) => e)) as RescueError;
      expect(err.code).toBe('RSC_ERR_PEER_TIMEOUT');
    } finally {
      stall.closeAllConnections();
      await new Promise((r) => stall.close(r));
    }
  });

  it('a bad control_url or public key text is a clear error before anything is sent', async () => {
    await expect(
      origin.client.send({ ...rescuer.peer(), control_url: 'not a url' }, 'KEEPALIVE', { session: 's' }),
    ).rejects.toMatchObject({
      code: 'RSC_ERR_PEER_UNREACHABLE',
    });
    await expect(
      origin.client.send({ ...rescuer.peer(), public_key: 'ed25519:short' }, 'KEEPALIVE', { session: 's' }),
    ).rejects.toMatchObject({
      code: 'RSC_ERR_BAD_PUBLIC_KEY',
    });
    // A body that breaks the schema fails locally.
    await expect(
      origin.client.send(rescuer.peer(), 'RATE', { session: 's', rate: -1 }),
    ).rejects.toMatchObject({
      code: 'RSC_ERR_BAD_MESSAGE',
    });
    expect(rescuer.received).toHaveLength(0);
  });

  it('close() aborts sends in flight with RSC_ERR_CLOSED, is idempotent, and later sends fail fast', async () => {
    const { members, close } = await startMembers(['o.test', 'r.test'], {
      handlers: {
        'r.test': (msg) => new Promise((resolve) => setTimeout(() => resolve(echoHandler(msg)), 1_000)),
      },
    });
    try {
      const client = new ControlClient({ self: { id: 'o.test', privateKey: members['o.test']!.privateKey } });
      const pending = client
        .send(members['r.test']!.peer(), 'KEEPALIVE', { session: 's' })
        .catch((e: unknown) => e);
      await new Promise((r) => setTimeout(r, 100));
      await Promise.all([client.close(), client.close()]);
      expect(await pending).toMatchObject({ code: 'RSC_ERR_CLOSED' });
      await expect(
        client.send(members['r.test']!.peer(), 'KEEPALIVE', { session: 's' }),
      ).rejects.toMatchObject({ code: 'RSC_ERR_CLOSED' });
    } finally {
      await close();
    }
  });
});

/** A fake peer: a plain HTTP server that answers with whatever reply `make` builds from the request. */
type FakeAnswer = (
  req: VerifiedMessage,
) =>
  | { envelope: ReplyEnvelope; status?: number }
  | { raw: string; status: number; headers?: Record<string, string> };

async function fakePeer(make: FakeAnswer): Promise<{ url: string; server: Server }> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const request = JSON.parse(Buffer.concat(chunks).toString()) as VerifiedMessage;
      const out = make(request);
      if ('raw' in out) {
        res.writeHead(out.status, { 'content-type': 'application/json', ...out.headers });
        res.end(out.raw);
        return;
      }
      const sealed = sealEnvelope(out.envelope, rescuer.privateKey);
      res.writeHead(out.status ?? 200, sealed.headers);
      res.end(sealed.bytes);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

describe('reply verification against a lying peer', () => {
  const cases: [string, FakeAnswer][] = [
    [
      'an old reply replayed (re answers another request)',
      () => ({
        envelope: {
          ...envelopeHead(RESCUER, ORIGIN),
          type: 'ACK',
          re: 'AAAAAAAAAAAAAAAAAAAAAA',
          body: { ok: true, session: 's', lease_ms: 1000 },
        },
      }),
    ],
    [
      'a reply addressed to someone else',
      (req) => ({
        envelope: {
          ...envelopeHead(RESCUER, 'other.test'),
          type: 'ACK',
          re: req.nonce,
          body: { ok: true, session: 's', lease_ms: 1000 },
        },
      }),
    ],
    [
      'a stale reply',
      (req) => ({
        envelope: {
          ...envelopeHead(RESCUER, ORIGIN, Date.now() - 60_000),
          type: 'ACK',
          re: req.nonce,
          body: { ok: true, session: 's', lease_ms: 1000 },
        },
      }),
    ],
    [
      'an OK answering a KEEPALIVE',
      (req) => ({
        envelope: {
          ...envelopeHead(RESCUER, ORIGIN),
          type: 'OK',
          re: req.nonce,
          body: { accepted: false, reason: 'x', code: 'RSC_ERR_DECLINED' },
        },
      }),
    ],
    [
      'a KEEPALIVE ACK without the lease',
      (req) => ({
        envelope: { ...envelopeHead(RESCUER, ORIGIN), type: 'ACK', re: req.nonce, body: { ok: true } },
      }),
    ],
    [
      'a KEEPALIVE ACK for another session',
      (req) => ({
        envelope: {
          ...envelopeHead(RESCUER, ORIGIN),
          type: 'ACK',
          re: req.nonce,
          body: { ok: true, session: 'other', lease_ms: 1000 },
        },
      }),
    ],
    ['an unsigned 200', () => ({ raw: '{"ok":true}', status: 200 })],
    ['an oversized reply', () => ({ raw: `{"pad":"${'x'.repeat(100_000)}"}`, status: 200 })],
    [
      'a tampered reply',
      (req) => ({
        raw: JSON.stringify({
          ...envelopeHead(RESCUER, ORIGIN),
          type: 'ACK',
          re: req.nonce,
          body: { ok: true, session: 's', lease_ms: 1000 },
        }),
        status: 200,
        headers: { 'dotslash-sender': RESCUER, 'dotslash-signature': `ed25519 ${'A'.repeat(86)}` },
      }),
    ],
  ];
  it.each(cases)('%s -> RSC_ERR_BAD_REPLY', async (_name, make) => {
    const fake = await fakePeer(make);
    try {
      const err = (await origin.client
        .send({ id: RESCUER, control_url: fake.url, public_key: rescuer.publicKey }, 'KEEPALIVE', {
          session: 's',
        })
        .catch((e: unknown) => e)) as RescueError;
      expect(err).toBeInstanceOf(RescueError);
      expect(err.code).toBe('RSC_ERR_BAD_REPLY');
    } finally {
      await new Promise((r) => fake.server.close(r));
    }
  });

  it('the same fake peer answering correctly is accepted (the cases above differ by one thing each)', async () => {
    const fake = await fakePeer((req) => ({
      envelope: {
        ...envelopeHead(RESCUER, ORIGIN),
        type: 'ACK',
        re: req.nonce,
        body: { ok: true, session: 's', lease_ms: 1000 },
      },
    }));
    try {
      const res = await origin.client.send(
        { id: RESCUER, control_url: fake.url, public_key: rescuer.publicKey },
        'KEEPALIVE',
        { session: 's' },
      );
      expect(res.body).toEqual({ ok: true, session: 's', lease_ms: 1000 });
    } finally {
      await new Promise((r) => fake.server.close(r));
    }
  });
});

describe('ControlServer lifecycle', () => {
  it('listen() and close() are idempotent; close() without listen() is fine; listen() after close() fails', async () => {
    const privateKey = parsePrivateKey(generateKeyPair().privateKeyPem);
    const never = new ControlServer({
      listen: '127.0.0.1:0',
      self: { id: 'x.test', privateKey },
      peers: new Map(),
      onMessage: echoHandler,
    });
    await never.close();
    await never.close();
    const s = new ControlServer({
      listen: '127.0.0.1:0',
      self: { id: 'x.test', privateKey },
      peers: new Map(),
      onMessage: echoHandler,
    });
    const [a, b] = await Promise.all([s.listen(), s.listen()]);
    expect(a.port).toBe(b.port);
    expect(a.port).toBeGreaterThan(0);
    await Promise.all([s.close(), s.close()]);
    await expect(s.listen()).rejects.toMatchObject({ code: 'RSC_ERR_CLOSED' });
  });

  it('a port in use is a listen() error', async () => {
    const privateKey = parsePrivateKey(generateKeyPair().privateKeyPem);
    const port = new URL(rescuer.server.url).port;
    const s = new ControlServer({
      listen: `127.0.0.1:${port}`,
      self: { id: 'x.test', privateKey },
      peers: new Map(),
      onMessage: echoHandler,
    });
    await expect(s.listen()).rejects.toMatchObject({ code: 'EADDRINUSE' });
    await s.close();
  });
});
