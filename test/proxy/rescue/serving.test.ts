// Rescue serving details over real sockets: non-GET pass-through signed per method, body limits,
// micro-caching, upgrades refused for rescued names, the 421 linger after the last session, and
// the marker's own rules (reasons, clock window, interceptor).
import * as http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { markerInterceptor, signMarker, verifyMarker, MARKER_SKEW_MS } from '../../../proxy/rescue/marker.js';
import { redirectSnapshot } from '../../../proxy/redirect/index.js';
import { rawRequest, request, startProxy, type RunningProxy } from '../helpers.js';
import {
  entry,
  errorCode,
  get,
  member,
  ORIGIN_ID,
  RESCUER_ID,
  SITE,
  sleep,
  startSite,
  view,
  type Site,
} from './helpers.js';

const VH = `vh5.${RESCUER_ID}`;
const originMember = member(ORIGIN_ID);
const rescuerMember = member(RESCUER_ID);
let originSite: Site;
let rescuerSite: Site;
let origin: RunningProxy;
let rescuer: RunningProxy;

beforeAll(async () => {
  originSite = await startSite('origin', (req, res) => {
    if (req.url === '/echo') {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => res.end(`${req.method} ${Buffer.concat(chunks).toString()}`));
      return true;
    }
    if (req.url!.startsWith('/api')) {
      res.writeHead(200, { 'content-type': 'application/json' }); // no freshness at all
      res.end('{"n":1}');
      return true;
    }
    return false;
  });
  rescuerSite = await startSite('rescuer own site');
  origin = await startProxy({ upstreams: [originSite.url] });
  rescuer = await startProxy(
    { upstreams: [rescuerSite.url], limits: { max_body_bytes: 1000 } },
    { rescue: { endedLingerMs: 300 } },
  );
  origin.proxy.setMembers({
    self: originMember.identity,
    peers: new Map([[RESCUER_ID, rescuerMember.publicKey]]),
  });
  rescuer.proxy.setMembers({
    self: rescuerMember.identity,
    peers: new Map([[ORIGIN_ID, originMember.publicKey]]),
  });
  // The origin is "redirecting" (Pr 1) so every request there goes through the marker check.
  origin.proxy.setRedirect(
    redirectSnapshot({
      pr: 1,
      sessions: [{ id: 'x', vhost: VH, scheme: 'http', port: rescuer.port, rate: 1e6 }],
    }),
  );
  rescuer.proxy.setRescueView(
    view(1, [entry('s5', VH, origin.url, { micro_cache: { paths: ['/api'], ttl_s: 30 } })]),
  );
});

afterAll(async () => {
  await Promise.all([origin.proxy.close(200), rescuer.proxy.close(200)]);
  await Promise.all([originSite.close(), rescuerSite.close()]);
});

describe('rescued requests other than cacheable GETs', () => {
  it('a POST is passed to the origin front with its body, signed for POST, not redirected there', async () => {
    const r = await request(`${rescuer.url}/echo`, {
      method: 'POST',
      headers: { host: VH, 'content-type': 'text/plain' },
      body: 'hello',
    });
    expect(r.status).toBe(200);
    expect(r.body.toString()).toBe('POST hello');
    expect(r.headers['x-cache']).toBe('BYPASS');
    const seen = originSite.seen.at(-1)!;
    expect(seen.method).toBe('POST');
    expect(seen.headers.host).toBe(SITE);
  });

  it('a body over max_body_bytes is refused with 413 before any fetch', async () => {
    const before = originSite.seen.length;
    const r = await request(`${rescuer.url}/echo`, {
      method: 'POST',
      headers: { host: VH },
      body: Buffer.alloc(2000, 0x61),
    });
    expect(r.status).toBe(413);
    expect(errorCode(r.body)).toBe('PRX_ERR_BODY_TOO_LARGE');
    expect(originSite.seen.length).toBe(before);
  });

  it('a chunked body is counted as it streams and stopped past max_body_bytes with 413', async () => {
    const r = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = http.request(
        { host: '127.0.0.1', port: rescuer.port, path: '/echo', method: 'POST', headers: { host: VH } },
        (res) => {
          let body = '';
          res.on('data', (c: Buffer) => (body += c.toString()));
          res.on('end', () => resolve({ status: res.statusCode!, body }));
        },
      );
      req.on('error', reject);
      // Transfer-Encoding: chunked (no Content-Length): 4 x 400 bytes, over the 1000-byte limit.
      for (let i = 0; i < 4; i++) req.write(Buffer.alloc(400, 0x62));
      req.end();
    });
    expect(r.status).toBe(413);
    expect(errorCode(Buffer.from(r.body))).toBe('PRX_ERR_BODY_TOO_LARGE');
    // Whatever reached the origin was cut short: its echo of the body never came back.
    expect(r.body).not.toContain('POST bbbb');
    expect(rescuer.proxy.rescueCacheStats()!.counters.originErrors).toBe(0);
  });

  it('HEAD is answered from the GET entry', async () => {
    expect((await get(rescuer.port, VH, '/h')).headers['x-cache']).toBe('MISS');
    const r = await request(`${rescuer.url}/h`, { method: 'HEAD', headers: { host: VH } });
    expect(r.status).toBe(200);
    expect(r.headers['x-cache']).toBe('HIT');
    expect(r.body.length).toBe(0);
    expect(originSite.count('/h')).toBe(1);
  });

  it('paths the origin allowed are micro-cached even without freshness', async () => {
    expect((await get(rescuer.port, VH, '/api/x')).headers['x-cache']).toBe('MISS');
    expect((await get(rescuer.port, VH, '/api/x')).headers['x-cache']).toBe('HIT');
    expect(originSite.count('/api/x')).toBe(1);
  });

  it('a WebSocket upgrade for a rescued name is refused, never tunnelled to our own upstream', async () => {
    const before = rescuerSite.seen.length;
    for (const host of [VH, SITE, `vh77.${RESCUER_ID}`]) {
      const out = await rawRequest(
        rescuer.port,
        `GET /ws HTTP/1.1\r\nHost: ${host}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
          'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
      );
      expect(out).toMatch(/^HTTP\/1\.1 421 /);
      expect(out).toContain('PRX_ERR_RESCUE_NO_UPGRADE');
    }
    expect(rescuerSite.seen.length).toBe(before);
  });
});

describe('after the last session', () => {
  it('vhN names answer 421 for endedLingerMs, then the front is a plain proxy again', async () => {
    rescuer.proxy.setRescueView(view(2, []));
    expect((await get(rescuer.port, VH, '/h')).status).toBe(421);
    await sleep(450);
    const r = await get(rescuer.port, VH, '/h');
    expect(r.status).toBe(200);
    expect(r.body.toString()).toBe('rescuer own site /h');
  });
});

describe('marker rules', () => {
  const peers = new Map([[RESCUER_ID, rescuerMember.publicKey]]);
  const now = 1_700_000_000_000;

  it('says why a marker is refused', () => {
    const ok = signMarker(rescuerMember.identity, 'GET', '/a', now);
    expect(verifyMarker(ok, 'GET', '/a', peers, now)).toEqual({ ok: true, rescuer: RESCUER_ID });
    expect(verifyMarker(ok, 'GET', '/a', peers, now + MARKER_SKEW_MS)).toEqual({
      ok: true,
      rescuer: RESCUER_ID,
    });
    expect(verifyMarker(ok, 'GET', '/a', peers, now + MARKER_SKEW_MS + 1)).toMatchObject({
      reason: 'expired',
    });
    expect(verifyMarker(ok, 'GET', '/a', peers, now - MARKER_SKEW_MS - 1)).toMatchObject({
      reason: 'expired',
    });
    expect(verifyMarker(ok, 'GET', '/b', peers, now)).toMatchObject({ reason: 'bad signature' });
    expect(verifyMarker(ok, 'GET', '/a', new Map(), now)).toMatchObject({ reason: 'unknown signer' });
    expect(verifyMarker(`${ok} extra`, 'GET', '/a', peers, now)).toMatchObject({ reason: 'malformed' });
    expect(verifyMarker(ok.replace(/ \d+ /, ' 1e12 '), 'GET', '/a', peers, now)).toMatchObject({
      reason: 'malformed',
    });
    // Tampering with the claimed time breaks the signature.
    expect(verifyMarker(ok.replace(` ${now} `, ` ${now + 1} `), 'GET', '/a', peers, now)).toMatchObject({
      reason: 'bad signature',
    });
  });

  it('the interceptor replaces Host and any marker, whatever the header shape', () => {
    const sent: { headers: Record<string, string> }[] = [];
    const dispatch = markerInterceptor(
      () => rescuerMember.identity,
      SITE,
    )((opts) => {
      sent.push(opts as unknown as { headers: Record<string, string> });
      return true;
    });
    const handler = {} as Parameters<typeof dispatch>[1];
    dispatch(
      { method: 'GET', path: '/p', headers: { Host: 'evil', 'X-Dotslash-Rescuer': 'forged', a: '1' } },
      handler,
    );
    dispatch(
      { method: 'GET', path: '/p', headers: ['host', 'evil', 'x-dotslash-rescuer', 'forged', 'a', '1'] },
      handler,
    );
    for (const { headers } of sent) {
      expect(headers.host).toBe(SITE);
      expect(headers.a).toBe('1');
      expect(Object.keys(headers).filter((k) => k.toLowerCase() === 'x-dotslash-rescuer')).toEqual([
        'x-dotslash-rescuer',
      ]);
      expect(verifyMarker(headers['x-dotslash-rescuer']!, 'GET', '/p', peers)).toMatchObject({ ok: true });
    }
  });
});
