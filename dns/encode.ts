// Encodes the cached responses: a small DNS message writer with name compression (RFC 1035
// 4.1.4). It runs when a zone snapshot is built, never per query; the hot path only copies and
// patches what this produced.
import { isIPv4, isIPv6 } from 'node:net';

export const TYPE = { A: 1, NS: 2, CNAME: 5, SOA: 6, TXT: 16, AAAA: 28, SRV: 33, OPT: 41 } as const;
export const CLASS_IN = 1;

/** Record data, already validated. Names are normalised (lower case, no trailing dot). */
export type Rdata =
  | { readonly kind: 'bytes'; readonly bytes: Buffer } // A, AAAA
  | { readonly kind: 'name'; readonly name: string } // CNAME, NS
  | { readonly kind: 'txt'; readonly strings: readonly Buffer[] }
  | {
      readonly kind: 'srv';
      readonly priority: number;
      readonly weight: number;
      readonly port: number;
      readonly target: string;
    }
  | {
      readonly kind: 'soa';
      readonly mname: string;
      readonly rname: string;
      readonly serial: number;
      readonly refresh: number;
      readonly retry: number;
      readonly expire: number;
      readonly minimum: number;
    };

export interface ResourceRecord {
  readonly name: string;
  readonly type: number;
  readonly ttl: number;
  readonly rdata: Rdata;
}

/** Room for the largest TCP message plus one record, so an oversize answer is detected, not overrun. */
const SCRATCH = Buffer.alloc(65535 + 4096);

/** Writes one message with name compression; `finish()` returns a copy of the bytes. */
export class MessageWriter {
  #pos = 0;
  readonly #suffixes = new Map<string, number>();
  #overflow = false;
  readonly #compress: boolean;

  /** `compress` false writes every name in full (for record bytes that are spliced in at varying offsets). */
  constructor(opts: { compress?: boolean } = {}) {
    this.#compress = opts.compress ?? true;
  }

  get length(): number {
    return this.#pos;
  }

  /** True when the message outgrew 65535 bytes (the caller reports DNS_ERR_ANSWER_TOO_LARGE). */
  get overflow(): boolean {
    return this.#overflow;
  }

  u8(v: number): void {
    if (this.#room(1)) SCRATCH[this.#pos++] = v;
  }

  u16(v: number): void {
    if (this.#room(2)) this.#pos = SCRATCH.writeUInt16BE(v, this.#pos);
  }

  u32(v: number): void {
    if (this.#room(4)) this.#pos = SCRATCH.writeUInt32BE(v >>> 0, this.#pos);
  }

  bytes(b: Buffer): void {
    if (this.#room(b.length)) this.#pos += b.copy(SCRATCH, this.#pos);
  }

  /** A name; `compress` false for SRV targets (RFC 2782) and owner-less contexts. */
  name(name: string, compress = true): void {
    if (name === '') return this.u8(0);
    // Most names repeat one already written (owners of an RRset): point at it before splitting.
    const whole = compress && this.#compress ? this.#suffixes.get(name) : undefined;
    if (whole !== undefined) return this.u16(0xc000 | whole);
    const labels = name.split('.');
    for (let i = 0; i < labels.length; i++) {
      const suffix = i === 0 ? name : labels.slice(i).join('.');
      const at = this.#suffixes.get(suffix);
      if (compress && this.#compress && at !== undefined) return this.u16(0xc000 | at);
      // Pointers are 14 bits: only names in the first 16 KiB can be pointed at.
      if (this.#pos < 0x3fff && !this.#suffixes.has(suffix)) this.#suffixes.set(suffix, this.#pos);
      const label = labels[i]!;
      this.u8(label.length);
      if (this.#room(label.length)) this.#pos += SCRATCH.write(label, this.#pos, 'latin1');
    }
    this.u8(0);
  }

  header(flags: number, qd: number, an: number, ns: number, ar: number): void {
    this.u16(0);
    this.u16(flags);
    this.u16(qd);
    this.u16(an);
    this.u16(ns);
    this.u16(ar);
  }

  question(name: string, type: number): void {
    this.name(name, false);
    this.u16(type);
    this.u16(CLASS_IN);
  }

  record(rr: ResourceRecord): void {
    this.name(rr.name);
    this.u16(rr.type);
    this.u16(CLASS_IN);
    this.u32(rr.ttl);
    const lengthAt = this.#pos;
    this.u16(0);
    this.rdata(rr.rdata);
    if (!this.#overflow) SCRATCH.writeUInt16BE(this.#pos - lengthAt - 2, lengthAt);
  }

  rdata(d: Rdata): void {
    switch (d.kind) {
      case 'bytes':
        return this.bytes(d.bytes);
      case 'name':
        return this.name(d.name);
      case 'txt':
        for (const s of d.strings) {
          this.u8(s.length);
          this.bytes(s);
        }
        return;
      case 'srv':
        this.u16(d.priority);
        this.u16(d.weight);
        this.u16(d.port);
        return this.name(d.target, false);
      case 'soa':
        this.name(d.mname);
        this.name(d.rname);
        for (const v of [d.serial, d.refresh, d.retry, d.expire, d.minimum]) this.u32(v);
        return;
    }
  }

  finish(): Buffer {
    return Buffer.from(SCRATCH.subarray(0, this.#pos));
  }

  #room(n: number): boolean {
    if (this.#pos + n > 65535) this.#overflow = true;
    return !this.#overflow;
  }
}

/** The 4 or 16 address bytes, or undefined when `address` is not an address of that family. */
export function addressBytes(address: string, type: 'A' | 'AAAA'): Buffer | undefined {
  if (type === 'A') {
    if (!isIPv4(address)) return undefined;
    return Buffer.from(address.split('.').map(Number));
  }
  if (!isIPv6(address) || address.includes('%')) return undefined;
  let text = address;
  // An embedded IPv4 tail (::ffff:1.2.3.4) becomes two hex groups.
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    const b = v4[1]!.split('.').map(Number);
    text =
      text.slice(0, -v4[1]!.length) +
      `${((b[0]! << 8) | b[1]!).toString(16)}:${((b[2]! << 8) | b[3]!).toString(16)}`;
  }
  const [head = '', tail] = text.split('::');
  const headGroups = head === '' ? [] : head.split(':');
  const tailGroups = tail === undefined || tail === '' ? [] : tail.split(':');
  const zeros = tail === undefined ? 0 : 8 - headGroups.length - tailGroups.length;
  const groups = [...headGroups, ...Array<string>(zeros).fill('0'), ...tailGroups];
  if (groups.length !== 8) return undefined;
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}
