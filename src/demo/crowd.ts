// The demo's flash crowd: an open-loop generator of anonymous GETs at a set rate (bounded
// concurrency) whose clients follow redirects, resolve the community's names to their 127.0.0.x
// addresses, and tally who sent each final response (the host of the final URL, or, for a
// name resolved through the origin's DNS, the address its answer gave: DNS round robin).
import type { LookupAddress } from 'node:dns';
import { Agent, fetch } from 'undici';
import { DnsStub } from './dns-stub.js';

/** Paths of examples/static-site a visitor fetches (a page and its assets). */
export const CROWD_PATHS = ['/', '/style.css', '/img/logo.svg', '/img/pixel-art.png'];

export interface CrowdTally {
  /** Fetches finished (a followed redirect is part of its fetch). */
  requests: number;
  /** Final responses by member name (status < 400). */
  servedBy: Record<string, number>;
  /** Transport errors, timeouts and final statuses >= 400. */
  errors: number;
  /** Of the errors: timeouts, and final status >= 400. */
  timeouts: number;
  httpErrors: number;
  /** Arrivals not sent because `maxInFlight` fetches were outstanding (not counted as requests). */
  skipped: number;
  /** Fetches that were redirected at least once. */
  redirected: number;
  /** Fetches served by another member than the start URL's host, reached by its DNS answer (not a redirect). */
  viaDnsRr: number;
  /** Start URL lookups through the DNS server that failed (counted as errors). */
  dnsFailures: number;
}

export interface CrowdOptions {
  /** Start URL base, e.g. http://origin.test:8080 */
  target: string;
  /** Host name -> address (exact names, and "*.name" for every subdomain). */
  hosts: Readonly<Record<string, string>>;
  /** Which member a final URL's host belongs to (default: the host itself). */
  memberOf?: (host: string) => string;
  timeoutMs?: number;
  maxInFlight?: number;
  paths?: readonly string[];
  /** Called once per finished fetch (tests use it to look at errors over time). */
  onResult?: (r: CrowdResult) => void;
  /**
   * Resolve the start URL's host through this DNS server ("HOST:PORT"), caching per TTL for each
   * of `clients` simulated clients (default 64); other names still use `hosts`.
   */
  dns?: { server: string; clients?: number };
}

export interface CrowdResult {
  /** When the fetch started and finished (epoch ms). */
  readonly started: number;
  readonly at: number;
  readonly servedBy: string | null;
  readonly status: number | null;
  readonly error: string | null;
}

export class Crowd {
  readonly tally: CrowdTally = {
    requests: 0,
    servedBy: {},
    errors: 0,
    timeouts: 0,
    httpErrors: 0,
    skipped: 0,
    redirected: 0,
    viaDnsRr: 0,
    dnsFailures: 0,
  };
  readonly #opts: CrowdOptions;
  readonly #agent: Agent;
  readonly #stub: DnsStub | null;
  readonly #lookup: ReturnType<typeof nameLookup>;
  /** One agent per address the DNS answers gave: it connects the start host there (keep-alive per address). */
  readonly #byAddress = new Map<string, Agent>();
  #rate = 0;
  #timer: NodeJS.Timeout | null = null;
  #inFlight = 0;
  #seq = 0;
  #idle: (() => void)[] = [];

  constructor(opts: CrowdOptions) {
    this.#opts = opts;
    const lookup = nameLookup(opts.hosts);
    this.#lookup = lookup;
    // No per-host connection cap: a request queued in the client would time out there, not at the
    // origin (which answers a redirected request at once however busy its upstream is).
    this.#agent = new Agent({
      keepAliveTimeout: 4_000,
      connect: { lookup, timeout: opts.timeoutMs ?? 10_000 },
    });
    this.#stub = opts.dns ? new DnsStub(opts.dns.server, opts.dns.clients) : null;
  }

  /** Queries and cache hits of the DNS stub (null without dns). */
  get dnsStats(): DnsStub['stats'] | null {
    return this.#stub?.stats ?? null;
  }

  /** An agent that connects `host` to `address` and resolves every other name as usual. */
  #agentFor(host: string, address: string): Agent {
    let agent = this.#byAddress.get(address);
    if (agent === undefined) {
      const fallback = this.#lookup;
      const lookup: typeof fallback = (hostname, options, cb) => {
        if (hostname.toLowerCase() !== host) return fallback(hostname, options, cb);
        if (typeof options === 'object' && options.all) process.nextTick(cb, null, [{ address, family: 4 }]);
        else process.nextTick(cb, null, address, 4);
      };
      agent = new Agent({
        keepAliveTimeout: 4_000,
        connect: { lookup, timeout: this.#opts.timeoutMs ?? 10_000 },
      });
      this.#byAddress.set(address, agent);
    }
    return agent;
  }

  get rate(): number {
    return this.#rate;
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  /** Sets the arrival rate (fetches/s); 0 stops new arrivals. Open loop: arrivals do not wait for answers. */
  setRate(rps: number): void {
    this.#rate = Math.max(0, rps);
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
    if (this.#rate === 0) return;
    // Ticks of 20 ms, carrying the fraction over, so low and high rates are both exact on average.
    const tickMs = 20;
    let owed = 0;
    let last = performance.now();
    this.#timer = setInterval(() => {
      const now = performance.now();
      owed += ((now - last) * this.#rate) / 1000;
      last = now;
      const max = this.#opts.maxInFlight ?? 4_096;
      while (owed >= 1) {
        owed -= 1;
        if (this.#inFlight >= max) this.tally.skipped++;
        else void this.#one();
      }
    }, tickMs);
  }

  /** Resolves when no fetch is outstanding. */
  idle(): Promise<void> {
    if (this.#inFlight === 0) return Promise.resolve();
    return new Promise((r) => this.#idle.push(r));
  }

  /** Stops arrivals, waits for the outstanding fetches (each bounded by the timeout), closes the agent. */
  async close(): Promise<void> {
    this.setRate(0);
    await this.idle();
    this.#stub?.cancel();
    await Promise.all([this.#agent.close(), ...[...this.#byAddress.values()].map((a) => a.close())]);
  }

  async #one(): Promise<void> {
    this.#inFlight++;
    const paths = this.#opts.paths ?? CROWD_PATHS;
    const path = paths[this.#seq++ % paths.length]!;
    let servedBy: string | null = null;
    let status: number | null = null;
    let error: string | null = null;
    const started = Date.now();
    const client = this.#seq;
    const startHost = new URL(this.#opts.target).hostname.toLowerCase();
    let dnsAddress: string | null = null;
    try {
      const signal = AbortSignal.timeout(this.#opts.timeoutMs ?? 10_000);
      const get = (dispatcher: Agent) =>
        fetch(this.#opts.target + path, { dispatcher, redirect: 'follow', signal });
      let res: Awaited<ReturnType<typeof get>>;
      if (this.#stub === null) res = await get(this.#agent);
      else {
        const answer = await this.#stub.resolve(startHost, client).catch((e: unknown) => {
          this.tally.dnsFailures++;
          throw e;
        });
        // A client connects to the first address of its (cached) answer, as most clients do, and
        // tries the next when that one refuses (a rescuer that died within the answer's TTL).
        for (let k = 0; ; k++) {
          dnsAddress = answer[k]!;
          try {
            res = await get(this.#agentFor(startHost, dnsAddress));
            break;
          } catch (e) {
            if (k + 1 >= answer.length || !refusedAt(e, dnsAddress)) throw e;
          }
        }
      }
      await res.arrayBuffer();
      status = res.status;
      if (res.redirected) this.tally.redirected++;
      if (res.status >= 400) {
        error = `HTTP ${res.status}`;
        this.tally.httpErrors++;
      } else {
        // Not redirected and connected by a DNS answer: the address says who served it.
        const host = !res.redirected && dnsAddress !== null ? dnsAddress : new URL(res.url).hostname;
        servedBy = this.#opts.memberOf?.(host) ?? host;
        if (
          dnsAddress !== null &&
          !res.redirected &&
          servedBy !== (this.#opts.memberOf?.(startHost) ?? startHost)
        )
          this.tally.viaDnsRr++;
      }
    } catch (err) {
      const e = err as Error;
      const timeout = e.name === 'TimeoutError' || e.name === 'AbortError';
      if (timeout) this.tally.timeouts++;
      error = timeout ? 'timeout' : describe(e);
    }
    this.tally.requests++;
    if (servedBy !== null) this.tally.servedBy[servedBy] = (this.tally.servedBy[servedBy] ?? 0) + 1;
    else this.tally.errors++;
    this.#opts.onResult?.({ started, at: Date.now(), servedBy, status, error });
    this.#inFlight--;
    if (this.#inFlight === 0) for (const r of this.#idle.splice(0)) r();
  }
}

/** The connection to `address` itself was refused (not a later hop's): the answer's next address may answer. */
function refusedAt(e: unknown, address: string): boolean {
  const cause = (e as { cause?: { code?: string; address?: string } }).cause;
  return cause?.code === 'ECONNREFUSED' && cause.address === address;
}

function describe(e: Error): string {
  const cause = (e as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? cause?.message ?? e.message;
}

/** A net.connect lookup resolving the community's names (and their subdomains) to 127.0.0.x. */
export function nameLookup(hosts: Readonly<Record<string, string>>) {
  const find = (name: string): string | undefined => {
    const n = name.toLowerCase();
    if (hosts[n] !== undefined) return hosts[n];
    if (/^\d+\.\d+\.\d+\.\d+$/.test(n)) return n;
    for (let i = n.indexOf('.'); i !== -1; i = n.indexOf('.', i + 1)) {
      const wild = hosts[`*${n.slice(i)}`];
      if (wild !== undefined) return wild;
    }
    return undefined;
  };
  return (
    hostname: string,
    options: { all?: boolean } | number,
    cb: (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void,
  ): void => {
    const address = find(hostname);
    if (address === undefined) {
      const err = Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' });
      process.nextTick(cb, err, '', 4);
      return;
    }
    if (typeof options === 'object' && options.all) process.nextTick(cb, null, [{ address, family: 4 }]);
    else process.nextTick(cb, null, address, 4);
  };
}
