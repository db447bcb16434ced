// Sends signed requests to a peer's control listener and verifies the signed reply answers exactly that request.
import type { KeyObject } from 'node:crypto';
import { Agent, request } from 'undici';
import { isRescueErrorCode, RescueError } from './errors.js';
import {
  authenticateReply,
  checkFreshness,
  envelopeHead,
  sealEnvelope,
  SIGNATURE_HEADER,
} from './envelope.js';
import { DEFAULT_MAX_BODY_BYTES, readCapped, RESCUE_PATH } from './http-body.js';
import { parsePublicKey, type MemberIdentity } from './keys.js';
import {
  parseReplyBody,
  parseRequestBody,
  replyTypeFor,
  type ReplyBodies,
  type ReplyEnvelope,
  type RequestBodies,
  type RequestEnvelopeOf,
  type RequestType,
} from './messages.js';

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
    // One controller per send, aborted by the timeout or by close(). (Not AbortSignal.any on the
    // long-lived close signal: on Node 20 that can keep every per-send signal alive.)
    const abort = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      abort.abort();
    }, timeoutMs);
    const onClose = (): void => abort.abort();
    this.aborter.signal.addEventListener('abort', onClose, { once: true });

    let status: number;
    let headers: Record<string, string | string[] | undefined>;
    let bytes: Buffer | null;
    try {
      const res = await request(url, {
        method: 'POST',
        headers: sealed.headers,
        body: sealed.bytes,
        dispatcher: this.agent,
        signal: abort.signal,
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
      if (timedOut || /TIMEOUT/.test(code)) {
        throw new RescueError('RSC_ERR_PEER_TIMEOUT', `${peer.id} (${url}) after ${timeoutMs} ms`, {
          cause: err,
        });
      }
      const detail = `${peer.id} (${url}): ${code || (err as Error).message}`;
      throw new RescueError('RSC_ERR_PEER_UNREACHABLE', detail, { cause: err });
    } finally {
      clearTimeout(timer);
      this.aborter.signal.removeEventListener('abort', onClose);
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
