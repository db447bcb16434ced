// Several upstreams share the load round-robin; update() swaps upstreams atomically, keeps
// the pools of unchanged upstreams, and leaves in-flight requests on the old snapshot.
import { afterEach, describe, expect, it } from 'vitest';
import {
  proxyConfig,
  request,
  startProxy,
  startUpstream,
  type RunningProxy,
  type Upstream,
} from './helpers.js';

let ups: Upstream[] = [];
let front: RunningProxy | null = null;

afterEach(async () => {
  await front?.proxy.close(1000);
  await Promise.all(ups.map((u) => u.close()));
  front = null;
  ups = [];
});

async function named(name: string, delayMs = 0): Promise<Upstream> {
  const u = await startUpstream((_req, res) => {
    setTimeout(() => res.end(name), delayMs);
  });
  ups.push(u);
  return u;
}

describe('balancing and update()', () => {
  it('spreads requests over all upstreams', async () => {
    const a = await named('a');
    const b = await named('b');
    const c = await named('c');
    front = await startProxy({ upstreams: [a.url, b.url, c.url] });
    const counts: Record<string, number> = {};
    for (let i = 0; i < 30; i++) {
      const r = await request(`${front.url}/`);
      const n = r.body.toString();
      counts[n] = (counts[n] ?? 0) + 1;
    }
    expect(counts).toEqual({ a: 10, b: 10, c: 10 });
  });

  it('update() switches to a new upstream; an in-flight request finishes on the old one', async () => {
    const a = await named('a', 300);
    const b = await named('b');
    front = await startProxy({ upstreams: [a.url] });
    const arrived = new Promise((r) => a.server.once('request', r));
    const inflight = request(`${front.url}/slow`);
    await arrived;
    front.proxy.update(proxyConfig({ upstreams: [b.url] }));
    expect((await request(`${front.url}/`)).body.toString()).toBe('b');
    expect((await inflight).body.toString()).toBe('a');
  });

  it('update() keeps the warm pool of an unchanged upstream', async () => {
    const a = await named('a');
    const b = await named('b');
    let connections = 0;
    a.server.on('connection', () => connections++);
    front = await startProxy({ upstreams: [a.url] });
    await request(`${front.url}/`);
    front.proxy.update(proxyConfig({ upstreams: [a.url, b.url] }));
    const seen = new Set<string>();
    for (let i = 0; i < 4; i++) seen.add((await request(`${front.url}/`)).body.toString());
    expect(seen).toEqual(new Set(['a', 'b']));
    expect(connections).toBe(1); // the keep-alive socket to "a" survived the reload
  });

  it('update() applies new limits to the next request', async () => {
    const a = await named('a');
    front = await startProxy({ upstreams: [a.url] });
    const body = 'x'.repeat(2000);
    const ok = await request(`${front.url}/`, {
      method: 'POST',
      headers: { 'content-length': '2000' },
      body,
    });
    expect(ok.status).toBe(200);
    front.proxy.update(proxyConfig({ upstreams: [a.url], limits: { max_body_bytes: 1000 } }));
    const refused = await request(`${front.url}/`, {
      method: 'POST',
      headers: { 'content-length': '2000' },
      body,
    });
    expect(refused.status).toBe(413);
  });
});
