// Members over the real wire: createRescueControl (ControlServer + ControlClient + controller +
// state file) for 3 in-process members on 127.0.0.x, ticking on real timers with short leases.
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { generateKeyPair, RescueError, writePrivateKey } from '../../rescue-protocol/index.js';
import { configSchema, type Config } from '../../src/config/schema.js';
import { createRescueControl, type RescueControl } from '../../src/controller/create.js';
import type { RedirectSnapshot } from '../../proxy/redirect/index.js';
import { quiet, sample } from './control-helpers.js';

const NAMES = ['origin.test', 'a.test', 'b.test'] as const;
type Name = (typeof NAMES)[number];
const LEASE = 900;

interface Member {
  readonly name: Name;
  readonly control: RescueControl;
  readonly redirects: RedirectSnapshot[];
  url: string;
}

let cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanup.reverse()) await c();
  cleanup = [];
});

async function waitFor(what: string, cond: () => boolean, timeoutMs = 5000): Promise<number> {
  const t0 = performance.now();
  while (!cond()) {
    if (performance.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return performance.now() - t0;
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * origin.test asks a.test then b.test; a.test and b.test know origin.test. Keys are made first
 * so every config can carry its peers' public keys; control URLs are filled in after listen()
 * (port 0) through RescueControl.update, as a config reload would.
 */
async function community(
  modes: Partial<Record<Name, 'on' | 'observe' | 'off'>> = {},
): Promise<Record<Name, Member>> {
  const dir = mkdtempSync(join(tmpdir(), 'dotslash-members-'));
  cleanup.push(async () => rmSync(dir, { recursive: true, force: true }));
  const pub = {} as Record<Name, string>;
  for (const n of NAMES) {
    const kp = generateKeyPair();
    pub[n] = kp.publicKey;
    writePrivateKey(join(dir, `${n}.key`), kp.privateKeyPem);
  }
  const peersOf: Record<Name, Name[]> = {
    'origin.test': ['a.test', 'b.test'],
    'a.test': ['origin.test'],
    'b.test': ['origin.test'],
  };
  const urls: Partial<Record<Name, string>> = {};
  const configOf = (n: Name, i: number): Config =>
    configSchema.parse({
      name: n,
      proxy: { upstreams: ['http://127.0.0.1:1'], listen: `127.0.0.${i + 2}:8080` },
      control: { listen: `127.0.0.${i + 2}:0` },
      identity: { key_file: join(dir, `${n}.key`) },
      state_file: join(dir, `${n}.db`),
      peers: peersOf[n].map((p) => ({
        id: p,
        control_url: urls[p] ?? 'http://127.0.0.1:9',
        public_key: pub[p],
      })),
      rescue: {
        mode: modes[n] ?? 'on',
        tick_ms: 50,
        lease_ms: LEASE,
        acquire_hold_ms: 300,
        release_hold_ms: 300,
        pr_zero_hold_ms: 300,
        decline_hold_ms: 2000,
        drain_ms: 400,
        predictor: { enabled: false },
      },
    });
  const out = {} as Record<Name, Member>;
  for (const [i, n] of NAMES.entries()) {
    const redirects: RedirectSnapshot[] = [];
    const control = createRescueControl(configOf(n, i), {
      logger: quiet,
      publishRedirect: (s) => redirects.push(s),
    });
    cleanup.push(() => control.close({ shutdown: false }));
    const addr = await control.start();
    urls[n] = `http://${addr.address}:${addr.port}`;
    out[n] = { name: n, control, redirects, url: urls[n] };
  }
  for (const [i, n] of NAMES.entries()) out[n].control.update(configOf(n, i));
  return out;
}

const activeWith = (m: Member, role: 'origin' | 'rescuer', peer: string) =>
  m.control.controller.table.list(role, ['active']).find((s) => s.peer === peer);

describe('members over the wire', () => {
  it('SOS accepted -> sessions on both sides -> KEEPALIVE renews -> a rescuer that stops answering is dropped within the lease', async () => {
    const m = await community();
    const o = m['origin.test'];
    const a = m['a.test'];
    a.control.controller.observe(sample('light', 0.1));
    m['b.test'].control.controller.observe(sample('heavy', 0.95)); // b declines: only a rescues
    o.control.controller.observe(sample('heavy', 1.2, 1000));
    await waitFor(
      'a session on both sides',
      () => !!activeWith(o, 'origin', 'a.test') && !!activeWith(a, 'rescuer', 'origin.test'),
    );
    const os = activeWith(o, 'origin', 'a.test')!;
    expect(os.vhost).toBe('vh1.a.test');
    expect(os.vhostUrl).toBe('http://vh1.a.test:8080');
    expect(o.control.controller.state).toBe('sos');
    expect(a.control.controller.state).toBe('rescue');
    await waitFor('Pr > 0 published', () => (o.redirects.at(-1)?.pr ?? 0) > 0);
    expect(o.redirects.at(-1)!.sessions.map((s) => s.vhost)).toContain('vh1.a.test');

    // Two leases later both sides still hold the session: KEEPALIVEs renewed it.
    await sleep(2 * LEASE);
    expect(os.state).toBe('active');
    expect(activeWith(a, 'rescuer', 'origin.test')?.state).toBe('active');

    // a.test crashes (no SHUTDOWN): its listener is gone.
    await a.control.close({ shutdown: false });
    const took = await waitFor('the origin to drop a.test', () => os.state === 'closed', 3 * LEASE);
    // Last heard before the crash, so the lease lapses at most LEASE after it (plus a tick; slack for a loaded machine).
    expect(took).toBeLessThan(2 * LEASE);
    const row = o.control.db.sessions().find((r) => r.key === os.key)!;
    expect(row.reason).toMatch(/lease lapsed/);
    expect(o.redirects.at(-1)!.sessions.map((s) => s.vhost)).not.toContain('vh1.a.test');
  });

  it('SHUTDOWN from the origin (light) drains the rescuer; SHUTDOWN from a heavy rescuer closes the origin side', async () => {
    const m = await community();
    const o = m['origin.test'];
    const a = m['a.test'];
    const b = m['b.test'];
    a.control.controller.observe(sample('light', 0.1));
    b.control.controller.observe(sample('light', 0.1));
    o.control.controller.observe(sample('heavy', 1.2, 1000));
    await waitFor('two rescuers', () => o.control.controller.table.list('origin', ['active']).length === 2);
    // b.test gets heavy: lowers Rr, then (still heavy after the hold) shuts its rescue down.
    const ob = activeWith(o, 'origin', 'b.test')!;
    const granted = ob.rate;
    b.control.controller.observe(sample('heavy', 1.0));
    await waitFor('RATE from b.test', () => ob.rate < granted);
    await waitFor('SHUTDOWN from b.test', () => ob.state === 'closed');
    expect(o.control.db.sessions().find((r) => r.key === ob.key)!.reason).toMatch(
      /^SHUTDOWN from b\.test: heavy/,
    );
    expect(b.control.controller.table.list('rescuer')[0]?.state ?? 'closed').toMatch(/draining|closed/);

    // The origin turns light: Pr falls to 0, holds pass, it releases a.test, which drains then closes.
    b.control.controller.observe(sample('heavy', 1.0));
    o.control.controller.observe(sample('light', 0.1, 100));
    const as = activeWith(a, 'rescuer', 'origin.test')!;
    await waitFor('a.test draining', () => as.state === 'draining');
    expect(a.control.db.history(as.key).at(-1)!.reason).toMatch(/^SHUTDOWN from origin\.test: light: Pr 0/);
    await waitFor('origin back to normal', () => o.control.controller.state === 'normal');
    await waitFor('a.test drain over', () => as.state === 'closed', 2000);
    expect(a.control.controller.state).toBe('normal');
  });

  it('observe mode sends nothing: no SOS reaches anyone, Pr stays 0', async () => {
    const m = await community({ 'origin.test': 'observe' });
    const o = m['origin.test'];
    const decisions: { action: string; acted: boolean }[] = [];
    o.control.controller.on('decision', (d: { action: string; acted: boolean }) => decisions.push(d));
    m['a.test'].control.controller.observe(sample('light', 0.1));
    o.control.controller.observe(sample('heavy', 1.2, 1000));
    await sleep(600);
    expect(decisions.length).toBeGreaterThan(0);
    expect(decisions.every((d) => !d.acted)).toBe(true);
    expect(o.control.db.sessions()).toEqual([]);
    expect(m['a.test'].control.db.sessions()).toEqual([]);
    expect(o.redirects.every((s) => s.pr === 0)).toBe(true);
  });

  it('refusals over the wire: RATE from a non-rescuer, KEEPALIVE for an unknown session or from a stranger', async () => {
    const m = await community();
    const o = m['origin.test'];
    const a = m['a.test'];
    m['b.test'].control.controller.observe(sample('heavy', 0.95));
    a.control.controller.observe(sample('light', 0.1));
    o.control.controller.observe(sample('heavy', 1.2, 1000));
    await waitFor('a session', () => !!activeWith(a, 'rescuer', 'origin.test'));
    const id = activeWith(a, 'rescuer', 'origin.test')!.id!;
    const rate = activeWith(a, 'rescuer', 'origin.test')!.rate;
    const peerA = { id: 'a.test', control_url: a.url, public_key: a.control.publicKey };
    const peerO = { id: 'origin.test', control_url: o.url, public_key: o.control.publicKey };
    const refused = async (p: Promise<unknown>) => {
      const err = await p.then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(RescueError);
      expect((err as RescueError).remote?.authenticated).toBe(true);
      return (err as RescueError).code;
    };
    // The origin sends RATE to its rescuer: only a rescuer sends RATE.
    expect(await refused(o.control.client.send(peerA, 'RATE', { session: id, rate: 1 }))).toBe(
      'RSC_ERR_NOT_A_PARTY',
    );
    expect(activeWith(a, 'rescuer', 'origin.test')!.rate).toBe(rate);
    expect(await refused(o.control.client.send(peerA, 'KEEPALIVE', { session: 'nope' }))).toBe(
      'RSC_ERR_UNKNOWN_SESSION',
    );
    // b.test is known to the origin but is no party to a.test's session.
    expect(await refused(m['b.test'].control.client.send(peerO, 'KEEPALIVE', { session: id }))).toBe(
      'RSC_ERR_NOT_A_PARTY',
    );
  });

  it('creates the member key (0600) and the state file on first start', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dotslash-first-'));
    cleanup.push(async () => rmSync(dir, { recursive: true, force: true }));
    const config = configSchema.parse({
      name: 'fresh.test',
      proxy: { upstreams: ['http://127.0.0.1:1'] },
      control: { listen: '127.0.0.5:0' },
      identity: { key_file: join(dir, 'keys', 'member.key') },
      state_file: join(dir, 'state', 'state.db'),
    });
    const c = createRescueControl(config, { logger: quiet });
    cleanup.push(() => c.close());
    await c.start();
    expect(statSync(join(dir, 'keys', 'member.key')).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, 'state')).mode & 0o777).toBe(0o700);
    expect(c.publicKey).toMatch(/^ed25519:[A-Za-z0-9_-]{43}$/);
    expect(c.controller.mode).toBe('off'); // no peers, no mode: off
  });
});
