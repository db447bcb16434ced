// The admin listener over real loopback sockets: open health endpoints, bearer-protected
// /status and /metrics, JSON errors with ADM_ERR_* codes.
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ProxyStats } from '../../proxy/stats.js';
import { AdminServer, parseHostPort } from '../../src/admin/server.js';
import { monitorSchema } from '../../src/config/schema.js';
import { WorkloadMonitor } from '../../src/monitor/monitor.js';

const TOKEN = 'test-admin-token-0123456789';
const logger = pino({ level: 'silent' });

let stats: ProxyStats;
let monitor: WorkloadMonitor;
let admin: AdminServer;
let base: string;
let ready: boolean;

beforeEach(async () => {
  stats = new ProxyStats();
  ready = true;
  monitor = new WorkloadMonitor({
    config: monitorSchema.parse({
      dwell_samples: 1,
      smoothing: 1,
      cpu: { capacity: 1000 },
      request_rate: { capacity: 10, lower: 0.4, upper: 0.9 },
    }),
    readStats: () => stats.snapshot(),
    logger,
  });
  admin = new AdminServer({
    listen: '127.0.0.1:0',
    token: TOKEN,
    monitor,
    stats: () => stats.snapshot(),
    isReady: () => ready,
    logger,
    info: () => ({ version: '0.1.0-test', name: 'site.test' }),
  });
  const addr = await admin.listen();
  base = `http://127.0.0.1:${addr.port}`;
});

afterEach(async () => {
  monitor.close();
  await admin.close();
});

const auth = { authorization: `Bearer ${TOKEN}` };

describe('open endpoints', () => {
  it('/healthz answers 200 without a token', async () => {
    const res = await fetch(`${base}/healthz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'ok' });
  });

  it('/readyz follows isReady(): 200, then 503 once the proxy is draining', async () => {
    let res = await fetch(`${base}/readyz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ ready: true });
    ready = false;
    res = await fetch(`${base}/readyz`);
    expect(res.status).toBe(503);
    expect(await res.json()).toEqual({ ready: false });
    // Health is about the process, not readiness.
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
  });

  it('HEAD works and sends no body; query strings are ignored', async () => {
    const res = await fetch(`${base}/healthz?probe=1`, { method: 'HEAD' });
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('');
  });
});

describe('token-protected endpoints', () => {
  for (const path of ['/status', '/metrics']) {
    it(`${path} without a token: 401 with WWW-Authenticate and a JSON error`, async () => {
      const res = await fetch(`${base}${path}`);
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toBe('Bearer realm="dotslash-admin"');
      const body = (await res.json()) as { error: { code: string; message: string } };
      expect(body.error.code).toBe('ADM_ERR_UNAUTHORIZED');
      expect(body.error.message).toContain('Bearer');
    });

    it(`${path} with a wrong token or scheme: 401 invalid_token`, async () => {
      for (const header of [
        `Bearer ${TOKEN}x`,
        `Bearer ${TOKEN.slice(0, -1)}`,
        'Bearer ',
        `Basic ${Buffer.from(`admin:${TOKEN}`).toString('base64')}`,
        TOKEN,
      ]) {
        const res = await fetch(`${base}${path}`, { headers: { authorization: header } });
        expect(res.status, header).toBe(401);
        expect(res.headers.get('www-authenticate')).toContain('error="invalid_token"');
        expect(((await res.json()) as { error: { code: string } }).error.code).toBe('ADM_ERR_UNAUTHORIZED');
      }
    });
  }

  it('accepts the scheme case-insensitively', async () => {
    const res = await fetch(`${base}/status`, { headers: { authorization: `bearer ${TOKEN}` } });
    expect(res.status).toBe(200);
  });

  it('/status: state, region, each resource, rates, latency, uptime and info', async () => {
    await new Promise((r) => setTimeout(r, 100));
    for (let i = 0; i < 50; i++) stats.recordResponse(200, 3, 2);
    for (let i = 0; i < 5; i++) stats.recordResponse(502, 1, undefined);
    stats.upstreamErrors += 5;
    stats.bytesOut += 123_456;
    stats.bytesIn += 7_890;
    stats.active = 2;
    monitor.sampleNow(); // 50 served requests in ~0.1 s: far above 10 req/s

    const res = await fetch(`${base}/status`, { headers: auth });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('application/json');
    const st = (await res.json()) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
    expect(st.state).toBe('normal');
    expect(st.region).toBe('heavy');
    expect(st.busiest).toBe('request_rate');
    expect(st.resources.request_rate).toMatchObject({
      capacity: 10,
      lower: 0.4,
      upper: 0.9,
      region: 'heavy',
      unit: 'requests/s',
    });
    expect(st.resources.request_rate.value).toBeGreaterThan(9);
    expect(st.resources.request_rate.utilisation).toBeCloseTo(st.resources.request_rate.value / 10);
    expect(Object.keys(st.resources)).toEqual(['cpu', 'bytes_out', 'bytes_in', 'request_rate']);
    for (const r of Object.values(st.resources) as Array<Record<string, unknown>>) {
      expect(Object.keys(r).sort()).toEqual(
        ['capacity', 'lower', 'pending', 'raw', 'region', 'unit', 'upper', 'utilisation', 'value'].sort(),
      );
    }
    expect(st.rates.requests).toBeGreaterThan(st.rates.served);
    expect(st.rates.upstreamErrors).toBeGreaterThan(0);
    expect(st.upstreamErrorRatio).toBeCloseTo(5 / 55);
    expect(st.latency.p50).toBeGreaterThanOrEqual(3);
    expect(st.latency.p99).toBeLessThan(3 * 1.13);
    expect(st.totals).toMatchObject({ requests: 55, bytesOut: 123_456, bytesIn: 7_890, upstreamErrors: 5 });
    expect(st.totals.status['5xx']).toBe(5);
    expect(st.active).toBe(2);
    expect(typeof st.uptimeSeconds).toBe('number');
    expect(st.info).toEqual({ version: '0.1.0-test', name: 'site.test' });
  });

  it('/metrics: Prometheus text with proxy counters, histograms, regions and process metrics', async () => {
    await new Promise((r) => setTimeout(r, 50));
    for (let i = 0; i < 40; i++) stats.recordResponse(200, 3, 2);
    stats.recordResponse(404, 0.2, 0.1);
    stats.upstreamErrors += 1;
    stats.bytesOut += 4096;
    stats.bytesIn += 100;
    stats.connections = 4;
    monitor.sampleNow();

    const res = await fetch(`${base}/metrics`, { headers: auth });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/plain');
    const text = await res.text();
    const line = (re: RegExp) => expect(text).toMatch(re);
    line(/^# TYPE dotslash_requests_total counter$/m);
    line(/^dotslash_requests_total\{status_class="2xx"\} 40$/m);
    line(/^dotslash_requests_total\{status_class="4xx"\} 1$/m);
    line(/^dotslash_bytes_out_total 4096$/m);
    line(/^dotslash_bytes_in_total 100$/m);
    line(/^dotslash_upstream_errors_total 1$/m);
    line(/^dotslash_active_requests 0$/m);
    line(/^dotslash_client_connections 4$/m);
    line(/^# TYPE dotslash_request_duration_seconds histogram$/m);
    // 3 ms lands in the le=0.005 bucket, 0.2 ms in le=0.0005; all 41 by +Inf.
    line(/^dotslash_request_duration_seconds_bucket\{le="0.0005"\} 1$/m);
    line(/^dotslash_request_duration_seconds_bucket\{le="0.005"\} 41$/m);
    line(/^dotslash_request_duration_seconds_bucket\{le="\+Inf"\} 41$/m);
    line(/^dotslash_request_duration_seconds_count 41$/m);
    line(/^dotslash_upstream_duration_seconds_count 41$/m);
    line(/^dotslash_load_region\{resource="overall"\} 2$/m);
    line(/^dotslash_load_region\{resource="request_rate"\} 2$/m);
    line(/^dotslash_load_region\{resource="bytes_out"\} 0$/m);
    line(/^dotslash_resource_utilisation\{resource="request_rate"\} \d/m);
    line(/^dotslash_resource_capacity\{resource="request_rate"\} 10$/m);
    line(/^dotslash_latency_seconds\{quantile="0.99"\} /m);
    line(/^dotslash_upstream_error_ratio /m);
    line(/^process_cpu_seconds_total /m);
    line(/^nodejs_eventloop_lag_seconds /m);
    // Counters follow the data path's cumulative values across scrapes.
    stats.recordResponse(200, 3, 2);
    const again = await (await fetch(`${base}/metrics`, { headers: auth })).text();
    expect(again).toMatch(/^dotslash_requests_total\{status_class="2xx"\} 41$/m);
  });
});

describe('errors and lifecycle', () => {
  it('unknown paths: 404 JSON error', async () => {
    const res = await fetch(`${base}/nope`, { headers: auth });
    expect(res.status).toBe(404);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('ADM_ERR_NOT_FOUND');
  });

  it('other methods: 405 JSON error with Allow', async () => {
    const res = await fetch(`${base}/status`, { method: 'POST', headers: auth, body: 'x' });
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toBe('GET, HEAD');
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('ADM_ERR_METHOD_NOT_ALLOWED');
  });

  it('close() is idempotent and safe before listen()', async () => {
    await admin.close();
    await admin.close();
    await expect(fetch(`${base}/healthz`)).rejects.toThrow();
    const never = new AdminServer({
      listen: '127.0.0.1:0',
      token: TOKEN,
      monitor,
      stats: () => stats.snapshot(),
      isReady: () => true,
      logger,
    });
    await never.close();
  });

  it('listen() rejects when the port is taken', async () => {
    const port = Number(new URL(base).port);
    const clash = new AdminServer({
      listen: `127.0.0.1:${port}`,
      token: TOKEN,
      monitor,
      stats: () => stats.snapshot(),
      isReady: () => true,
      logger,
    });
    await expect(clash.listen()).rejects.toThrow(/EADDRINUSE/);
    await clash.close();
  });

  it('parses HOST:PORT and [v6]:PORT', () => {
    expect(parseHostPort('127.0.0.1:9180')).toEqual({ host: '127.0.0.1', port: 9180 });
    expect(parseHostPort('[::1]:0')).toEqual({ host: '::1', port: 0 });
    expect(parseHostPort('localhost:80')).toEqual({ host: 'localhost', port: 80 });
  });
});
