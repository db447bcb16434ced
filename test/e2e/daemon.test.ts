// The daemon as a separate process started from a config file: SIGHUP reloads a valid change
// (new upstream), keeps the running config on a broken file (and logs why), and SIGTERM
// drains gracefully (/readyz 503, the in-flight request completes, exit 0).
import { mkdtempSync, writeFileSync } from 'node:fs';
import type { ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { cleanEnv, killAll, listenersOf, runCli, sleep, startUpstream, until } from './helpers.js';
import type { CliProcess, TestUpstream } from './helpers.js';

let upstreams: TestUpstream[] = [];
afterEach(async () => {
  killAll();
  await Promise.all(upstreams.map((u) => u.close()));
  upstreams = [];
});

const TOKEN = 'e2e-admin-token';

function configText(upstream: string, extra: string[] = [], drainMs = 10_000): string {
  return [
    'proxy:',
    '  listen: 127.0.0.1:0',
    '  upstreams:',
    `    - ${upstream}`,
    '  timeouts:',
    `    drain_ms: ${drainMs}`,
    'admin:',
    '  listen: 127.0.0.1:0',
    ...extra,
    '',
  ].join('\n');
}

async function startDaemon(
  text: string,
): Promise<{ p: CliProcess; file: string; front: string; admin: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'dotslash-e2e-'));
  const file = join(dir, 'dotslash.yaml');
  writeFileSync(file, text);
  const p = runCli(['start', '-c', file], { cwd: dir, env: cleanEnv({ DOTSLASH_ADMIN_TOKEN: TOKEN }) });
  const { front, admin } = await listenersOf(p);
  return { p, file, front, admin };
}

const body = async (url: string): Promise<string> => (await fetch(url)).text();

describe('SIGHUP reload', { timeout: 60_000 }, () => {
  it('a valid change switches the upstream; a broken file is logged and the old config kept', async () => {
    const a = await startUpstream('A');
    const b = await startUpstream('B');
    upstreams.push(a, b);
    const { p, file, front } = await startDaemon(configText(a.url));
    expect(await body(front)).toBe('A');

    writeFileSync(file, configText(b.url));
    p.kill('SIGHUP');
    await p.waitForStderr(/configuration reloaded/);
    await until(async () => (await body(front)) === 'B', 5000, 'requests to reach upstream B');

    // Broken: an unknown key on line 3. The daemon logs file:line:column and keeps serving B.
    writeFileSync(file, ['proxy:', `  upstreams: [${a.url}]`, '  upstream_timeout: 5', ''].join('\n'));
    p.kill('SIGHUP');
    const logged = await p.waitForStderr(/reload failed, keeping the running configuration: ([^"]*)/);
    expect(logged[1]).toContain(`${file}:3:3: proxy.upstream_timeout: unknown key`);
    expect(await body(front)).toBe('B');
    expect(await body(front)).toBe('B');

    // Still alive and still reloadable after the failure.
    writeFileSync(file, configText(a.url));
    p.kill('SIGHUP');
    await until(async () => (await body(front)) === 'A', 5000, 'requests to reach upstream A again');

    p.kill('SIGTERM');
    expect(await p.exited).toBe(0);
  });

  it('a changed listener address is logged as needing a restart, the rest applies', async () => {
    const a = await startUpstream('A');
    const b = await startUpstream('B');
    upstreams.push(a, b);
    const { p, file, front } = await startDaemon(configText(a.url));
    writeFileSync(file, configText(b.url).replace('  listen: 127.0.0.1:0', '  listen: 127.0.0.1:1'));
    p.kill('SIGHUP');
    await p.waitForStderr(/changed keys need a restart to apply: proxy\.listen/);
    await until(async () => (await body(front)) === 'B', 5000, 'requests to reach upstream B');
    p.kill('SIGTERM');
    expect(await p.exited).toBe(0);
  });
});

describe('graceful shutdown', { timeout: 60_000 }, () => {
  it('SIGTERM during a slow request: /readyz turns 503, the request completes, exit 0', async () => {
    let release: (() => void) | undefined;
    let onArrived: () => void = () => {};
    const arrived = new Promise<void>((r) => (onArrived = r));
    const slow = await startUpstream('slow', (_req, res: ServerResponse) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('first half, ');
      release = () => res.end('second half');
      onArrived();
    });
    upstreams.push(slow);
    const { p, front, admin } = await startDaemon(configText(slow.url));
    expect((await fetch(`${admin}/readyz`)).status).toBe(200);

    const inflight = fetch(`${front}/slow`).then(async (r) => ({ status: r.status, text: await r.text() }));
    await arrived;
    p.kill('SIGTERM');
    // A duplicate delivery at once (Ctrl-C reaches the whole process group, npm may forward
    // it again) must not cut the drain short.
    p.kill('SIGINT');
    await until(async () => (await fetch(`${admin}/readyz`)).status === 503, 5000, '/readyz to turn 503');
    await p.waitForStderr(/shutting down: draining in-flight requests/);

    release!();
    expect(await inflight).toEqual({ status: 200, text: 'first half, second half' });
    expect(await p.exited).toBe(0);
    expect(p.out.stderr).toContain('dotslash stopped');
  });

  it('a second signal while draining forces the exit (code 2)', async () => {
    const stuck = await startUpstream('stuck', (_req, res) => {
      res.writeHead(200);
      res.write('never finishes');
    });
    upstreams.push(stuck);
    const { p, front } = await startDaemon(configText(stuck.url, [], 60_000));
    const controller = new AbortController();
    const inflight = fetch(front, { signal: controller.signal }).catch(() => null);
    await until(() => stuck.requests.length === 1, 5000, 'the request to reach the upstream');
    p.kill('SIGTERM');
    await p.waitForStderr(/shutting down/);
    await sleep(300); // a repeat within 200 ms counts as the same Ctrl-C
    p.kill('SIGINT');
    expect(await p.exited).toBe(2);
    expect(p.out.stderr).toContain('second signal while draining: forcing exit');
    controller.abort();
    await inflight;
  });
});
