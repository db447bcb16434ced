// The member's control listener: POST /v1/rescue -> verify -> onMessage -> signed reply; GET /v1/health.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { errorBody, RescueError, RescueErrors, type RescueErrorCode } from './errors.js';
import {
  authenticateRequest,
  checkFreshness,
  DEFAULT_SKEW_MS,
  envelopeHead,
  sealEnvelope,
  type PeerKeys,
} from './envelope.js';
import { DEFAULT_MAX_BODY_BYTES, HEALTH_PATH, readCapped, RESCUE_PATH } from './http-body.js';
import type { MemberIdentity } from './keys.js';
import {
  parseReplyBody,
  replyTypeFor,
  type ReplyBodies,
  type ReplyBody,
  type ReplyEnvelope,
  type RequestEnvelope,
  type RequestEnvelopeOf,
  type RequestType,
} from './messages.js';
import { NonceCache, type NonceCacheOptions } from './replay.js';

/** A request that passed every check: signed by a known peer, to us, fresh, never seen. */
export type VerifiedMessage = RequestEnvelope;

export type MessageHandler = (msg: VerifiedMessage) => Promise<ReplyBody> | ReplyBody;

/** One typed handler per request type; a type left out is refused with RSC_ERR_OUT_OF_STATE. */
export type TypedHandlers = {
  [T in RequestType]?: (msg: RequestEnvelopeOf<T>) => Promise<ReplyBodies[T]> | ReplyBodies[T];
};

/** Builds an onMessage that dispatches on `type`, so each handler sees its body typed. */
export function routeByType(handlers: TypedHandlers): MessageHandler {
  return (msg) => {
    const handler = handlers[msg.type] as
      ((m: VerifiedMessage) => Promise<ReplyBody> | ReplyBody) | undefined;
    if (!handler)
      throw new RescueError('RSC_ERR_OUT_OF_STATE', `this member does not take ${msg.type} messages`);
    return handler(msg);
  };
}

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
    let bytes: Buffer | null;
    try {
      bytes = await readCapped(req, this.maxBody);
    } catch {
      res.destroy(); // the peer went away mid-body: nobody to answer
      return;
    }
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
      if (code === 'RSC_ERR_INTERNAL') {
        this.opts.logger?.error({ err, type: env.type, from: env.from }, 'control handler failed');
      } else {
        // An authenticated peer was refused: worth seeing (clock skew, replay, session mix-ups).
        const detail = { code, type: env.type, from: env.from, err: (err as Error).message };
        this.opts.logger?.warn(detail, 'control message refused');
      }
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

  /** 413 and close the connection; whatever the peer still sends is read and dropped meanwhile. */
  private tooLarge(req: IncomingMessage, res: ServerResponse): void {
    sendPlain(
      res,
      'RSC_ERR_TOO_LARGE',
      { connection: 'close' },
      `${RescueErrors.RSC_ERR_TOO_LARGE.message}: more than ${this.maxBody} bytes`,
    );
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
