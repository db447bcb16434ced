// The daemon's DNS door for the controller's record sets (issue 4): embedded mode hands them to
// the daemon's own authoritative server (names outside its zones are left out), rfc2136 mode to
// the TSIG-signed UPDATE client that keeps an external primary (BIND, PowerDNS, Knot) in step.
import type pino from 'pino';
import { toDynamicRecordSets, type DnsRecordSets } from '../dns/record-sets.js';
import { inZone, Rfc2136Updater, type UpdaterStatus } from '../dns/rfc2136.js';
import { tsigKey } from '../dns/tsig.js';
import type { DynamicRecordSet } from '../dns/types.js';
import type { DnsUpdateError } from '../dns/update-errors.js';
import type { Config } from './config/schema.js';

/** How long a clean stop waits for the last UPDATE (rescuers out of the zone) to land. */
const STOP_FLUSH_MS = 5_000;

export class DnsRecordPublisher {
  readonly #log: pino.Logger;
  readonly #mode: Config['dns']['mode'];
  readonly #zones: readonly string[];
  readonly #embedded: (sets: readonly DynamicRecordSet[]) => boolean;
  readonly #updater: Rfc2136Updater | null;
  #latest: DnsRecordSets | null = null;

  /** `embedded`: the daemon's setDnsRecordSets (false while its server is not up yet). */
  constructor(cfg: Config, log: pino.Logger, embedded: (sets: readonly DynamicRecordSet[]) => boolean) {
    this.#log = log;
    this.#mode = cfg.dns.mode;
    this.#zones = cfg.dns.zones.map((z) => z.name.toLowerCase().replace(/\.$/, ''));
    this.#embedded = embedded;
    this.#updater = cfg.dns.mode === 'rfc2136' ? createUpdater(cfg, log) : null;
  }

  /** The newest sets (null before the controller's first). */
  get latest(): DnsRecordSets | null {
    return this.#latest;
  }

  get updaterStatus(): UpdaterStatus | null {
    return this.#updater?.status() ?? null;
  }

  /** The controller's publishDns. */
  readonly publish = (sets: DnsRecordSets): void => {
    this.#latest = sets;
    const summary = sets.sets.map((s) => `${s.name}:${s.addresses.map((a) => a.address).join(',')}`);
    this.#log.info(
      { version: sets.version, rescued: sets.rescued, sets: summary },
      'dns record sets changed',
    );
    if (this.#mode === 'embedded') this.resend();
    else this.#updater?.publish(sets);
  };

  /** Embedded: (re)apply the newest sets (the server starts after the controller's first publish). */
  resend(): void {
    if (this.#mode !== 'embedded' || this.#latest === null) return;
    const ours = toDynamicRecordSets(this.#latest).filter((s) => this.#zones.some((z) => inZone(s.name, z)));
    this.#embedded(ours);
  }

  /** rfc2136: waits (bounded) for the last sets to land, then stops retrying. */
  async close(): Promise<void> {
    if (this.#updater === null) return;
    const landed = await this.#updater.settled(STOP_FLUSH_MS);
    if (!landed) this.#log.warn('dns: the last RFC 2136 UPDATE did not land before the stop');
    this.#updater.close();
  }
}

function createUpdater(cfg: Config, log: pino.Logger): Rfc2136Updater {
  const r = cfg.dns.rfc2136;
  // The schema requires these in rfc2136 mode.
  const server = r.server!;
  const cut = server.lastIndexOf(':');
  const updater = new Rfc2136Updater({
    target: {
      host: server.slice(0, cut).replace(/^\[(.*)\]$/, '$1'),
      port: Number(server.slice(cut + 1)),
      zone: r.zone!,
      key: tsigKey(r.key_name!, r.key_secret!, r.algorithm),
    },
    timeoutMs: r.timeout_ms,
  });
  updater.on('applied', (a: { version: number; transport: string; ms: number }) =>
    log.info({ ...a, server, zone: r.zone }, 'dns: RFC 2136 UPDATE applied'),
  );
  updater.on('error', (err: DnsUpdateError) =>
    log.error(
      { code: err.code, server, zone: r.zone },
      `dns: RFC 2136 UPDATE failed (will retry): ${err.message}`,
    ),
  );
  updater.on('skipped', (name: string) =>
    log.warn({ name, zone: r.zone }, `dns: ${name} is outside dns.rfc2136.zone: not updated`),
  );
  return updater;
}
