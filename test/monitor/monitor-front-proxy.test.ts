// The monitor on the real data path: HTTP load through a real FrontProxy to a real upstream
// drives request_rate and bytes_out light -> heavy -> light; an upstream outage (502s) does not.
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import { Agent, request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { FrontProxy } from '../../proxy/front.js';
import { monitorSchema, proxySchema } from '../../src/config/schema.js';
import { WorkloadMonitor, type MonitorSample, type RegionEvent } from '../../src/monitor/monitor.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const logger = pino({ level: 'silent' });

const cleanups: Array<() => Promise<unknown> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function upstream(bodyBytes: number): Promise<string> {
  const body = Buffer.alloc(bodyBytes, 0x62);
  const server: Server = createServer((req, res) => {
    req.resume();
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length }).end(body);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  cleanups.push(() => {
    server.closeAllConnections();
    server.close();
  });
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** A port nothing listens on (bound, then closed): connecting to it is refused. */
async function deadUpstream(): Promise<string> {
  const s = createServer();
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  const { port } = s.address() as AddressInfo;
  await new Promise((r) => s.close(r));
  return `http://127.0.0.1:${port}`;
}

async function frontFor(upstreamUrl: string): Promise<{ proxy: FrontProxy; url: string }> {
  const proxy = new FrontProxy({
    config: proxySchema.parse({
      listen: '127.0.0.1:0',
      upstreams: [upstreamUrl],
      access_log: { enabled: false },
    }),
    logger,
    accessLog: null,
  });
  const addr = await proxy.listen();
  cleanups.push(() => proxy.close(0));
  return { proxy, url: `http://127.0.0.1:${addr.port}/` };
}

function monitorFor(
  proxy: FrontProxy,
  over: Record<string, unknown>,
): { m: WorkloadMonitor; events: RegionEvent[] } {
  const m = new WorkloadMonitor({
    config: monitorSchema.parse({
      interval_ms: 100,
      smoothing: 0.5,
      dwell_samples: 3,
      hysteresis: 0.05,
      cpu: { capacity: 1000 }, // the machine's CPU is shared with other tests: keep it out
      bytes_in: { capacity: 0 },
      ...over,
    }),
    readStats: () => proxy.stats.snapshot(),
    logger,
  });
  const events: RegionEvent[] = [];
  m.on('region', (e: RegionEvent) => events.push(e));
  cleanups.push(() => m.close());
  return { m, events };
}

/** About `rps` requests/s until aborted or `maxMs` (a bound), at most 32 in flight. */
async function load(url: string, rps: number, maxMs: number, signal: AbortSignal): Promise<number[]> {
  const agent = new Agent({ connections: 32 });
  const statuses: number[] = [];
  const start = performance.now();
  let sent = 0;
  const inFlight = new Set<Promise<void>>();
  while (!signal.aborted && performance.now() - start < maxMs) {
    const due = Math.floor(((performance.now() - start) / 1000) * rps);
    while (sent < due && inFlight.size < 32) {
      sent++;
      const p: Promise<void> = request(url, { dispatcher: agent })
        .then(async (r) => {
          statuses.push(r.statusCode);
          await r.body.dump();
        })
        .catch(() => undefined)
        .finally(() => inFlight.delete(p));
      inFlight.add(p);
    }
    await sleep(5);
  }
  await Promise.all(inFlight);
  await agent.close();
  return statuses;
}

function waitFor(m: WorkloadMonitor, pred: (e: RegionEvent) => boolean, ms: number): Promise<RegionEvent> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      m.off('region', on);
      reject(new Error(`no matching region event within ${ms} ms: ${JSON.stringify(m.status().resources)}`));
    }, ms);
    const on = (e: RegionEvent): void => {
      if (!pred(e)) return;
      clearTimeout(timer);
      m.off('region', on);
      resolve(e);
    };
    m.on('region', on);
  });
}

describe('WorkloadMonitor on a real FrontProxy', () => {
  it('request_rate: light -> heavy under load through the proxy, light again after', async () => {
    const { proxy, url } = await frontFor(await upstream(512));
    const { m, events } = monitorFor(proxy, {
      request_rate: { capacity: 50, lower: 0.3, upper: 0.8 },
      bytes_out: { capacity: 0 },
    });
    m.start();
    const stop = new AbortController();
    const loading = load(url, 150, 10_000, stop.signal);
    const heavy = await waitFor(m, (e) => e.resource === 'request_rate' && e.to === 'heavy', 8_000);
    stop.abort();
    const statuses = await loading;
    expect(statuses.length).toBeGreaterThan(0);
    expect(new Set(statuses)).toEqual(new Set([200]));
    expect(heavy.reason).toMatch(
      /^request_rate [\d.]+ req\/s = \d+% of 50\.0 req\/s capacity, above upper 80%/,
    );
    const st = m.status();
    expect(st.region).toBe('heavy');
    expect(st.latency?.p50).not.toBeNull();
    expect(st.upstreamLatency?.p50).not.toBeNull();
    const light = await waitFor(m, (e) => e.resource === 'request_rate' && e.to === 'light', 8_000);
    expect(light.reason).toMatch(/below lower 30% for 3 samples$/);
    expect(
      events
        .filter((e) => e.resource === 'overall')
        .map((e) => e.to)
        .at(-1),
    ).toBe('light');
  });

  it("bytes_out: the proxy's own byte counters drive the region", async () => {
    const { proxy, url } = await frontFor(await upstream(32_768));
    const { m } = monitorFor(proxy, {
      request_rate: { capacity: 0 },
      bytes_out: { capacity: 500_000, lower: 0.3, upper: 0.8 },
    });
    m.start();
    const stop = new AbortController();
    const loading = load(url, 60, 10_000, stop.signal); // ~2 MB/s against 500 kB/s
    const heavy = await waitFor(m, (e) => e.resource === 'bytes_out' && e.to === 'heavy', 8_000);
    stop.abort();
    await loading;
    expect(heavy.reason).toMatch(
      /^bytes_out [\d.]+ [kM]B\/s = \d+% of 500\.0 kB\/s capacity, above upper 80%/,
    );
    expect(proxy.stats.bytesOut).toBeGreaterThan(32_768 * 10);
  });

  it('an upstream outage (every request 502) is reported but stays light', async () => {
    const { proxy, url } = await frontFor(await deadUpstream());
    const { m, events } = monitorFor(proxy, {
      request_rate: { capacity: 50, lower: 0.3, upper: 0.8 },
      bytes_out: { capacity: 0 },
    });
    const samples: MonitorSample[] = [];
    m.on('sample', (s: MonitorSample) => samples.push(s));
    m.start();
    const stop = new AbortController();
    setTimeout(() => stop.abort(), 1_500);
    const statuses = await load(url, 150, 5_000, stop.signal);
    await sleep(250);
    expect(statuses.length).toBeGreaterThan(100);
    expect(new Set(statuses)).toEqual(new Set([502]));
    expect(events).toEqual([]);
    expect(samples.length).toBeGreaterThan(5);
    expect(new Set(samples.map((s) => s.region))).toEqual(new Set(['light']));
    expect(Math.max(...samples.map((s) => s.rates.upstreamErrors))).toBeGreaterThan(50);
    expect(samples.some((s) => s.upstreamErrorRatio === 1)).toBe(true);
  });
});
