// The demo crowd's stub resolver: asks the origin's DNS server (node:dns Resolver over UDP) and
// caches each answer for its TTL, per simulated client, as a browser or OS cache would. Clients
// take the FIRST address of their answer, which the server rotates by weight, so a crowd of
// clients spreads over the origin and its rescuers in proportion to their rates.
import { Resolver } from 'node:dns/promises';

export interface StubStats {
  /** Queries sent to the server (cache misses). */
  queries: number;
  /** Lookups answered from a client's cache. */
  cached: number;
  /** Queries that failed (timeouts, SERVFAIL, no answer). */
  failures: number;
}

interface Cached {
  readonly addresses: readonly string[];
  readonly expires: number;
}

export class DnsStub {
  readonly stats: StubStats = { queries: 0, cached: 0, failures: 0 };
  readonly #resolver: Resolver;
  readonly #clients: number;
  readonly #cache = new Map<string, Cached>();
  readonly #inflight = new Map<string, Promise<readonly string[]>>();

  /** `server`: "HOST:PORT" of the DNS server; `clients`: how many independent caches to model. */
  constructor(server: string, clients = 64) {
    this.#resolver = new Resolver({ timeout: 2_000, tries: 2 });
    this.#resolver.setServers([server]);
    this.#clients = clients;
  }

  /** The addresses client `n` would use for `name` now (its cached answer, or a fresh query). */
  async resolve(name: string, n: number): Promise<readonly string[]> {
    const key = `${n % this.#clients}/${name.toLowerCase()}`;
    const hit = this.#cache.get(key);
    if (hit !== undefined && hit.expires > Date.now()) {
      this.stats.cached++;
      return hit.addresses;
    }
    const pending = this.#inflight.get(key);
    if (pending !== undefined) return pending;
    const query = this.#query(name, key);
    this.#inflight.set(key, query);
    try {
      return await query;
    } finally {
      this.#inflight.delete(key);
    }
  }

  async #query(name: string, key: string): Promise<readonly string[]> {
    this.stats.queries++;
    try {
      const records = await this.#resolver.resolve4(name, { ttl: true });
      if (records.length === 0) throw new Error(`no A records for ${name}`);
      const ttl = Math.min(...records.map((r) => r.ttl));
      const addresses = Object.freeze(records.map((r) => r.address));
      this.#cache.set(key, { addresses, expires: Date.now() + ttl * 1000 });
      return addresses;
    } catch (err) {
      this.stats.failures++;
      throw err;
    }
  }

  cancel(): void {
    this.#resolver.cancel();
  }
}
