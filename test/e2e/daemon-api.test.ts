// The Daemon class in-process (real sockets on 127.0.0.1:0): reload() results, a reload the
// monitor refuses leaves everything unchanged, start() failures close what was opened.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfigFile, configFromFlags } from '../../src/config/load.js';
import { Daemon, ListenError } from '../../src/daemon.js';
import { startUpstream } from './helpers.js';
import type { TestUpstream } from './helpers.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A logger that keeps its lines for assertions. */
function memoryLogger(): { logger: pino.Logger; lines: () => Record<string, unknown>[] } {
  const chunks: string[] = [];
  const logger = pino({ level: 'info' }, { write: (s: string) => chunks.push(s) });
  return { logger, lines: () => chunks.map((c) => JSON.parse(c) as Record<string, unknown>) };
}

function yaml(upstream: string, extra: string[] = []): string {
  return [
    'proxy:',
    '  listen: 127.0.0.1:0',
    `  upstreams: [${upstream}]`,
    '  access_log: { enabled: false }',
    'admin:',
    '  listen: 127.0.0.1:0',
    ...extra,
    '',
  ].join('\n');
}

async function upstream(name: string): Promise<TestUpstream> {
  const u = await startUpstream(name);
  cleanups.push(() => u.close());
  return u;
}

describe('Daemon', () => {
  it('reload(): applies a valid file, reports restart-only keys, refuses an invalid one', async () => {
    const a = await upstream('A');
    const b = await upstream('B');
    const file = join(mkdtempSync(join(tmpdir(), 'dotslash-daemon-')), 'dotslash.yaml');
    writeFileSync(file, yaml(a.url));
    const { logger, lines } = memoryLogger();
    const daemon = new Daemon(loadConfigFile(file), { logger, configPath: file, adminToken: 't' });
    cleanups.push(() => daemon.shutdown('test'));
    const { front } = await daemon.start();
    const url = `http://127.0.0.1:${front.port}/`;
    expect(await (await fetch(url)).text()).toBe('A');

    writeFileSync(file, yaml(b.url, ['log:', '  level: warn']));
    expect(await daemon.reload()).toEqual({ ok: true, restartNeeded: [] });
    expect(daemon.config.proxy.upstreams).toEqual([b.url]);
    expect(daemon.config.log.level).toBe('warn');
    expect(logger.level).toBe('warn');
    expect(Object.isFrozen(daemon.config.proxy)).toBe(true);
    expect(await (await fetch(url)).text()).toBe('B');

    writeFileSync(
      file,
      yaml(a.url).replace('  listen: 127.0.0.1:0\n  upstreams', '  listen: 127.0.0.1:1\n  upstreams'),
    );
    const r = await daemon.reload();
    expect(r).toEqual({ ok: true, restartNeeded: ['proxy.listen'] });
    expect(daemon.config.proxy.listen).toBe('127.0.0.1:0'); // the running value stays

    writeFileSync(file, 'proxy:\n  upstreams: oops\n');
    const bad = await daemon.reload();
    expect(bad.ok).toBe(false);
    expect(!bad.ok && bad.error).toContain(`${file}:2:14: proxy.upstreams: expected array, received string`);
    expect(daemon.config.proxy.upstreams).toEqual([a.url]);
    expect(
      lines().some((l) => String(l.msg).startsWith('reload failed, keeping the running configuration')),
    ).toBe(true);
  });

  it('a reload the monitor refuses (unknown interface) changes nothing', async () => {
    const a = await upstream('A');
    const b = await upstream('B');
    const file = join(mkdtempSync(join(tmpdir(), 'dotslash-daemon-')), 'dotslash.yaml');
    writeFileSync(file, yaml(a.url));
    const { logger } = memoryLogger();
    const daemon = new Daemon(loadConfigFile(file), { logger, configPath: file, adminToken: 't' });
    cleanups.push(() => daemon.shutdown('test'));
    const { front } = await daemon.start();

    writeFileSync(file, yaml(b.url, ['monitor:', '  net_source: netdev', '  interface: no-such-if0']));
    const r = await daemon.reload();
    expect(r.ok).toBe(false);
    expect(daemon.config.proxy.upstreams).toEqual([a.url]);
    expect(daemon.config.monitor.net_source).toBe('proxy');
    expect(await (await fetch(`http://127.0.0.1:${front.port}/`)).text()).toBe('A');
  });

  it('start() failing on the admin port closes the front listener it had opened', async () => {
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    cleanups.push(() => new Promise((r) => blocker.close(() => r())));
    const taken = `127.0.0.1:${(blocker.address() as AddressInfo).port}`;
    // Reserve a free port for the front, release it, and ask the daemon to use it.
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const frontPort = (probe.address() as AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r()));

    const config = configFromFlags({
      listen: `127.0.0.1:${frontPort}`,
      upstreams: ['http://127.0.0.1:1'],
      admin: taken,
    });
    const daemon = new Daemon(config, { logger: pino({ level: 'silent' }), adminToken: 't' });
    const err = await daemon.start().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ListenError);
    expect((err as ListenError).message).toBe(
      `cannot listen on ${taken} (admin listener): address already in use [EADDRINUSE]`,
    );
    // The front port is free again: a fresh server can bind it.
    const again = createServer();
    await new Promise<void>((resolve, reject) => {
      again.once('error', reject);
      again.listen(frontPort, '127.0.0.1', resolve);
    });
    await new Promise<void>((r) => again.close(() => r()));
    await daemon.shutdown('test'); // safe after a failed start
  });
});
