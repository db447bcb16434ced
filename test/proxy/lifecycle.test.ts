// FrontProxy lifecycle: listen on port 0, readiness, graceful close that drains in-flight
// requests (and closes idle keep-alive connections at once), forced close after drainMs.
import * as http from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { FrontProxy } from '../../proxy/front.js';
import {
  proxyConfig,
  request,
  silent,
  startProxy,
  startUpstream,
  type RunningProxy,
  type Upstream,
} from './helpers.js';

let up: Upstream | null = null;
let front: RunningProxy | null = null;

afterEach(async () => {
  await front?.proxy.close(200);
  await up?.close();
  front = null;
  up = null;
});

describe('lifecycle', () => {
  it('is not ready before listen(), ready after, and not ready once close() began', async () => {
    up = await startUpstream((_req, res) => res.end('ok'));
    const proxy = new FrontProxy({ config: proxyConfig({ upstreams: [up.url] }), logger: silent });
    expect(proxy.ready).toBe(false);
    const addr = await proxy.listen();
    expect(addr.port).toBeGreaterThan(0);
    expect(proxy.ready).toBe(true);
    const closing = proxy.close(100);
    expect(proxy.ready).toBe(false);
    await closing;
    await proxy.close(); // idempotent
    expect(proxy.ready).toBe(false);
  });

  it('close() drains an in-flight request, then stops accepting', async () => {
    let release: () => void = () => {};
    up = await startUpstream((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('part1,');
      release = () => res.end('part2');
    });
    front = await startProxy({ upstreams: [up.url] });
    const arrived = new Promise((r) => up!.server.once('request', r));
    const inflight = request(`${front.url}/long`);
    await arrived;
    const closing = front.proxy.close(5_000);
    expect(front.proxy.ready).toBe(false);
    await new Promise((r) => setTimeout(r, 100));
    // New connections are refused while draining.
    await expect(request(`${front.url}/new`)).rejects.toThrow(/ECONNREFUSED|ECONNRESET/);
    release();
    const r = await inflight;
    expect(r.body.toString()).toBe('part1,part2');
    expect(r.headers.connection).toBe('close');
    await closing;
    expect(front.proxy.stats.active).toBe(0);
  });

  it('closes idle keep-alive connections at once and forces the rest after drainMs', async () => {
    up = await startUpstream((req, res) => {
      if (req.url === '/hang') return; // never answers
      res.end('ok');
    });
    front = await startProxy({ upstreams: [up.url] });
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    await request(`${front.url}/idle`, { agent });
    const idleSocketClosed = new Promise<void>((resolve) => {
      const s = Object.values(agent.freeSockets)[0]![0]!;
      s.once('close', () => resolve());
    });
    const hung = request(`${front.url}/hang`).catch((e: Error) => e);
    await new Promise((r) => setTimeout(r, 100));
    const t0 = Date.now();
    await front.proxy.close(300);
    await idleSocketClosed;
    expect(Date.now() - t0).toBeLessThan(2_500);
    expect(await hung).toBeInstanceOf(Error);
    agent.destroy();
  });
});
