// The few DNS wire-format pieces the RFC 2136 updater needs that dns-packet cannot write: class
// NONE/ANY deletes with empty RDATA and the TSIG record. Uncompressed names out; a bounded reader
// (pointer loops and overruns are errors) for the server's answers.
import { isIPv4, isIPv6 } from 'node:net';

export const TYPE = { A: 1, SOA: 6, AAAA: 28, TSIG: 250 } as const;
export const CLASS = { IN: 1, NONE: 254, ANY: 255 } as const;
export const OPCODE_UPDATE = 5;
export const RCODE = {
  NOERROR: 0,
  FORMERR: 1,
  SERVFAIL: 2,
  NXDOMAIN: 3,
  NOTIMP: 4,
  REFUSED: 5,
  YXDOMAIN: 6,
  YXRRSET: 7,
  NXRRSET: 8,
  NOTAUTH: 9,
  NOTZONE: 10,
} as const;
export const RCODE_NAMES: Readonly<Record<number, string>> = Object.fromEntries(
  Object.entries(RCODE).map(([k, v]) => [v, k]),
);

/** Lower-case, no trailing dot: the form names are compared in. */
export function canonicalName(name: string): string {
  return name.toLowerCase().replace(/\.$/, '');
}

const LABEL = /^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$/i;

/** True for a host-like DNS name (letters, digits, "-", "_"; labels of 1-63; <= 253 in all). */
export function isDnsName(name: string): boolean {
  const n = canonicalName(name);
  return n.length > 0 && n.length <= 253 && n.split('.').every((l) => LABEL.test(l));
}

/** Uncompressed wire form of a name; the root for "" or ".". Names are lower-cased (canonical, RFC 8945 4.3.3). */
export function encodeName(name: string): Buffer {
  const n = canonicalName(name);
  if (n === '') return Buffer.from([0]);
  const parts: Buffer[] = [];
  for (const label of n.split('.')) {
    const b = Buffer.from(label, 'ascii');
    if (b.length === 0 || b.length > 63) throw new RangeError(`bad DNS label in ${JSON.stringify(name)}`);
    parts.push(Buffer.from([b.length]), b);
  }
  parts.push(Buffer.from([0]));
  const out = Buffer.concat(parts);
  if (out.length > 255) throw new RangeError(`DNS name too long: ${name}`);
  return out;
}

/** One resource record, uncompressed. */
export function encodeRecord(name: string, type: number, klass: number, ttl: number, rdata: Buffer): Buffer {
  const fixed = Buffer.alloc(10);
  fixed.writeUInt16BE(type, 0);
  fixed.writeUInt16BE(klass, 2);
  fixed.writeUInt32BE(ttl >>> 0, 4);
  fixed.writeUInt16BE(rdata.length, 8);
  return Buffer.concat([encodeName(name), fixed, rdata]);
}

/** RDATA of an A (4 bytes) or AAAA (16 bytes) record. */
export function addressRdata(address: string): { type: number; rdata: Buffer } {
  if (isIPv4(address)) return { type: TYPE.A, rdata: Buffer.from(address.split('.').map(Number)) };
  if (!isIPv6(address)) throw new RangeError(`not an IP address: ${address}`);
  const [head = '', tail = ''] = address.includes('::') ? address.split('::') : [address, ''];
  const hs = head ? head.split(':') : [];
  const ts = tail ? tail.split(':') : [];
  // An embedded IPv4 tail (::ffff:1.2.3.4) is two groups.
  const expand = (gs: string[]): string[] =>
    gs.flatMap((g) => {
      if (!g.includes('.')) return [g];
      const [a = 0, b = 0, c = 0, d = 0] = g.split('.').map(Number);
      return [((a << 8) | b).toString(16), ((c << 8) | d).toString(16)];
    });
  const h = expand(hs);
  const t = expand(ts);
  const groups = address.includes('::')
    ? [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t]
    : h;
  const rdata = Buffer.alloc(16);
  groups.forEach((g, i) => rdata.writeUInt16BE(parseInt(g, 16), i * 2));
  return { type: TYPE.AAAA, rdata };
}

export class WireError extends Error {}

/** A bounds-checked cursor over a received message. */
export class WireReader {
  offset = 0;
  constructor(readonly buf: Buffer) {}

  private need(n: number): void {
    if (this.offset + n > this.buf.length) throw new WireError(`message truncated at byte ${this.offset}`);
  }
  u8(): number {
    this.need(1);
    return this.buf.readUInt8(this.offset++);
  }
  u16(): number {
    this.need(2);
    const v = this.buf.readUInt16BE(this.offset);
    this.offset += 2;
    return v;
  }
  u32(): number {
    this.need(4);
    const v = this.buf.readUInt32BE(this.offset);
    this.offset += 4;
    return v;
  }
  bytes(n: number): Buffer {
    this.need(n);
    const b = this.buf.subarray(this.offset, this.offset + n);
    this.offset += n;
    return b;
  }
  /** A possibly compressed name, canonical; follows at most 64 pointers, only backwards. */
  name(): string {
    const labels: string[] = [];
    let pos = this.offset;
    let end = -1;
    for (let hops = 0; ;) {
      if (pos >= this.buf.length) throw new WireError('name runs past the end of the message');
      const len = this.buf[pos]!;
      if (len === 0) {
        pos += 1;
        break;
      }
      if ((len & 0xc0) === 0xc0) {
        if (pos + 1 >= this.buf.length) throw new WireError('truncated name pointer');
        const target = ((len & 0x3f) << 8) | this.buf[pos + 1]!;
        if (end < 0) end = pos + 2;
        if (target >= pos || ++hops > 64) throw new WireError('bad name compression pointer');
        pos = target;
        continue;
      }
      if (len > 63) throw new WireError(`bad label length ${len}`);
      if (pos + 1 + len > this.buf.length) throw new WireError('label runs past the end of the message');
      labels.push(this.buf.toString('latin1', pos + 1, pos + 1 + len));
      pos += 1 + len;
    }
    this.offset = end < 0 ? pos : end;
    return canonicalName(labels.join('.'));
  }
}

export interface Header {
  id: number;
  flags: number;
  qd: number;
  an: number;
  ns: number;
  ar: number;
}

export function readHeader(r: WireReader): Header {
  return { id: r.u16(), flags: r.u16(), qd: r.u16(), an: r.u16(), ns: r.u16(), ar: r.u16() };
}

export interface RawRecord {
  /** Offset of the record's first byte (its owner name). */
  start: number;
  name: string;
  type: number;
  klass: number;
  ttl: number;
  rdataStart: number;
  rdata: Buffer;
}

export function readRecord(r: WireReader): RawRecord {
  const start = r.offset;
  const name = r.name();
  const type = r.u16();
  const klass = r.u16();
  const ttl = r.u32();
  const len = r.u16();
  const rdataStart = r.offset;
  return { start, name, type, klass, ttl, rdataStart, rdata: r.bytes(len) };
}

/** Skips the question/zone section entries (name, type, class). */
export function skipQuestion(r: WireReader): void {
  r.name();
  r.bytes(4);
}
