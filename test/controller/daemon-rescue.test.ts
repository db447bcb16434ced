// The daemon with rescue on: the control listener opens beside the front and admin listeners,
// /status carries the controller's status, a reload applies rescue settings, shutdown closes it.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { configSchema } from '../../src/config/schema.js';
import { deepFreeze } from '../../src/config/load.js';
import { Daemon } from '../../src/daemon.js';
import { quiet } from './control-helpers.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function config(dir: string, rescue: Record<string, unknown>) {
  return deepFreeze(
    configSchema.parse({
      name: 'member.test',
      proxy: { listen: '127.0.0.1:0', upstreams: ['http://127.0.0.1:1'], access_log: { enabled: false } },
      admin: { listen: '127.0.0.1:0' },
      control: { listen: '127.0.0.7:0' },
      identity: { key_file: join(dir, 'member.key') },
      state_file: join(dir, 'state.db'),
      rescue,
    }),
  );
}

describe('Daemon with rescue', () => {
  it('opens the control listener, reports the controller in /status, and closes it on shutdown', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dotslash-daemon-rescue-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const daemon = new Daemon(config(dir, { mode: 'observe' }), { logger: quiet, adminToken: 't' });
    cleanups.push(() => daemon.shutdown('test'));
    const addrs = await daemon.start();
    expect(addrs.control?.address).toBe('127.0.0.7');
    const health = await fetch(`http://127.0.0.7:${addrs.control!.port}/v1/health`);
    expect(await health.json()).toMatchObject({ ok: true, id: 'member.test' });
    const status = (await (
      await fetch(`http://127.0.0.1:${addrs.admin.port}/status`, { headers: { authorization: 'Bearer t' } })
    ).json()) as { info: { rescue: { mode: string; state: string; sessions: unknown[] } } };
    expect(status.info.rescue).toMatchObject({ mode: 'observe', state: 'normal', sessions: [] });
    // The admin kill switch (issue 3 item 3): token required, bad bodies refused, mode applied.
    const modeUrl = `http://127.0.0.1:${addrs.admin.port}/rescue/mode`;
    const post = (body: string, token = 't') =>
      fetch(modeUrl, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body,
      });
    expect((await post('{"mode":"off"}', 'wrong')).status).toBe(401);
    expect(daemon.rescue!.controller.mode).toBe('observe');
    const bad = await post('{"mode":"maybe"}');
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { code: string } }).error.code).toBe('ADM_ERR_BAD_BODY');
    expect((await post('not json')).status).toBe(400);
    expect((await post('x'.repeat(5_000))).status).toBe(400);
    expect(daemon.rescue!.controller.mode).toBe('observe');
    const switched = await post('{"mode":"off"}');
    expect(switched.status).toBe(200);
    expect(await switched.json()).toEqual({ mode: 'off', state: 'normal' });
    expect(daemon.rescue!.controller.mode).toBe('off');
    const read = await fetch(modeUrl, { headers: { authorization: 'Bearer t' } });
    expect(await read.json()).toEqual({ mode: 'off', state: 'normal' });
    const st2 = (await (
      await fetch(`http://127.0.0.1:${addrs.admin.port}/status`, { headers: { authorization: 'Bearer t' } })
    ).json()) as { state: string; rescueMode: string };
    expect(st2).toMatchObject({ state: 'normal', rescueMode: 'off' });
    await daemon.shutdown('test');
    await expect(fetch(`http://127.0.0.7:${addrs.control!.port}/v1/health`)).rejects.toThrow();
  });

  it('does not open a control listener when rescue is off', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dotslash-daemon-rescue-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const daemon = new Daemon(config(dir, { mode: 'off' }), { logger: quiet, adminToken: 't' });
    cleanups.push(() => daemon.shutdown('test'));
    const addrs = await daemon.start();
    expect(addrs.control).toBeUndefined();
    expect(daemon.rescue).toBeUndefined();
    const res = await fetch(`http://127.0.0.1:${addrs.admin.port}/rescue/mode`, {
      method: 'POST',
      headers: { authorization: 'Bearer t' },
      body: '{"mode":"on"}',
    });
    expect(res.status).toBe(409);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('ADM_ERR_RESCUE_OFF');
  });
});
