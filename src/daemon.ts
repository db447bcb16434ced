// The daemon: wires the front proxy, the workload monitor and the admin listener together and
// owns the process lifecycle (SIGHUP = validated reload, SIGTERM/SIGINT = graceful drain).
import type { AddressInfo } from 'node:net';
import type pino from 'pino';
import { DnsServer, buildZoneSnapshot } from '../dns/index.js';
import type { DynamicRecordSet, ZoneSnapshot } from '../dns/index.js';
import { createAccessLogger } from '../proxy/access-log.js';
import { FrontProxy } from '../proxy/front.js';
import { AdminServer } from './admin/server.js';
import { resolveAdminToken } from './admin/token.js';
import { ConfigError, formatIssue } from './config/errors.js';
import { deepFreeze, loadConfigFile } from './config/load.js';
import { dnsZonesOf, effectiveRescueMode, type Config } from './config/schema.js';
import { createRescueControl, type RescueControl } from './controller/create.js';
import { DnsRecordPublisher } from './daemon-dns.js';
import { WorkloadMonitor } from './monitor/monitor.js';

export interface DaemonOptions {
  logger: pino.Logger;
  /** The file the config came from; SIGHUP re-reads it. Undefined when started from flags. */
  configPath?: string;
  /** An already resolved admin token (the CLI resolves it so it can print a new one once). */
  adminToken?: string;
  /** Environment for ${VAR} substitution on reload and for the admin token variable. */
  env?: NodeJS.ProcessEnv;
  /** Extra fields for the admin /status document (version, …). */
  info?: Record<string, unknown>;
}

export interface DaemonAddresses {
  front: AddressInfo;
  admin: AddressInfo;
  /** The rescue control listener; absent when rescue is off at start. */
  control?: AddressInfo;
  /** The embedded DNS server (UDP and TCP on the same port); absent unless dns.mode is embedded. */
  dns?: AddressInfo;
}

export type ReloadResult = { ok: true; restartNeeded: string[] } | { ok: false; error: string };

/** A listener could not be opened (port in use, address not local, permission): exit code 2. */
export class ListenError extends Error {
  readonly address: string;
  readonly listener: string;
  constructor(listener: string, address: string, cause: unknown) {
    const c = cause as NodeJS.ErrnoException;
    const why =
      c?.code === 'EADDRINUSE'
        ? 'address already in use'
        : c?.code === 'EACCES'
          ? 'permission denied (ports below 1024 need privileges)'
          : c?.code === 'EADDRNOTAVAIL'
            ? 'address not available on this machine'
            : (c?.message ?? String(cause));
    super(`cannot listen on ${address} (${listener} listener): ${why}${c?.code ? ` [${c.code}]` : ''}`);
    this.name = 'ListenError';
    this.address = address;
    this.listener = listener;
  }
}

/** A second SIGTERM/SIGINT sooner than this after the first is taken as a duplicate delivery. */
const DUPLICATE_SIGNAL_MS = 200;

/** Keys whose change only takes effect after a restart (the sockets are already bound). */
const RESTART_KEYS: readonly [string, (c: Config) => unknown][] = [
  ['proxy.listen', (c) => c.proxy.listen],
  ['admin.listen', (c) => c.admin.listen],
  ['admin.token_env', (c) => c.admin.token_env],
  ['admin.token_file', (c) => c.admin.token_file],
  ['proxy.access_log', (c) => JSON.stringify(c.proxy.access_log)],
  ['name', (c) => c.name],
  ['control.listen', (c) => c.control.listen],
  ['identity.key_file', (c) => c.identity.key_file],
  ['state_file', (c) => c.state_file],
  // The registry client is built with the control plane at start.
  ['registry', (c) => JSON.stringify(c.registry)],
  // The control plane exists only if rescue was not off at start (the admin kill switch covers on <-> observe).
  ['rescue.mode', (c) => effectiveRescueMode(c) === 'off'],
  ['dns.mode', (c) => c.dns.mode],
  ['dns.rfc2136', (c) => JSON.stringify(c.dns.rfc2136)],
  ['dns.listen', (c) => c.dns.listen],
  ['dns.max_udp_size', (c) => c.dns.max_udp_size],
  ['dns.tcp', (c) => JSON.stringify(c.dns.tcp)],
];

/** The zone snapshot for a config and the current dynamic record sets. Throws DnsError. */
function dnsSnapshot(cfg: Config, dynamic: readonly DynamicRecordSet[]): ZoneSnapshot {
  return buildZoneSnapshot(dnsZonesOf(cfg.dns), { defaultTtl: cfg.dns.ttl, dynamic });
}

/** Defaults derived from proxy.listen (site.front_url, site.public_url) use the bound address (port 0 in tests). */
function withBoundFront(cfg: Config, front: AddressInfo): Config {
  const host = front.family === 'IPv6' ? `[${front.address}]` : front.address;
  return { ...cfg, proxy: { ...cfg.proxy, listen: `${host}:${front.port}` } };
}

export class Daemon {
  #config: Config;
  readonly #opts: DaemonOptions;
  readonly #log: pino.Logger;
  #proxy: FrontProxy | undefined;
  #monitor: WorkloadMonitor | undefined;
  #admin: AdminServer | undefined;
  #rescue: RescueControl | undefined;
  #dns: DnsServer | undefined;
  #dnsDynamic: readonly DynamicRecordSet[] = [];
  /** The controller's rescue record sets -> the embedded server or the RFC 2136 updater. */
  #dnsRecords: DnsRecordPublisher | undefined;
  #accessLog: pino.Logger | null = null;
  #token: string | undefined;
  #addresses: DaemonAddresses | undefined;
  #closing: Promise<void> | undefined;
  #reloading: Promise<ReloadResult> = Promise.resolve({ ok: true, restartNeeded: [] });
  readonly #startedAt = new Date();

  constructor(config: Config, opts: DaemonOptions) {
    this.#config = config;
    this.#opts = opts;
    this.#log = opts.logger;
  }

  /** The configuration in force (after the last successful reload). Frozen. */
  get config(): Config {
    return this.#config;
  }

  get addresses(): DaemonAddresses | undefined {
    return this.#addresses;
  }

  /**
   * The rescue control plane (issue 3), when rescue was not off at start. The data path is wired
   * to its outputs by whoever owns the front proxy: controller.redirectSnapshot() /
   * servingView(), or the publish callbacks of createRescueControl.
   */
  get rescue(): RescueControl | undefined {
    return this.#rescue;
  }

  /** The embedded DNS server, when dns.mode was embedded at start. */
  get dns(): DnsServer | undefined {
    return this.#dns;
  }

  /**
   * Replace the dynamic record sets (the rescue record sets: a site name's A/AAAA set with its
   * rescuers, weighted by granted rate) and swap the served zones at once. Invalid sets (a name
   * outside the zones, a bad address) are logged and the served data is kept: returns false.
   * Cheap for small zones, but call it when the sets change, not every tick.
   */
  setDnsRecordSets(sets: readonly DynamicRecordSet[]): boolean {
    const server = this.#dns;
    if (server === undefined) return false;
    try {
      server.setZones(dnsSnapshot(this.#config, sets));
    } catch (err) {
      this.#log.error(
        { err, code: (err as { code?: string }).code },
        `dns record sets refused: ${(err as Error).message}`,
      );
      return false;
    }
    this.#dnsDynamic = sets;
    this.#log.info(
      { sets: sets.map((x) => `${x.name}/${x.type}:${x.values.length}`) },
      'dns record sets updated',
    );
    return true;
  }

  /** The admin token in use (resolved at start unless given). */
  get adminToken(): string | undefined {
    return this.#token;
  }

  /** Open the front and admin listeners and start sampling. On failure everything opened is closed again. */
  async start(): Promise<DaemonAddresses> {
    if (this.#addresses !== undefined) return this.#addresses;
    const cfg = this.#config;
    try {
      this.#token =
        this.#opts.adminToken ?? resolveAdminToken(cfg.admin, { env: this.#opts.env ?? process.env }).token;
      this.#accessLog = createAccessLogger(cfg.proxy.access_log);
      const proxy = new FrontProxy({
        config: cfg.proxy,
        logger: this.#log,
        accessLog: this.#accessLog,
        rescue: {
          cacheBytes: cfg.rescue.cache.max_bytes,
          ...(cfg.rescue.cache.max_entry_bytes !== undefined && {
            cacheEntryBytes: cfg.rescue.cache.max_entry_bytes,
          }),
          endedLingerMs: cfg.rescue.ended_linger_ms,
        },
      });
      this.#proxy = proxy;
      const front = await proxy.listen().catch((err: unknown) => {
        throw new ListenError('front', cfg.proxy.listen, err);
      });

      const monitor = new WorkloadMonitor({
        config: cfg.monitor,
        readStats: () => proxy.stats.snapshot(),
        logger: this.#log,
      });
      this.#monitor = monitor;
      // The monitor logs its own region changes; the rescue controller subscribes to its 'sample' events.
      monitor.on('error', (err: unknown) => this.#log.error({ err }, 'workload monitor error'));
      monitor.start();

      const admin = new AdminServer({
        listen: cfg.admin.listen,
        token: this.#token,
        monitor,
        stats: () => proxy.stats.snapshot(),
        isReady: () => proxy.ready && this.#closing === undefined,
        logger: this.#log,
        info: () => this.#info(),
        // The kill switch (issue 3 item 3) reads the controller lazily: it starts after the admin listener.
        rescue:
          effectiveRescueMode(cfg) === 'off'
            ? undefined
            : {
                state: () => this.#rescue?.controller.state ?? 'normal',
                mode: () => this.#rescue?.controller.mode ?? effectiveRescueMode(cfg),
                setMode: (mode) => this.#rescue?.controller.setMode(mode),
              },
        rescueMetrics: {
          status: () => this.#rescue?.controller.status() ?? null,
          redirects: () => proxy.redirectStats(),
          cache: () => proxy.rescueCacheStats(),
        },
      });
      this.#admin = admin;
      const adminAddr = await admin.listen().catch((err: unknown) => {
        throw new ListenError('admin', cfg.admin.listen, err);
      });

      // Rescue control (slide 17-18): only when rescue is on or observe, which the schema allows
      // only with a name. Its listener is separate from site traffic.
      let control: AddressInfo | undefined;
      if (cfg.dns.mode !== 'off')
        this.#dnsRecords = new DnsRecordPublisher(cfg, this.#log, (sets) => this.setDnsRecordSets(sets));
      if (effectiveRescueMode(cfg) !== 'off') {
        // Its outputs feed the front proxy's rescue hooks (proxy/rescue/router.ts): the origin's
        // redirect snapshot, the rescuer's serving view, PURGE, and per-session usage for SHUTDOWN.
        const rescue = createRescueControl(withBoundFront(cfg, front), {
          logger: this.#log,
          monitor,
          publishRedirect: (s) => proxy.setRedirect(s),
          publishServing: (v) => proxy.setRescueView(v),
          ...(this.#dnsRecords ? { publishDns: this.#dnsRecords.publish } : {}),
          onPurge: (req) => proxy.purge(req.session, [...req.urls]),
          usage: (id) => {
            const u = proxy.sessionUsage().get(id);
            return u === undefined ? undefined : structuredClone(u);
          },
        });
        this.#rescue = rescue;
        proxy.setMembers({ self: rescue.identity, peers: rescue.peerKeys });
        control = await rescue.start().catch((err: unknown) => {
          throw new ListenError('control', cfg.control.listen, err);
        });
      }

      // The embedded DNS server (issue 4): zones from config plus the dynamic sets given later.
      let dns: AddressInfo | undefined;
      if (cfg.dns.mode === 'embedded') {
        const server = new DnsServer({
          listen: cfg.dns.listen,
          zones: dnsSnapshot(cfg, this.#dnsDynamic),
          maxUdpSize: cfg.dns.max_udp_size,
          tcpIdleMs: cfg.dns.tcp.idle_ms,
          tcpMaxConnections: cfg.dns.tcp.max_connections,
        });
        server.on('error', (err: unknown) => this.#log.error({ err }, 'dns server error'));
        this.#dns = server;
        dns = (
          await server.listen().catch((err: unknown) => {
            throw new ListenError('dns', cfg.dns.listen, (err as Error).cause ?? err);
          })
        ).udp;
        // The controller published its first sets before the server was up.
        this.#dnsRecords?.resend();
      }

      this.#addresses = {
        front,
        admin: adminAddr,
        ...(control ? { control } : {}),
        ...(dns ? { dns } : {}),
      };
      this.#log.info(
        {
          front: `${front.address}:${front.port}`,
          admin: `${adminAddr.address}:${adminAddr.port}`,
          ...(control ? { control: `${control.address}:${control.port}` } : {}),
          ...(dns ? { dns: `${dns.address}:${dns.port}`, zones: cfg.dns.zones.map((z) => z.name) } : {}),
          upstreams: cfg.proxy.upstreams,
          config: this.#opts.configPath ?? '(flags)',
        },
        'dotslash started',
      );
      return this.#addresses;
    } catch (err) {
      await this.#closeAll(0);
      throw err;
    }
  }

  /**
   * Re-read the config file and apply it (SIGHUP). An invalid file is logged and the running
   * config kept. Listener addresses and the token source need a restart; that is logged.
   * Reloads are serialized.
   */
  reload(): Promise<ReloadResult> {
    this.#reloading = this.#reloading.then(() => this.#reload());
    return this.#reloading;
  }

  async #reload(): Promise<ReloadResult> {
    const path = this.#opts.configPath;
    if (this.#closing !== undefined) return { ok: false, error: 'shutting down' };
    if (path === undefined) {
      this.#log.warn('reload requested, but this daemon was started from flags: nothing to re-read');
      return { ok: false, error: 'no config file' };
    }
    let next: Config;
    try {
      next = loadConfigFile(path, { env: this.#opts.env ?? process.env });
    } catch (err) {
      const errors = err instanceof ConfigError ? err.issues.map(formatIssue) : [String(err)];
      this.#log.error(
        { code: err instanceof ConfigError ? err.code : undefined, errors },
        `reload failed, keeping the running configuration: ${errors.join('; ')}`,
      );
      return { ok: false, error: errors.join('\n') };
    }

    const cur = this.#config;
    const restartNeeded = RESTART_KEYS.filter(([, get]) => get(cur) !== get(next)).map(([k]) => k);
    // Keep what is bound to the running sockets; apply everything else.
    const applied = deepFreeze({
      ...next,
      proxy: { ...next.proxy, listen: cur.proxy.listen, access_log: cur.proxy.access_log },
      admin: cur.admin,
      // The member's identity and its state file are bound at start too.
      name: cur.name,
      control: cur.control,
      dns: {
        ...next.dns,
        mode: cur.dns.mode,
        listen: cur.dns.listen,
        max_udp_size: cur.dns.max_udp_size,
        tcp: cur.dns.tcp,
      },
      identity: cur.identity,
      state_file: cur.state_file,
    }) as Config;
    try {
      // The monitor validates its new sources first (it throws and keeps its old config if, say,
      // an interface does not exist), so nothing is half-applied when it refuses.
      // Zones are built first (a zone that no longer builds refuses the whole reload), swapped last.
      const zones = this.#dns ? dnsSnapshot(applied, this.#dnsDynamic) : undefined;
      this.#monitor?.update(applied.monitor);
      this.#proxy?.update(applied.proxy);
      if (this.#rescue && this.#addresses)
        this.#rescue.update(withBoundFront(applied, this.#addresses.front));
      if (zones) this.#dns?.setZones(zones);
    } catch (err) {
      const error = err instanceof Error ? err.message : String(err);
      this.#log.error({ err }, `reload failed, keeping the running configuration: ${error}`);
      return { ok: false, error };
    }
    this.#log.level = applied.log.level;
    this.#config = applied;
    if (restartNeeded.length > 0) {
      this.#log.warn(
        { keys: restartNeeded },
        `changed keys need a restart to apply: ${restartNeeded.join(', ')}`,
      );
    }
    this.#log.info({ upstreams: applied.proxy.upstreams, config: path }, 'configuration reloaded');
    return { ok: true, restartNeeded };
  }

  /**
   * Graceful shutdown: /readyz turns 503 at once, the front listener stops accepting and
   * in-flight requests get up to proxy.timeouts.drain_ms to finish; then everything closes.
   * Idempotent: later calls return the same promise.
   */
  shutdown(reason = 'shutdown'): Promise<void> {
    if (this.#closing === undefined) {
      const drainMs = this.#config.proxy.timeouts.drain_ms;
      this.#log.info({ reason, drainMs }, 'shutting down: draining in-flight requests');
      this.#closing = this.#closeAll(drainMs).then(() => this.#log.info('dotslash stopped'));
    }
    return this.#closing;
  }

  /**
   * SIGHUP -> reload; SIGTERM/SIGINT -> graceful shutdown then `exit(0)`; a second
   * SIGTERM/SIGINT while draining (200 ms or more after the first) forces `exit(2)`. Returns a function removing the handlers.
   */
  installSignalHandlers(exit: (code: number) => void = (code) => process.exit(code)): () => void {
    let firstStopAt = 0;
    const onHup = (): void => {
      this.#log.info('SIGHUP: reloading configuration');
      void this.reload();
    };
    const onStop = (signal: NodeJS.Signals): void => {
      const now = Date.now();
      if (firstStopAt !== 0) {
        // Ctrl-C reaches every process in the terminal's group, and wrappers such as npm may
        // forward it again: a repeat within DUPLICATE_SIGNAL_MS is the same keypress.
        if (now - firstStopAt < DUPLICATE_SIGNAL_MS) return;
        this.#log.warn({ signal }, 'second signal while draining: forcing exit');
        exit(2);
        return;
      }
      firstStopAt = now;
      this.shutdown(signal).then(
        () => exit(0),
        (err: unknown) => {
          this.#log.error({ err }, 'error during shutdown');
          exit(2);
        },
      );
    };
    process.on('SIGHUP', onHup);
    process.on('SIGTERM', onStop);
    process.on('SIGINT', onStop);
    return () => {
      process.off('SIGHUP', onHup);
      process.off('SIGTERM', onStop);
      process.off('SIGINT', onStop);
    };
  }

  /** Close in dependency order; each step is idempotent and safe after a failed start. */
  async #closeAll(drainMs: number): Promise<void> {
    const step = async (what: string, fn: () => unknown): Promise<void> => {
      try {
        await fn();
      } catch (err) {
        this.#log.error({ err }, `error closing ${what}`);
      }
    };
    // Rescue first: SHUTDOWN tells peers at once, so nobody redirects to or through us while we drain.
    await step('rescue control', () => this.#rescue?.close());
    // Sessions ended above: their rescuers leave the external zone before we exit (bounded wait).
    await step('dns record sets', () => this.#dnsRecords?.close());
    // The admin listener stays up while the front drains so /readyz can report 503.
    await step('front proxy', () => this.#proxy?.close(drainMs));
    await step('dns server', () => this.#dns?.close());
    await step('workload monitor', () => this.#monitor?.close());
    await step('admin listener', () => this.#admin?.close());
    const access = this.#accessLog;
    if (access !== null) await step('access log', () => new Promise<void>((r) => access.flush(() => r())));
  }

  #info(): Record<string, unknown> {
    return {
      ...this.#opts.info,
      pid: process.pid,
      started_at: this.#startedAt.toISOString(),
      config: this.#opts.configPath ?? null,
      upstreams: this.#config.proxy.upstreams,
      draining: this.#closing !== undefined,
      ...(this.#rescue ? { rescue: this.#rescue.controller.status() } : {}),
      ...(this.#dns
        ? { dns: { zones: this.#config.dns.zones.map((z) => z.name), ...this.#dns.stats() } }
        : {}),
      ...(this.#dnsRecords?.latest
        ? {
            dns_records: {
              version: this.#dnsRecords.latest.version,
              rescued: this.#dnsRecords.latest.rescued,
              sets: this.#dnsRecords.latest.sets,
              ...(this.#dnsRecords.updaterStatus ? { rfc2136: this.#dnsRecords.updaterStatus } : {}),
            },
          }
        : {}),
    };
  }
}
