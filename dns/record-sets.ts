// The A/AAAA record sets that change with rescue (DESIGN.md "Request paths": first level, coarse),
// as one immutable snapshot. Pure: the controller computes it, the daemon hands it to the embedded
// server or the RFC 2136 updater. No I/O, no clock.
import { isIP } from 'node:net';
import type { DynamicRecordSet, WeightedAddress } from './types.js';

export type { WeightedAddress };

/** A name's whole A+AAAA set (family by address) and the TTL to serve it with. */
export interface NameRecordSet {
  readonly name: string;
  readonly ttl: number;
  readonly addresses: readonly WeightedAddress[];
}

export interface DnsRecordSets {
  /** Grows with every change, so consumers can drop a stale snapshot. */
  readonly version: number;
  /** True while some rescuer's address is in a site name's set. */
  readonly rescued: boolean;
  readonly sets: readonly NameRecordSet[];
}

/** A rescue session as the record sets see it (origin side: a rescuer serving us). */
export interface RescuerAddresses {
  readonly session: string;
  /** The rescuer's public front addresses (IPv4/IPv6 literals). */
  readonly addresses: readonly string[];
  /** Granted rate Rr, requests/s. */
  readonly rate: number;
}

/** A rescuer-side session: its vhost answers with our own addresses while it lives. */
export interface ServedVhost {
  readonly vhost: string;
}

export interface RecordSetInputs {
  readonly version: number;
  /** The site names whose sets carry rescuers (dns.site_names). */
  readonly siteNames: readonly string[];
  /** This member's own public addresses. */
  readonly ownAddresses: readonly string[];
  /** Per site name: its configured own set and normal TTL, when it has one (overrides the two defaults). */
  readonly ownByName?: ReadonlyMap<string, { readonly addresses: readonly string[]; readonly ttl: number }>;
  /** What our own front takes, requests/s (its weight next to rescuers' Rr). */
  readonly ownWeight: number;
  readonly ttl: number;
  readonly rescueTtl: number;
  /** Origin side: active sessions' rescuers (ended or lapsed ones must not be passed). */
  readonly rescuers: readonly RescuerAddresses[];
  /** Rescuer side: the vhN.<self> names of live sessions. */
  readonly vhosts: readonly ServedVhost[];
}

const lower = (n: string): string => n.toLowerCase().replace(/\.$/, '');

/**
 * Site names: our addresses (weight ownWeight) plus each rescuer's addresses (weight Rr split over
 * its addresses), TTL rescueTtl while any rescuer is in, ttl otherwise. An address two parties share
 * adds up. Vhost names: our own addresses, rescue TTL. Sorted, so equal inputs give equal output.
 */
export function computeRecordSets(inp: RecordSetInputs): DnsRecordSets {
  const own = uniqueAddresses(inp.ownAddresses);
  const rescuers = inp.rescuers
    .map((r) => ({ addresses: uniqueAddresses(r.addresses), rate: r.rate }))
    .filter((r) => r.addresses.length > 0 && r.rate > 0);
  const rescued = rescuers.length > 0;
  const siteSet = (ownAddresses: readonly string[]): readonly WeightedAddress[] => {
    const weights = new Map<string, number>();
    const add = (a: string, w: number): void => void weights.set(a, (weights.get(a) ?? 0) + w);
    for (const a of ownAddresses) add(a, Math.max(inp.ownWeight, 1) / ownAddresses.length);
    for (const r of rescuers) for (const a of r.addresses) add(a, r.rate / r.addresses.length);
    return Object.freeze(
      [...weights]
        .map(([address, weight]) => Object.freeze({ address, weight: round(weight) }))
        .sort((a, b) => (a.address < b.address ? -1 : a.address > b.address ? 1 : 0)),
    );
  };
  const sets: NameRecordSet[] = [];
  const seen = new Set<string>();
  const ownSet = own.map((address) => Object.freeze({ address, weight: 1 }));
  for (const n of inp.siteNames.map(lower)) {
    if (seen.has(n)) continue;
    seen.add(n);
    const mine = inp.ownByName?.get(n);
    sets.push(
      Object.freeze({
        name: n,
        ttl: rescued ? inp.rescueTtl : (mine?.ttl ?? inp.ttl),
        addresses: siteSet(mine ? uniqueAddresses(mine.addresses) : own),
      }),
    );
  }
  for (const v of inp.vhosts.map((x) => lower(x.vhost))) {
    if (seen.has(v) || ownSet.length === 0) continue;
    seen.add(v);
    sets.push(Object.freeze({ name: v, ttl: inp.rescueTtl, addresses: Object.freeze(ownSet) }));
  }
  sets.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return Object.freeze({ version: inp.version, rescued, sets: Object.freeze(sets) });
}

const round = (w: number): number => Math.round(w * 1000) / 1000;

function uniqueAddresses(as: readonly string[]): string[] {
  return [...new Set(as.filter((a) => isIP(a) !== 0).map((a) => a.toLowerCase()))];
}

/**
 * The set as a list where each address appears in proportion to its weight (at most `slots`
 * entries, every address at least once): for servers that spread by repetition or rotation.
 */
export function repeatByWeight(addresses: readonly WeightedAddress[], slots = 16): string[] {
  const total = addresses.reduce((s, a) => s + a.weight, 0);
  if (addresses.length === 0 || total <= 0) return addresses.map((a) => a.address);
  const n = Math.max(slots, addresses.length);
  const out: string[] = [];
  for (const a of addresses) {
    const k = Math.max(1, Math.round((a.weight / total) * n));
    for (let i = 0; i < k; i++) out.push(a.address);
  }
  return out;
}

/** A fingerprint of what a consumer must serve (version excluded): equal keys need no update. */
export function recordSetsKey(s: DnsRecordSets): string {
  return JSON.stringify(s.sets);
}

/** The embedded server's form (dns/types.ts DynamicRecordSet): one A and one AAAA set per name, each only when non-empty. */
export function toDynamicRecordSets(s: DnsRecordSets): DynamicRecordSet[] {
  const out: DynamicRecordSet[] = [];
  for (const set of s.sets) {
    for (const [type, family] of [
      ['A', 4],
      ['AAAA', 6],
    ] as const) {
      const values = set.addresses.filter((a) => isIP(a.address) === family);
      if (values.length > 0) out.push({ name: set.name, type, ttl: set.ttl, values });
    }
  }
  return out;
}
