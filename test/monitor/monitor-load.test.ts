// Monitor regions driven by synthetic load: real HTTP requests over loopback to a real server
// that counts into a real ProxyStats (as the front proxy does), sampled every 100 ms.
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import pino from 'pino';
import { Agent, request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { ProxyStats } from '../../proxy/stats.js';
import { monitorSchema } from '../../src/config/schema.js';
import { WorkloadMonitor, type MonitorSample, type RegionEvent } from '../../src/monitor/monitor.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Site {
  url: string;
  stats: ProxyStats;
  server: Server;
  /** What the handler answers: status and body size. */
  mode: { status: number; bodyBytes: number };
}

/** A node:http server whose handler keeps ProxyStats the way the front proxy does. */
async function startSite(): Promise<Site> {
  const stats = new ProxyStats();
  const mode = { status: 200, bodyBytes: 64 };
  const server = createServer((req, res) => {
    const t0 = performance.now();
    stats.active++;
    stats.bytesIn += 80; // a request head's worth; the body is empty
    req.resume();
    const body = Buffer.alloc(mode.bodyBytes, 0x61);
    res.on('finish', () => {
      stats.active--;
      stats.bytesOut += body.length + 100;
      if (mode.status >= 502) stats.upstreamErrors++;
      const ms = performance.now() - t0;
      stats.recordResponse(mode.status, ms, mode.status >= 502 ? undefined : ms);
    });
    res.writeHead(mode.status, { 'content-length': body.length }).end(body);
  });
  server.on('connection', (s) => {
    stats.connections++;
    s.on('close', () => stats.connections--);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}/`, stats, server, mode };
}

/**
 * Sends about `rps` requests per second until `signal` aborts or `maxMs` passes (bounded),
 * with at most 32 in flight. Returns the number sent.
 */
async function load(
  url: string,
  rps: number,
  maxMs: number,
  signal: AbortSignal,
  agent: Agent,
): Promise<number> {
  const start = performance.now();
  let sent = 0;
  const inFlight = new Set<Promise<void>>();
  while (!signal.aborted && performance.now() - start < maxMs) {
    const due = Math.floor(((performance.now() - start) / 1000) * rps);
    while (sent < due && inFlight.size < 32) {
      sent++;
      const p: Promise<void> = request(url, { dispatcher: agent })
        .then((r) => r.body.dump())
        .catch(() => undefined)
        .finally(() => inFlight.delete(p));
      inFlight.add(p);
    }
    await sleep(5);
  }
  await Promise.all(inFlight);
  return sent;
}

/** Resolves with the first 'region' event matching `pred`, or rejects after `ms` (a bound, not a speed claim). */
function nextRegion(m: WorkloadMonitor, pred: (e: RegionEvent) => boolean, ms: number): Promise<RegionEvent> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      m.off('region', on);
      reject(
        new Error(
          `no matching region event within ${ms} ms; status: ${JSON.stringify(m.status().resources)}`,
        ),
      );
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

/** Captures pino's JSON lines so tests can check what was logged. */
function captureLogger(): { logger: pino.Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n'))
        if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  return { logger: pino({ level: 'info' }, sink), lines };
}

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup(monitor: Record<string, unknown>) {
  const site = await startSite();
  const agent = new Agent({ connections: 32 });
  const { logger, lines } = captureLogger();
  const m = new WorkloadMonitor({
    config: monitorSchema.parse({
      interval_ms: 100,
      smoothing: 0.5,
      dwell_samples: 3,
      hysteresis: 0.05,
      // CPU is shared with whatever else runs on this machine; keep it out of these tests.
      cpu: { capacity: 1000 },
      ...monitor,
    }),
    readStats: () => site.stats.snapshot(),
    logger,
  });
  const events: RegionEvent[] = [];
  m.on('region', (e: RegionEvent) => events.push(e));
  cleanups.push(async () => {
    m.close();
    await agent.close();
    site.server.closeAllConnections();
    site.server.close();
  });
  return { site, agent, m, events, lines };
}

describe('WorkloadMonitor under synthetic load', () => {
  it('request_rate goes light -> heavy under load and back to light when it stops, with reasons', async () => {
    const { site, agent, m, events, lines } = await setup({
      request_rate: { capacity: 50, lower: 0.3, upper: 0.8 },
      bytes_out: { capacity: 0 },
      bytes_in: { capacity: 0 },
    });
    m.start();
    await sleep(400);
    expect(m.status().region).toBe('light');
    expect(events).toEqual([]);

    const stop = new AbortController();
    const loading = load(site.url, 150, 10_000, stop.signal, agent);
    const heavy = await nextRegion(m, (e) => e.resource === 'request_rate' && e.to === 'heavy', 8_000);
    stop.abort();
    const sent = await loading;
    expect(sent).toBeGreaterThan(0);
    expect(heavy.reason).toMatch(
      /^request_rate \d+\.\d req\/s = \d+% of 50\.0 req\/s capacity, above upper 80% for 3 samples$/,
    );
    expect(heavy.capacity).toBe(50);
    expect(heavy.value).toBeGreaterThan(40);
    const overallHeavy = events.find((e) => e.resource === 'overall' && e.to === 'heavy');
    expect(overallHeavy?.reason).toContain('busiest: request_rate');
    expect(m.status().region).toBe('heavy');
    expect(m.status().busiest).toBe('request_rate');

    const light = await nextRegion(m, (e) => e.resource === 'request_rate' && e.to === 'light', 8_000);
    expect(light.reason).toMatch(/below lower 30% for 3 samples$/);
    expect(m.status().region).toBe('light');

    // light -> heavy (possibly via desired) -> light (possibly via desired): no flapping.
    const path = events.filter((e) => e.resource === 'request_rate').map((e) => e.to);
    expect(path.length).toBeLessThanOrEqual(4);
    expect(path.indexOf('heavy')).toBeLessThan(path.lastIndexOf('light'));

    // Every change was logged with its reason.
    const logged = lines.filter(
      (l) => typeof l.msg === 'string' && (l.msg as string).startsWith('load region'),
    );
    expect(logged.length).toBe(events.length);
    expect(logged.some((l) => l.resource === 'request_rate' && l.to === 'heavy' && l.level === 30)).toBe(
      true,
    );
    expect(logged.some((l) => l.resource === 'overall' && l.to === 'heavy' && l.level === 40)).toBe(true);
  });

  it('bytes_out alone can make the site heavy (request_rate disabled with capacity 0)', async () => {
    const { site, agent, m, events } = await setup({
      request_rate: { capacity: 0 },
      bytes_in: { capacity: 0 },
      bytes_out: { capacity: 200_000, lower: 0.3, upper: 0.8 },
    });
    site.mode.bodyBytes = 16_384;
    m.start();
    const stop = new AbortController();
    const loading = load(site.url, 60, 10_000, stop.signal, agent); // ~1 MB/s against 200 kB/s
    const heavy = await nextRegion(m, (e) => e.resource === 'bytes_out' && e.to === 'heavy', 8_000);
    stop.abort();
    await loading;
    expect(heavy.reason).toMatch(
      /^bytes_out \d+(\.\d)? [kM]B\/s = \d+% of 200\.0 kB\/s capacity, above upper 80%/,
    );
    expect(events.every((e) => e.resource !== 'request_rate')).toBe(true);
    const st = m.status();
    expect(st.resources.request_rate.region).toBeNull();
    expect(st.resources.request_rate.capacity).toBe(0);
    expect(st.region).toBe('heavy');
    expect(st.busiest).toBe('bytes_out');
  });

  it('upstream errors are reported but are not load: an outage does not go heavy', async () => {
    const { site, agent, m, events } = await setup({
      request_rate: { capacity: 50, lower: 0.3, upper: 0.8 },
      bytes_out: { capacity: 0 },
      bytes_in: { capacity: 0 },
    });
    site.mode.status = 502;
    const samples: Array<{ errors: number; ratio: number | null; region: string }> = [];
    m.on('sample', (s: MonitorSample) =>
      samples.push({ errors: s.rates.upstreamErrors, ratio: s.upstreamErrorRatio, region: s.region }),
    );
    m.start();
    const stop = new AbortController();
    // 150 failing requests/s: three times the capacity, for 15+ samples.
    setTimeout(() => stop.abort(), 1_600);
    const sent = await load(site.url, 150, 5_000, stop.signal, agent);
    await sleep(200);
    expect(sent).toBeGreaterThan(100);
    expect(site.stats.upstreamErrors).toBe(sent);
    expect(events).toEqual([]);
    expect(new Set(samples.map((s) => s.region))).toEqual(new Set(['light']));
    // Reported all the same.
    expect(Math.max(...samples.map((s) => s.errors))).toBeGreaterThan(50);
    expect(samples.some((s) => s.ratio === 1)).toBe(true);
    expect(m.status().resources.request_rate.region).toBe('light');
  });
});
