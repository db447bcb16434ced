// dns/: the embedded authoritative DNS server (issue 4 part A). The public surface:
//
//   const zones = buildZoneSnapshot(config.dns.zones, { defaultTtl: config.dns.ttl, dynamic });
//   const server = new DnsServer({ listen: '127.0.0.1:5353', zones });
//   const { udp, tcp } = await server.listen();        // same port for both
//   server.setZones(buildZoneSnapshot(..., { dynamic: nextSets }));   // atomic swap, any time
//   server.stats(); await server.close();
//
//   DynamicRecordSet = { name: 'www.origin.test', type: 'A', ttl: 20,
//                        values: ['127.0.0.2', { address: '127.0.0.3', weight: 120 }] }
//   replaces the configured set of that name and type. Every answer holds all addresses; the
//   FIRST address rotates: plain rotation for equal weights, smooth weighted round robin over a
//   precomputed cycle (<= 64 encodings) for weights (dns/rotation.ts). Duplicates are merged
//   (weights added), since an RRset has no duplicate records.
//
//   checkZones(zones, opts) -> ZoneIssue[] (code, path, message): what `dotslash validate` reports.
//   resolveSrv('_dotslash._tcp.<domain>', { servers: ['127.0.0.1:5353'] }) -> SrvEndpoint[] in
//   RFC 2782 order (priority, then weighted random).
//
// Behaviour: AA on answers from our zones; NXDOMAIN / NODATA with the SOA in authority (TTL =
// min(SOA TTL, minimum)); REFUSED outside our zones, for classes other than IN and for AXFR/IXFR;
// ANY -> NOTIMP (RFC 8482 allows refusing ANY; nothing here needs it); opcode other than QUERY ->
// NOTIMP; QDCOUNT != 1, records in answer/authority, malformed names or records, trailing bytes ->
// FORMERR; packets with QR=1 or under 12 bytes are dropped. CNAMEs are chased within our zones
// (8 hops). EDNS0: our OPT (UDP size 1232) is echoed; version > 0 -> BADVERS. UDP answers beyond
// 512 bytes (or the advertised size, capped at 1232) carry only the question and TC.
export { answerQuery } from './answer.js';
export type { AnswerResult, Outcome } from './answer.js';
export { DnsErrors, DnsError } from './errors.js';
export type { DnsErrorCode } from './errors.js';
export { normalizeName } from './names.js';
export { answerOrders, MAX_CYCLE } from './rotation.js';
export { DnsServer } from './server.js';
export type { DnsAddresses, DnsServerOptions, DnsStats } from './server.js';
export { buildZoneSnapshot, checkZones } from './snapshot.js';
export type { BuildOptions, ZoneIssue, ZoneSnapshot } from './snapshot.js';
export { orderSrv, resolveSrv } from './srv.js';
export type { ResolveSrvOptions, SrvEndpoint } from './srv.js';
export type {
  DynamicRecordSet,
  RecordConfig,
  RecordTypeName,
  SoaConfig,
  WeightedAddress,
  ZoneConfig,
} from './types.js';
