// Pull-through cache against a real origin: hits, coalescing, HEAD, conditionals, Vary,
// big bodies, pass-through of other methods, origin errors.
import { afterEach, describe, expect, it } from 'vitest';
import { get, reply, sleep, startOrigin, startRescuer, type Origin, type Rescuer } from './helpers.js';

let origin: Origin;
let rescuer: Rescuer;
afterEach(async () => {
  await rescuer?.close();
  await origin?.close();
});

describe('pull-through cache', () => {
  it('serves a hit after a miss, with Age and X-Cache, and sends the marker to the origin', async () => {
    origin = await startOrigin((req, res) =>
      reply(res, 200, { 'cache-control': 'max-age=60', 'content-type': 'text/plain' }, `hello ${req.url}`),
    );
    rescuer = await startRescuer(origin.url);
    const a = await get(`${rescuer.url}/a.txt`, { headers: { 'x-dotslash-rescuer': 'forged' } });
    expect(a.status).toBe(200);
    expect(a.headers['x-cache']).toBe('MISS');
    expect(a.body.toString()).toBe('hello /a.txt');
    const b = await get(`${rescuer.url}/a.txt`);
    expect(b.status).toBe(200);
    expect(b.headers['x-cache']).toBe('HIT');
    expect(b.headers.age).toMatch(/^\d+$/);
    expect(b.headers['content-type']).toBe('text/plain');
    expect(b.headers['content-length']).toBe(String('hello /a.txt'.length));
    expect(b.body.toString()).toBe('hello /a.txt');
    expect(origin.count('/a.txt')).toBe(1);
    // The client cannot forge or replace the caller's marker; the origin sees the origin's Host.
    expect(origin.seen[0]!.headers['x-dotslash-rescuer']).toBe('signed-marker');
    expect(origin.seen[0]!.headers.host).toBe(new URL(origin.url).host);
    const c = rescuer.cache.stats().counters;
    expect(c.hits).toBe(1);
    expect(c.misses).toBe(1);
    expect(c.bytesServed).toBe(2 * 'hello /a.txt'.length);
    expect(rescuer.cache.originCounters('origin.example')).toMatchObject({ requests: 2, hits: 1, misses: 1 });
  });

  it('coalesces 100 concurrent misses into exactly one origin fetch', async () => {
    origin = await startOrigin((req, res) => {
      setTimeout(() => reply(res, 200, { 'cache-control': 'max-age=60' }, 'x'.repeat(5000)), 400);
    });
    rescuer = await startRescuer(origin.url);
    const all = await Promise.all(Array.from({ length: 100 }, () => get(`${rescuer.url}/hot`)));
    expect(origin.count('/hot')).toBe(1);
    for (const r of all) {
      expect(r.status).toBe(200);
      expect(r.body.length).toBe(5000);
    }
    // Every other request waited on that fetch, or (if it arrived after it) was a hit.
    const c = rescuer.cache.stats().counters;
    expect(c.coalesced).toBeGreaterThan(0);
    expect(c.coalesced + c.hits).toBe(99);
    expect((await get(`${rescuer.url}/hot`)).headers['x-cache']).toBe('HIT');
    expect(origin.count('/hot')).toBe(1);
  });

  it('gives each coalesced waiter its own fetch when the answer is not storable', async () => {
    let n = 0;
    origin = await startOrigin((req, res) => {
      const id = ++n;
      setTimeout(() => reply(res, 200, { 'set-cookie': `sid=${id}` }, `user ${id}`), 100);
    });
    rescuer = await startRescuer(origin.url);
    const all = await Promise.all(Array.from({ length: 5 }, () => get(`${rescuer.url}/me`)));
    // Nobody received somebody else's cookie.
    const cookies = all.map((r) => String(r.headers['set-cookie']));
    expect(new Set(cookies).size).toBe(5);
    for (const r of all) {
      expect(r.headers['x-cache']).toBe('BYPASS');
      expect(r.body.toString()).toBe(`user ${String(r.headers['set-cookie']).slice(4)}`);
    }
    expect(origin.count('/me')).toBe(5);
  });

  it('replays an unstored but impersonal answer (an overloaded origin 503) to coalesced waiters', async () => {
    origin = await startOrigin((req, res) => {
      setTimeout(
        () => reply(res, req.url === '/busy' ? 503 : 200, { 'retry-after': '5' }, `answer ${req.url}`),
        300,
      );
    });
    rescuer = await startRescuer(origin.url);
    for (const path of ['/busy', '/dynamic']) {
      const all = await Promise.all(Array.from({ length: 50 }, () => get(`${rescuer.url}${path}`)));
      for (const r of all) {
        expect(r.status).toBe(path === '/busy' ? 503 : 200);
        expect(r.headers['x-cache']).toBe('BYPASS');
        expect(r.headers['retry-after']).toBe('5');
        expect(r.body.toString()).toBe(`answer ${path}`);
      }
      // Late arrivals (after the fetch ended) make their own; most waited on the first.
      expect(origin.count(path)).toBeLessThan(10);
    }
    expect(rescuer.store.stats().entries).toBe(0);
  });

  it('relays Range requests on a miss, and answers them with the whole entry on a hit', async () => {
    origin = await startOrigin((req, res) => {
      if (req.headers.range === 'bytes=0-1') reply(res, 206, { 'content-range': 'bytes 0-1/6' }, 'ab');
      else reply(res, 200, { 'cache-control': 'max-age=60' }, 'abcdef');
    });
    rescuer = await startRescuer(origin.url);
    const partial = await get(`${rescuer.url}/r`, { headers: { range: 'bytes=0-1' } });
    expect(partial.status).toBe(206);
    expect(partial.headers['x-cache']).toBe('BYPASS');
    expect(partial.body.toString()).toBe('ab');
    await get(`${rescuer.url}/r`);
    const whole = await get(`${rescuer.url}/r`, { headers: { range: 'bytes=0-1' } });
    expect(whole.status).toBe(200);
    expect(whole.headers['x-cache']).toBe('HIT');
    expect(whole.body.toString()).toBe('abcdef');
    expect(origin.count('/r')).toBe(2);
  });

  it('answers HEAD from the GET entry, and fills the cache on a HEAD miss', async () => {
    origin = await startOrigin((req, res) =>
      reply(res, 200, { 'cache-control': 'max-age=60' }, 'body-bytes'),
    );
    rescuer = await startRescuer(origin.url);
    const h1 = await get(`${rescuer.url}/h`, { method: 'HEAD' });
    expect(h1.status).toBe(200);
    expect(h1.body.length).toBe(0);
    expect(origin.seen[0]!.method).toBe('GET');
    const g = await get(`${rescuer.url}/h`);
    expect(g.headers['x-cache']).toBe('HIT');
    expect(g.body.toString()).toBe('body-bytes');
    const h2 = await get(`${rescuer.url}/h`, { method: 'HEAD' });
    expect(h2.headers['x-cache']).toBe('HIT');
    expect(h2.headers['content-length']).toBe('10');
    expect(h2.body.length).toBe(0);
    expect(origin.count('/h')).toBe(1);
  });

  it('answers 304 to matching If-None-Match / If-Modified-Since on hits', async () => {
    const lm = new Date(Date.now() - 3600_000).toUTCString();
    origin = await startOrigin((req, res) =>
      reply(res, 200, { 'cache-control': 'max-age=60', etag: '"v1"', 'last-modified': lm }, 'etagged'),
    );
    rescuer = await startRescuer(origin.url);
    await get(`${rescuer.url}/e`);
    const a = await get(`${rescuer.url}/e`, { headers: { 'if-none-match': 'W/"v1"' } });
    expect(a.status).toBe(304);
    expect(a.headers.etag).toBe('"v1"');
    expect(a.body.length).toBe(0);
    const b = await get(`${rescuer.url}/e`, { headers: { 'if-none-match': '"v0"' } });
    expect(b.status).toBe(200);
    const c = await get(`${rescuer.url}/e`, { headers: { 'if-modified-since': new Date().toUTCString() } });
    expect(c.status).toBe(304);
    expect(origin.count('/e')).toBe(1);
  });

  it('keeps one entry per Vary variant', async () => {
    origin = await startOrigin((req, res) => {
      const enc = req.headers['accept-language'] ?? 'none';
      reply(res, 200, { 'cache-control': 'max-age=60', vary: 'Accept-Language' }, `lang=${enc}`);
    });
    rescuer = await startRescuer(origin.url);
    const en1 = await get(`${rescuer.url}/v`, { headers: { 'accept-language': 'en' } });
    const fr1 = await get(`${rescuer.url}/v`, { headers: { 'accept-language': 'fr' } });
    const en2 = await get(`${rescuer.url}/v`, { headers: { 'accept-language': 'en' } });
    const fr2 = await get(`${rescuer.url}/v`, { headers: { 'accept-language': 'fr' } });
    const none = await get(`${rescuer.url}/v`);
    expect(en1.body.toString()).toBe('lang=en');
    expect(fr1.body.toString()).toBe('lang=fr');
    expect(fr1.headers['x-cache']).toBe('MISS');
    expect(en2.body.toString()).toBe('lang=en');
    expect(en2.headers['x-cache']).toBe('HIT');
    expect(fr2.body.toString()).toBe('lang=fr');
    expect(fr2.headers['x-cache']).toBe('HIT');
    expect(none.body.toString()).toBe('lang=none');
    expect(origin.count('/v')).toBe(3);
    expect(rescuer.store.stats().entries).toBe(3);
  });

  it('sends coalesced waiters with another variant to their own fetch', async () => {
    origin = await startOrigin((req, res) => {
      const l = req.headers['accept-language'] ?? 'none';
      setTimeout(
        () => reply(res, 200, { 'cache-control': 'max-age=60', vary: 'accept-language' }, `lang=${l}`),
        100,
      );
    });
    rescuer = await startRescuer(origin.url);
    const langs = ['en', 'fr', 'en', 'de', 'fr', 'en'];
    const all = await Promise.all(
      langs.map((l) => get(`${rescuer.url}/w`, { headers: { 'accept-language': l } })),
    );
    all.forEach((r, i) => expect(r.body.toString()).toBe(`lang=${langs[i]}`));
    expect(origin.count('/w')).toBeLessThanOrEqual(3);
  });

  it('streams a body bigger than the entry cap and does not store it', async () => {
    const big = Buffer.alloc(1 << 20, 'b');
    origin = await startOrigin((req, res) => {
      if (req.url === '/big-chunked') {
        res.writeHead(200, { 'cache-control': 'max-age=60' });
        for (let i = 0; i < 16; i++) res.write(big.subarray(i * 65536, (i + 1) * 65536));
        res.end();
      } else reply(res, 200, { 'cache-control': 'max-age=60' }, big);
    });
    rescuer = await startRescuer(origin.url, { maxBytes: 4 << 20, maxEntryBytes: 64 << 10 });
    for (const path of ['/big', '/big-chunked']) {
      const a = await get(`${rescuer.url}${path}`);
      expect(a.status).toBe(200);
      expect(a.body.equals(big)).toBe(true);
      const b = await get(`${rescuer.url}${path}`);
      expect(b.body.length).toBe(big.length);
      expect(origin.count(path)).toBe(2);
    }
    expect(rescuer.store.stats().entries).toBe(0);
    expect(rescuer.store.stats().bytes).toBe(0);
  });

  it('passes other methods, Authorization and session cookies straight through', async () => {
    origin = await startOrigin((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c));
      req.on('end', () =>
        reply(
          res,
          200,
          { 'cache-control': 'public, max-age=60' },
          `${req.method} ${req.headers.authorization ?? '-'} ${body}`,
        ),
      );
    });
    rescuer = await startRescuer(origin.url, { origin: { sessionCookies: ['SESSION'] } });
    const p = await get(`${rescuer.url}/form`, {
      method: 'POST',
      body: 'a=1',
      headers: { 'content-type': 'text/plain' },
    });
    expect(p.body.toString()).toBe('POST - a=1');
    expect(p.headers['x-cache']).toBe('BYPASS');
    const auth = await get(`${rescuer.url}/private`, { headers: { authorization: 'Bearer t' } });
    expect(auth.body.toString()).toBe('GET Bearer t ');
    expect(auth.headers['x-cache']).toBe('BYPASS');
    // Not stored: the next anonymous request goes to the origin.
    const anon = await get(`${rescuer.url}/private`);
    expect(anon.body.toString()).toBe('GET - ');
    expect(anon.headers['x-cache']).toBe('MISS');
    // Now cached, but a session-cookie request still bypasses, and a tracking cookie does not.
    const sess = await get(`${rescuer.url}/private`, { headers: { cookie: 'a=b; SESSION=xyz' } });
    expect(sess.headers['x-cache']).toBe('BYPASS');
    expect(origin.seen.at(-1)!.headers.cookie).toBe('a=b; SESSION=xyz');
    const track = await get(`${rescuer.url}/private`, { headers: { cookie: '_ga=1' } });
    expect(track.headers['x-cache']).toBe('HIT');
    expect(origin.count('/private')).toBe(3);
    // Shared fetches never carry the client's cookies.
    expect(origin.seen.filter((s) => s.headers.cookie === '_ga=1')).toHaveLength(0);
  });

  it('answers 502 with a stable code when the origin cannot be reached', async () => {
    origin = await startOrigin((req, res) => reply(res, 200, {}, 'x'));
    const url = origin.url;
    await origin.close();
    rescuer = await startRescuer(url);
    const r = await get(`${rescuer.url}/down`);
    expect(r.status).toBe(502);
    expect(JSON.parse(r.body.toString())).toMatchObject({ error: { code: 'PRX_ERR_UPSTREAM_CONNECT' } });
    const p = await get(`${rescuer.url}/down`, { method: 'POST', body: 'x' });
    expect(p.status).toBe(502);
    expect(rescuer.cache.stats().counters.errors).toBe(2);
  });

  it('refuses absolute-form targets', async () => {
    origin = await startOrigin((req, res) => reply(res, 200, {}, 'x'));
    rescuer = await startRescuer(origin.url);
    const status = await new Promise<number>((resolve, reject) => {
      const net = new URL(rescuer.url);
      import('node:http').then(({ request }) => {
        const req = request(
          { host: net.hostname, port: net.port, path: 'http://elsewhere.example/x' },
          (res) => {
            res.resume();
            resolve(res.statusCode!);
          },
        );
        req.on('error', reject);
        req.end();
      }, reject);
    });
    expect(status).toBe(400);
    expect(origin.seen).toHaveLength(0);
  });

  it('keeps serving clients while another waits on a slow origin', async () => {
    origin = await startOrigin((req, res) => {
      if (req.url === '/slow')
        setTimeout(() => reply(res, 200, { 'cache-control': 'max-age=60' }, 'slow'), 300);
      else reply(res, 200, { 'cache-control': 'max-age=60' }, 'fast');
    });
    rescuer = await startRescuer(origin.url);
    await get(`${rescuer.url}/fast`);
    const slow = get(`${rescuer.url}/slow`);
    await sleep(20);
    expect((await get(`${rescuer.url}/fast`)).headers['x-cache']).toBe('HIT');
    expect((await slow).body.toString()).toBe('slow');
  });
});
