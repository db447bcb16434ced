// The hot path: one query packet in, one response packet (or nothing) out. It validates the
// query by hand (bounds, label lengths, counts, compression pointers, the OPT record) and answers
// by copying a cached encoding from the snapshot and patching id, RD and the question (so the
// answer echoes the question's case). Nothing here allocates beyond the response buffer and the
// lookup key.
import type { ZoneSnapshot } from './snapshot.js';
import { RCODE } from './snapshot.js';

const RCODE_BADVERS = 16;
const TYPE_OPT = 41;
const QTYPE_ANY = 255;
const QTYPE_AXFR = 252;
const QTYPE_IXFR = 251;
const CLASS_IN = 1;
/** Answers on UDP without EDNS0 (RFC 1035 4.2.1). */
const PLAIN_UDP_LIMIT = 512;
const OPT_RR_BYTES = 11;

/** Why a packet got no answer or an error answer; the server counts these. */
export type Outcome =
  'answered' | 'nxdomain' | 'nodata' | 'refused' | 'formerr' | 'notimp' | 'badvers' | 'dropped';

export interface AnswerResult {
  /** Undefined: drop the packet (a response, or no readable header). */
  readonly packet: Buffer | undefined;
  readonly outcome: Outcome;
  readonly truncated: boolean;
}

export interface AnswerOptions {
  /** UDP payload size we advertise and honour at most (EDNS0); TCP answers are not limited. */
  readonly maxUdpSize: number;
}

const DROP: AnswerResult = { packet: undefined, outcome: 'dropped', truncated: false };

/** Answer one query. `udp` limits the size (TC bit beyond it); TCP answers in full. */
export function answerQuery(
  msg: Buffer,
  zones: ZoneSnapshot,
  udp: boolean,
  opts: AnswerOptions,
): AnswerResult {
  const len = msg.length;
  if (len < 12) return DROP;
  if ((msg[2]! & 0x80) !== 0) return DROP; // QR=1: a response; answering could start a loop
  const opcode = (msg[2]! >> 3) & 0x0f;
  if (opcode !== 0) return headerOnly(msg, RCODE.NOTIMP, 'notimp');
  if (msg.readUInt16BE(4) !== 1 || msg.readUInt16BE(6) !== 0 || msg.readUInt16BE(8) !== 0)
    return headerOnly(msg, RCODE.FORMERR, 'formerr');

  // Question name: plain labels only (a pointer in the first name of a message has nothing to point at).
  let pos = 12;
  for (;;) {
    if (pos >= len) return headerOnly(msg, RCODE.FORMERR, 'formerr');
    const labelLength = msg[pos]!;
    if (labelLength === 0) break;
    if (labelLength > 63) return headerOnly(msg, RCODE.FORMERR, 'formerr');
    pos += labelLength + 1;
    if (pos - 12 > 254) return headerOnly(msg, RCODE.FORMERR, 'formerr'); // a name is at most 255 bytes
  }
  const nameEnd = pos + 1;
  const questionEnd = nameEnd + 4;
  if (questionEnd > len) return headerOnly(msg, RCODE.FORMERR, 'formerr');
  const qtype = msg.readUInt16BE(nameEnd);
  const qclass = msg.readUInt16BE(nameEnd + 2);

  // Additional section: at most one OPT (RFC 6891 6.1.1); other records (TSIG, ...) are skipped.
  let edns = false;
  let ednsSize = 0;
  let ednsVersion = 0;
  pos = questionEnd;
  for (let left = msg.readUInt16BE(10); left > 0; left--) {
    const nameStart = pos;
    pos = skipName(msg, pos);
    if (pos < 0 || pos + 10 > len) return headerOnly(msg, RCODE.FORMERR, 'formerr');
    const type = msg.readUInt16BE(pos);
    const rdEnd = pos + 10 + msg.readUInt16BE(pos + 8);
    if (rdEnd > len) return headerOnly(msg, RCODE.FORMERR, 'formerr');
    if (type === TYPE_OPT) {
      if (edns || pos !== nameStart + 1 || msg[nameStart] !== 0)
        return headerOnly(msg, RCODE.FORMERR, 'formerr');
      edns = true;
      ednsSize = msg.readUInt16BE(pos + 2);
      ednsVersion = msg[pos + 5]!;
    }
    pos = rdEnd;
  }
  if (pos !== len) return headerOnly(msg, RCODE.FORMERR, 'formerr'); // trailing bytes

  const limit = !udp
    ? 65535
    : edns
      ? Math.min(Math.max(ednsSize, PLAIN_UDP_LIMIT), opts.maxUdpSize)
      : PLAIN_UDP_LIMIT;
  if (edns && ednsVersion > 0) return withQuestion(msg, questionEnd, RCODE_BADVERS, edns, opts, 'badvers');
  if (qclass !== CLASS_IN) return withQuestion(msg, questionEnd, RCODE.REFUSED, edns, opts, 'refused');
  if (qtype === QTYPE_ANY) return withQuestion(msg, questionEnd, RCODE.NOTIMP, edns, opts, 'notimp');
  if (qtype === QTYPE_AXFR || qtype === QTYPE_IXFR)
    return withQuestion(msg, questionEnd, RCODE.REFUSED, edns, opts, 'refused');

  // The lookup key is the name's wire form, lower-cased (ASCII only matters: zone names are ASCII).
  const key = msg.toString('latin1', 12, nameEnd).toLowerCase();
  const entry = zones.names.get(key);
  if (entry === undefined) return negative(msg, key, questionEnd, zones, edns, limit, opts);
  const chosen = entry.answers.get(qtype) ?? entry.other;
  const encodings = chosen.encodings;
  let cached = encodings[0]!;
  if (encodings.length > 1) {
    cached = encodings[chosen.cursor]!;
    chosen.cursor = (chosen.cursor + 1) % encodings.length;
  }

  const size = cached.length + (edns ? OPT_RR_BYTES : 0);
  const truncated = size > limit;
  const out = Buffer.allocUnsafe(truncated ? questionEnd + (edns ? OPT_RR_BYTES : 0) : size);
  cached.copy(out, 0, 0, truncated ? questionEnd : cached.length);
  msg.copy(out, 0, 0, 2); // id
  msg.copy(out, 12, 12, questionEnd); // the question as asked (case, type)
  out[2] = (out[2]! & 0xfe) | (msg[2]! & 0x01); // RD echoed
  if (truncated) {
    out[2] |= 0x02; // TC: retry over TCP
    out.fill(0, 6, 10); // no answer or authority records
  }
  if (edns) writeOpt(out, out.length - OPT_RR_BYTES, 0, opts);
  const outcome =
    chosen !== entry.other ? 'answered' : chosen.rcode === RCODE.NXDOMAIN ? 'nxdomain' : 'nodata';
  return { packet: out, outcome, truncated };
}

/** A name we have no entry for: NXDOMAIN with the zone's SOA when inside one of our zones, else REFUSED. */
function negative(
  msg: Buffer,
  key: string,
  questionEnd: number,
  zones: ZoneSnapshot,
  edns: boolean,
  limit: number,
  opts: AnswerOptions,
): AnswerResult {
  // Walk the name's suffixes (label boundaries) looking for a zone apex.
  for (let at = 0; at < key.length - 1; at += key.charCodeAt(at) + 1) {
    const zone = zones.zones.get(key.slice(at));
    if (zone === undefined) continue;
    const tail = zone.negativeTail;
    const size = questionEnd + 2 + tail.length + (edns ? OPT_RR_BYTES : 0);
    const truncated = size > limit;
    const out = Buffer.allocUnsafe(truncated ? questionEnd + (edns ? OPT_RR_BYTES : 0) : size);
    msg.copy(out, 0, 0, questionEnd);
    out[2] = 0x84 | (msg[2]! & 0x01) | (truncated ? 0x02 : 0); // QR AA (TC) RD
    out[3] = RCODE.NXDOMAIN;
    out.writeUInt16BE(0, 6);
    out.writeUInt16BE(truncated ? 0 : 1, 8);
    out.writeUInt16BE(0, 10);
    if (!truncated) {
      out.writeUInt16BE(0xc000 | (12 + at), questionEnd); // owner: the apex inside the question
      tail.copy(out, questionEnd + 2);
    }
    if (edns) writeOpt(out, out.length - OPT_RR_BYTES, 0, opts);
    return { packet: out, outcome: 'nxdomain', truncated };
  }
  return withQuestion(msg, questionEnd, RCODE.REFUSED, edns, opts, 'refused');
}

/** Header and question, no records (REFUSED, NOTIMP for ANY, BADVERS); an OPT when the query had one. */
function withQuestion(
  msg: Buffer,
  questionEnd: number,
  rcode: number,
  edns: boolean,
  opts: AnswerOptions,
  outcome: Outcome,
): AnswerResult {
  const out = Buffer.allocUnsafe(questionEnd + (edns ? OPT_RR_BYTES : 0));
  msg.copy(out, 0, 0, questionEnd);
  out[2] = 0x80 | (msg[2]! & 0x01); // QR, opcode QUERY, not authoritative, RD echoed
  out[3] = rcode & 0x0f;
  out.fill(0, 6, 12);
  if (edns) writeOpt(out, questionEnd, rcode >> 4, opts);
  return { packet: out, outcome, truncated: false };
}

/** Only the header: the question could not be read (FORMERR) or the opcode is not QUERY (NOTIMP). */
function headerOnly(msg: Buffer, rcode: number, outcome: Outcome): AnswerResult {
  const out = Buffer.alloc(12);
  msg.copy(out, 0, 0, 2);
  out[2] = 0x80 | (msg[2]! & 0x79); // QR, the query's opcode and RD
  out[3] = rcode;
  return { packet: out, outcome, truncated: false };
}

/** Our OPT record at `at` (root owner, our UDP size, extended rcode, version 0) and ARCOUNT = 1. */
function writeOpt(out: Buffer, at: number, extendedRcode: number, opts: AnswerOptions): void {
  out[at] = 0;
  out.writeUInt16BE(TYPE_OPT, at + 1);
  out.writeUInt16BE(opts.maxUdpSize, at + 3);
  out[at + 5] = extendedRcode;
  out[at + 6] = 0; // version
  out.writeUInt16BE(0, at + 7); // flags (no DO: we do not sign)
  out.writeUInt16BE(0, at + 9); // no options
  out.writeUInt16BE(1, 10);
}

/** The end of the name at `pos` (labels, maybe ending in a pointer), or -1 when malformed. Pointers are not followed. */
function skipName(msg: Buffer, pos: number): number {
  const len = msg.length;
  for (let total = 0; ;) {
    if (pos >= len) return -1;
    const b = msg[pos]!;
    if (b === 0) return pos + 1;
    if ((b & 0xc0) === 0xc0) {
      if (pos + 2 > len) return -1;
      // A pointer must point backwards (at an earlier name); forward or self pointers are how loops start.
      return (((b & 0x3f) << 8) | msg[pos + 1]!) < pos ? pos + 2 : -1;
    }
    if (b > 63) return -1;
    total += b + 1;
    if (total > 254) return -1;
    pos += b + 1;
  }
}
