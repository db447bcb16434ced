// The controller's third output: the A/AAAA record sets that change with rescue (DESIGN.md
// "Request paths", first level), computed by dns/record-sets.ts from the session table. Origin
// side: active sessions' rescuers join the site names' sets, weighted by Rr; rescuer side: each
// active session's vhN name answers with our own addresses. Ended or lapsed sessions are not
// active, so their addresses leave the set on the tick they end.
import { computeRecordSets, type DnsRecordSets } from '../../dns/record-sets.js';
import type { Session } from '../sessions/session.js';

export interface DnsSettings {
  /** Names whose sets carry rescuers (dns.site_names). */
  readonly siteNames: readonly string[];
  /** Our own addresses for those names. */
  readonly ownAddresses: readonly string[];
  /** A site name's own configured set and TTL (embedded zones), overriding ownAddresses and ttl. */
  readonly ownByName: ReadonlyMap<string, { readonly addresses: readonly string[]; readonly ttl: number }>;
  /** Our own front's weight next to rescuers' Rr (its request capacity, requests/s). */
  readonly ownWeight: number;
  readonly ttl: number;
  readonly rescueTtl: number;
}

export function buildDnsSets(sessions: readonly Session[], dns: DnsSettings, version: number): DnsRecordSets {
  const active = sessions.filter((s) => s.state === 'active' && s.id !== null);
  return computeRecordSets({
    version,
    siteNames: dns.siteNames,
    ownAddresses: dns.ownAddresses,
    ownByName: dns.ownByName,
    ownWeight: dns.ownWeight,
    ttl: dns.ttl,
    rescueTtl: dns.rescueTtl,
    rescuers: active
      .filter((s) => s.role === 'origin')
      .map((s) => ({ session: s.id!, addresses: s.addresses, rate: s.rate })),
    vhosts: active.filter((s) => s.role === 'rescuer' && s.vhost !== null).map((s) => ({ vhost: s.vhost! })),
  });
}
