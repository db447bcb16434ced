// A DotSlash community on one machine: one origin and N rescuers, each a separate daemon process
// (`dotslash start -c <generated config>`) on its own 127.0.0.x address, with generated keys,
// admin tokens, state files and configs that list each other as peers, or a registry process
// they all register with (discovery 'registry'). Used by `dotslash demo` and the integration tests.
import { spawn, type ChildProcess } from 'node:child_process';
import type { IncomingMessage } from 'node:http';
import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { createSocket } from 'node:dgram';
import { connect, createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { stringify } from 'yaml';
import { VERIFIED_RESCUER_HEADER } from '../../proxy/headers.js';
import { generateKeyPair, writePrivateKey } from '../../rescue-protocol/keys.js';
import { ledgerPolicySchema, type LedgerPolicy } from '../registry/ledger/index.js';
import { startDemoSite, type DemoSite } from './site.js';

export type MemberRole = 'origin' | 'rescuer';

/** Rescue settings the community runs with (short, so a whole cycle takes seconds to a minute). */
export interface RescueTuning {
  tick_ms: number;
  lease_ms: number;
  acquire_hold_ms: number;
  release_hold_ms: number;
  pr_zero_hold_ms: number;
  decline_hold_ms: number;
  pr_step_max: number;
  dns_ttl_s: number;
  drain_ms: number;
  max_share: number;
}

/** TTL of the members' DNS answers outside a rescue (short, so the crowd sees a rescue within seconds). */
export const DEMO_NORMAL_TTL_S = 5;

export const DEMO_TUNING: RescueTuning = {
  tick_ms: 500,
  lease_ms: 6_000,
  acquire_hold_ms: 5_000,
  release_hold_ms: 5_000,
  pr_zero_hold_ms: 3_000,
  decline_hold_ms: 5_000,
  pr_step_max: 0.2,
  dns_ttl_s: 2,
  drain_ms: 4_000,
  max_share: 0.5,
};

export interface CommunityOptions {
  /** Directory for configs, keys, tokens, state files and logs (created). */
  baseDir: string;
  /** Origin's site capacity in requests/s (the limiter, and its monitor's request_rate capacity). */
  originRps: number;
  /** Each rescuer's request_rate capacity (default 20 x originRps: rescuers are bigger sites). */
  rescuerRps?: number;
  /** Addresses: the origin's first, then one per rescuer (default 127.0.0.2 .. 127.0.0.5). */
  hosts?: readonly string[];
  /** Member names (default origin.test, rescue-a.test, ...). */
  names?: readonly string[];
  tuning?: Partial<RescueTuning>;
  /** rescue.mode per member name (default on). */
  modes?: Readonly<Record<string, 'on' | 'observe' | 'off'>>;
  /** The command that runs the dotslash CLI (default: the running one: node [execArgv] argv[1]). */
  entry?: readonly string[];
  logLevel?: string;
  /**
   * How members find rescuers: 'registry' runs a registry process (`dotslash registry`) that
   * every member registers with, and no member lists peers; 'static' (default) lists them all.
   */
  discovery?: 'static' | 'registry';
  /**
   * The registry's community (discovery 'registry' only): 'open' (default) lets anyone register;
   * 'flood-insurance' admits keys only (admit each member's publicKey before it can register) and
   * runs the token ledger under `policy`, which every member is configured with too.
   */
  community?: { type: 'open' } | { type: 'flood-insurance'; policy?: Partial<LedgerPolicy> };
}

/** The community name members register in when discovery is 'registry'. */
export const DEMO_COMMUNITY = 'demo';

/** The community's registry process, when discovery is 'registry'. */
export interface RegistryProcess {
  readonly configFile: string;
  readonly logFile: string;
  /** http://host:port of its API. */
  readonly url: string;
  /** http://host:port of its admin API (admit, revoke, status) and the bearer token's file. */
  readonly adminUrl: string;
  readonly adminTokenFile: string;
  child: ChildProcess | null;
}

export interface Member {
  readonly name: string;
  readonly role: MemberRole;
  readonly host: string;
  readonly dir: string;
  readonly configFile: string;
  readonly logFile: string;
  readonly stateFile: string;
  readonly keyFile: string;
  readonly publicKey: string;
  readonly token: string;
  readonly tokenFile: string;
  /** The member's embedded DNS server (UDP and TCP), authoritative for `zone`. */
  readonly dns: string;
  readonly zone: string;
  /** http://host:port of the front (site traffic), admin and control listeners. */
  readonly frontUrl: string;
  readonly adminUrl: string;
  readonly controlUrl: string;
  /** The URL clients use: http://<name>:<front port> (resolved by the demo's lookup). */
  readonly publicUrl: string;
  /** The member's own web site (upstream of its front). */
  readonly site: DemoSite;
  child: ChildProcess | null;
}

export const DEFAULT_HOSTS = ['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5'];
export const DEFAULT_NAMES = ['origin.test', 'rescue-a.test', 'rescue-b.test', 'rescue-c.test'];

/** Ports this process has handed out: two picks must not land on the same port before either binds. */
const handedOut = new Set<number>();

/**
 * A port free on `host` (for TCP, and UDP too when asked: a DNS server binds both), picked at
 * random below the ephemeral range (Linux 32768-60999, IANA 49152-65535). The daemon binds it
 * later, in its own process; a port from the ephemeral range can be taken meanwhile by any
 * listen(0) or auto-bound client socket on the machine, which made a member exit with
 * EADDRINUSE while other tests ran.
 */
export async function freePort(host: string, opts: { udp?: boolean } = {}): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    if (handedOut.has(port) || !(await canListen(host, port))) continue;
    if (opts.udp === true && !(await canBindUdp(host, port))) continue;
    handedOut.add(port);
    return port;
  }
  throw new Error(`no port free${opts.udp === true ? ' for TCP and UDP' : ''} on ${host}`);
}

/** A TCP port free on every one of `hosts` (the members' fronts share it). */
async function commonFreePort(hosts: readonly string[]): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = await freePort(hosts[0]!);
    const free = await Promise.all(hosts.slice(1).map((h) => canListen(h, port)));
    if (free.every(Boolean)) return port;
  }
  throw new Error(`no TCP port free on all of ${hosts.join(', ')}`);
}

function canListen(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, host, () => srv.close(() => resolve(true)));
  });
}

function canBindUdp(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const u = createSocket('udp4');
    u.once('error', () => resolve(false));
    u.bind(port, host, () => u.close(() => resolve(true)));
  });
}

/** The running CLI's own command line, so children run the same build (dist or tsx). */
export function defaultEntry(): string[] {
  // Children run in their member's directory: make `--import tsx`-style loaders absolute first.
  const args = process.execArgv.map((a, i, all) => {
    const prev = all[i - 1];
    if ((prev === '--import' || prev === '--loader') && !/^(\.|\/|file:)/.test(a)) {
      try {
        return import.meta.resolve(a);
      } catch {
        return a;
      }
    }
    return a;
  });
  return [process.execPath, ...args, resolve(process.argv[1]!)];
}

export class Community {
  readonly members: readonly Member[];
  readonly baseDir: string;
  readonly registry: RegistryProcess | null;
  readonly #entry: readonly string[];
  readonly #exits = new Map<string, Promise<number | null>>();
  #stopping: Promise<void> | null = null;
  readonly #onExit = (): void => this.killAll('SIGKILL');
  #exitHooked = false;

  private constructor(
    baseDir: string,
    members: Member[],
    entry: readonly string[],
    registry: RegistryProcess | null,
  ) {
    this.baseDir = baseDir;
    this.members = members;
    this.#entry = entry;
    this.registry = registry;
  }

  get origin(): Member {
    return this.members[0]!;
  }

  get rescuers(): readonly Member[] {
    return this.members.slice(1);
  }

  member(name: string): Member {
    const m = this.members.find((x) => x.name === name);
    if (!m) throw new Error(`no member ${name}`);
    return m;
  }

  /** Sites, keys, tokens and configs; nothing runs yet except the members' own web sites. */
  static async create(opts: CommunityOptions): Promise<Community> {
    const hosts = opts.hosts ?? DEFAULT_HOSTS;
    const names = opts.names ?? DEFAULT_NAMES.slice(0, hosts.length);
    if (hosts.length < 2 || names.length !== hosts.length)
      throw new Error('a community needs an origin and at least one rescuer, one name per address');
    const tuning = { ...DEMO_TUNING, ...opts.tuning };
    if (opts.community?.type === 'flood-insurance' && opts.discovery !== 'registry')
      throw new Error('a flood-insurance community needs discovery: registry (its ledger lives there)');
    // Parsed here so a bad policy fails before anything starts, not in every child's config check.
    const policy =
      opts.community?.type === 'flood-insurance'
        ? ledgerPolicySchema.parse(opts.community.policy ?? {})
        : null;
    const rescuerRps = opts.rescuerRps ?? 20 * opts.originRps;
    mkdirSync(opts.baseDir, { recursive: true, mode: 0o700 });

    const members: Member[] = [];
    // Every front on the same port, each on its own address (port 80 in real life): a client that
    // DNS round robin sends to a rescuer connects to the origin's port at the rescuer's address.
    const frontPort = await commonFreePort(hosts);
    try {
      for (let i = 0; i < hosts.length; i++) {
        const host = hosts[i]!;
        const name = names[i]!;
        const role: MemberRole = i === 0 ? 'origin' : 'rescuer';
        const dir = join(opts.baseDir, name);
        mkdirSync(dir, { recursive: true, mode: 0o700 });
        const site = await startDemoSite({
          host,
          ...(role === 'origin'
            ? { rps: opts.originRps, urgent: (req) => fromMember(req, names.slice(1)) }
            : {}),
        });
        const [front, admin, control] = [frontPort, await freePort(host), await freePort(host)];
        const dnsPort = await freePort(host, { udp: true });
        const keyFile = join(dir, 'member.key');
        const pair = generateKeyPair();
        writePrivateKey(keyFile, pair.privateKeyPem, { overwrite: true });
        const token = randomBytes(24).toString('base64url');
        const tokenFile = join(dir, 'admin.token');
        writeFileSync(tokenFile, `${token}\n`, { mode: 0o600 });
        chmodSync(tokenFile, 0o600);
        members.push({
          name,
          role,
          host,
          dir,
          configFile: join(dir, 'dotslash.yaml'),
          logFile: join(dir, 'daemon.log'),
          stateFile: join(dir, 'state.db'),
          keyFile,
          publicKey: pair.publicKey,
          token,
          tokenFile,
          dns: `${host}:${dnsPort}`,
          zone: name,
          frontUrl: `http://${host}:${front}`,
          adminUrl: `http://${host}:${admin}`,
          controlUrl: `http://${host}:${control}`,
          publicUrl: `http://${name}:${front}`,
          site,
          child: null,
        });
      }
    } catch (err) {
      await Promise.all(members.map((m) => m.site.close()));
      throw err;
    }

    const registry =
      opts.discovery === 'registry' ? await writeRegistryConfig(opts, hosts[0]!, policy) : null;
    for (const m of members) {
      const capacity = m.role === 'origin' ? opts.originRps : rescuerRps;
      const config = {
        name: m.name,
        proxy: {
          listen: hostPortOf(m.frontUrl),
          upstreams: [urlOfSite(m.site)],
          via: m.name,
          access_log: { enabled: false },
          timeouts: { drain_ms: 2_000 },
          // Let the queue form at the site (where it is in real life), not in the proxy's pool.
          connections: 4_096,
        },
        admin: { listen: hostPortOf(m.adminUrl), token_file: m.tokenFile },
        monitor: {
          interval_ms: 500,
          smoothing: 0.5,
          dwell_samples: 2,
          // The crowd, the sites and four daemons share this machine's CPU: judge load by
          // requests only, so the demo shows the request-rate capacity at work.
          cpu: { source: 'processes', capacity: 64 },
          bytes_out: { capacity: 0 },
          bytes_in: { capacity: 0 },
          request_rate: { capacity, lower: 0.5, upper: 0.8 },
        },
        log: { level: opts.logLevel ?? 'info' },
        identity: { key_file: m.keyFile },
        control: { listen: hostPortOf(m.controlUrl) },
        site: { names: [m.name, `www.${m.name}`], front_url: m.frontUrl, public_url: m.publicUrl },
        // Each member is authoritative for its own name: the origin's answers carry its rescuers
        // while rescued; a rescuer's carry its live vhN names.
        dns: {
          mode: 'embedded',
          listen: m.dns,
          ttl: DEMO_NORMAL_TTL_S,
          rescue_ttl: tuning.dns_ttl_s,
          zones: [
            {
              name: m.zone,
              soa: { mname: `ns1.${m.zone}`, rname: `hostmaster.${m.zone}`, minimum: 2 },
              ns: [`ns1.${m.zone}`],
              records: [
                { name: '@', type: 'A', value: m.host },
                { name: 'www', type: 'A', value: m.host },
                { name: 'ns1', type: 'A', value: m.host },
              ],
            },
          ],
        },
        // Discovered through the registry, or listed: never both, so the demo shows the one it says.
        peers: registry
          ? []
          : members
              .filter((p) => p !== m)
              .map((p) => ({ id: p.name, control_url: p.controlUrl, public_key: p.publicKey })),
        ...(registry && {
          registry: {
            urls: [registry.url],
            community: DEMO_COMMUNITY,
            lease_ms: 3_000,
            publish_interval_ms: 1_000,
            ...(policy && { ledger: policy }),
          },
        }),
        rescue: {
          mode: opts.modes?.[m.name] ?? 'on',
          ...tuning,
          predictor: { enabled: false },
        },
        state_file: m.stateFile,
      };
      writeFileSync(m.configFile, stringify(config), { mode: 0o600 });
    }
    return new Community(opts.baseDir, members, opts.entry ?? defaultEntry(), registry);
  }

  /**
   * Spawns every daemon (and the registry, unless `startRegistry` ran already) and waits until each
   * answers on its admin and control listeners.
   */
  async start(timeoutMs = 30_000): Promise<void> {
    if (this.registry && !this.registry.child) await this.startRegistry(timeoutMs);
    this.#hookExit();
    for (const m of this.members) this.spawn(m);
    await Promise.all(this.members.map((m) => this.waitReady(m, timeoutMs)));
  }

  /**
   * Runs `dotslash registry -c FILE` and waits for its health endpoint. Separate from `start` so a
   * closed community's keys can be admitted before the members first register.
   */
  async startRegistry(timeoutMs = 30_000): Promise<void> {
    const r = this.registry;
    if (!r) throw new Error('this community has no registry (discovery is static)');
    this.#hookExit();
    const fd = openSync(r.logFile, 'a', 0o600);
    const child = spawn(this.#entry[0]!, [...this.#entry.slice(1), 'registry', '-c', r.configFile], {
      cwd: dirname(r.configFile),
      env: { ...process.env },
      stdio: ['ignore', fd, fd],
      detached: true,
    });
    closeSync(fd);
    r.child = child;
    const exit = new Promise<number | null>((res) =>
      child.once('exit', (code, signal) => res(signal ? null : code)),
    );
    this.#exits.set('registry', exit);
    const until = Date.now() + timeoutMs;
    for (;;) {
      if (child.exitCode !== null)
        throw new Error(`the registry exited during start-up:\n${tail(r.logFile)}`);
      if (
        await fetch(`${r.url}/v1/health`).then(
          (x) => x.ok,
          () => false,
        )
      )
        return;
      if (Date.now() > until)
        throw new Error(`the registry is not ready in ${timeoutMs} ms:\n${tail(r.logFile)}`);
      await sleep(100);
    }
  }

  /** Children die with this process (once, however many start calls). */
  #hookExit(): void {
    if (this.#exitHooked) return;
    this.#exitHooked = true;
    process.on('exit', this.#onExit);
  }

  /** (Re)starts one member's daemon process; its output goes to its log file. */
  spawn(m: Member): ChildProcess {
    const fd = openSync(m.logFile, 'a', 0o600);
    const env = { ...process.env };
    delete env.DOTSLASH_ADMIN_TOKEN; // each member reads its own token file
    const child = spawn(this.#entry[0]!, [...this.#entry.slice(1), 'start', '-c', m.configFile], {
      cwd: m.dir,
      env,
      stdio: ['ignore', fd, fd],
      // Its own process group: a terminal's Ctrl-C reaches the demo, which stops members in order.
      detached: true,
    });
    closeSync(fd);
    m.child = child;
    this.#exits.set(
      m.name,
      new Promise((resolve) => child.once('exit', (code, signal) => resolve(signal ? null : code))),
    );
    return child;
  }

  /** Resolves with the member's exit code (null after a signal). */
  exited(name: string): Promise<number | null> {
    return this.#exits.get(name) ?? Promise.resolve(null);
  }

  async waitReady(m: Member, timeoutMs: number): Promise<void> {
    const until = Date.now() + timeoutMs;
    let exited = false;
    void this.exited(m.name).then(() => (exited = true));
    for (;;) {
      if (exited) throw new Error(`${m.name} exited during start-up:\n${tail(m.logFile)}`);
      const ok =
        (await fetch(`${m.adminUrl}/healthz`).then(
          (r) => r.ok,
          () => false,
        )) &&
        (await canConnect(m.controlUrl)) &&
        // The DNS listener comes up after the admin one: a member that cannot bind it exits late.
        (await canConnect(`tcp://${m.dns}`));
      if (ok) return;
      if (Date.now() > until) throw new Error(`${m.name} not ready in ${timeoutMs} ms:\n${tail(m.logFile)}`);
      await sleep(100);
    }
  }

  /** Sends `signal` to one member's daemon. */
  kill(name: string, signal: NodeJS.Signals = 'SIGTERM'): void {
    const c = this.member(name).child;
    if (c && c.exitCode === null && c.signalCode === null) c.kill(signal);
  }

  killAll(signal: NodeJS.Signals): void {
    for (const m of this.members) this.kill(m.name, signal);
    const reg = this.registry?.child;
    if (signal === 'SIGKILL' && reg && reg.exitCode === null && reg.signalCode === null) reg.kill(signal);
  }

  /** Graceful stop: SIGTERM to every daemon, SIGKILL after `graceMs`; then the sites close. Idempotent. */
  stop(graceMs = 15_000): Promise<void> {
    this.#stopping ??= (async () => {
      this.killAll('SIGTERM');
      const all = Promise.all(this.members.map((m) => this.exited(m.name)));
      const timer = setTimeout(() => this.killAll('SIGKILL'), graceMs);
      await all;
      clearTimeout(timer);
      // The registry last: members deregister on their way out.
      const reg = this.registry?.child;
      if (reg && reg.exitCode === null && reg.signalCode === null) {
        reg.kill('SIGTERM');
        await Promise.race([this.exited('registry'), sleep(graceMs)]);
        if (reg.exitCode === null && reg.signalCode === null) reg.kill('SIGKILL');
      }
      process.off('exit', this.#onExit);
      this.#exitHooked = false;
      await Promise.all(this.members.map((m) => m.site.close()));
    })();
    return this.#stopping;
  }
}

/**
 * A rescuer's cache fill, as the origin's front vouches for it (not X-Forwarded-For: a rescuer's
 * connection to another 127.0.0.x address leaves from 127.0.0.1, so its address says nothing).
 */
function fromMember(req: IncomingMessage, rescuers: readonly string[]): boolean {
  // Written by the origin's front after it verified the rescuer's signed marker (it drops any copy
  // a client sends), so only a real rescuer fetch carries it.
  const id = req.headers[VERIFIED_RESCUER_HEADER];
  return typeof id === 'string' && rescuers.includes(id);
}

/**
 * The demo registry's config, on the origin's address: one community "demo", open, or
 * flood-insurance under `policy`. Its admin token file is written by the registry at first start.
 */
async function writeRegistryConfig(
  opts: CommunityOptions,
  host: string,
  policy: LedgerPolicy | null,
): Promise<RegistryProcess> {
  const dir = join(opts.baseDir, 'registry');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const [api, admin] = [await freePort(host), await freePort(host)];
  const configFile = join(dir, 'registry.yaml');
  const config = {
    id: 'registry.test',
    listen: `${host}:${api}`,
    state_file: join(dir, 'registry.db'),
    key_file: join(dir, 'registry.key'),
    communities: [
      policy
        ? { name: DEMO_COMMUNITY, type: 'flood-insurance', policy }
        : { name: DEMO_COMMUNITY, type: 'open' },
    ],
    admin: { listen: `${host}:${admin}`, token_file: join(dir, 'admin.token') },
    lease: { min_ms: 1_000, max_ms: 60_000 },
    log: { level: opts.logLevel ?? 'info' },
  };
  writeFileSync(configFile, stringify(config), { mode: 0o600 });
  return {
    configFile,
    logFile: join(dir, 'registry.log'),
    url: `http://${host}:${api}`,
    adminUrl: `http://${host}:${admin}`,
    adminTokenFile: join(dir, 'admin.token'),
    child: null,
  };
}

const hostPortOf = (url: string): string => new URL(url).host;
const urlOfSite = (s: DemoSite): string => `http://${s.address.address}:${s.address.port}`;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function canConnect(url: string): Promise<boolean> {
  const u = new URL(url);
  return new Promise((resolve) => {
    const s = connect(Number(u.port), u.hostname);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** The last lines of a log file (for error messages). */
export function tail(file: string, lines = 20): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}
