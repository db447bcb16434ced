// Two daemons in-process, wired end to end: the origin's controller (fed scripted samples) gets a
// rescue session from the rescuer over the control port, the origin front answers 302 to
// vhN.<rescuer>, and the rescuer front serves that name from the origin's site.
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { generateKeyPair, writePrivateKey } from '../../rescue-protocol/index.js';
import { deepFreeze } from '../../src/config/load.js';
import { configSchema, type Config } from '../../src/config/schema.js';
import { Daemon } from '../../src/daemon.js';
import { quiet, sample } from './control-helpers.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function get(
  port: number,
  host: string,
  path: string,
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, headers: { host } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

async function waitFor(what: string, cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const t0 = performance.now();
  while (!cond()) {
    if (performance.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('origin and rescuer daemons', () => {
  it('heavy origin -> SOS -> 302 to vh1.rescuer -> the rescuer front serves the origin site', async () => {
    const site = http.createServer((req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'public, max-age=60' });
      res.end(`origin page ${req.url}`);
    });
    await new Promise<void>((r) => site.listen(0, '127.0.0.1', r));
    cleanups.push(() => new Promise<void>((r) => site.close(() => r())));
    const upstream = `http://127.0.0.1:${(site.address() as AddressInfo).port}`;

    const dir = mkdtempSync(join(tmpdir(), 'dotslash-e2e-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const keys = { 'origin.test': generateKeyPair(), 'rescuer.test': generateKeyPair() };
    for (const [n, kp] of Object.entries(keys)) writePrivateKey(join(dir, `${n}.key`), kp.privateKeyPem);
    const controlUrl: Record<string, string> = {};
    const configOf = (
      name: 'origin.test' | 'rescuer.test',
      peer: 'origin.test' | 'rescuer.test',
      listen = '127.0.0.1:0',
    ): Config =>
      deepFreeze(
        configSchema.parse({
          name,
          proxy: { listen, upstreams: [upstream], access_log: { enabled: false } },
          admin: { listen: '127.0.0.1:0' },
          control: { listen: '127.0.0.1:0' },
          identity: { key_file: join(dir, `${name}.key`) },
          state_file: join(dir, `${name}.db`),
          // The real monitor is kept quiet; the test scripts the samples.
          monitor: { interval_ms: 600_000 },
          peers: [
            {
              id: peer,
              control_url: controlUrl[peer] ?? 'http://127.0.0.1:9',
              public_key: keys[peer].publicKey,
            },
          ],
          rescue: { mode: 'on', tick_ms: 50, lease_ms: 3000, predictor: { enabled: false } },
        }),
      );
    const origin = new Daemon(configOf('origin.test', 'rescuer.test'), { logger: quiet, adminToken: 't' });
    const rescuer = new Daemon(configOf('rescuer.test', 'origin.test'), { logger: quiet, adminToken: 't' });
    cleanups.push(() => origin.shutdown('test'));
    cleanups.push(() => rescuer.shutdown('test'));
    const oa = await origin.start();
    const ra = await rescuer.start();
    controlUrl['origin.test'] = `http://127.0.0.1:${oa.control!.port}`;
    controlUrl['rescuer.test'] = `http://127.0.0.1:${ra.control!.port}`;
    // What a reload does once the peers' control URLs are known (the daemon binds the front port in).
    origin.rescue!.update(configOf('origin.test', 'rescuer.test', `127.0.0.1:${oa.front.port}`));
    rescuer.rescue!.update(configOf('rescuer.test', 'origin.test', `127.0.0.1:${ra.front.port}`));

    rescuer.rescue!.controller.observe(sample('light', 0.1));
    origin.rescue!.controller.observe(sample('heavy', 2.0, 1000));
    await waitFor(
      'Pr 1 at the origin',
      () => origin.rescue!.controller.pr > 0.4 && origin.rescue!.controller.status().sessions.length > 0,
    );
    const session = rescuer.rescue!.controller.status().sessions[0]!;
    expect(session).toMatchObject({ role: 'rescuer', peer: 'origin.test', vhost: 'vh1.rescuer.test' });
    // The vhost URL carries the rescuer's bound front port (site.public_url default).
    expect(session.vhost_url).toBe(`http://vh1.rescuer.test:${ra.front.port}`);

    // Some requests at the origin front are redirected to the rescuer's virtual host.
    let location: string | undefined;
    for (let i = 0; i < 50 && location === undefined; i++) {
      const r = await get(oa.front.port, 'origin.test', `/page-${i}`);
      if (r.status === 302) location = r.headers.location;
      else expect(r.body).toBe(`origin page /page-${i}`);
    }
    expect(location).toMatch(new RegExp(`^http://vh1\\.rescuer\\.test:${ra.front.port}/page-\\d+$`));

    // The rescuer front serves that name (and the origin's own name) from the origin's site.
    const path = new URL(location!).pathname;
    const viaVhost = await get(ra.front.port, `vh1.rescuer.test:${ra.front.port}`, path);
    expect(viaVhost).toMatchObject({ status: 200, body: `origin page ${path}` });
    const viaDns = await get(ra.front.port, 'origin.test', '/dns-page');
    expect(viaDns).toMatchObject({ status: 200, body: 'origin page /dns-page' });

    // Both sides report the rescue on /metrics.
    const metrics = async (port: number): Promise<string> =>
      (await fetch(`http://127.0.0.1:${port}/metrics`, { headers: { authorization: 'Bearer t' } })).text();
    const value = (text: string, series: string): number => {
      const line = text.split('\n').find((l) => l.startsWith(series + ' '));
      expect(line, series).toBeDefined();
      return Number(line!.slice(series.length + 1));
    };
    const om = await metrics(oa.admin.port);
    expect(value(om, 'dotslash_redirects_total')).toBeGreaterThanOrEqual(1);
    expect(value(om, 'dotslash_rescue_state{state="sos"}')).toBe(1);
    expect(value(om, 'dotslash_rescue_mode{mode="on"}')).toBe(1);
    expect(value(om, 'dotslash_redirect_probability')).toBeGreaterThan(0);
    expect(
      value(om, `dotslash_rescue_session_rate{role="origin",peer="rescuer.test",session="${session.id}"}`),
    ).toBe(session.rate);
    const rm = await metrics(ra.admin.port);
    expect(value(rm, 'dotslash_rescue_state{state="rescue"}')).toBe(1);
    expect(value(rm, 'dotslash_rescue_cache_requests_total{result="miss"}')).toBeGreaterThanOrEqual(2);
    expect(value(rm, 'dotslash_rescue_origin_fetches_total')).toBeGreaterThanOrEqual(2);
    expect(value(rm, 'dotslash_rescue_cache_bytes{kind="max"}')).toBe(256 * 1024 * 1024);
    expect(value(rm, 'dotslash_rescue_sessions{role="rescuer",state="active"}')).toBe(1);
  });
});
