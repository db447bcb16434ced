// Assembles one member's rescue control plane from its config: identity key (created on first
// start), state file, session table, controller, control listener and client. What the daemon wires.
import type { DnsRecordSets } from '../../dns/record-sets.js';
import type { KeyObject } from 'node:crypto';
import { existsSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { RedirectSnapshot } from '../../proxy/redirect/index.js';
import type { RescueServingView } from '../../proxy/rescue/view.js';
import {
  ControlClient,
  ControlServer,
  generateKeyPair,
  loadPrivateKey,
  peerKeyMap,
  writePrivateKey,
  type MemberIdentity,
  type ShutdownBody,
} from '../../rescue-protocol/index.js';
import { registryConfigured, type Config } from '../config/schema.js';
import { RegistryClient } from '../registry/client.js';
import { memberRegistration, registrySource, spareFromSample } from '../registry/member.js';
import { RttTable } from '../registry/rtt.js';
import { RttProber } from '../registry/rtt-probe.js';
import type { MonitorSample } from '../monitor/types.js';
import { MemberLedger } from '../registry/ledger/index.js';
import { SessionTable, type Clock } from '../sessions/table.js';
import { StateDb } from '../storage/state-db.js';
import { RescueController } from './controller.js';
import type { PurgeRequest } from './inbox.js';
import { rescueSettings } from './settings.js';

export interface RescueControlDeps {
  readonly logger: Logger;
  /** Where samples come from (WorkloadMonitor): the controller listens to its 'sample' events. */
  readonly monitor?: {
    on(event: 'sample', fn: (s: MonitorSample) => void): unknown;
    off(event: 'sample', fn: (s: MonitorSample) => void): unknown;
  };
  readonly publishRedirect?: (snapshot: RedirectSnapshot) => void;
  readonly publishServing?: (view: RescueServingView) => void;
  /** The rescue record sets (embedded DNS server or RFC 2136 updater; src/daemon-dns.ts). */
  readonly publishDns?: (sets: DnsRecordSets) => void;
  readonly onPurge?: (req: PurgeRequest) => void;
  /** Rescuer side: a session's usage (UsageBook), sent in SHUTDOWN and stored. */
  readonly usage?: (session: string) => ShutdownBody['usage'] | undefined;
  readonly clock?: Clock;
  /**
   * Flood-insurance communities: builds this member's MemberLedger from its identity and its
   * peers' keys (the registry client supplies it; see src/registry/ledger/index.ts).
   */
  readonly ledger?: (ctx: {
    readonly identity: MemberIdentity;
    readonly peerKey: (member: string) => KeyObject | undefined;
  }) => MemberLedger;
}

export interface RescueControl {
  readonly controller: RescueController;
  readonly server: ControlServer;
  readonly client: ControlClient;
  readonly db: StateDb;
  /** The registry client, once started, when registry.urls or registry.srv is configured. */
  readonly registry: RegistryClient | undefined;
  /** RTTs this member measured to others (sent with lookups); with a registry and registry.rtt_interval_ms > 0. */
  readonly rtt: RttTable | undefined;
  /** This member's public key text ("ed25519:..."): what peers put in their config. */
  readonly publicKey: string;
  /** Id and signing key (the data path signs rescuer fetches with it). */
  readonly identity: MemberIdentity;
  /** Peer id -> public key; a live map that update() changes in place. */
  readonly peerKeys: ReadonlyMap<string, KeyObject>;
  /**
   * Config reload: new settings and peers (keys take effect for the next message); a changed
   * rescue.mode is applied like setMode.
   */
  update(config: Config): void;
  /** Binds the control listener and starts the loop. */
  start(): Promise<AddressInfo>;
  /** SHUTDOWN of every active session (unless `shutdown: false`), then listener, client and state file. Idempotent. */
  close(opts?: { shutdown?: boolean }): Promise<void>;
}

/**
 * Flood-insurance (registry.ledger set): the member's ledger asks the registry client to admit
 * spends and takes its receipts; the client exists once the control listener is up.
 */
function registryLedger(
  config: Config,
  registry: () => RegistryClient | undefined,
): RescueControlDeps['ledger'] {
  const policy = config.registry.ledger;
  if (policy === undefined || !registryConfigured(config.registry)) return undefined;
  const client = (): RegistryClient => {
    const r = registry();
    if (!r) throw new Error('the registry client is not started');
    return r;
  };
  return ({ identity, peerKey }) =>
    new MemberLedger({
      community: config.registry.community,
      policy,
      self: identity,
      peerKey,
      registry: { admitSpend: (spend, payee) => client().admitSpend(spend, payee) },
      sink: { submit: (record) => client().submit(record) },
    });
}

/** Loads the member key, creating it (0600, parent 0700) on first start. */
export function loadOrCreateIdentity(
  id: string,
  keyFile: string,
  logger?: Logger,
): { identity: MemberIdentity; publicKey: string } {
  if (!existsSync(keyFile)) {
    writePrivateKey(keyFile, generateKeyPair().privateKeyPem);
    logger?.info({ key_file: keyFile }, "created this member's Ed25519 key");
  }
  const loaded = loadPrivateKey(keyFile);
  return { identity: { id, privateKey: loaded.privateKey }, publicKey: loaded.publicKey };
}

export function createRescueControl(config: Config, deps: RescueControlDeps): RescueControl {
  const settings = rescueSettings(config);
  const log = deps.logger.child({ component: 'rescue' });
  const { identity, publicKey } = loadOrCreateIdentity(settings.self, config.identity.key_file, log);
  const db = StateDb.open(config.state_file);
  const clock = deps.clock;
  const stale = db.closeOpenSessions(
    'daemon restarted: the lease clock stopped',
    (clock?.wall ?? Date.now)(),
  );
  if (stale > 0) log.info({ sessions: stale }, 'closed sessions a previous run left open');
  const table = new SessionTable({ db, logger: log, drainMs: settings.drainMs, ...(clock ? { clock } : {}) });
  const client = new ControlClient({ self: identity });
  // The registry (issue 5): created at start(), once the control listener's URL is known.
  let registry: RegistryClient | undefined;
  // RTTs to other members, measured by probing their control URLs; lookups rank candidates with them.
  const measuring = registryConfigured(config.registry) && config.registry.rtt_interval_ms > 0;
  const rtt = measuring ? new RttTable({ maxAgeMs: config.registry.rtt_max_age_ms }) : undefined;
  const prober =
    rtt &&
    new RttProber({
      table: rtt,
      intervalMs: config.registry.rtt_interval_ms,
      timeoutMs: config.registry.rtt_timeout_ms,
      logger: log.child({ component: 'rtt' }),
    });
  /** Keys learned from the registry; re-added after a reload refills the map from the config. */
  const learned = new Map<string, KeyObject>();
  // A live map: ControlServer looks keys up per message, so update() can swap them in place.
  const peers = peerKeyMap(config.peers);
  const ledger = (deps.ledger ?? registryLedger(config, () => registry))?.({
    identity,
    peerKey: (m) => peers.get(m),
  });
  const controller = new RescueController({
    settings,
    table,
    transport: client,
    logger: log,
    publishRedirect: deps.publishRedirect,
    publishServing: deps.publishServing,
    publishDns: deps.publishDns,
    onPurge: deps.onPurge,
    usage: deps.usage,
    ...(registryConfigured(config.registry) && {
      discovery: {
        candidates: () => registry?.candidates() ?? [],
        // The lookup carries what we measured; candidates it names that we have not measured
        // within the interval are probed at once, so the next lookup ranks them by RTT too.
        refresh: (exclude) => {
          const r = registry;
          if (!r) return;
          void r.refresh(exclude, rtt?.snapshot()).then(() => prober?.probe(r.candidates()));
        },
        peer: (id) => registry?.peer(id),
      },
    }),
    ...(ledger ? { ledger } : {}),
  });
  const server = new ControlServer({
    listen: config.control.listen,
    self: identity,
    peers,
    onMessage: controller.onMessage,
    logger: log,
  });
  const onSample = (s: MonitorSample): void => {
    controller.observe(s);
    registry?.setSpare(controller.state === 'sos' ? { uplink_bps: 0, cpu: 0, rps: 0 } : spareFromSample(s));
  };
  let closing: Promise<void> | null = null;
  let current = config;
  return {
    controller,
    server,
    client,
    db,
    publicKey,
    identity,
    peerKeys: peers,
    get registry() {
      return registry;
    },
    rtt,
    update(next: Config) {
      const fresh = peerKeyMap(next.peers); // throws before anything changes
      const nextSettings = rescueSettings(next);
      const modeChanged = nextSettings.mode !== rescueSettings(current).mode;
      peers.clear();
      for (const [id, key] of fresh) peers.set(id, key);
      for (const [id, key] of learned) if (!peers.has(id)) peers.set(id, key);
      controller.update(nextSettings);
      if (modeChanged) controller.setMode(nextSettings.mode);
      current = next;
    },
    async start() {
      const addr = await server.listen();
      if (registryConfigured(config.registry)) {
        const r = config.registry;
        registry = new RegistryClient({
          self: identity,
          registration: memberRegistration(
            config,
            settings,
            config.control.public_url ?? server.url,
            publicKey,
          ),
          registries: registrySource(r),
          trustedKeys: r.public_keys,
          timeoutMs: r.timeout_ms,
          publishIntervalMs: r.publish_interval_ms,
          logger: log.child({ component: 'registry' }),
          // Configured peers keep their configured key; others are learned from the registry.
          onMember: (id, key) => {
            if (current.peers.some((p) => p.id === id)) return;
            learned.set(id, key);
            peers.set(id, key);
          },
        });
        await registry.start();
        const reg = registry;
        prober?.start({ candidates: () => reg.candidates(), members: () => reg.members() });
      }
      deps.monitor?.on('sample', onSample);
      controller.start();
      return addr;
    },
    close(opts = {}) {
      closing ??= (async () => {
        deps.monitor?.off('sample', onSample);
        prober?.close();
        await controller.close(opts);
        await registry?.close();
        await server.close();
        await client.close();
        db.close();
      })();
      return closing;
    },
  };
}
