// Signed envelopes: sealing a message into the exact bytes sent, and opening (authenticating, then checking) received bytes.
import { randomBytes, type KeyObject } from 'node:crypto';
import { RescueError } from './errors.js';
import { signBytes, verifyBytes } from './keys.js';
import {
  parseReplyEnvelope,
  parseRequestEnvelope,
  PROTOCOL_VERSION,
  type Envelope,
  type ReplyEnvelope,
  type RequestEnvelope,
} from './messages.js';
import type { NonceCache } from './replay.js';

/** HTTP header carrying `ed25519 <base64url signature of the body bytes>`. */
export const SIGNATURE_HEADER = 'dotslash-signature';
/** HTTP header naming the signer, so its key is found before the body is parsed. */
export const SENDER_HEADER = 'dotslash-sender';
/** Members' clocks may differ by this much (either way) before messages are refused. */
export const DEFAULT_SKEW_MS = 30_000;

const SIGNATURE_VALUE = /^ed25519[ \t]+([A-Za-z0-9_-]+)[ \t]*$/i;

/** Where a member finds its peers' public keys; a Map<string, KeyObject> is one. */
export interface PeerKeys {
  get(id: string): KeyObject | undefined;
}

/** base64url of 16 random bytes. */
export function newNonce(): string {
  return randomBytes(16).toString('base64url');
}

export interface SealedMessage {
  /** The HTTP body: exactly these bytes are signed and must be sent unchanged. */
  readonly bytes: Buffer;
  /** DotSlash-Sender and DotSlash-Signature (lower-case names) plus Content-Type. */
  readonly headers: Record<string, string>;
}

/** Serialises `envelope` and signs the serialisation (the signature covers the exact bytes sent). */
export function sealEnvelope(envelope: Envelope, privateKey: KeyObject): SealedMessage {
  const bytes = Buffer.from(JSON.stringify(envelope), 'utf8');
  return {
    bytes,
    headers: {
      'content-type': 'application/json',
      [SENDER_HEADER]: envelope.from,
      [SIGNATURE_HEADER]: `ed25519 ${signBytes(bytes, privateKey)}`,
    },
  };
}

/** Fills the envelope head: v, from, to, ts (wall clock), a fresh nonce. */
export function envelopeHead(
  from: string,
  to: string,
  now: number = Date.now(),
): { v: typeof PROTOCOL_VERSION; from: string; to: string; ts: number; nonce: string } {
  return { v: PROTOCOL_VERSION, from, to, ts: now, nonce: newNonce() };
}

type HeaderBag = Record<string, string | string[] | undefined>;

function single(headers: HeaderBag, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? (v.length === 1 ? v[0] : undefined) : v;
}

/**
 * Step 1, authentication: who signed these bytes, and is the signature good? Only then are the
 * bytes parsed and schema-checked. Errors: RSC_ERR_UNSIGNED, RSC_ERR_UNKNOWN_SENDER,
 * RSC_ERR_BAD_SIGNATURE, RSC_ERR_BAD_JSON, RSC_ERR_UNSUPPORTED_VERSION, RSC_ERR_BAD_MESSAGE,
 * RSC_ERR_SENDER_MISMATCH. Nothing about the content is trusted before the signature verifies.
 */
function authenticate(
  bytes: Buffer,
  headers: HeaderBag,
  keyOf: (sender: string) => KeyObject | undefined,
): unknown {
  const sender = single(headers, SENDER_HEADER)?.trim();
  const sigHeader = single(headers, SIGNATURE_HEADER);
  if (!sender || !sigHeader) {
    throw new RescueError(
      'RSC_ERR_UNSIGNED',
      !sender ? 'no DotSlash-Sender header' : 'no DotSlash-Signature header',
    );
  }
  const m = SIGNATURE_VALUE.exec(sigHeader);
  if (!m) throw new RescueError('RSC_ERR_UNSIGNED', 'DotSlash-Signature must be "ed25519 <base64url>"');
  const key = keyOf(sender);
  if (!key) throw new RescueError('RSC_ERR_UNKNOWN_SENDER', JSON.stringify(sender.slice(0, 253)));
  if (!verifyBytes(bytes, m[1]!, key)) throw new RescueError('RSC_ERR_BAD_SIGNATURE', `from ${sender}`);
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw new RescueError('RSC_ERR_BAD_JSON', (err as Error).message, { cause: err });
  }
  return value;
}

function checkSender(env: Envelope, headers: HeaderBag): void {
  const sender = single(headers, SENDER_HEADER)?.trim();
  if (env.from !== sender) {
    throw new RescueError('RSC_ERR_SENDER_MISMATCH', `signed by ${sender}, envelope says ${env.from}`);
  }
}

/** Authenticates and parses a request (see authenticate); freshness is checked by checkFreshness. */
export function authenticateRequest(bytes: Buffer, headers: HeaderBag, peers: PeerKeys): RequestEnvelope {
  const env = parseRequestEnvelope(authenticate(bytes, headers, (s) => peers.get(s)));
  checkSender(env, headers);
  return env;
}

/** Authenticates and parses a reply that must come from `peerId` signed with `peerKey`. */
export function authenticateReply(
  bytes: Buffer,
  headers: HeaderBag,
  peerId: string,
  peerKey: KeyObject,
): ReplyEnvelope {
  const env = parseReplyEnvelope(authenticate(bytes, headers, (s) => (s === peerId ? peerKey : undefined)));
  checkSender(env, headers);
  return env;
}

export interface FreshnessCheck {
  /** This member's id: messages to anyone else are refused. */
  readonly self: string;
  readonly skewMs?: number;
  /** Wall clock, epoch ms (tests). */
  readonly now?: () => number;
  /** Omit for replies, which are bound to a fresh request nonce by `re` instead. */
  readonly nonces?: NonceCache;
}

/**
 * Step 2, for an authenticated envelope: addressed to us (RSC_ERR_WRONG_RECIPIENT), timestamp
 * within skew either way (RSC_ERR_STALE_TIMESTAMP; members need NTP), nonce never seen
 * (RSC_ERR_REPLAYED_NONCE, RSC_ERR_NONCE_FLOOD). The nonce is recorded last, so a message
 * refused for another reason does not burn it.
 */
export function checkFreshness(env: Envelope, check: FreshnessCheck): void {
  if (env.to !== check.self)
    throw new RescueError('RSC_ERR_WRONG_RECIPIENT', `addressed to ${env.to}, this is ${check.self}`);
  const skew = check.skewMs ?? DEFAULT_SKEW_MS;
  const offset = env.ts - (check.now ?? Date.now)();
  if (Math.abs(offset) > skew) {
    throw new RescueError(
      'RSC_ERR_STALE_TIMESTAMP',
      `ts is ${Math.round(Math.abs(offset) / 1000)} s in the ${offset > 0 ? 'future' : 'past'} (allowed ${skew / 1000} s)`,
    );
  }
  check.nonces?.check(env.from, env.nonce);
}
