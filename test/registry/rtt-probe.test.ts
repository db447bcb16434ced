// RTT probes over real sockets (src/registry/rtt-probe.ts): GET /v1/health on a member's control
// URL, timed from connected to answer; refused, silent, slow, foreign and broken members are
// failures that leave them unmeasured; the prober is bounded (4 at a time, once per member per
// interval, 256 per interval) and never blocks its caller.
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer as createTcpServer, type Server as TcpServer, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { ControlServer, generateKeyPair, parsePrivateKey } from '../../rescue-protocol/index.js';
import { MAX_RTT_ENTRIES, RttTable } from '../../src/registry/rtt.js';
import { probeRtt, RttProber, type ProbeTarget } from '../../src/registry/rtt-probe.js';
import { freePort } from './helpers.js';

let cleanup: (() => Promise<unknown> | void)[] = [];
afterEach(async () => {
  for (const c of cleanup.reverse()) await c();
  cleanup = [];
});

/**
 * Many members behind one listener: `http://host:port/<id>` is member <id>'s control URL, and
 * `/<id>/v1/health` answers as <id> after delays[id] ms. Counts requests and the most in flight.
 */
async function members(delays: Record<string, number> = {}) {
  const hits = new Map<string, number>();
  let inFlight = 0;
  let maxInFlight = 0;
  const server: HttpServer = createHttpServer((req, res) => {
    const m = /^\/([^/]+)\/v1\/health$/.exec(req.url ?? '');
    if (!m) {
      res.writeHead(404).end();
      return;
    }
    const id = m[1]!;
    hits.set(id, (hits.get(id) ?? 0) + 1);
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    setTimeout(() => {
      inFlight--;
      const body = id.startsWith('notjson')
        ? 'ok'
        : JSON.stringify({ ok: true, id: id.startsWith('liar') ? 'someone.else' : id, v: 1 });
      res.writeHead(id.startsWith('broken') ? 500 : 200, { 'content-type': 'application/json' }).end(body);
    }, delays[id] ?? 0);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanup.push(() => new Promise((r) => server.close(r)));
  cleanup.push(() => server.closeAllConnections());
  const { port } = server.address() as AddressInfo;
  return {
    target: (id: string): ProbeTarget => ({ id, control_url: `http://127.0.0.1:${port}/${id}` }),
    hits,
    maxInFlight: () => maxInFlight,
  };
}

/** A member whose host accepts the connection and then never says a word. */
async function silent(): Promise<ProbeTarget> {
  const sockets = new Set<Socket>();
  const server: TcpServer = createTcpServer((s) => {
    sockets.add(s);
    s.on('error', () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanup.push(() => {
    for (const s of sockets) s.destroy();
    return new Promise((r) => server.close(r));
  });
  return { id: 'silent.test', control_url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

const table = () => new RttTable({ maxAgeMs: 60_000 });

describe('probeRtt', () => {
  it('measures the real control listener: GET /v1/health, answered by that member', async () => {
    const self = { id: 'rescuer.test', privateKey: parsePrivateKey(generateKeyPair().privateKeyPem) };
    const server = new ControlServer({
      listen: '127.0.0.1:0',
      self,
      peers: new Map(),
      onMessage: () => {
        throw new Error('not used');
      },
    });
    await server.listen();
    cleanup.push(() => server.close());
    const ms = await probeRtt({ id: 'rescuer.test', control_url: server.url }, 2_000);
    expect(ms).toBeGreaterThanOrEqual(0);
    expect(ms).toBeLessThan(500);
    await expect(probeRtt({ id: 'other.test', control_url: server.url }, 2_000)).rejects.toThrow(
      /answered as "rescuer.test", not other.test/,
    );
  });

  it('counts the time the member takes to answer', async () => {
    const m = await members({ 'far.test': 150 });
    const near = await probeRtt(m.target('near.test'), 2_000);
    const far = await probeRtt(m.target('far.test'), 2_000);
    expect(far).toBeGreaterThanOrEqual(140);
    expect(near).toBeLessThan(far - 100);
  });

  it('fails, without waiting for the timeout, on a refused connection, a 500, non-JSON or another member', async () => {
    const m = await members();
    const t0 = performance.now();
    const port = await freePort();
    await expect(
      probeRtt({ id: 'gone.test', control_url: `http://127.0.0.1:${port}` }, 5_000),
    ).rejects.toThrow(/ECONNREFUSED/);
    await expect(probeRtt(m.target('broken.test'), 5_000)).rejects.toThrow(/HTTP 500/);
    await expect(probeRtt(m.target('notjson.test'), 5_000)).rejects.toThrow(/not JSON/);
    await expect(probeRtt(m.target('liar.test'), 5_000)).rejects.toThrow(/not liar.test/);
    await expect(probeRtt({ id: 'x.test', control_url: 'ftp://127.0.0.1:21' }, 5_000)).rejects.toThrow(
      /http/,
    );
    expect(performance.now() - t0).toBeLessThan(2_000);
  });

  it('gives up on a member that never answers after the timeout', async () => {
    const t = await silent();
    const t0 = performance.now();
    await expect(probeRtt(t, 300)).rejects.toThrow(/no answer within 300 ms/);
    const took = performance.now() - t0;
    expect(took).toBeGreaterThanOrEqual(290);
    expect(took).toBeLessThan(1_500);
  });
});

describe('RttProber', () => {
  it('probes in the background: probe() returns at once, the event loop keeps turning, failures stay unmeasured', async () => {
    const m = await members({ 'far.test': 200 });
    const dead = await silent();
    const refused = { id: 'refused.test', control_url: `http://127.0.0.1:${await freePort()}` };
    const rtt = table();
    const prober = new RttProber({ table: rtt, intervalMs: 60_000, timeoutMs: 600 });
    cleanup.push(() => prober.close());
    let turns = 0;
    const ticker = setInterval(() => turns++, 20);
    cleanup.push(() => clearInterval(ticker));
    const t0 = performance.now();
    prober.probe([m.target('near.test'), m.target('far.test'), dead, refused]);
    expect(performance.now() - t0).toBeLessThan(20); // queued, not awaited
    await prober.settled();
    const took = performance.now() - t0;
    expect(took).toBeGreaterThanOrEqual(590); // the silent member's timeout
    expect(turns).toBeGreaterThanOrEqual(Math.floor(took / 20) - 10); // no tick was held up
    expect(rtt.get('near.test')).toBeLessThan(100);
    expect(rtt.get('far.test')).toBeGreaterThanOrEqual(190);
    expect(rtt.get('silent.test')).toBeUndefined();
    expect(rtt.get('refused.test')).toBeUndefined();
  });

  it('runs at most 4 probes at a time and probes a member at most once per interval', async () => {
    const ids = Array.from({ length: 12 }, (_, i) => `m${i}.test`);
    const m = await members(Object.fromEntries(ids.map((id) => [id, 40])));
    const rtt = table();
    const prober = new RttProber({ table: rtt, intervalMs: 400, timeoutMs: 2_000 });
    cleanup.push(() => prober.close());
    prober.probe(ids.map(m.target));
    prober.probe(ids.map(m.target)); // again at once: nothing new queued
    await prober.settled();
    expect(m.maxInFlight()).toBe(4);
    expect(rtt.size).toBe(12);
    prober.probe(ids.map(m.target)); // still within the interval
    await prober.settled();
    expect([...m.hits.values()].every((n) => n === 1)).toBe(true);
    await new Promise((r) => setTimeout(r, 450));
    prober.probe([m.target('m0.test')]); // the interval passed
    await prober.settled();
    expect(m.hits.get('m0.test')).toBe(2);
    expect(m.hits.get('m1.test')).toBe(1);
  });

  it('starts at most 256 probes per interval however many members there are', async () => {
    const m = await members();
    const rtt = table();
    const prober = new RttProber({ table: rtt, intervalMs: 60_000, timeoutMs: 2_000 });
    cleanup.push(() => prober.close());
    prober.probe(Array.from({ length: 300 }, (_, i) => m.target(`m${i}.test`)));
    await prober.settled();
    expect([...m.hits.values()].reduce((a, b) => a + b, 0)).toBe(MAX_RTT_ENTRIES);
    expect(m.hits.has('m255.test') && !m.hits.has('m256.test')).toBe(true);
    expect(rtt.size).toBe(MAX_RTT_ENTRIES);
  });

  it('the periodic round takes candidates first, then members measured before, then the rest', async () => {
    const m = await members();
    const rtt = table();
    rtt.record('known.test', 5);
    const prober = new RttProber({ table: rtt, intervalMs: 60_000, timeoutMs: 2_000, concurrency: 1 });
    cleanup.push(() => prober.close());
    const order: string[] = [];
    const seen = (id: string) => {
      order.push(id);
      return m.target(id);
    };
    prober.start({
      candidates: () => [seen('cand.test')],
      members: () => ['other.test', 'cand.test', 'known.test'].map((id) => m.target(id)),
    });
    await prober.settled();
    expect(order).toEqual(['cand.test']);
    // concurrency 1: the server saw them in queue order
    expect([...m.hits.keys()]).toEqual(['cand.test', 'known.test', 'other.test']);
  });

  it('close() aborts probes in flight and records nothing after', async () => {
    const m = await members({ 'slow.test': 1_500 });
    const rtt = table();
    const prober = new RttProber({ table: rtt, intervalMs: 60_000, timeoutMs: 5_000 });
    prober.probe([m.target('slow.test')]);
    await new Promise((r) => setTimeout(r, 50));
    const t0 = performance.now();
    prober.close();
    prober.close(); // idempotent
    await prober.settled();
    expect(performance.now() - t0).toBeLessThan(200);
    prober.probe([m.target('other.test')]); // closed: ignored
    await new Promise((r) => setTimeout(r, 50));
    expect(m.hits.has('other.test')).toBe(false);
    expect(rtt.size).toBe(0);
  });
});
