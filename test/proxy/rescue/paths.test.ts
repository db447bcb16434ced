// The rescue request paths end to end over real sockets (DESIGN.md "Request paths"): an origin
// front redirecting to a rescuer front, which serves from its pull-through cache and fetches
// only from the origin's front with a signed marker that the origin proxies straight.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signMarker } from '../../../proxy/rescue/marker.js';
import {
  entry,
  errorCode,
  follow,
  get,
  member,
  RESCUER_ID,
  redirectTo,
  SITE,
  sleep,
  startPair,
  view,
  type Pair,
} from './helpers.js';
import { rawRequest } from '../helpers.js';

const VH = `vh1.${RESCUER_ID}`;
let p: Pair;

beforeAll(async () => {
  p = await startPair();
  p.origin.proxy.setRedirect(redirectTo('s1', VH, p.rescuer.port));
  p.rescuer.proxy.setRescueView(view(1, [entry('s1', VH, p.origin.url)]));
  await sleep(5); // the session's token bucket starts empty
});

afterAll(async () => {
  await p.close();
});

describe('origin redirects, rescuer serves through its cache', () => {
  let location = '';

  it('the origin answers 302 to vhN on the rescuer, counted and access-logged', async () => {
    const before = p.origin.proxy.stats.snapshot();
    const r = await get(p.origin.port, SITE, '/page?x=1');
    expect(r.status).toBe(302);
    location = r.headers.location!;
    expect(location).toBe(`http://${VH}:${p.rescuer.port}/page?x=1`);
    expect(r.headers['cache-control']).toBe('no-store');
    expect(p.originSite.seen).toHaveLength(0);
    await sleep(20);
    const after = p.origin.proxy.stats.snapshot();
    expect(after.status['3xx'] - before.status['3xx']).toBe(1);
    expect(after.requests - before.requests).toBe(1);
    expect(after.active).toBe(0);
    expect(p.origin.proxy.redirectStats().redirects).toBe(1);
    expect(p.origin.proxy.redirectStats().sessions.s1?.redirects).toBe(1);
    expect(p.originLog.some((l) => l.status === 302 && l.url === '/page?x=1')).toBe(true);
  });

  it('following it, the rescuer fetches once from the origin front (signed, not redirected) and caches', async () => {
    const r = await follow(location, p.rescuer.port);
    expect(r.status).toBe(200);
    expect(r.body.toString()).toBe('origin page /page?x=1');
    expect(r.headers['x-cache']).toBe('MISS');
    // The fetch went through the origin front (Via) to the origin upstream, with the site's
    // Host and a marker the front accepted even at Pr 1.
    expect(p.originSite.count('/page?x=1')).toBe(1);
    const seen = p.originSite.seen.at(-1)!;
    expect(seen.headers.host).toBe(SITE);
    // The front verified the marker and kept it to itself: the upstream never sees it.
    expect(seen.headers['x-dotslash-rescuer']).toBeUndefined();
    // Instead it tells the upstream which rescuer it verified (a site may let cache fills skip its queue).
    expect(seen.headers['x-dotslash-verified-rescuer']).toBe(RESCUER_ID);
    expect(String(seen.headers.via)).toContain('dotslash');
    expect(p.rescuerSite.seen).toHaveLength(0);
    expect(p.origin.proxy.redirectStats().redirects).toBe(1);
  });

  it('a second fetch is a HIT: the origin upstream saw one request', async () => {
    const r = await follow(location, p.rescuer.port);
    expect(r.status).toBe(200);
    expect(r.headers['x-cache']).toBe('HIT');
    expect(r.body.toString()).toBe('origin page /page?x=1');
    expect(p.originSite.count('/page?x=1')).toBe(1);
  });

  it('clients arriving by DNS under the origin site name are served too, counted as by_dns', async () => {
    const r = await get(p.rescuer.port, `${SITE}:${p.rescuer.port}`, '/page?x=1');
    expect(r.status).toBe(200);
    expect(r.headers['x-cache']).toBe('HIT');
    expect(p.originSite.count('/page?x=1')).toBe(1);
    await sleep(20);
    const u = p.rescuer.proxy.sessionUsage().get('s1')!;
    expect(u.by_redirect.requests).toBe(2);
    expect(u.by_dns.requests).toBe(1);
    expect(u.requests).toBe(3);
    expect(u.by_dns.bytes).toBeGreaterThan('origin page /page?x=1'.length);
    expect(u.bytes).toBe(u.by_redirect.bytes + u.by_dns.bytes);
    // The rescuer's own stats and access log count the rescued requests too.
    expect(p.rescuerLog.filter((l) => l.url === '/page?x=1' && l.status === 200)).toHaveLength(3);
  });

  it('host names match case-insensitively, with or without port and trailing dot', async () => {
    const r = await get(p.rescuer.port, 'VH1.Rescue-B.Example.', '/page?x=1');
    expect(r.headers['x-cache']).toBe('HIT');
  });

  it('purge drops the cached path: the next fetch goes to the origin again', async () => {
    expect(p.rescuer.proxy.purge('s1', ['/page'])).toBe(1);
    const r = await follow(location, p.rescuer.port);
    expect(r.headers['x-cache']).toBe('MISS');
    expect(p.originSite.count('/page?x=1')).toBe(2);
  });

  it('requests with Authorization or a session cookie are proxied by the origin, not redirected', async () => {
    const a = await get(p.origin.port, SITE, '/private', { authorization: 'Basic dTpw' });
    expect(a.status).toBe(200);
    expect(a.body.toString()).toBe('origin page /private');
    const c = await get(p.origin.port, SITE, '/private', { cookie: 'theme=dark; sid=42' });
    expect(c.status).toBe(200);
    const anon = await get(p.origin.port, SITE, '/private', { cookie: 'theme=dark' });
    expect(anon.status).toBe(302); // the same path, anonymous: redirected
  });
});

describe('the origin checks rescuer-fetch markers', () => {
  const sendMarked = (value: string, path = '/m') =>
    get(p.origin.port, SITE, path, { 'x-dotslash-rescuer': value });

  it('a valid marker is proxied straight to the upstream at Pr 1', async () => {
    const r = await sendMarked(signMarker(p.rescuerMember.identity, 'GET', '/m'));
    expect(r.status).toBe(200);
    expect(r.body.toString()).toBe('origin page /m');
  });

  it('forged, expired, unknown-signer and malformed markers get 403 PRX_ERR_BAD_RESCUER_MARKER', async () => {
    const impostor = member(RESCUER_ID); // right id, wrong key
    const stranger = member('evil.example');
    const id = p.rescuerMember.identity;
    const bad = [
      signMarker(impostor.identity, 'GET', '/m'),
      signMarker(stranger.identity, 'GET', '/m'),
      signMarker(id, 'GET', '/m', Date.now() - 61_000),
      signMarker(id, 'GET', '/m', Date.now() + 61_000),
      signMarker(id, 'GET', '/other'), // signed for another path
      signMarker(id, 'HEAD', '/m'), // another method
      `${RESCUER_ID} ${Date.now()}`,
      'garbage',
      '',
    ];
    const upstreamBefore = p.originSite.count('/m');
    for (const v of bad) {
      const r = await sendMarked(v);
      expect(r.status, v).toBe(403);
      expect(errorCode(r.body)).toBe('PRX_ERR_BAD_RESCUER_MARKER');
    }
    expect(p.originSite.count('/m')).toBe(upstreamBefore);
    expect(p.originLog.filter((l) => l.error === 'PRX_ERR_BAD_RESCUER_MARKER')).toHaveLength(bad.length);
  });

  it('two marker headers are refused', async () => {
    const v = signMarker(p.rescuerMember.identity, 'GET', '/m');
    const out = await rawRequest(
      p.origin.port,
      `GET /m HTTP/1.1\r\nHost: ${SITE}\r\nX-Dotslash-Rescuer: ${v}\r\nx-dotslash-rescuer: ${v}\r\n\r\n`,
    );
    expect(out).toMatch(/^HTTP\/1\.1 403 /);
  });
});

describe('the rescuer is never an open proxy', () => {
  it('a Host not in the view goes to the rescuer’s own upstream, nowhere else', async () => {
    const before = p.originSite.seen.length;
    const r = await get(p.rescuer.port, `127.0.0.1:${new URL(p.originSite.url).port}`, '/x');
    expect(r.body.toString()).toBe('rescuer own site /x');
    const r2 = await get(p.rescuer.port, 'www.elsewhere.example', '/page?x=1');
    expect(r2.body.toString()).toBe('rescuer own site /page?x=1');
    expect(p.originSite.seen.length).toBe(before);
  });

  it('absolute-form targets are refused with 400, for rescued and other hosts alike', async () => {
    const before = p.originSite.seen.length;
    const ownBefore = p.rescuerSite.seen.length;
    for (const host of [VH, 'www.elsewhere.example']) {
      const out = await rawRequest(
        p.rescuer.port,
        `GET ${p.originSite.url}/page?x=1 HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`,
      );
      expect(out).toMatch(/^HTTP\/1\.1 400 /);
    }
    expect(p.originSite.seen.length).toBe(before);
    expect(p.rescuerSite.seen.length).toBe(ownBefore);
  });

  it('a client cannot forge the marker or Host through the rescuer', async () => {
    const r = await get(p.rescuer.port, VH, '/forge', { 'x-dotslash-rescuer': 'evil.example 1 x' });
    expect(r.status).toBe(200);
    const seen = p.originSite.seen.at(-1)!;
    expect(seen.url).toBe('/forge');
    // The forged value was replaced by our signed one (a forged one would have been a 403 at
    // Pr 1), and the origin front dropped it after checking.
    expect(seen.headers['x-dotslash-rescuer']).toBeUndefined();
    expect(seen.headers.host).toBe(SITE);
  });

  it('a vhN name of ours without a session gets 421 PRX_ERR_RESCUE_ENDED', async () => {
    const r = await get(p.rescuer.port, `vh9.${RESCUER_ID}`, '/page?x=1');
    expect(r.status).toBe(421);
    expect(errorCode(r.body)).toBe('PRX_ERR_RESCUE_ENDED');
  });
});

describe('drain, end of session, usage', () => {
  const VH2 = `vh2.${RESCUER_ID}`;

  it('a draining session passes requests straight to the origin, uncached; afterwards 421 and the cache is dropped', async () => {
    p.rescuer.proxy.setRescueView(
      view(2, [entry('s1', VH, p.origin.url), entry('s2', VH2, p.origin.url, { names: [VH2] })]),
    );
    const warm = await get(p.rescuer.port, VH2, '/d');
    expect(warm.headers['x-cache']).toBe('MISS');
    expect((await get(p.rescuer.port, VH2, '/d')).headers['x-cache']).toBe('HIT');
    expect(p.rescuer.proxy.rescueCacheStats()!.store.origins.s2?.entries).toBe(1);
    const fetched = p.originSite.count('/d');

    p.rescuer.proxy.setRescueView(
      view(3, [
        entry('s1', VH, p.origin.url),
        entry('s2', VH2, p.origin.url, {
          names: [VH2],
          state: 'drain',
          drain_until: performance.now() + 600,
        }),
      ]),
    );
    for (let i = 0; i < 2; i++) {
      const r = await get(p.rescuer.port, VH2, '/d');
      expect(r.status).toBe(200);
      expect(r.headers['x-cache']).toBe('BYPASS');
      expect(r.body.toString()).toBe('origin page /d');
    }
    expect(p.originSite.count('/d')).toBe(fetched + 2);
    const last = p.originSite.seen.at(-1)!;
    // Signed and accepted by the origin front (at Pr 1 it would otherwise redirect), which
    // keeps the marker to itself.
    expect(last.headers['x-dotslash-rescuer']).toBeUndefined();
    expect(String(last.headers.via)).toContain('dotslash');

    await sleep(700);
    const r = await get(p.rescuer.port, VH2, '/d');
    expect(r.status).toBe(421);
    expect(errorCode(r.body)).toBe('PRX_ERR_RESCUE_ENDED');
    expect(p.originSite.count('/d')).toBe(fetched + 2);
    expect(p.rescuer.proxy.rescueCacheStats()!.store.origins.s2).toBeUndefined();
    // The other session is untouched.
    expect((await get(p.rescuer.port, VH, '/page?x=1')).headers['x-cache']).toBe('HIT');
  });

  it('usage counts what each session served', async () => {
    await sleep(20);
    const u = p.rescuer.proxy.sessionUsage();
    const s2 = u.get('s2')!;
    expect(s2.by_redirect.requests).toBe(4); // MISS, HIT, 2 drain; the 421 served nothing
    expect(s2.by_dns.requests).toBe(0);
    // 3 at first, case variants, after purge, the forged marker, the HIT after s2's drain.
    expect(u.get('s1')!.requests).toBe(7);
  });

  it('a session that leaves the view: its vhN gets 421, its site name goes to the own site, cache dropped', async () => {
    p.rescuer.proxy.setRescueView(view(4, []));
    const r = await get(p.rescuer.port, VH, '/page?x=1');
    expect(r.status).toBe(421);
    const own = await get(p.rescuer.port, SITE, '/page?x=1');
    expect(own.body.toString()).toBe('rescuer own site /page?x=1');
    expect(p.rescuer.proxy.rescueCacheStats()!.store.entries).toBe(0);
    // Final counts stay readable after the session is gone (the 421 served nothing).
    expect(p.rescuer.proxy.sessionUsage().get('s1')!.requests).toBe(7);
  });

  it('Pr 0 turns the origin back into a plain proxy', async () => {
    p.origin.proxy.setRedirect(redirectTo('s1', VH, p.rescuer.port, { pr: 0 }));
    const r = await get(p.origin.port, SITE, '/page?x=1');
    expect(r.status).toBe(200);
    expect(r.body.toString()).toBe('origin page /page?x=1');
  });
});
