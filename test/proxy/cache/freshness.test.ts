// What is stored and for how long: shared-cache storability, max-age expiry, revalidation
// with validators, stale-if-error, micro-caching, purge and session end.
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { get, reply, sleep, startOrigin, startRescuer, type Origin, type Rescuer } from './helpers.js';

let origin: Origin;
let rescuer: Rescuer;
afterEach(async () => {
  await rescuer?.close();
  await origin?.close();
});

/** A second server on the same cache whose handler is passThrough (the drain path). */
async function startRescuerLike(r: Rescuer): Promise<string> {
  const server = http.createServer((req, res) => r.cache.passThrough(req, res, r.origin));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const close = r.close;
  r.close = async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await close();
  };
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function twice(path: string, headers: Record<string, string> = {}): Promise<string[]> {
  const a = await get(`${rescuer.url}${path}`, { headers });
  const b = await get(`${rescuer.url}${path}`, { headers });
  return [String(a.headers['x-cache']), String(b.headers['x-cache'])];
}

describe('storability (RFC 9111 shared cache)', () => {
  it('never stores Set-Cookie, private or no-store answers, nor answers to Authorization', async () => {
    origin = await startOrigin((req, res) => {
      const h: Record<string, string> = {
        '/cookie': 'public, max-age=60',
        '/private': 'private, max-age=60',
        '/nostore': 'no-store',
        '/auth': 'max-age=60',
        '/ok': 'max-age=60',
      };
      const extra: Record<string, string> = req.url === '/cookie' ? { 'set-cookie': 'a=b' } : {};
      reply(res, 200, { 'cache-control': h[req.url!]!, ...extra }, 'x');
    });
    rescuer = await startRescuer(origin.url);
    expect(await twice('/cookie')).toEqual(['BYPASS', 'BYPASS']);
    expect(await twice('/private')).toEqual(['BYPASS', 'BYPASS']);
    expect(await twice('/nostore')).toEqual(['BYPASS', 'BYPASS']);
    expect(await twice('/auth', { authorization: 'Basic eDp5' })).toEqual(['BYPASS', 'BYPASS']);
    expect(await twice('/ok')).toEqual(['MISS', 'HIT']);
    for (const p of ['/cookie', '/private', '/nostore', '/auth']) expect(origin.count(p)).toBe(2);
    expect(origin.count('/ok')).toBe(1);
    expect(rescuer.store.stats().entries).toBe(1);
  });

  it('does not store answers without freshness or validators, nor 5xx', async () => {
    origin = await startOrigin((req, res) => {
      if (req.url === '/err') reply(res, 503, { 'cache-control': 'max-age=60' }, 'down');
      else reply(res, 200, {}, 'plain');
    });
    rescuer = await startRescuer(origin.url);
    expect(await twice('/plain')).toEqual(['BYPASS', 'BYPASS']);
    const e = await get(`${rescuer.url}/err`);
    expect(e.status).toBe(503);
    await get(`${rescuer.url}/err`);
    expect(origin.count('/err')).toBe(2);
    expect(rescuer.store.stats().entries).toBe(0);
  });

  it('drops an entry when its URL turns uncacheable', async () => {
    let cacheable = true;
    origin = await startOrigin((req, res) =>
      reply(res, 200, { 'cache-control': cacheable ? 'max-age=1' : 'no-store' }, cacheable ? 'old' : 'new'),
    );
    rescuer = await startRescuer(origin.url);
    await get(`${rescuer.url}/t`);
    cacheable = false;
    await sleep(1100);
    const r = await get(`${rescuer.url}/t`);
    expect(r.body.toString()).toBe('new');
    expect(rescuer.store.stats().entries).toBe(0);
  });
});

describe('expiry and revalidation', () => {
  it('revalidates an expired entry with its ETag; a 304 refreshes it', async () => {
    let notModified = 0;
    origin = await startOrigin((req, res) => {
      if (req.headers['if-none-match'] === '"v1"') {
        notModified++;
        res.writeHead(304, { etag: '"v1"', 'cache-control': 'max-age=1' });
        res.end();
      } else
        reply(
          res,
          200,
          { etag: '"v1"', 'cache-control': 'max-age=1', 'content-type': 'text/css' },
          'v1 body',
        );
    });
    rescuer = await startRescuer(origin.url);
    expect((await get(`${rescuer.url}/r.css`)).headers['x-cache']).toBe('MISS');
    expect((await get(`${rescuer.url}/r.css`)).headers['x-cache']).toBe('HIT');
    await sleep(1100);
    const r = await get(`${rescuer.url}/r.css`);
    expect(r.status).toBe(200);
    expect(r.headers['x-cache']).toBe('HIT');
    expect(r.headers['content-type']).toBe('text/css');
    expect(r.body.toString()).toBe('v1 body');
    expect(notModified).toBe(1);
    expect(origin.seen[1]!.headers['if-none-match']).toBe('"v1"');
    // Refreshed: fresh again without asking the origin.
    expect((await get(`${rescuer.url}/r.css`)).headers['x-cache']).toBe('HIT');
    expect(origin.count('/r.css')).toBe(2);
    expect(rescuer.cache.stats().counters.revalidated).toBe(1);
  });

  it('revalidates with Last-Modified, and replaces the body on a 200', async () => {
    const lm = new Date(Date.now() - 86_400_000).toUTCString();
    let version = 1;
    origin = await startOrigin((req, res) => {
      if (version === 1 && req.headers['if-modified-since'] === lm) {
        res.writeHead(304, { 'cache-control': 'max-age=1' });
        res.end();
      } else reply(res, 200, { 'last-modified': lm, 'cache-control': 'max-age=1' }, `v${version}`);
    });
    rescuer = await startRescuer(origin.url);
    await get(`${rescuer.url}/lm`);
    await sleep(1100);
    expect((await get(`${rescuer.url}/lm`)).body.toString()).toBe('v1');
    expect(origin.seen[1]!.headers['if-modified-since']).toBe(lm);
    version = 2;
    await sleep(1100);
    const r = await get(`${rescuer.url}/lm`);
    expect(r.body.toString()).toBe('v2');
    expect(r.headers['x-cache']).toBe('MISS');
  });

  it('coalesces concurrent revalidations of one stale entry', async () => {
    origin = await startOrigin((req, res) =>
      setTimeout(() => reply(res, 200, { 'cache-control': 'max-age=1' }, 'again'), 100),
    );
    rescuer = await startRescuer(origin.url);
    await get(`${rescuer.url}/s`);
    await sleep(1100);
    const all = await Promise.all(Array.from({ length: 20 }, () => get(`${rescuer.url}/s`)));
    for (const r of all) expect(r.body.toString()).toBe('again');
    expect(origin.count('/s')).toBe(2);
  });
});

describe('stale-if-error', () => {
  it('serves a stale entry when the origin answers 5xx within stale-if-error', async () => {
    let broken = false;
    origin = await startOrigin((req, res) => {
      if (broken) reply(res, 500, {}, 'boom');
      else reply(res, 200, { 'cache-control': 'max-age=1, stale-if-error=60' }, 'good');
    });
    rescuer = await startRescuer(origin.url);
    await get(`${rescuer.url}/sie`);
    broken = true;
    await sleep(1100);
    const r = await get(`${rescuer.url}/sie`);
    expect(r.status).toBe(200);
    expect(r.headers['x-cache']).toBe('STALE');
    expect(r.body.toString()).toBe('good');
    expect(Number(r.headers.age)).toBeGreaterThanOrEqual(1);
    expect(rescuer.cache.stats().counters.stale).toBe(1);
  });

  it('passes the 5xx on without stale-if-error', async () => {
    let broken = false;
    origin = await startOrigin((req, res) => {
      if (broken) reply(res, 500, {}, 'boom');
      else reply(res, 200, { 'cache-control': 'max-age=1' }, 'good');
    });
    rescuer = await startRescuer(origin.url);
    await get(`${rescuer.url}/x`);
    broken = true;
    await sleep(1100);
    const r = await get(`${rescuer.url}/x`);
    expect(r.status).toBe(500);
    expect(r.body.toString()).toBe('boom');
  });

  it('serves stale while the origin is down, within the disconnect window only', async () => {
    origin = await startOrigin((req, res) =>
      reply(res, 200, { 'cache-control': 'max-age=1' }, `good ${req.url}`),
    );
    rescuer = await startRescuer(origin.url, { cache: { staleOnDisconnectS: 1 } });
    await get(`${rescuer.url}/d`);
    await get(`${rescuer.url}/strict`);
    await origin.close();
    await sleep(1100);
    const r = await get(`${rescuer.url}/d`);
    expect(r.status).toBe(200);
    expect(r.headers['x-cache']).toBe('STALE');
    expect(r.body.toString()).toBe('good /d');
    await sleep(1100);
    const late = await get(`${rescuer.url}/d`);
    expect(late.status).toBe(502);
  });

  it('never serves stale for must-revalidate', async () => {
    origin = await startOrigin((req, res) =>
      reply(res, 200, { 'cache-control': 'max-age=1, must-revalidate' }, 'strict'),
    );
    rescuer = await startRescuer(origin.url, { cache: { staleOnDisconnectS: 60 } });
    await get(`${rescuer.url}/m`);
    await origin.close();
    await sleep(1100);
    expect((await get(`${rescuer.url}/m`)).status).toBe(502);
  });
});

describe('micro-caching', () => {
  it('stores answers without freshness only on paths the origin allowed, for ttlS', async () => {
    origin = await startOrigin((req, res) => {
      if (req.url === '/api/cookie') reply(res, 200, { 'set-cookie': 's=1' }, 'c');
      else if (req.url === '/api/nocache') reply(res, 200, { 'cache-control': 'no-cache' }, 'n');
      else reply(res, 200, {}, `dyn ${req.url}`);
    });
    rescuer = await startRescuer(origin.url, { origin: { microCache: { paths: ['/api/'], ttlS: 1 } } });
    expect(await twice('/api/list?page=1')).toEqual(['MISS', 'HIT']);
    expect(await twice('/other')).toEqual(['BYPASS', 'BYPASS']);
    expect(await twice('/api/cookie')).toEqual(['BYPASS', 'BYPASS']);
    expect(await twice('/api/nocache')).toEqual(['BYPASS', 'BYPASS']);
    await sleep(1100);
    expect((await get(`${rescuer.url}/api/list?page=1`)).headers['x-cache']).toBe('MISS');
    expect(origin.count('/api/list?page=1')).toBe(2);
  });
});

describe('purge and session end', () => {
  it('purges exact paths (with their query variants) and prefixes', async () => {
    origin = await startOrigin((req, res) => reply(res, 200, { 'cache-control': 'max-age=60' }, req.url!));
    rescuer = await startRescuer(origin.url);
    for (const p of ['/a.css', '/a.css?v=2', '/a.cssx', '/img/1.png', '/img/2.png', '/keep'])
      await get(`${rescuer.url}${p}`);
    expect(rescuer.store.stats().entries).toBe(6);
    expect(rescuer.cache.purge('origin.example', ['/a.css', '/img/*'])).toBe(4);
    expect(rescuer.store.stats().entries).toBe(2);
    expect((await get(`${rescuer.url}/a.css`)).headers['x-cache']).toBe('MISS');
    expect((await get(`${rescuer.url}/a.cssx`)).headers['x-cache']).toBe('HIT');
    expect((await get(`${rescuer.url}/keep`)).headers['x-cache']).toBe('HIT');
    expect(rescuer.cache.purge('other.example', ['/keep'])).toBe(0);
  });

  it('does not store an answer fetched before a purge of its URL', async () => {
    origin = await startOrigin((req, res) =>
      setTimeout(() => reply(res, 200, { 'cache-control': 'max-age=60' }, 'old'), 150),
    );
    rescuer = await startRescuer(origin.url);
    const pending = get(`${rescuer.url}/p`);
    await sleep(50);
    rescuer.cache.purge('origin.example', ['/p']);
    expect((await pending).body.toString()).toBe('old');
    expect(rescuer.store.stats().entries).toBe(0);
  });

  it('passThrough relays to the origin without reading or filling the cache (drain)', async () => {
    origin = await startOrigin((req, res) =>
      reply(res, 200, { 'cache-control': 'max-age=60' }, `v${origin.seen.length}`),
    );
    rescuer = await startRescuer(origin.url);
    await get(`${rescuer.url}/cached`);
    const drain = await startRescuerLike(rescuer);
    const a = await get(`${drain}/cached`);
    expect(a.headers['x-cache']).toBe('BYPASS');
    expect(a.body.toString()).toBe('v2');
    await get(`${drain}/fresh`);
    expect(origin.count('/cached')).toBe(2);
    expect(rescuer.store.stats().entries).toBe(1);
  });

  it('dropOrigin removes the entries of the session and returns its counters', async () => {
    origin = await startOrigin((req, res) => reply(res, 200, { 'cache-control': 'max-age=60' }, 'x'));
    rescuer = await startRescuer(origin.url);
    await get(`${rescuer.url}/1`);
    await get(`${rescuer.url}/1`);
    await get(`${rescuer.url}/2`);
    expect(rescuer.store.stats().origins['origin.example']!.entries).toBe(2);
    const final = rescuer.cache.dropOrigin('origin.example');
    expect(final).toMatchObject({ requests: 3, hits: 1, misses: 2, originFetches: 2, bytesServed: 3 });
    expect(rescuer.store.stats()).toMatchObject({ entries: 0, bytes: 0, origins: {} });
    expect((await get(`${rescuer.url}/1`)).headers['x-cache']).toBe('MISS');
  });
});
