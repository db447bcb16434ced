// Helpers for the controller tests: scripted monitor samples, a manual clock, a loopback transport
// that hands messages straight to other in-process controllers (for decision tests, where the
// wire is not the point; test/controller/members.test.ts uses the real ControlServer/Client).
import pino from 'pino';
import type { RedirectSnapshot } from '../../proxy/redirect/index.js';
import type { RescueServingView } from '../../proxy/rescue/view.js';
import {
  RescueError,
  type Peer,
  type RequestType,
  type VerifiedMessage,
} from '../../rescue-protocol/index.js';
import { configSchema, type Config } from '../../src/config/schema.js';
import {
  RescueController,
  type ControllerOptions,
  type RescueTransport,
} from '../../src/controller/controller.js';
import { rescueSettings } from '../../src/controller/settings.js';
import type { Region } from '../../src/monitor/regions.js';
import type { MonitorSample, ResourceStatus } from '../../src/monitor/types.js';
import { SessionTable, type Clock } from '../../src/sessions/table.js';
import { StateDb } from '../../src/storage/state-db.js';

export const quiet = pino({ level: 'silent' });

export class ManualClock implements Clock {
  t = 1_000;
  now = (): number => this.t;
  wall = (): number => 1_700_000_000_000 + this.t;
  advance(ms: number): void {
    this.t += ms;
  }
}

/** A monitor sample whose busiest resource is request_rate at `util` of 1000 req/s (thresholds 0.5 / 0.8). */
export function sample(region: Region, util: number, rate = util * 1000, elapsedMs = 1000): MonitorSample {
  const off: ResourceStatus = {
    value: null,
    raw: null,
    unit: 'cores',
    capacity: 0,
    utilisation: null,
    lower: 0.5,
    upper: 0.85,
    region: null,
    pending: null,
  };
  const req: ResourceStatus = {
    value: util * 1000,
    raw: util * 1000,
    unit: 'requests/s',
    capacity: 1000,
    utilisation: util,
    lower: 0.5,
    upper: 0.8,
    region,
    pending: null,
  } as ResourceStatus;
  return {
    at: Date.now(),
    elapsedMs,
    rates: {
      requests: rate,
      served: rate,
      redirects: 0,
      bytesOut: 0,
      bytesIn: 0,
      upstreamErrors: 0,
      clientErrors: 0,
    },
    upstreamErrorRatio: null,
    latency: { p50: null, p95: null, p99: null },
    upstreamLatency: { p50: null, p95: null, p99: null },
    active: 0,
    connections: 0,
    cpu: { cores: 0, hostCores: 1, missingPids: [] },
    resources: {
      cpu: off,
      bytes_out: { ...off, unit: 'bytes/s' },
      bytes_in: { ...off, unit: 'bytes/s' },
      request_rate: req,
    } as MonitorSample['resources'],
    region,
  } as MonitorSample;
}

export const FAKE_KEY = 'ed25519:' + 'A'.repeat(43);

/** A parsed config for member `name` with `peers` (ids); short times so tests run in seconds. */
export function memberConfig(
  name: string,
  peers: readonly string[],
  extra: Record<string, unknown> = {},
): Config {
  const { rescue, ...rest } = extra as { rescue?: Record<string, unknown> };
  return configSchema.parse({
    name,
    proxy: { upstreams: ['http://127.0.0.1:1'], listen: '127.0.0.1:8080' },
    peers: peers.map((id) => ({ id, control_url: `http://${id}:9181`, public_key: FAKE_KEY })),
    rescue: {
      tick_ms: 100,
      lease_ms: 3_000,
      acquire_hold_ms: 2_000,
      release_hold_ms: 2_000,
      pr_zero_hold_ms: 1_000,
      decline_hold_ms: 5_000,
      drain_ms: 1_500,
      predictor: { enabled: false },
      ...rescue,
    },
    state_file: ':memory:',
    // Each member's public front under its own name, as in a real community (a rescuer fetches
    // only from a front named like the origin: src/controller/sos-claims.ts).
    site: { front_url: `http://${name}:8080` },
    ...rest,
  });
}

export interface Sent {
  readonly from: string;
  readonly to: string;
  readonly type: RequestType;
  readonly body: unknown;
}

/** Routes sends to in-process controllers by member id; `down` members are unreachable. */
export class LoopNet {
  readonly members = new Map<string, RescueController>();
  readonly down = new Set<string>();
  readonly sent: Sent[] = [];

  transport(self: string): RescueTransport {
    return {
      send: async (peer: Peer, type, body) => {
        this.sent.push({ from: self, to: peer.id, type, body });
        await Promise.resolve();
        const target = this.members.get(peer.id);
        if (target === undefined || this.down.has(peer.id))
          throw new RescueError('RSC_ERR_PEER_UNREACHABLE', peer.id);
        const msg = {
          v: 1,
          type,
          from: self,
          to: peer.id,
          ts: Date.now(),
          nonce: 'n'.repeat(22),
          body,
        } as VerifiedMessage;
        try {
          return { body: await target.onMessage(msg) } as never;
        } catch (err) {
          if (!(err instanceof RescueError)) throw err;
          throw new RescueError(err.code, undefined, {
            message: err.message,
            remote: { status: err.status, authenticated: true, code: err.code },
          });
        }
      },
    };
  }

  count(type: RequestType, from?: string, to?: string): number {
    return this.sent.filter(
      (s) => s.type === type && (from === undefined || s.from === from) && (to === undefined || s.to === to),
    ).length;
  }
}

export interface TestMember {
  readonly name: string;
  readonly controller: RescueController;
  readonly table: SessionTable;
  readonly db: StateDb;
  readonly redirects: RedirectSnapshot[];
  readonly views: RescueServingView[];
  readonly purges: unknown[];
}

export function member(
  net: LoopNet,
  clock: ManualClock,
  config: Config,
  db: StateDb = StateDb.open(':memory:'),
  usage?: ControllerOptions['usage'],
  ledger?: ControllerOptions['ledger'],
): TestMember {
  const settings = rescueSettings(config);
  const table = new SessionTable({ db, logger: quiet, clock, drainMs: settings.drainMs });
  const redirects: TestMember['redirects'] = [];
  const views: TestMember['views'] = [];
  const purges: unknown[] = [];
  const controller = new RescueController({
    settings,
    table,
    transport: net.transport(settings.self),
    logger: quiet,
    publishRedirect: (s) => redirects.push(s),
    publishServing: (v) => views.push(v),
    onPurge: (p) => purges.push(p),
    usage,
    ledger,
  });
  net.members.set(settings.self, controller);
  return { name: settings.self, controller, table, db, redirects, views, purges };
}

/** Ticks every member `n` times, advancing the clock by `stepMs` before each round. */
export async function run(
  members: readonly TestMember[],
  clock: ManualClock,
  n: number,
  stepMs = 100,
): Promise<void> {
  for (let i = 0; i < n; i++) {
    clock.advance(stepMs);
    for (const m of members) await m.controller.tick();
  }
}
