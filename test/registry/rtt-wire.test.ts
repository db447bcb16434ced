// RTT-ranked discovery over the real wire: an in-process registry and three members built by
// createRescueControl on 127.0.0.x. Two rescuers with equal spare capacity, one behind a TCP
// relay that delays every byte by 100 ms each way: the origin measures both, a lookup with its
// measurements ranks the near one first (without them, the far one wins the id tie-break), and
// the origin's SOS goes to the near one. A member that accepts connections and never answers
// stays unmeasured and holds nothing up.
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { configSchema, type Config } from '../../src/config/schema.js';
import { createRescueControl, type RescueControl } from '../../src/controller/create.js';
import { RegistryClient } from '../../src/registry/client.js';
import { LOOKUP_PATH, type Candidate } from '../../src/registry/messages.js';
import { sealRequest } from '../../src/registry/signed.js';
import { RegistryService } from '../../src/registry/service.js';
import { quiet, sample } from '../controller/control-helpers.js';
import { member, registryConfig, tempDir, until } from './helpers.js';

const O = 'origin.test';
const FAR = 'a-far.test'; // sorts first: wins a tie on spare when nothing is measured
const NEAR = 'b-near.test';
const ONE_WAY_MS = 100;

let cleanup: (() => Promise<unknown> | void)[] = [];
afterEach(async () => {
  for (const c of cleanup.reverse()) await c();
  cleanup = [];
});

async function listen(server: Server, host: string): Promise<number> {
  await new Promise<void>((r) => server.listen(0, host, r));
  const sockets = new Set<Socket>();
  server.on('connection', (s: Socket) => sockets.add(s));
  cleanup.push(() => {
    for (const s of sockets) s.destroy();
    return new Promise((r) => server.close(r));
  });
  return (server.address() as AddressInfo).port;
}

/** A TCP relay to `target()` that holds every chunk, both ways, `delayMs` before passing it on: distance. */
async function distant(
  host: string,
  target: () => AddressInfo | undefined,
  delayMs: number,
): Promise<string> {
  const server = createServer((client) => {
    const to = target();
    if (!to) return client.destroy();
    const upstream = connect(to.port, to.address);
    const later = (fn: () => void) => setTimeout(fn, delayMs);
    for (const [from, to] of [
      [client, upstream],
      [upstream, client],
    ] as const) {
      from.on('data', (chunk) => later(() => to.writable && to.write(chunk)));
      from.on('end', () => later(() => to.end()));
      from.on('error', () => to.destroy());
      from.on('close', () => later(() => to.destroy()));
    }
  });
  return `http://${host}:${await listen(server, host)}`;
}

describe('RTT-ranked rescuer discovery', () => {
  it('the origin measures its members, the registry ranks the nearer of two equal-spare rescuers first, and the SOS goes there', async () => {
    const svc = new RegistryService(registryConfig(tempDir(), { lease: { min_ms: 600 } }), {
      adminToken: 'test-token',
    });
    await svc.start();
    cleanup.push(() => svc.close());
    const dir = mkdtempSync(join(tmpdir(), 'dotslash-rtt-wire-'));
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));

    const configOf = (n: string, i: number, publicUrl?: string): Config =>
      configSchema.parse({
        name: n,
        proxy: { upstreams: ['http://127.0.0.1:1'], listen: `127.0.0.${i + 2}:8080` },
        control: { listen: `127.0.0.${i + 2}:0`, ...(publicUrl ? { public_url: publicUrl } : {}) },
        identity: { key_file: join(dir, `${n}.key`) },
        state_file: join(dir, `${n}.db`),
        registry: {
          urls: [svc.url],
          lease_ms: 1_500, // renewals (and directory reads) every 500 ms
          rtt_interval_ms: 300,
          rtt_timeout_ms: 1_000,
        },
        rescue: {
          tick_ms: 50,
          lease_ms: 2_000,
          acquire_hold_ms: 300,
          release_hold_ms: 300,
          pr_zero_hold_ms: 300,
          drain_ms: 300,
          predictor: { enabled: false },
        },
      });
    const started = async (c: RescueControl) => {
      cleanup.push(() => c.close({ shutdown: false }));
      return c.start();
    };

    // The origin first, so the rescuers' first directory read has its key.
    const o = createRescueControl(configOf(O, 0), { logger: quiet });
    await started(o);
    // The far rescuer registers its relay's URL (equal capacity: equal spare to the near one).
    const farTarget: { addr?: AddressInfo } = {};
    const relayUrl = await distant('127.0.0.3', () => farTarget.addr, ONE_WAY_MS);
    const farControl = createRescueControl(configOf(FAR, 1, relayUrl), { logger: quiet });
    farTarget.addr = await started(farControl);
    const near = createRescueControl(configOf(NEAR, 2), { logger: quiet });
    await started(near);

    // A member whose control host accepts and never answers: worse spare, so never the pick.
    const sockets = new Set<Socket>();
    const mute = createServer((s) => sockets.add(s.on('error', () => undefined)));
    const mutePort = await listen(mute, '127.0.0.6');
    cleanup.push(() => sockets.forEach((s) => s.destroy()));
    const dead = member('c-mute.test');
    const deadClient = new RegistryClient({
      self: { id: dead.id, privateKey: dead.privateKey },
      registration: (({ spare: _s, ...r }) => r)(
        dead.registration({
          control_url: `http://127.0.0.6:${mutePort}`,
          lease_ms: 1_500,
          capacity: { uplink_bps: 1_000, cpu: 1, rps: 1 },
        }),
      ),
      registries: [svc.url],
    });
    await deadClient.start();
    cleanup.push(() => deadClient.close());

    // Lookups as the origin, signed with its key, apart from its registry client (whose
    // candidate cache the controller reads: the controller's own lookups must do the ranking).
    const lookup = async (rtt_ms: Record<string, number>): Promise<Candidate[]> => {
      const body = { community: 'default', origin: O, rtt_ms };
      const sealed = sealRequest(O, 'default', 'lookup', body, o.identity.privateKey);
      const res = await fetch(svc.url + LOOKUP_PATH, {
        method: 'POST',
        headers: sealed.headers,
        body: sealed.bytes,
      });
      expect(res.status).toBe(200);
      return ((await res.json()) as { candidates: Candidate[] }).candidates;
    };
    // Without measurements the tie on spare goes to the far one (by id).
    const blind = await lookup({});
    expect(blind.map((c) => c.id)).toEqual([FAR, NEAR, 'c-mute.test']);
    expect(blind[0]!.spare).toEqual(blind[1]!.spare);

    // The origin measures them in the background (directory read every 500 ms, probe round every 300 ms).
    const rtt = o.rtt!;
    await until(
      () => rtt.get(FAR) !== undefined && rtt.get(NEAR) !== undefined,
      8_000,
      'both rescuers measured',
    );
    expect(rtt.get(FAR)).toBeGreaterThanOrEqual(2 * ONE_WAY_MS - 10);
    expect(rtt.get(NEAR)).toBeLessThan(rtt.get(FAR)! / 2);

    const measured = rtt.snapshot();
    const ranked = await lookup(measured);
    expect(ranked.map((c) => c.id)).toEqual([NEAR, FAR, 'c-mute.test']);
    expect(ranked.map((c) => c.rtt_ms)).toEqual([measured[NEAR], measured[FAR], undefined]);

    // The controller's own lookups carry the measurements: a heavy origin asks the near rescuer.
    expect(o.registry!.candidates()).toEqual([]); // nothing looked up yet through the client
    farControl.controller.observe(sample('light', 0.1));
    near.controller.observe(sample('light', 0.1));
    o.controller.observe(sample('heavy', 1.2, 1000));
    await until(() => o.controller.table.list('origin', ['active']).length === 1, 8_000, 'a rescue');
    expect(o.controller.table.list('origin').map((s) => s.peer)).toEqual([NEAR]);

    // The mute member was probed (its timeout is 1 s) and stays unmeasured.
    await until(() => sockets.size > 0, 4_000, 'the mute member probed');
    await new Promise((r) => setTimeout(r, 1_200));
    expect(rtt.get('c-mute.test')).toBeUndefined();
    expect(Object.keys(rtt.snapshot()).sort()).toEqual([FAR, NEAR]);
  });
});
