// The zone data the dns/ folder serves, as plain types defined on the data-path side: the config
// schema (src/config/schema.ts) and the controller produce values of these shapes; dns/ imports
// nothing from the control plane.

/** Record types an embedded zone can hold (SOA comes from the zone's `soa`). */
export type RecordTypeName = 'A' | 'AAAA' | 'CNAME' | 'TXT' | 'SRV' | 'NS';

export interface SoaConfig {
  /** Primary name server. */
  readonly mname: string;
  /** Responsible mailbox as a name (hostmaster.example.org). */
  readonly rname: string;
  /** Unset = seconds since the epoch when the snapshot is built (so each reload raises it). */
  readonly serial?: number | undefined;
  readonly refresh: number;
  readonly retry: number;
  readonly expire: number;
  /** Negative-caching TTL (RFC 2308): the TTL of NXDOMAIN / NODATA answers. */
  readonly minimum: number;
  /** TTL of the SOA record itself; unset = the default TTL. */
  readonly ttl?: number | undefined;
}

/**
 * One record set in a zone. `name` is relative to the zone ("www"), "@" for the apex, or absolute
 * (ends in the zone name, or with a trailing dot). Values by type: A/AAAA an address; CNAME, NS
 * and the SRV target a name, always absolute (the trailing dot optional); SRV "priority weight
 * port target"; TXT a string (split into 255-byte strings when longer) or an array of strings
 * (one record of several character-strings).
 */
export interface RecordConfig {
  readonly name: string;
  readonly type: RecordTypeName;
  readonly ttl?: number | undefined;
  readonly values: readonly (string | readonly string[])[];
}

export interface ZoneConfig {
  /** The zone apex, e.g. origin.test. */
  readonly name: string;
  readonly soa: SoaConfig;
  /** The apex NS set (names). */
  readonly ns: readonly string[];
  readonly records: readonly RecordConfig[];
}

/** An address with its weight: the share of answers that list it first (smooth weighted round robin). */
export interface WeightedAddress {
  readonly address: string;
  readonly weight: number;
}

/**
 * A record set computed at run time (the rescue record sets of issue 4): it REPLACES the configured
 * set of the same name and type. Plain strings weigh 1. Every answer lists all addresses; the order
 * follows the weights (see dns/rotation.ts). Duplicate addresses are merged, their weights added.
 */
export interface DynamicRecordSet {
  /** Absolute name, inside a configured zone. */
  readonly name: string;
  readonly type: 'A' | 'AAAA';
  readonly ttl: number;
  readonly values: readonly (string | WeightedAddress)[];
}
