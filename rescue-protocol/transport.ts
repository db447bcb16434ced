// Control-port transport: ControlServer (POST /v1/rescue, verify, dispatch, signed reply) and ControlClient (send, verify the reply).
import type { KeyObject } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { Agent, request } from 'undici';
import { errorBody, isRescueErrorCode, RescueError, RescueErrors, type RescueErrorCode } from './errors.js';
import {
  authenticateReply,
  authenticateRequest,
  checkFreshness,
  DEFAULT_SKEW_MS,
  envelopeHead,
  sealEnvelope,
  SIGNATURE_HEADER,
  type PeerKeys,
} from './envelope.js';
import { parsePublicKey, type MemberIdentity } from './keys.js';
import {
  parseReplyBody,
  parseRequestBody,
  replyTypeFor,
  type ReplyBodies,
  type ReplyBody,
  type ReplyEnvelope,
  type RequestBodies,
  type RequestEnvelope,
  type RequestEnvelopeOf,
  type RequestType,
} from './messages.js';
import { NonceCache, type NonceCacheOptions } from './replay.js';

export const RESCUE_PATH = '/v1/rescue';
export const HEALTH_PATH = '/v1/health';
/** Control messages are small (an SOS with 64 names and 256 micro-cache paths fits easily). */
export const DEFAULT_MAX_BODY_BYTES = 64 * 1024;

/** A request that passed every check: signed by a known peer, to us, fresh, never seen. */
export type VerifiedMessage = RequestEnvelope;

export type MessageHandler = (msg: VerifiedMessage) => Promise<ReplyBody> | ReplyBody;

/** Splits "HOST:PORT" / "[v6]:PORT". */
export function parseHostPort(listen: string): { host: string; port: number } {
  const i = listen.lastIndexOf(':');
  const port = Number(listen.slice(i + 1));
  if (i <= 0 || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(`control listen address must be HOST:PORT, got "${listen}"`);
  }
  return { host: listen.slice(0, i).replace(/^\[(.*)\]$/, '$1'), port };
}

const JSON_HEADERS = { 'content-type': 'application/json', 'cache-control': 'no-store' };
const JSON_TYPE = /^application\/json[ \t]*(;.*)?$/i;

export interface ControlServerOptions {
  /** "HOST:PORT" or "[v6]:PORT"; port 0 picks a free port. */
  readonly listen: string;
  readonly self: MemberIdentity;
  /** Looked up on every message, so a live Map may be updated on config reload. */
  readonly peers: PeerKeys;
  /**
   * Called once per verified request; returns the success answer (OK body for SOS, ACK body
   * otherwise) or throws a RescueError (UNKNOWN_SESSION, NOT_A_PARTY, OUT_OF_STATE, ...), which
   * the peer receives as a signed ERROR. Any other throw becomes RSC_ERR_INTERNAL (and is logged).
   */
  readonly onMessage: MessageHandler;
  readonly logger?: Logger;
  readonly maxBodyBytes?: number;
  /** Clock skew allowed either way, ms (default 30 000). */
  readonly skewMs?: number;
  readonly nonceCache?: NonceCacheOptions;
  /** Wall clock, epoch ms (tests). */
  readonly now?: () => number;
}

/**
 * The member's control listener. Checks, in order: route (404/405), Content-Type (415), size
 * (413), signature (401/403), JSON and schema (400), sender (401), recipient (421), timestamp
 * (401), nonce (409/503). Refusals before the envelope is authenticated are plain
 * `{ error: { code, message } }` bodies; after it, signed ERROR envelopes with `re` = the
 * request's nonce. Lifecycle: listen() and close() idempotent; close() is safe without listen().
 */
export class ControlServer {
  private readonly opts: ControlServerOptions;
  private readonly server: Server;
  private readonly nonces: NonceCache;
  private readonly maxBody: number;
  private readonly skewMs: number;
  private listening: Promise<AddressInfo> | null = null;
  private closing: Promise<void> | null = null;
  private address: AddressInfo | null = null;

  constructor(opts: ControlServerOptions) {
    this.opts = opts;
    this.maxBody = opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
    this.skewMs = opts.skewMs ?? DEFAULT_SKEW_MS;
    this.nonces = new NonceCache({ ttlMs: 2 * this.skewMs, ...opts.nonceCache });
    this.server = createServer(
      { headersTimeout: 10_000, requestTimeout: 15_000, keepAliveTimeout: 5_000, maxHeaderSize: 8_192 },
      (req, res) => {
        this.handle(req, res).catch((err: unknown) => {
          opts.logger?.error({ err, url: req.url }, 'control request failed');
          if (!res.headersSent) sendPlain(res, 'RSC_ERR_INTERNAL');
          else res.destroy();
        });
      },
    );
    // A broken client connection must never take the daemon down.
    this.server.on('clientError', (_err, socket) => {
      if (socket.writable)
        socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      else socket.destroy();
    });
  }

  listen(): Promise<AddressInfo> {
    if (this.closing) return Promise.reject(new RescueError('RSC_ERR_CLOSED', 'control server'));
    this.listening ??= new Promise<AddressInfo>((resolve, reject) => {
      const { host, port } = parseHostPort(this.opts.listen);
      const onError = (err: Error): void => reject(err);
      this.server.once('error', onError);
      this.server.listen(port, host, () => {
        this.server.off('error', onError);
        this.address = this.server.address() as AddressInfo;
        this.opts.logger?.info(
          { address: this.address.address, port: this.address.port },
          'control listener ready',
        );
        resolve(this.address);
      });
    });
    return this.listening;
  }

  /** "http://host:port" once listening (what peers put in control_url). */
  get url(): string {
    if (!this.address) throw new Error('ControlServer is not listening');
    const { address, family, port } = this.address;
    return `http://${family === 'IPv6' ? `[${address}]` : address}:${port}`;
  }

  /** Stops accepting; in-flight requests (small, bounded by requestTimeout) finish. Idempotent. */
  close(): Promise<void> {
    this.closing ??= new Promise<void>((resolve) => {
      if (!this.server.listening) return resolve();
      // Requests are small; a peer that keeps a request open this long loses it.
      const force = setTimeout(() => this.server.closeAllConnections(), 2_000);
      force.unref();
      this.server.close(() => {
        clearTimeout(force);
        resolve();
      });
      this.server.closeIdleConnections();
    }).finally(() => this.nonces.clear());
    return this.closing;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?', 1)[0];
    if (path === HEALTH_PATH) {
      if (req.method !== 'GET' && req.method !== 'HEAD')
        return sendPlain(res, 'RSC_ERR_METHOD_NOT_ALLOWED', { allow: 'GET, HEAD' });
      const body = JSON.stringify({ ok: true, id: this.opts.self.id, v: 1 });
      res.writeHead(200, { ...JSON_HEADERS, 'content-length': Buffer.byteLength(body) });
      res.end(req.method === 'HEAD' ? undefined : body);
      return;
    }
    if (path !== RESCUE_PATH) return sendPlain(res, 'RSC_ERR_NOT_FOUND');
    if (req.method !== 'POST') return sendPlain(res, 'RSC_ERR_METHOD_NOT_ALLOWED', { allow: 'POST' });
    if (!JSON_TYPE.test(req.headers['content-type'] ?? ''))
      return sendPlain(res, 'RSC_ERR_UNSUPPORTED_MEDIA_TYPE');
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > this.maxBody) return this.tooLarge(req, res);
    const bytes = await readCapped(req, this.maxBody);
    if (bytes === null) return this.tooLarge(req, res);

    let env: RequestEnvelope;
    try {
      env = authenticateRequest(bytes, req.headers, this.opts.peers);
    } catch (err) {
      if (!(err instanceof RescueError)) throw err;
      this.opts.logger?.debug(
        { code: err.code, remote: req.socket.remoteAddress, err: err.message },
        'control message refused',
      );
      return sendPlain(res, err.code, undefined, err.message);
    }

    let reply: ReplyEnvelope;
    try {
      checkFreshness(env, {
        self: this.opts.self.id,
        skewMs: this.skewMs,
        now: this.opts.now,
        nonces: this.nonces,
      });
      const body = handlerAnswer(env.type, await this.opts.onMessage(env));
      reply = { ...this.head(env), type: replyTypeFor(env.type), body } as ReplyEnvelope;
    } catch (err) {
      // A handler's RescueError is the refusal it means; an error a peer sent it is not ours to relay.
      const known = err instanceof RescueError && !err.remote;
      const code: RescueErrorCode = known ? err.code : 'RSC_ERR_INTERNAL';
      if (code === 'RSC_ERR_INTERNAL')
        this.opts.logger?.error({ err, type: env.type, from: env.from }, 'control handler failed');
      else
        this.opts.logger?.warn(
          { code, type: env.type, from: env.from, err: (err as Error).message },
          'control message refused',
        );
      const message = known ? err.message : RescueErrors.RSC_ERR_INTERNAL.message;
      reply = {
        ...this.head(env),
        type: 'ERROR',
        body: { error: { code, message: message.slice(0, 2000) } },
      };
    }
    const sealed = sealEnvelope(reply, this.opts.self.privateKey);
    const status =
      reply.type === 'ERROR' ? RescueErrors[reply.body.error.code as RescueErrorCode].status : 200;
    res.writeHead(status, { ...JSON_HEADERS, ...sealed.headers, 'content-length': sealed.bytes.length });
    res.end(sealed.bytes);
  }

  private head(env: RequestEnvelope): {
    v: 1;
    from: string;
    to: string;
    ts: number;
    nonce: string;
    re: string;
  } {
    return { ...envelopeHead(this.opts.self.id, env.from, (this.opts.now ?? Date.now)()), re: env.nonce };
  }

  /** 413 and close the connection: the rest of the body is not read. */
  private tooLarge(req: IncomingMessage, res: ServerResponse): void {
    sendPlain(res, 'RSC_ERR_TOO_LARGE', { connection: 'close' }, `more than ${this.maxBody} bytes`);
    req.resume();
  }
}

/** A handler answer that breaks the schema is our own bug: a plain Error, so it becomes RSC_ERR_INTERNAL. */
function handlerAnswer(type: RequestType, answer: ReplyBody): ReplyBody {
  try {
    return parseReplyBody(type, answer);
  } catch (err) {
    throw new Error(`onMessage answer to ${type} breaks the schema: ${(err as Error).message}`, {
      cause: err,
    });
  }
}

function sendPlain(
  res: ServerResponse,
  code: RescueErrorCode,
  headers: Record<string, string> = {},
  message?: string,
): void {
  const body = errorBody(code, message);
  res.writeHead(RescueErrors[code].status, {
    ...JSON_HEADERS,
    ...headers,
    'content-length': Buffer.byteLength(body),
  });
  res.end(body);
}

/** The request body, or null once it exceeds `cap` bytes (reading stops there). */
async function readCapped(req: AsyncIterable<Buffer>, cap: number): Promise<Buffer | null> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of req) {
    total += chunk.length;
    if (total > cap) return null;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, total);
}

// ---- client ----------------------------------------------------------------------------------------

/** A peer as configuration names it. */
export interface Peer {
  readonly id: string;
  /** Base URL of the peer's control listener, e.g. "http://127.0.0.2:7100". */
  readonly control_url: string;
  /** "ed25519:..." text, or an already parsed key. */
  readonly public_key: string | KeyObject;
}

export interface ControlClientOptions {
  readonly self: MemberIdentity;
  /** Default per-send timeout, ms (default 5000): connect + answer + body. */
  readonly timeoutMs?: number;
  readonly skewMs?: number;
  readonly maxReplyBytes?: number;
  readonly now?: () => number;
}

/** The verified answer to a request of type T. OK-with-accepted:false (a declined SOS) is an answer, not an error. */
export interface SendResult<T extends RequestType> {
  readonly type: 'OK' | 'ACK';
  readonly body: ReplyBodies[T];
  readonly request: RequestEnvelopeOf<T>;
  readonly reply: ReplyEnvelope;
}

/**
 * Sends signed requests to peers and verifies their answers: signed by that peer, addressed to
 * us, fresh, and carrying `re` = our request's nonce. Errors: RSC_ERR_PEER_UNREACHABLE,
 * RSC_ERR_PEER_TIMEOUT, RSC_ERR_BAD_REPLY, RSC_ERR_CLOSED, or the peer's own code with
 * `err.remote` set (authenticated: whether its ERROR was signed). Connections are pooled per
 * peer. Lifecycle: close() idempotent; aborts sends in flight.
 */
export class ControlClient {
  private readonly opts: ControlClientOptions;
  private readonly agent: Agent;
  private readonly aborter = new AbortController();
  private readonly keyCache = new Map<string, KeyObject>();
  private closing: Promise<void> | null = null;

  constructor(opts: ControlClientOptions) {
    this.opts = opts;
    this.agent = new Agent({
      keepAliveTimeout: 4_000,
      connections: 4,
      connect: { timeout: opts.timeoutMs ?? 5_000 },
    });
  }

  async send<T extends RequestType>(
    peer: Peer,
    type: T,
    body: RequestBodies[T],
    options: { timeoutMs?: number } = {},
  ): Promise<SendResult<T>> {
    if (this.closing) throw new RescueError('RSC_ERR_CLOSED', 'control client');
    const self = this.opts.self.id;
    const now = this.opts.now ?? Date.now;
    const peerKey = this.keyOf(peer);
    const url = rescueUrl(peer);
    const envelope = {
      ...envelopeHead(self, peer.id, now()),
      type,
      body: parseRequestBody(type, body),
    } as unknown as RequestEnvelopeOf<T>; // TS cannot correlate T across the union
    const sealed = sealEnvelope(envelope, this.opts.self.privateKey);
    const timeoutMs = options.timeoutMs ?? this.opts.timeoutMs ?? 5_000;
    const timeout = AbortSignal.timeout(timeoutMs);

    let status: number;
    let headers: Record<string, string | string[] | undefined>;
    let bytes: Buffer | null;
    try {
      const res = await request(url, {
        method: 'POST',
        headers: sealed.headers,
        body: sealed.bytes,
        dispatcher: this.agent,
        signal: AbortSignal.any([timeout, this.aborter.signal]),
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
      });
      status = res.statusCode;
      headers = res.headers;
      bytes = await readCapped(res.body, this.opts.maxReplyBytes ?? DEFAULT_MAX_BODY_BYTES);
      if (bytes === null) res.body.destroy();
    } catch (err) {
      if (this.aborter.signal.aborted)
        throw new RescueError('RSC_ERR_CLOSED', 'control client', { cause: err });
      const code = (err as { code?: string }).code ?? '';
      if (timeout.aborted || /TIMEOUT/.test(code)) {
        throw new RescueError('RSC_ERR_PEER_TIMEOUT', `${peer.id} (${url}) after ${timeoutMs} ms`, {
          cause: err,
        });
      }
      throw new RescueError(
        'RSC_ERR_PEER_UNREACHABLE',
        `${peer.id} (${url}): ${code || (err as Error).message}`,
        {
          cause: err,
        },
      );
    }
    if (bytes === null) throw new RescueError('RSC_ERR_BAD_REPLY', `${peer.id}: reply larger than the cap`);

    if (headers[SIGNATURE_HEADER] === undefined) throw unsignedError(peer, status, bytes);
    let reply: ReplyEnvelope;
    try {
      reply = authenticateReply(bytes, headers, peer.id, peerKey);
      checkFreshness(reply, { self, skewMs: this.opts.skewMs, now });
      if (reply.re !== envelope.nonce)
        throw new Error(`re ${reply.re} does not answer nonce ${envelope.nonce}`);
    } catch (err) {
      const inner = err instanceof RescueError ? `${err.code}: ${err.message}` : (err as Error).message;
      throw new RescueError('RSC_ERR_BAD_REPLY', `${peer.id}: ${inner}`, { cause: err });
    }
    if (reply.type === 'ERROR') {
      const { code, message } = reply.body.error;
      throw new RescueError(isRescueErrorCode(code) ? code : 'RSC_ERR_PEER_ERROR', undefined, {
        message: `${peer.id} answered ${code}: ${message}`,
        remote: { status, authenticated: true, code },
      });
    }
    if (reply.type !== replyTypeFor(type)) {
      throw new RescueError('RSC_ERR_BAD_REPLY', `${peer.id}: ${reply.type} does not answer ${type}`);
    }
    let answer: ReplyBodies[T];
    try {
      answer = parseReplyBody(type, reply.body);
    } catch (err) {
      throw new RescueError('RSC_ERR_BAD_REPLY', `${peer.id}: ${(err as Error).message}`, { cause: err });
    }
    const session = (body as { session?: string }).session;
    const answered = (answer as { session?: string }).session;
    if (session !== undefined && answered !== undefined && answered !== session) {
      throw new RescueError(
        'RSC_ERR_BAD_REPLY',
        `${peer.id}: answer for session ${answered}, asked about ${session}`,
      );
    }
    return { type: reply.type, body: answer, request: envelope, reply };
  }

  /** Idempotent: aborts sends in flight (they fail with RSC_ERR_CLOSED) and closes pooled connections. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.aborter.abort();
      await this.agent.destroy().catch(() => undefined);
    })();
    return this.closing;
  }

  private keyOf(peer: Peer): KeyObject {
    if (typeof peer.public_key !== 'string') return peer.public_key;
    let key = this.keyCache.get(peer.public_key);
    if (!key) {
      key = parsePublicKey(peer.public_key);
      if (this.keyCache.size >= 1024) this.keyCache.clear(); // peers come from config: a handful
      this.keyCache.set(peer.public_key, key);
    }
    return key;
  }
}

function rescueUrl(peer: Peer): string {
  let base: URL;
  try {
    base = new URL(peer.control_url);
  } catch {
    throw new RescueError(
      'RSC_ERR_PEER_UNREACHABLE',
      `${peer.id}: control_url "${peer.control_url}" is not a URL`,
    );
  }
  if (base.protocol !== 'http:' && base.protocol !== 'https:') {
    throw new RescueError('RSC_ERR_PEER_UNREACHABLE', `${peer.id}: control_url must be http(s)`);
  }
  return `${base.origin}${base.pathname.replace(/\/+$/, '')}${RESCUE_PATH}`;
}

/**
 * An answer without a signature: the peer refused before authenticating us (bad signature,
 * unknown sender...). Its code is worth reporting but cannot be trusted, hence authenticated: false.
 */
function unsignedError(peer: Peer, status: number, bytes: Buffer): RescueError {
  let parsed: unknown;
  try {
    parsed = JSON.parse(bytes.toString('utf8'));
  } catch {
    parsed = null;
  }
  const error = (parsed as { error?: { code?: unknown; message?: unknown } } | null)?.error;
  if (status >= 400 && typeof error?.code === 'string') {
    const code = error.code.slice(0, 64);
    const message = typeof error.message === 'string' ? error.message.slice(0, 500) : '';
    return new RescueError(isRescueErrorCode(code) ? code : 'RSC_ERR_PEER_ERROR', undefined, {
      message: `${peer.id} refused (unsigned answer, HTTP ${status}) ${code}: ${message}`,
      remote: { status, authenticated: false, code },
    });
  }
  return new RescueError('RSC_ERR_BAD_REPLY', `${peer.id}: unsigned answer with HTTP ${status}`);
}
