// Versioned (v: 1) zod schemas of the rescue messages and their envelope, and the asserts that check untrusted input.
import { z } from 'zod';
import { RescueError } from './errors.js';

export const PROTOCOL_VERSION = 1;

/** A member id is its public host name (RFC 1123 labels; an IP address literal also passes). */
const HOST =
  /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$/;
export const memberIdSchema = z.string().regex(HOST, 'must be a host name');
const sessionId = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[A-Za-z0-9._:-]+$/, 'letters, digits, ".", "_", ":" or "-" only');
/** base64url (no padding) of 16 random bytes. */
const nonce = z.string().regex(/^[A-Za-z0-9_-]{22}$/, 'must be base64url of 16 bytes');
/** Epoch milliseconds (wall clock). */
const timestamp = z.number().int().positive().max(Number.MAX_SAFE_INTEGER);
const rate = z.number().finite().nonnegative().max(1e9);
const leaseMs = z.number().int().positive().max(86_400_000);
const urlPath = z
  .string()
  .min(1)
  .max(2048)
  .regex(/^\/[^\s#]*$/, 'must be a path starting with "/" (no scheme, host, spaces or fragment)');
const httpUrl = z
  .string()
  .max(2048)
  .refine((s) => URL.canParse(s) && /^https?:$/.test(new URL(s).protocol), 'must be an http(s) URL');
const count = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);
const usageCounts = z.object({ requests: count, bytes: count });
const errorCode = z
  .string()
  .regex(/^[A-Z][A-Z0-9_]{0,63}$/, 'must be an error code such as RSC_ERR_DECLINED');

/**
 * A token-ledger receipt (flood-insurance communities) as it travels in SHUTDOWN and its ACK: only
 * its shape is checked here; the ledger (src/registry/ledger) verifies body and signatures.
 */
const receiptWire = z.object({
  type: z.literal('receipt'),
  body: z.record(z.string(), z.unknown()),
  sigs: z.object({ origin: z.string().max(200).optional(), rescuer: z.string().max(200).optional() }),
});

// ---- bodies --------------------------------------------------------------------------------------

export const sosBodySchema = z.object({
  origin: z.object({
    id: memberIdSchema,
    /** The site's host names, which rescuers serve for clients arriving by DNS. */
    names: z.array(memberIdSchema).min(1).max(64),
    /** The origin's public front, where rescuers fetch from. */
    front_url: httpUrl,
  }),
  content: z.enum(['static', 'dynamic']),
  /** Requests/s the origin would like to move. */
  want_rate: rate.refine((r) => r > 0, 'must be > 0'),
  /** Paths the origin allows rescuers to micro-cache for ttl_s even when uncacheable. */
  micro_cache: z
    .object({ paths: z.array(urlPath).max(256), ttl_s: z.number().positive().max(3600) })
    .optional(),
  /** Flood-insurance communities: the token that pays for this rescue. */
  token: z.string().min(1).max(4096).optional(),
});

/** The answer to an SOS (the "200 OK" of DESIGN.md): an acceptance or a refusal. */
export const okBodySchema = z.discriminatedUnion('accepted', [
  z.object({
    accepted: z.literal(true),
    session: sessionId,
    /** The virtual host (vhN.<rescuer>) the origin redirects to. */
    vhost: memberIdSchema,
    /** Allowed rate Rr, requests/s. */
    rate,
    lease_ms: leaseMs,
    /** Scheme, host and port of the vhost, e.g. "http://vh3.rescue-b.example:8082" (optional: default http, port 80). */
    vhost_url: httpUrl.optional(),
  }),
  z.object({ accepted: z.literal(false), reason: z.string().max(500), code: errorCode }),
]);

export const tokenBodySchema = z.object({ session: sessionId, token: z.string().min(1).max(4096) });
export const rateBodySchema = z.object({ session: sessionId, rate });
export const keepaliveBodySchema = z.object({ session: sessionId });
export const shutdownBodySchema = z.object({
  session: sessionId,
  reason: z.string().max(500),
  /** Final usage (token communities sign it): all requests served, and split by how clients came. */
  usage: z
    .object({
      requests: count,
      bytes: count,
      by_redirect: usageCounts.optional(),
      by_dns: usageCounts.optional(),
    })
    .optional(),
  /** Flood-insurance communities, from the rescuer: its signed half of the receipt for `usage`. */
  receipt: receiptWire.optional(),
});
export const purgeBodySchema = z.object({ session: sessionId, urls: z.array(urlPath).min(1).max(1000) });
/** Generic acknowledgement; the reply to KEEPALIVE also carries the session and its renewed lease. */
export const ackBodySchema = z.object({
  ok: z.literal(true),
  session: sessionId.optional(),
  lease_ms: leaseMs.optional(),
  /**
   * Flood-insurance communities, the answer to SHUTDOWN: from the origin, the receipt the rescuer
   * sent, countersigned; from the rescuer (the origin shut down), its signed half for the origin to countersign.
   */
  receipt: receiptWire.optional(),
});
export const keepaliveAckBodySchema = z.object({
  ok: z.literal(true),
  session: sessionId,
  lease_ms: leaseMs,
});
export const errorReplyBodySchema = z.object({
  error: z.object({ code: errorCode, message: z.string().max(2000) }),
});

export type SosBody = z.infer<typeof sosBodySchema>;
export type OkBody = z.infer<typeof okBodySchema>;
export type TokenBody = z.infer<typeof tokenBodySchema>;
export type RateBody = z.infer<typeof rateBodySchema>;
export type KeepaliveBody = z.infer<typeof keepaliveBodySchema>;
export type ShutdownBody = z.infer<typeof shutdownBodySchema>;
export type PurgeBody = z.infer<typeof purgeBodySchema>;
export type AckBody = z.infer<typeof ackBodySchema>;
export type KeepaliveAckBody = z.infer<typeof keepaliveAckBodySchema>;
export type ErrorReplyBody = z.infer<typeof errorReplyBodySchema>;

// ---- envelope ------------------------------------------------------------------------------------

/** Messages a member POSTs to a peer. */
export const REQUEST_TYPES = ['SOS', 'TOKEN', 'RATE', 'KEEPALIVE', 'SHUTDOWN', 'PURGE'] as const;
/** Messages that only travel as the HTTP answer to a request. */
export const REPLY_TYPES = ['OK', 'ACK', 'ERROR'] as const;
export type RequestType = (typeof REQUEST_TYPES)[number];
export type ReplyType = (typeof REPLY_TYPES)[number];
export type MessageType = RequestType | ReplyType;

export interface RequestBodies {
  SOS: SosBody;
  TOKEN: TokenBody;
  RATE: RateBody;
  KEEPALIVE: KeepaliveBody;
  SHUTDOWN: ShutdownBody;
  PURGE: PurgeBody;
}
/** What a successful answer to each request carries. */
export interface ReplyBodies {
  SOS: OkBody;
  TOKEN: AckBody;
  RATE: AckBody;
  KEEPALIVE: KeepaliveAckBody;
  SHUTDOWN: AckBody;
  PURGE: AckBody;
}
export type ReplyBody = OkBody | AckBody;

const head = {
  v: z.literal(PROTOCOL_VERSION),
  from: memberIdSchema,
  to: memberIdSchema,
  ts: timestamp,
  nonce,
};
const request = <T extends RequestType, B extends z.ZodType>(type: T, body: B) =>
  z.object({ ...head, type: z.literal(type), body });
/** Replies carry `re`: the nonce of the request they answer, so an answer cannot be moved to another request. */
const reply = <T extends ReplyType, B extends z.ZodType>(type: T, body: B) =>
  z.object({ ...head, type: z.literal(type), re: nonce, body });

export const requestEnvelopeSchema = z.discriminatedUnion('type', [
  request('SOS', sosBodySchema),
  request('TOKEN', tokenBodySchema),
  request('RATE', rateBodySchema),
  request('KEEPALIVE', keepaliveBodySchema),
  request('SHUTDOWN', shutdownBodySchema),
  request('PURGE', purgeBodySchema),
]);
export const replyEnvelopeSchema = z.discriminatedUnion('type', [
  reply('OK', okBodySchema),
  reply('ACK', ackBodySchema),
  reply('ERROR', errorReplyBodySchema),
]);

export type RequestEnvelope = z.infer<typeof requestEnvelopeSchema>;
export type ReplyEnvelope = z.infer<typeof replyEnvelopeSchema>;
export type Envelope = RequestEnvelope | ReplyEnvelope;
/** A request envelope of one type, with its body typed. */
export type RequestEnvelopeOf<T extends RequestType> = Extract<RequestEnvelope, { type: T }>;

const requestBodySchemas: { [T in RequestType]: z.ZodType<RequestBodies[T]> } = {
  SOS: sosBodySchema,
  TOKEN: tokenBodySchema,
  RATE: rateBodySchema,
  KEEPALIVE: keepaliveBodySchema,
  SHUTDOWN: shutdownBodySchema,
  PURGE: purgeBodySchema,
};
const replyBodySchemas: { [T in RequestType]: z.ZodType<ReplyBodies[T]> } = {
  SOS: okBodySchema,
  TOKEN: ackBodySchema,
  RATE: ackBodySchema,
  KEEPALIVE: keepaliveAckBodySchema,
  SHUTDOWN: ackBodySchema,
  PURGE: ackBodySchema,
};

export function isRequestType(t: unknown): t is RequestType {
  return typeof t === 'string' && (REQUEST_TYPES as readonly string[]).includes(t);
}

/** A short "path: problem; ..." summary of a zod error, for the `message` a peer sees. */
function describeIssues(err: z.ZodError): string {
  return err.issues
    .slice(0, 5)
    .map((i) => `${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`)
    .join('; ');
}

/** v is checked first so that a newer peer hears "unsupported version", not a schema complaint. */
function checkVersion(value: unknown): void {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new RescueError('RSC_ERR_BAD_MESSAGE', 'the envelope must be a JSON object');
  }
  const v = (value as { v?: unknown }).v;
  if (v !== PROTOCOL_VERSION) {
    throw new RescueError(
      v === undefined ? 'RSC_ERR_BAD_MESSAGE' : 'RSC_ERR_UNSUPPORTED_VERSION',
      v === undefined ? 'v: missing' : `v: ${JSON.stringify(v)?.slice(0, 20)}`,
    );
  }
}

function checkRequestEnvelope(value: unknown): RequestEnvelope {
  checkVersion(value);
  const type = (value as { type?: unknown }).type;
  if (typeof type === 'string' && (REPLY_TYPES as readonly string[]).includes(type)) {
    throw new RescueError('RSC_ERR_BAD_MESSAGE', `type: ${type} is a reply, not a request`);
  }
  const r = requestEnvelopeSchema.safeParse(value);
  if (!r.success) throw new RescueError('RSC_ERR_BAD_MESSAGE', describeIssues(r.error));
  return r.data;
}

/** Checks an untrusted parsed request envelope (RSC_ERR_UNSUPPORTED_VERSION / RSC_ERR_BAD_MESSAGE). */
export function assertRequestEnvelope(value: unknown): asserts value is RequestEnvelope {
  checkRequestEnvelope(value);
}

/** Parses an untrusted request envelope; returns a copy without unknown fields. */
export function parseRequestEnvelope(value: unknown): RequestEnvelope {
  return checkRequestEnvelope(value);
}

/** Parses an untrusted reply envelope (RSC_ERR_UNSUPPORTED_VERSION / RSC_ERR_BAD_MESSAGE). */
export function parseReplyEnvelope(value: unknown): ReplyEnvelope {
  checkVersion(value);
  const r = replyEnvelopeSchema.safeParse(value);
  if (!r.success) throw new RescueError('RSC_ERR_BAD_MESSAGE', describeIssues(r.error));
  return r.data;
}

/** Checks a request body before sending (so a local bug fails here, not at the peer). */
export function parseRequestBody<T extends RequestType>(type: T, body: unknown): RequestBodies[T] {
  const r = requestBodySchemas[type].safeParse(body);
  if (!r.success) throw new RescueError('RSC_ERR_BAD_MESSAGE', `${type} body: ${describeIssues(r.error)}`);
  return r.data;
}

/** Checks the success answer to a request of type `type` (OK for SOS, ACK otherwise). */
export function parseReplyBody<T extends RequestType>(type: T, body: unknown): ReplyBodies[T] {
  const r = replyBodySchemas[type].safeParse(body);
  if (!r.success)
    throw new RescueError('RSC_ERR_BAD_MESSAGE', `reply to ${type}: ${describeIssues(r.error)}`);
  return r.data;
}

/** The reply type that carries a successful answer to `type`. */
export function replyTypeFor(type: RequestType): 'OK' | 'ACK' {
  return type === 'SOS' ? 'OK' : 'ACK';
}
