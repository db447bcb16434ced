// Builds the immutable zone snapshot the server answers from: config zones plus dynamic record
// sets -> validated record sets -> one cached response encoding per (name, answer, order). The
// server swaps whole snapshots (setZones), so a query sees either the old data or the new.
import { MessageWriter, TYPE, addressBytes } from './encode.js';
import type { Rdata, ResourceRecord } from './encode.js';
import { DnsError } from './errors.js';
import type { DnsErrorCode } from './errors.js';
import { inZone, normalizeName, wireKey } from './names.js';
import { answerOrders } from './rotation.js';
import type { DynamicRecordSet, RecordConfig, ZoneConfig } from './types.js';

export const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;
/** QR (response) and AA (authoritative). */
const FLAGS_AUTHORITATIVE = 0x8400;
/** Most CNAMEs followed in one answer (loops end here too). */
const MAX_CHAIN = 8;

/** The responses for one (name, query type): one encoding per answer order, served in turn. */
export interface AnswerEntry {
  readonly rcode: number;
  readonly encodings: readonly Buffer[];
  /** Index of the next order to serve: the only mutable field, advanced per query. */
  cursor: number;
}

export interface NameEntry {
  /** Answers by query type for the types this name has (and, for a CNAME, those its target has). */
  readonly answers: ReadonlyMap<number, AnswerEntry>;
  /** Every other query type: NODATA (SOA in authority), or the CNAME chain without data. */
  readonly other: AnswerEntry;
}

export interface ZoneEntry {
  readonly name: string;
  readonly serial: number;
  /** The negative SOA record after its owner name (type .. rdata): spliced after a pointer to the apex. */
  readonly negativeTail: Buffer;
}

export interface ZoneSnapshot {
  /** By the wire form of the lower-cased name. */
  readonly names: ReadonlyMap<string, NameEntry>;
  /** By the wire form of the apex. */
  readonly zones: ReadonlyMap<string, ZoneEntry>;
  /** Record sets served (for status and logs). */
  readonly recordSets: number;
}

export interface BuildOptions {
  /** TTL of records without their own. */
  readonly defaultTtl: number;
  /** Replace the configured set of the same name and type (rescue record sets). */
  readonly dynamic?: readonly DynamicRecordSet[];
  /** SOA serial when a zone sets none; default seconds since the epoch. */
  readonly now?: () => number;
}

/** One problem with zone data: what, and where in the config (relative to `dns`). */
export interface ZoneIssue {
  readonly code: DnsErrorCode;
  readonly path: readonly (string | number)[];
  readonly message: string;
}

interface RecordSet {
  readonly type: number;
  ttl: number;
  readonly rdatas: Rdata[];
  readonly weights: number[];
  /** rdataKey -> index into rdatas. */
  readonly index: Map<string, number>;
  /** Where it was configured, for error messages. */
  readonly path: readonly (string | number)[];
}

interface ZoneData {
  readonly name: string;
  readonly soa: Rdata & { kind: 'soa' };
  readonly soaTtl: number;
  /** name -> type -> set; names are normalised and inside this zone. */
  readonly sets: Map<string, Map<number, RecordSet>>;
}

/** Check zone data without building encodings: every problem found, for `dotslash validate`. */
export function checkZones(zones: readonly ZoneConfig[], opts: BuildOptions): ZoneIssue[] {
  return collect(zones, opts).issues;
}

/** Build the snapshot; throws a DnsError naming the first problem when the data is invalid. */
export function buildZoneSnapshot(zones: readonly ZoneConfig[], opts: BuildOptions): ZoneSnapshot {
  const { data, issues } = collect(zones, opts);
  const first = issues[0];
  if (first) throw new DnsError(first.code, first.message, first.path);
  const names = new Map<string, NameEntry>();
  const zoneEntries = new Map<string, ZoneEntry>();
  let recordSets = 0;
  for (const zone of data) {
    const negative = negativeRecord(zone);
    zoneEntries.set(wireKey(zone.name), {
      name: zone.name,
      serial: zone.soa.serial,
      negativeTail: negativeTail(negative),
    });
    for (const [name, sets] of zone.sets) {
      recordSets += sets.size;
      names.set(wireKey(name), nameEntry(name, sets, data, negative));
    }
    // Empty non-terminals (the _tcp of _dotslash._tcp.zone) exist: NODATA, not NXDOMAIN.
    for (const name of zone.sets.keys()) {
      for (let n = parentOf(name); n !== undefined && inZone(n, zone.name); n = parentOf(n)) {
        const key = wireKey(n);
        if (!names.has(key)) names.set(key, nameEntry(n, new Map(), data, negative));
      }
    }
  }
  return { names, zones: zoneEntries, recordSets };
}

function parentOf(name: string): string | undefined {
  const dot = name.indexOf('.');
  return dot < 0 ? (name === '' ? undefined : '') : name.slice(dot + 1);
}

// ---- validation: config + dynamic sets -> record sets ----

function collect(
  zones: readonly ZoneConfig[],
  opts: BuildOptions,
): { data: ZoneData[]; issues: ZoneIssue[] } {
  const issues: ZoneIssue[] = [];
  const fail = (code: DnsErrorCode, path: readonly (string | number)[], message: string): void => {
    issues.push({ code, path, message });
  };
  const data: ZoneData[] = [];
  const now = opts.now ?? (() => Math.floor(Date.now() / 1000));

  zones.forEach((z, zi) => {
    const at = (...rest: (string | number)[]): (string | number)[] => ['zones', zi, ...rest];
    const apex = normalizeName(z.name);
    if (apex === undefined || apex === '') {
      fail('DNS_ERR_BAD_NAME', at('name'), `zone name "${z.name}" is not a valid domain name`);
      return;
    }
    for (const other of data) {
      if (inZone(apex, other.name) || inZone(other.name, apex))
        fail(
          'DNS_ERR_ZONE_OVERLAP',
          at('name'),
          `zone ${apex} overlaps zone ${other.name} (zones must not nest)`,
        );
    }
    const mname = normalizeName(z.soa.mname);
    const rname = normalizeName(z.soa.rname.replace('@', '.'));
    if (mname === undefined)
      fail('DNS_ERR_BAD_NAME', at('soa', 'mname'), `"${z.soa.mname}" is not a valid domain name`);
    if (rname === undefined)
      fail('DNS_ERR_BAD_NAME', at('soa', 'rname'), `"${z.soa.rname}" is not a valid mailbox name`);
    const soa = {
      kind: 'soa' as const,
      mname: mname ?? '',
      rname: rname ?? '',
      serial: (z.soa.serial ?? now()) >>> 0,
      refresh: z.soa.refresh,
      retry: z.soa.retry,
      expire: z.soa.expire,
      minimum: z.soa.minimum,
    };
    const zone: ZoneData = { name: apex, soa, soaTtl: z.soa.ttl ?? opts.defaultTtl, sets: new Map() };
    addRdata(zone, apex, TYPE.SOA, zone.soaTtl, soa, 1, at('soa'));
    z.ns.forEach((ns, i) => {
      const target = normalizeName(ns);
      if (target === undefined || target === '')
        fail('DNS_ERR_BAD_NAME', at('ns', i), `"${ns}" is not a valid name server name`);
      else addRdata(zone, apex, TYPE.NS, opts.defaultTtl, { kind: 'name', name: target }, 1, at('ns', i));
    });
    z.records.forEach((r, ri) => addRecord(zone, r, opts.defaultTtl, at('records', ri), fail));
    data.push(zone);
  });

  (opts.dynamic ?? []).forEach((set, si) => {
    const at = (...rest: (string | number)[]): (string | number)[] => ['dynamic', si, ...rest];
    const name = normalizeName(set.name);
    if (name === undefined)
      return fail('DNS_ERR_BAD_NAME', at('name'), `"${set.name}" is not a valid domain name`);
    const zone = data.find((z) => inZone(name, z.name));
    if (zone === undefined)
      return fail('DNS_ERR_OUTSIDE_ZONE', at('name'), `${name} is outside every configured zone`);
    const type = TYPE[set.type];
    zone.sets.get(name)?.delete(type);
    const merged = new Map<string, number>();
    set.values.forEach((v, vi) => {
      const address = typeof v === 'string' ? v : v.address;
      const weight = typeof v === 'string' ? 1 : v.weight;
      if (!(Number.isFinite(weight) && weight > 0))
        return fail('DNS_ERR_BAD_WEIGHT', at('values', vi), `weight ${weight} of ${address} is not above 0`);
      if (addressBytes(address, set.type) === undefined)
        return fail(
          'DNS_ERR_BAD_ADDRESS',
          at('values', vi),
          `"${address}" is not an ${set.type === 'A' ? 'IPv4' : 'IPv6'} address`,
        );
      merged.set(address, (merged.get(address) ?? 0) + weight);
    });
    for (const [address, weight] of merged)
      addRdata(
        zone,
        name,
        type,
        set.ttl,
        { kind: 'bytes', bytes: addressBytes(address, set.type)! },
        weight,
        at('values'),
      );
  });

  for (const zone of data) {
    for (const [name, sets] of zone.sets) {
      const cname = sets.get(TYPE.CNAME);
      if (cname && sets.size > 1)
        fail('DNS_ERR_CNAME_CONFLICT', cname.path, `${name} has a CNAME and other records`);
      if (cname && cname.rdatas.length > 1)
        fail('DNS_ERR_CNAME_CONFLICT', cname.path, `${name} has more than one CNAME`);
    }
  }
  return { data, issues };
}

type Fail = (code: DnsErrorCode, path: readonly (string | number)[], message: string) => void;

function addRecord(
  zone: ZoneData,
  r: RecordConfig,
  defaultTtl: number,
  path: (string | number)[],
  fail: Fail,
): void {
  const name = ownerName(r.name, zone.name);
  if (name === undefined)
    return fail('DNS_ERR_BAD_NAME', [...path, 'name'], `"${r.name}" is not a valid domain name`);
  if (!inZone(name, zone.name))
    return fail('DNS_ERR_OUTSIDE_ZONE', [...path, 'name'], `${name} is outside zone ${zone.name}`);
  const type = TYPE[r.type];
  const ttl = r.ttl ?? defaultTtl;
  r.values.forEach((value, vi) => {
    const rdata = parseValue(r.type, value);
    if (typeof rdata === 'string')
      return fail(
        rdata.startsWith('!') ? 'DNS_ERR_BAD_ADDRESS' : 'DNS_ERR_BAD_RDATA',
        [...path, 'values', vi],
        rdata.replace(/^!/, ''),
      );
    if (r.type === 'NS' && name !== zone.name)
      return fail(
        'DNS_ERR_BAD_RDATA',
        [...path, 'type'],
        `NS below the apex (${name}) would delegate, which the embedded server does not do`,
      );
    if (r.type === 'CNAME' && name === zone.name)
      return fail(
        'DNS_ERR_CNAME_CONFLICT',
        [...path, 'name'],
        `the zone apex ${name} cannot be a CNAME (it has SOA and NS)`,
      );
    addRdata(zone, name, type, ttl, rdata, 1, path);
  });
}

/** "@" = apex; ends in the zone name or a dot = absolute; otherwise relative to the zone. */
function ownerName(name: string, zone: string): string | undefined {
  if (name === '@') return zone;
  if (name.endsWith('.')) return normalizeName(name);
  const n = normalizeName(name);
  if (n === undefined) return undefined;
  return inZone(n, zone) ? n : normalizeName(`${n}.${zone}`);
}

/** Rdata, or a message (starting with "!" for an address problem). */
function parseValue(type: RecordConfig['type'], value: string | readonly string[]): Rdata | string {
  if (type === 'TXT') {
    const parts = typeof value === 'string' ? splitTxt(value) : value.map((s) => Buffer.from(s, 'utf8'));
    if (parts.some((p) => p.length > 255)) return 'each string of a TXT record must be at most 255 bytes';
    return { kind: 'txt', strings: parts.length === 0 ? [Buffer.alloc(0)] : parts };
  }
  if (typeof value !== 'string') return `a ${type} value is a single string`;
  switch (type) {
    case 'A':
    case 'AAAA': {
      const bytes = addressBytes(value, type);
      return bytes
        ? { kind: 'bytes', bytes }
        : `!"${value}" is not an ${type === 'A' ? 'IPv4' : 'IPv6'} address`;
    }
    case 'CNAME':
    case 'NS': {
      const name = normalizeName(value);
      return name ? { kind: 'name', name } : `"${value}" is not a valid domain name`;
    }
    case 'SRV': {
      const m = /^\s*(\d+)\s+(\d+)\s+(\d+)\s+(\S+)\s*$/.exec(value);
      const nums = m ? [m[1], m[2], m[3]].map(Number) : [];
      const target = m ? normalizeName(m[4]!) : undefined;
      if (!m || nums.some((v) => v > 65535) || target === undefined)
        return `SRV value "${value}" must be "priority weight port target" (numbers 0-65535, a host name)`;
      return { kind: 'srv', priority: nums[0]!, weight: nums[1]!, port: nums[2]!, target };
    }
  }
}

/** A long TXT value becomes several character-strings of at most 255 bytes (RFC 7208 3.3 style). */
function splitTxt(value: string): Buffer[] {
  const bytes = Buffer.from(value, 'utf8');
  const parts: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += 255) parts.push(bytes.subarray(i, i + 255));
  return parts;
}

function addRdata(
  zone: ZoneData,
  name: string,
  type: number,
  ttl: number,
  rdata: Rdata,
  weight: number,
  path: readonly (string | number)[],
): void {
  let sets = zone.sets.get(name);
  if (!sets) zone.sets.set(name, (sets = new Map()));
  let set = sets.get(type);
  if (!set) sets.set(type, (set = { type, ttl, rdatas: [], weights: [], index: new Map(), path }));
  // An RRset has one TTL (RFC 2181 5.2): the lowest configured wins.
  set.ttl = Math.min(set.ttl, ttl);
  const key = rdataKey(rdata);
  const same = set.index.get(key);
  if (same !== undefined) set.weights[same]! += weight;
  else {
    set.index.set(key, set.rdatas.length);
    set.rdatas.push(rdata);
    set.weights.push(weight);
  }
}

/** Equal keys = the same record data (an RRset holds no duplicates). */
function rdataKey(d: Rdata): string {
  switch (d.kind) {
    case 'bytes':
      return d.bytes.toString('hex');
    case 'name':
      return d.name;
    case 'txt':
      return d.strings.map((x) => x.toString('hex')).join(',');
    case 'srv':
      return `${d.priority} ${d.weight} ${d.port} ${d.target}`;
    case 'soa':
      return 'soa';
  }
}

// ---- encoding: record sets -> cached responses ----

function negativeRecord(zone: ZoneData): ResourceRecord {
  // RFC 2308 3: the SOA's TTL in a negative answer is min(SOA TTL, SOA MINIMUM).
  return { name: zone.name, type: TYPE.SOA, ttl: Math.min(zone.soaTtl, zone.soa.minimum), rdata: zone.soa };
}

function negativeTail(rr: ResourceRecord): Buffer {
  const w = new MessageWriter({ compress: false });
  w.u16(rr.type);
  w.u16(1);
  w.u32(rr.ttl);
  w.u16(0);
  w.rdata(rr.rdata);
  const out = w.finish();
  out.writeUInt16BE(out.length - 10, 8);
  return out;
}

function records(name: string, set: RecordSet, order: readonly number[]): ResourceRecord[] {
  return order.map((i) => ({ name, type: set.type, ttl: set.ttl, rdata: set.rdatas[i]! }));
}

function nameEntry(
  name: string,
  sets: ReadonlyMap<number, RecordSet>,
  all: readonly ZoneData[],
  negative: ResourceRecord,
): NameEntry {
  const answers = new Map<number, AnswerEntry>();
  const cname = sets.get(TYPE.CNAME);
  if (cname === undefined) {
    for (const [type, set] of sets)
      answers.set(type, encodeEntry(name, type, [], { name, set }, undefined, 0));
    return { answers, other: encodeEntry(name, 0, [], undefined, negative, RCODE.NOERROR) };
  }
  // CNAME: chase within our zones (RFC 1034 4.3.2 step 3a); the rcode is the last name's (RFC 6604).
  const chain: ResourceRecord[] = [];
  let current = name;
  let currentSet: RecordSet = cname;
  let end: { sets: ReadonlyMap<number, RecordSet>; name: string } | undefined;
  let endNegative: ResourceRecord | undefined;
  let endRcode: number = RCODE.NOERROR;
  for (let hop = 0; hop < MAX_CHAIN; hop++) {
    const rr = records(current, currentSet, [0])[0]!;
    chain.push(rr);
    const target = (rr.rdata as { name: string }).name;
    const targetZone = all.find((z) => inZone(target, z.name));
    if (targetZone === undefined) break; // outside our zones: the resolver follows it
    const targetSets = targetZone.sets.get(target);
    if (targetSets === undefined) {
      const isNonTerminal = [...targetZone.sets.keys()].some((n) => n.endsWith(`.${target}`));
      endRcode = isNonTerminal ? RCODE.NOERROR : RCODE.NXDOMAIN;
      endNegative = negativeRecord(targetZone);
      break;
    }
    const next = targetSets.get(TYPE.CNAME);
    if (next === undefined || hop === MAX_CHAIN - 1 || chain.some((c) => c.name === target)) {
      end = { sets: next === undefined ? targetSets : new Map(), name: target };
      endNegative = negativeRecord(targetZone);
      break;
    }
    current = target;
    currentSet = next;
  }
  answers.set(TYPE.CNAME, encodeEntry(name, TYPE.CNAME, [], { name, set: cname }, undefined, 0));
  if (end) {
    for (const [type, set] of end.sets)
      answers.set(type, encodeEntry(name, type, chain, { name: end.name, set }, undefined, 0));
  }
  return { answers, other: encodeEntry(name, 0, chain, undefined, endNegative, endRcode) };
}

function encodeEntry(
  qname: string,
  qtype: number,
  prefix: readonly ResourceRecord[],
  final: { name: string; set: RecordSet } | undefined,
  authority: ResourceRecord | undefined,
  rcode: number,
): AnswerEntry {
  const orders = final ? answerOrders(final.set.weights) : [[]];
  const encodings = orders.map((order) => {
    const answer = [...prefix, ...(final ? records(final.name, final.set, order) : [])];
    const w = new MessageWriter();
    w.header(FLAGS_AUTHORITATIVE | rcode, 1, answer.length, authority ? 1 : 0, 0);
    w.question(qname, qtype);
    for (const rr of answer) w.record(rr);
    if (authority) w.record(authority);
    if (w.overflow)
      throw new DnsError(
        'DNS_ERR_ANSWER_TOO_LARGE',
        `the answer for ${qname} exceeds 65535 bytes`,
        final?.set.path ?? [],
      );
    return w.finish();
  });
  return { rcode, encodings, cursor: 0 };
}
