// TSIG (RFC 8945) with hmac-sha256: signs an outgoing DNS message and verifies the server's
// signed answer. node:crypto does the HMAC; the record itself is hand-encoded (dns-packet has no TSIG).
import { createHmac, timingSafeEqual } from 'node:crypto';
import {
  CLASS,
  encodeName,
  encodeRecord,
  readHeader,
  readRecord,
  skipQuestion,
  TYPE,
  WireError,
  WireReader,
} from './update-wire.js';

export const TSIG_ALGORITHMS = ['hmac-sha256'] as const;
export type TsigAlgorithm = (typeof TSIG_ALGORITHMS)[number];

export interface TsigKey {
  /** The key's name as the server knows it (named.conf `key "<name>"`). */
  readonly name: string;
  readonly algorithm: TsigAlgorithm;
  readonly secret: Buffer;
}

/** TSIG error field values (RFC 8945 section 3). */
export const TSIG_ERROR = { BADSIG: 16, BADKEY: 17, BADTIME: 18, BADTRUNC: 22 } as const;

const MAC_SIZE = 32;
/** Seconds of clock difference both sides accept (RFC 8945 recommends 300). */
export const DEFAULT_FUDGE_S = 300;

/** A key from config; the secret is base64 as `tsig-keygen` prints it. */
export function tsigKey(
  name: string,
  secretBase64: string,
  algorithm: TsigAlgorithm = 'hmac-sha256',
): TsigKey {
  const clean = secretBase64.trim();
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(clean) || clean.length % 4 !== 0)
    throw new RangeError('key_secret must be base64 (as tsig-keygen prints it)');
  const secret = Buffer.from(clean, 'base64');
  if (secret.length < 16) throw new RangeError('key_secret is shorter than 16 bytes');
  return Object.freeze({ name, algorithm, secret });
}

/** "hmac-sha256." on the wire. */
const algorithmName = (k: TsigKey): Buffer => encodeName(k.algorithm);

function time48(seconds: number): Buffer {
  const b = Buffer.alloc(6);
  b.writeUInt16BE(Math.floor(seconds / 2 ** 32) & 0xffff, 0);
  b.writeUInt32BE(seconds >>> 0, 2);
  return b;
}

/** The "TSIG variables" every MAC covers (RFC 8945 4.3.3). */
function variables(key: TsigKey, timeSigned: number, fudge: number, error: number, other: Buffer): Buffer {
  const mid = Buffer.alloc(6);
  mid.writeUInt16BE(CLASS.ANY, 0);
  mid.writeUInt32BE(0, 2);
  const tail = Buffer.alloc(6);
  tail.writeUInt16BE(fudge, 0);
  tail.writeUInt16BE(error, 2);
  tail.writeUInt16BE(other.length, 4);
  return Buffer.concat([encodeName(key.name), mid, algorithmName(key), time48(timeSigned), tail, other]);
}

const hmac = (key: TsigKey, ...parts: Buffer[]): Buffer => {
  const h = createHmac('sha256', key.secret);
  for (const p of parts) h.update(p);
  return h.digest();
};

export interface SignedMessage {
  readonly wire: Buffer;
  /** The request MAC: the answer's MAC covers it. */
  readonly mac: Buffer;
  readonly timeSigned: number;
}

/** Appends a TSIG record to `message` (a complete DNS message without one) and bumps ARCOUNT. */
export function signMessage(
  message: Buffer,
  key: TsigKey,
  nowSeconds = Math.floor(Date.now() / 1000),
  fudge = DEFAULT_FUDGE_S,
): SignedMessage {
  const mac = hmac(key, message, variables(key, nowSeconds, fudge, 0, Buffer.alloc(0)));
  const rdata = Buffer.concat([
    algorithmName(key),
    time48(nowSeconds),
    u16(fudge),
    u16(mac.length),
    mac,
    message.subarray(0, 2), // original ID
    u16(0), // error
    u16(0), // other len
  ]);
  const wire = Buffer.concat([message, encodeRecord(key.name, TYPE.TSIG, CLASS.ANY, 0, rdata)]);
  wire.writeUInt16BE(wire.readUInt16BE(10) + 1, 10);
  return { wire, mac, timeSigned: nowSeconds };
}

const u16 = (v: number): Buffer => {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(v, 0);
  return b;
};

export interface TsigRecord {
  readonly keyName: string;
  readonly algorithm: string;
  readonly timeSigned: number;
  readonly fudge: number;
  readonly mac: Buffer;
  readonly originalId: number;
  readonly error: number;
  readonly other: Buffer;
  /** The message bytes before the TSIG record (ARCOUNT not yet decremented). */
  readonly start: number;
}

/** The TSIG record of a received message (it must be the last additional record), or null. */
export function findTsig(message: Buffer): TsigRecord | null {
  const r = new WireReader(message);
  const h = readHeader(r);
  for (let i = 0; i < h.qd; i++) skipQuestion(r);
  const rest = h.an + h.ns + h.ar;
  let last = null;
  for (let i = 0; i < rest; i++) last = readRecord(r);
  if (last === null || h.ar === 0 || last.type !== TYPE.TSIG) return null;
  const d = new WireReader(message);
  d.offset = last.rdataStart;
  const algorithm = d.name();
  const hi = d.u16();
  const lo = d.u32();
  const fudge = d.u16();
  const mac = Buffer.from(d.bytes(d.u16()));
  const originalId = d.u16();
  const error = d.u16();
  const other = Buffer.from(d.bytes(d.u16()));
  if (d.offset !== last.rdataStart + last.rdata.length) throw new WireError('TSIG RDATA length mismatch');
  return {
    keyName: last.name,
    algorithm,
    timeSigned: hi * 2 ** 32 + lo,
    fudge,
    mac,
    originalId,
    error,
    other,
    start: last.start,
  };
}

export type TsigCheck =
  | { readonly ok: true; readonly tsig: TsigRecord }
  | {
      readonly ok: false;
      readonly why: 'unsigned' | 'other-key' | 'bad-mac' | 'bad-time';
      readonly tsig: TsigRecord | null;
    };

/**
 * Verifies a signed answer to the request whose MAC was `requestMac` (RFC 8945 5.3): the MAC
 * covers the request MAC, the answer without its TSIG (ARCOUNT - 1, original ID) and the variables.
 */
export function verifyResponse(
  message: Buffer,
  key: TsigKey,
  requestMac: Buffer,
  nowSeconds = Math.floor(Date.now() / 1000),
): TsigCheck {
  const tsig = findTsig(message);
  if (tsig === null) return { ok: false, why: 'unsigned', tsig };
  if (tsig.keyName !== encodeNameText(key.name) || tsig.algorithm !== key.algorithm)
    return { ok: false, why: 'other-key', tsig };
  if (tsig.mac.length !== MAC_SIZE) return { ok: false, why: 'bad-mac', tsig };
  const body = Buffer.from(message.subarray(0, tsig.start));
  body.writeUInt16BE(body.readUInt16BE(10) - 1, 10);
  body.writeUInt16BE(tsig.originalId, 0);
  const want = hmac(
    key,
    u16(requestMac.length),
    requestMac,
    body,
    variables(key, tsig.timeSigned, tsig.fudge, tsig.error, tsig.other),
  );
  if (!timingSafeEqual(want, tsig.mac)) return { ok: false, why: 'bad-mac', tsig };
  if (Math.abs(nowSeconds - tsig.timeSigned) > tsig.fudge) return { ok: false, why: 'bad-time', tsig };
  return { ok: true, tsig };
}

const encodeNameText = (name: string): string => name.toLowerCase().replace(/\.$/, '');
