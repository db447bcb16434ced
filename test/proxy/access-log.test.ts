// Access log: one JSON line per request, written to the configured file, with method, url,
// status, bytes, upstream ms, total ms and the remote address; secrets are redacted.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import pino from 'pino';
import { ACCESS_LOG_FLUSH_MS, accessLineWriter, createAccessLogger } from '../../proxy/access-log.js';
import { freePort, request, startProxy, startUpstream, type RunningProxy, type Upstream } from './helpers.js';

let up: Upstream | null = null;
let front: RunningProxy | null = null;
const dirs: string[] = [];

afterEach(async () => {
  await front?.proxy.close(500);
  await up?.close();
  front = null;
  up = null;
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tempFile(): string {
  const d = mkdtempSync(join(tmpdir(), 'dotslash-access-'));
  dirs.push(d);
  return join(d, 'logs', 'access.log');
}

function lines(file: string): Record<string, unknown>[] {
  return readFileSync(file, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

describe('access log', () => {
  it('writes one line per request with the agreed fields, flushed on close', async () => {
    const file = tempFile();
    up = await startUpstream((_req, res) => res.end('hello'));
    const accessLog = createAccessLogger({ enabled: true, output: file });
    front = await startProxy({ upstreams: [up.url] }, { accessLog });
    await request(`${front.url}/page?q=1`, { headers: { authorization: 'Bearer secret', cookie: 'sid=1' } });
    await request(`${front.url}/other`, { method: 'HEAD' });
    await front.proxy.close(500);
    const got = lines(file);
    expect(got).toHaveLength(2);
    expect(got[0]).toMatchObject({ method: 'GET', url: '/page?q=1', status: 200, remote: '127.0.0.1' });
    expect(got[0]!.bytes).toBeGreaterThan(5);
    expect(typeof got[0]!.upstream_ms).toBe('number');
    expect(got[0]!.total_ms as number).toBeGreaterThanOrEqual(got[0]!.upstream_ms as number);
    expect(got[1]).toMatchObject({ method: 'HEAD', url: '/other', status: 200 });
    expect(readFileSync(file, 'utf8')).not.toContain('secret');
  });

  it('a line reaches the file within ACCESS_LOG_FLUSH_MS at low traffic, without a close', async () => {
    const file = tempFile();
    up = await startUpstream((_req, res) => res.end('hello'));
    const accessLog = createAccessLogger({ enabled: true, output: file });
    front = await startProxy({ upstreams: [up.url] }, { accessLog });
    await request(`${front.url}/one`);
    const read = (): string => {
      try {
        return readFileSync(file, 'utf8');
      } catch {
        return '';
      }
    };
    const end = Date.now() + ACCESS_LOG_FLUSH_MS + 1_500;
    while (!read().includes('"/one"') && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
    expect(lines(file).map((l) => l.url)).toEqual(['/one']);
    // And again after the flush timer stopped for a whole idle period.
    await new Promise((r) => setTimeout(r, 2 * ACCESS_LOG_FLUSH_MS + 200));
    await request(`${front.url}/two`);
    const end2 = Date.now() + ACCESS_LOG_FLUSH_MS + 1_500;
    while (!read().includes('"/two"') && Date.now() < end2) await new Promise((r) => setTimeout(r, 50));
    expect(lines(file).map((l) => l.url)).toEqual(['/one', '/two']);
  });

  it('logs our own errors with their code and no upstream time', async () => {
    const file = tempFile();
    const accessLog = createAccessLogger({ enabled: true, output: file });
    front = await startProxy({ upstreams: [`http://127.0.0.1:${await freePort()}`] }, { accessLog });
    await request(`${front.url}/down`);
    await front.proxy.close(500);
    const [line] = lines(file);
    expect(line).toMatchObject({
      url: '/down',
      status: 502,
      error: 'PRX_ERR_UPSTREAM_CONNECT',
      upstream_ms: null,
    });
  });

  it('redacts Authorization, Cookie and Set-Cookie if headers are ever logged', async () => {
    const file = tempFile();
    const log = createAccessLogger({ enabled: true, output: file })!;
    log.info({
      req: { headers: { authorization: 'Bearer x', cookie: 'a=b', host: 'h' } },
      res: { headers: { 'set-cookie': 's=1' } },
    });
    await new Promise<void>((r) => log.flush(() => r()));
    const [line] = lines(file) as [
      { req: { headers: Record<string, string> }; res: { headers: Record<string, string> } },
    ];
    expect(line.req.headers).toEqual({ authorization: '[redacted]', cookie: '[redacted]', host: 'h' });
    expect(line.res.headers['set-cookie']).toBe('[redacted]');
  });

  it('the pre-formatted line equals what pino writes for the same fields, URLs escaped', async () => {
    const fastFile = tempFile();
    const plainFile = fastFile.replace('access.log', 'plain.log');
    const fast = createAccessLogger({ enabled: true, output: fastFile })!;
    const plain = pino(
      { base: { log: 'access' } },
      pino.destination({ dest: plainFile, sync: true, mkdir: true }),
    );
    const url = '/a"b\\c?d=\u00e9';
    for (const log of [fast, plain]) {
      accessLineWriter(log)!('127.0.0.1', 'GET', url, 200, 10, 1.5, 2.25, 'PRX_ERR_INTERNAL', true);
      accessLineWriter(log)!(undefined, 'POST', '/', 502, 0, null, 3, null, false);
      await new Promise<void>((r) => log.flush(() => r()));
    }
    const strip = (l: Record<string, unknown>): Record<string, unknown> => ({ ...l, time: 0 });
    const a = lines(fastFile).map(strip);
    expect(a).toEqual(lines(plainFile).map(strip));
    expect(a[0]).toMatchObject({ level: 30, log: 'access', url, error: 'PRX_ERR_INTERNAL', aborted: true });
    expect(a[1]).toMatchObject({ upstream_ms: null });
    expect(a[1]).not.toHaveProperty('remote');
    expect(a[1]).not.toHaveProperty('error');
  });

  it('a logger above info level writes nothing', () => {
    expect(accessLineWriter(pino({ level: 'warn' }))).toBeNull();
    expect(accessLineWriter(null)).toBeNull();
  });

  it('is null when disabled', () => {
    expect(createAccessLogger({ enabled: false, output: 'stdout' })).toBeNull();
  });
});
