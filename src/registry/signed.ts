// Signing and opening registry requests and replies: Ed25519 over the exact body bytes, with the
// rescue protocol's key format, headers and replay cache (sender, timestamp, nonce).
import { createHmac, timingSafeEqual, type KeyObject } from 'node:crypto';
import { SENDER_HEADER, SIGNATURE_HEADER, newNonce } from '../../rescue-protocol/envelope.js';
import { signBytes, verifyBytes } from '../../rescue-protocol/keys.js';
import type { ReplayCache } from './replay.js';
import { RegistryError } from './errors.js';
import { envelopeSchema, REGISTRY_API_VERSION, type RegistryEnvelope, type RequestType } from './messages.js';

export const DEFAULT_SKEW_MS = 30_000;
/**
 * `hmac-sha256 <base64url>` over the body bytes with the session key a registry handed the member
 * in its registration answer: what lookups and directory reads may carry instead of an Ed25519
 * signature (verifying one costs more than the lookup itself).
 */
export const MAC_HEADER = 'dotslash-mac';
const MAC_VALUE = /^hmac-sha256[ \t]+([A-Za-z0-9_-]{43})[ \t]*$/i;

export function macOf(bytes: Buffer, key: Buffer): string {
  return createHmac('sha256', key).update(bytes).digest('base64url');
}
const SIGNATURE_VALUE = /^ed25519[ \t]+([A-Za-z0-9_-]+)[ \t]*$/i;

type HeaderBag = Record<string, string | string[] | undefined>;

export interface Sealed {
  readonly bytes: Buffer;
  readonly headers: Record<string, string>;
}

/** Signs `value` serialised as JSON; the signature covers exactly the bytes sent. */
export function sealJson(from: string, value: unknown, key: KeyObject): Sealed {
  const bytes = Buffer.from(JSON.stringify(value), 'utf8');
  return {
    bytes,
    headers: {
      'content-type': 'application/json',
      [SENDER_HEADER]: from,
      [SIGNATURE_HEADER]: `ed25519 ${signBytes(bytes, key)}`,
    },
  };
}

/** A request envelope authenticated by a registry session key (lookup, directory). */
export function macRequest(
  from: string,
  to: string,
  type: RequestType,
  body: unknown,
  macKey: Buffer,
  now: number = Date.now(),
): Sealed & { nonce: string } {
  const nonce = newNonce();
  const env: RegistryEnvelope = { v: REGISTRY_API_VERSION, from, to, ts: now, nonce, type, body };
  const bytes = Buffer.from(JSON.stringify(env), 'utf8');
  return {
    bytes,
    nonce,
    headers: {
      'content-type': 'application/json',
      [SENDER_HEADER]: from,
      [MAC_HEADER]: `hmac-sha256 ${macOf(bytes, macKey)}`,
    },
  };
}

/** A request envelope, sealed. */
export function sealRequest(
  from: string,
  to: string,
  type: RequestType,
  body: unknown,
  key: KeyObject,
  now: number = Date.now(),
): Sealed & { nonce: string } {
  const nonce = newNonce();
  const env: RegistryEnvelope = { v: REGISTRY_API_VERSION, from, to, ts: now, nonce, type, body };
  return { ...sealJson(from, env, key), nonce };
}

function header(headers: HeaderBag, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? (v.length === 1 ? v[0] : undefined) : v;
}

/** True when the bytes carry a valid signature by `key` (the signer named in the sender header). */
export function signedBy(bytes: Buffer, headers: HeaderBag, key: KeyObject): boolean {
  const m = SIGNATURE_VALUE.exec(header(headers, SIGNATURE_HEADER) ?? '');
  return m !== null && verifyBytes(bytes, m[1]!, key);
}

export function parseJson(bytes: Buffer): unknown {
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw new RegistryError('REG_ERR_BAD_JSON', (err as Error).message, { cause: err });
  }
}

export interface OpenOptions {
  /** The sender's key for this envelope (it may come from the body, e.g. a registration). */
  readonly keyOf: (env: RegistryEnvelope) => KeyObject;
  /** Routes that take a session-key MAC instead of a signature: the sender's session key, if any. */
  readonly macKeyOf?: (env: RegistryEnvelope) => Buffer | undefined;
  /** Expected `to` (community name or registry id); a function for several. */
  readonly to: (to: string) => boolean;
  readonly nonces: ReplayCache;
  readonly skewMs?: number;
  readonly now?: number;
}

/**
 * Opens a signed request: the headers name a sender and carry a signature; the envelope parses;
 * the signature verifies with the key `keyOf` gives for it; `from` equals the sender header;
 * `to`, the timestamp and the nonce are fresh. The body is returned unchecked (the route's
 * schema checks it). Throws RegistryError naming what is wrong.
 */
export function openRequest(bytes: Buffer, headers: HeaderBag, opts: OpenOptions): RegistryEnvelope {
  const sender = header(headers, SENDER_HEADER)?.trim();
  const mac = header(headers, SIGNATURE_HEADER) === undefined ? header(headers, MAC_HEADER) : undefined;
  if (!sender || (!header(headers, SIGNATURE_HEADER) && mac === undefined))
    throw new RegistryError(
      'REG_ERR_UNSIGNED',
      !sender ? 'no DotSlash-Sender header' : 'no DotSlash-Signature (or DotSlash-Mac) header',
    );
  const parsed = envelopeSchema.safeParse(parseJson(bytes));
  if (!parsed.success) throw new RegistryError('REG_ERR_BAD_REQUEST', describeIssues(parsed.error.issues));
  const env = parsed.data;
  if (env.from !== sender)
    throw new RegistryError('REG_ERR_BAD_SIGNATURE', `signed as ${sender}, envelope says ${env.from}`);
  if (mac !== undefined) {
    if (!opts.macKeyOf)
      throw new RegistryError('REG_ERR_UNSIGNED', 'this endpoint needs an Ed25519 signature');
    const key = opts.macKeyOf(env);
    if (!key)
      throw new RegistryError('REG_ERR_UNKNOWN_SENDER', `no session key for ${sender} here (register first)`);
    const m = MAC_VALUE.exec(mac);
    const want = Buffer.from(macOf(bytes, key));
    if (!m || !timingSafeEqual(Buffer.from(m[1]!), want))
      throw new RegistryError('REG_ERR_BAD_SIGNATURE', `bad MAC from ${sender}`);
  } else {
    const key = opts.keyOf(env);
    if (!signedBy(bytes, headers, key)) throw new RegistryError('REG_ERR_BAD_SIGNATURE', `from ${sender}`);
  }
  if (!opts.to(env.to)) throw new RegistryError('REG_ERR_UNKNOWN_COMMUNITY', JSON.stringify(env.to));
  const skew = opts.skewMs ?? DEFAULT_SKEW_MS;
  const offset = env.ts - (opts.now ?? Date.now());
  if (Math.abs(offset) > skew)
    throw new RegistryError(
      'REG_ERR_STALE_TIMESTAMP',
      `ts is ${Math.round(Math.abs(offset) / 1000)} s in the ${offset > 0 ? 'future' : 'past'}`,
    );
  opts.nonces.check(env.from, env.nonce);
  return env;
}

/** "path: message; ..." of zod issues, clipped. */
export function describeIssues(issues: readonly { path: PropertyKey[]; message: string }[]): string {
  const text = issues
    .slice(0, 5)
    .map((i) => `${i.path.map(String).join('.') || '(body)'}: ${i.message}`)
    .join('; ');
  return text.length > 500 ? `${text.slice(0, 497)}...` : text;
}
