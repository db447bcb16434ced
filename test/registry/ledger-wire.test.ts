// Flood insurance over the real wire (ControlServer/ControlClient, signed envelopes on 127.0.0.x):
// the SOS token and both receipt exchanges survive the protocol's schemas and signatures.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { generateKeyPair, writePrivateKey } from '../../rescue-protocol/index.js';
import { configSchema, type Config } from '../../src/config/schema.js';
import { createRescueControl, type RescueControl } from '../../src/controller/create.js';
import {
  DEFAULT_LEDGER_POLICY,
  Ledger,
  MemberLedger,
  type LedgerRecord,
} from '../../src/registry/ledger/index.js';
import { quiet, sample } from '../controller/control-helpers.js';

const O = 'origin.test';
const A = 'a.test';
const USAGE = {
  requests: 3000,
  bytes: 5_000_000,
  by_redirect: { requests: 2000, bytes: 4_000_000 },
  by_dns: { requests: 1000, bytes: 1_000_000 },
};

let cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanup.reverse()) await c();
  cleanup = [];
});

async function waitFor(what: string, cond: () => boolean, timeoutMs = 8000): Promise<void> {
  const t0 = performance.now();
  while (!cond()) {
    if (performance.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** An origin and a rescuer with real keys and listeners, sharing one in-process registry ledger. */
async function pair() {
  const dir = mkdtempSync(join(tmpdir(), 'dotslash-ledger-wire-'));
  cleanup.push(async () => rmSync(dir, { recursive: true, force: true }));
  const pub: Record<string, string> = {};
  for (const n of [O, A]) {
    const kp = generateKeyPair();
    pub[n] = kp.publicKey;
    writePrivateKey(join(dir, `${n}.key`), kp.privateKeyPem);
  }
  const ledger = new Ledger({
    community: 'flood.test',
    policy: DEFAULT_LEDGER_POLICY,
    keys: { keyOf: (m) => pub[m] },
  });
  const submitted: LedgerRecord[] = [];
  const urls: Record<string, string> = {};
  const configOf = (n: string, i: number): Config =>
    configSchema.parse({
      name: n,
      proxy: { upstreams: ['http://127.0.0.1:1'], listen: `127.0.0.${i + 2}:8080` },
      control: { listen: `127.0.0.${i + 2}:0` },
      identity: { key_file: join(dir, `${n}.key`) },
      state_file: join(dir, `${n}.db`),
      peers: [n === O ? A : O].map((p) => ({
        id: p,
        control_url: urls[p] ?? 'http://127.0.0.1:9',
        public_key: pub[p],
      })),
      rescue: {
        tick_ms: 50,
        lease_ms: 2000,
        acquire_hold_ms: 300,
        release_hold_ms: 300,
        pr_zero_hold_ms: 300,
        drain_ms: 300,
        max_share: 1,
        predictor: { enabled: false },
      },
    });
  const members: Record<string, RescueControl> = {};
  for (const [i, n] of [O, A].entries()) {
    const control = createRescueControl(configOf(n, i), {
      logger: quiet,
      usage: n === A ? () => USAGE : undefined,
      ledger: ({ identity, peerKey }) =>
        new MemberLedger({
          community: 'flood.test',
          policy: DEFAULT_LEDGER_POLICY,
          self: identity,
          peerKey,
          registry: { admitSpend: async (spend, payee) => ledger.admitSpend(spend, Date.now(), payee) },
          sink: {
            submit: async (r) => {
              submitted.push(r);
              ledger.add(r);
            },
          },
        }),
    });
    cleanup.push(() => control.close({ shutdown: false }));
    const addr = await control.start();
    urls[n] = `http://${addr.address}:${addr.port}`;
    members[n] = control;
  }
  for (const [i, n] of [O, A].entries()) members[n]!.update(configOf(n, i));
  const o = members[O]!;
  const a = members[A]!;
  a.controller.observe(sample('light', 0.1));
  o.controller.observe(sample('heavy', 1.2, 1000));
  await waitFor(
    'an active session on both sides',
    () =>
      a.controller.table.list('rescuer', ['active']).length === 1 &&
      o.controller.table.list('origin', ['active']).length === 1,
  );
  return { o, a, ledger, submitted };
}

describe('flood insurance over the wire', () => {
  it('rescuer shuts down: SHUTDOWN carries its half, the ACK the countersigned receipt; tokens move', async () => {
    const { o, a, ledger, submitted } = await pair();
    expect(ledger.balance(O, Date.now())).toMatchObject({ held: 100 });
    a.controller.setMode('off');
    await waitFor('both submitted the receipt', () => submitted.length === 2);
    expect(submitted[0]).toEqual(submitted[1]);
    expect(ledger.balance(A, Date.now())).toMatchObject({ earned: 4, balance: 1004 });
    expect(ledger.balance(O, Date.now())).toMatchObject({ charged: 4, held: 0, available: 996 });
    expect(o.controller.table.list('origin', ['active'])).toHaveLength(0);
  });

  it('origin shuts down: the ACK carries the rescuer half, the origin countersigns and submits', async () => {
    const { o, ledger, submitted } = await pair();
    await o.close(); // a clean stop SHUTDOWNs every session
    expect(submitted).toHaveLength(1);
    expect(Object.keys(submitted[0]!.sigs).sort()).toEqual(['origin', 'rescuer']);
    expect(ledger.balance(O, Date.now())).toMatchObject({ charged: 4, held: 0 });
  });
});
