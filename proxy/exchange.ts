// One proxied request/response: the handler (for undici or h1-upstream.ts) that streams the
// upstream's response straight into the client's ServerResponse, with backpressure both ways.
import { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { errorBodies, ProxyError, ProxyErrors, StaleSocketError, type ProxyErrorCode } from './errors.js';
import { filterResponseHeaders, latin1, trailersObject } from './headers.js';
import type { H1Handler, H1Request } from './h1-upstream.js';
import type { Snapshot } from './snapshot.js';
import { UpstreamSet, type Upstream } from './upstreams.js';
import type { ProxyStats } from './stats.js';
import type pino from 'pino';
import type { AccessLine } from './access-log.js';

/** What every exchange of one FrontProxy shares (set once, never per request). */
export interface FrontContext {
  readonly stats: ProxyStats;
  readonly accessLog: pino.Logger | null;
  /** Per-request line writer for accessLog (null = no access log, one check per request). */
  readonly accessLine: AccessLine | null;
  readonly logger: pino.Logger;
  /** True once close() began: responses then carry `Connection: close`. */
  draining: boolean;
}

/**
 * The server's response class: one extra field instead of a symbol property keeps every
 * ServerResponse the same shape, and lets the module-level event listeners below find their
 * exchange through `this` (no per-request closures).
 */
export class ProxyResponse extends ServerResponse {
  exchange: Exchange | null = null;
  /** Expect: 100-continue: send through undici (the fast client does not send request bodies). */
  viaUndici = false;
}

/** What Exchange reads of a request: IncomingMessage, or the fast front's FastRequest. */
export interface FrontRequest {
  readonly method?: string | undefined;
  readonly url?: string | undefined;
  readonly httpVersionMinor: number;
}

/**
 * What Exchange and sendError use of a response: ProxyResponse (node:http) or the fast front's
 * FastResponse (h1-front.ts).
 */
export interface FrontResponse {
  exchange: unknown;
  readonly viaUndici: boolean;
  statusCode: number;
  readonly headersSent: boolean;
  readonly destroyed: boolean;
  readonly writableEnded: boolean;
  readonly writableFinished: boolean;
  readonly writableLength: number;
  readonly chunkedEncoding: boolean;
  shouldKeepAlive: boolean;
  writeHead(statusCode: number, statusMessage: string | undefined, headers: string[]): unknown;
  write(chunk: Buffer | string, cb?: (err?: Error | null) => void): boolean;
  end(data?: Buffer | string): unknown;
  addTrailers(trailers: Record<string, string>): void;
  writeProcessing(): void;
  writeEarlyHints(hints: Record<string, string | string[]>): void;
  destroy(): unknown;
  on(event: 'close' | 'drain', listener: (this: FrontResponse) => void): unknown;
}

// Per-socket byte counters: stats and the access log take deltas of socket.bytesRead and
// bytesWritten instead of counting every chunk.
export const kRead = Symbol('dotslash.read');
export const kWritten = Symbol('dotslash.written');
export type CountedSocket = Socket & { [kRead]: number; [kWritten]: number };

const IDEMPOTENT: Record<string, boolean> = {
  GET: true,
  HEAD: true,
  OPTIONS: true,
  PUT: true,
  DELETE: true,
  TRACE: true,
};

function onResClose(this: FrontResponse): void {
  (this.exchange as Exchange | null)?.finish();
}

function onResDrain(this: FrontResponse): void {
  const ex = this.exchange as Exchange | null;
  if (ex === null) return;
  if (ex.snap.bodyTimeout > 0) ex.socket.setTimeout(0);
  if (ex.resume !== null) ex.resume();
}

/**
 * The upstream response handler, for both upstream clients: undici (requests with a body,
 * 100-continue, `proxy.upstream_client: undici`) and the raw-socket client of h1-upstream.ts
 * (onBody/pending/onPaused/onResumed are its flush control). For undici it implements the
 * classic handler interface (onConnect, onHeaders, onData, onComplete, onError), which undici's
 * Client calls directly; the newer onRequestStart/onResponseStart interface goes through
 * UnwrapHandler, which allocates a controller and parses the headers into an object for every
 * request (bench/proxy: the 4 KiB case is dominated by such per-request costs). undici 7 marks the classic interface
 * deprecated in its types but its Client still speaks it natively; revisit on undici 8.
 * (At runtime undici passes trailers as Buffers, whatever its types say.)
 */
export class Exchange implements Dispatcher.DispatchHandler, H1Handler {
  readonly start = performance.now();
  upstreamStart = 0;
  upstreamMs: number | undefined = undefined;
  upstream: Upstream | null = null;
  abortUpstream: ((err?: Error) => void) | null = null;
  resume: (() => void) | null = null;
  /** 0 = waiting for upstream, 1 = response streaming, 2 = done (complete, error sent, or aborted). */
  state = 0;
  attempts = 0;
  drainHooked = false;
  clientGone = false;
  finished = false;
  errorCode: ProxyErrorCode | null = null;
  opts: Dispatcher.DispatchOptions | null = null;
  /** The Host header sent is the chosen upstream's (host_header "upstream", or no client Host). */
  hostFromUpstream = false;
  /** Sent over the raw-socket client (h1-upstream.ts) instead of undici. */
  fast = false;

  constructor(
    readonly ctx: FrontContext,
    readonly snap: Snapshot,
    readonly req: FrontRequest,
    readonly res: FrontResponse,
    readonly socket: CountedSocket,
    readonly body: Readable | null,
  ) {
    res.exchange = this;
    res.on('close', onResClose);
  }

  /** Send the request to `upstream`. */
  dispatch(upstream: Upstream, opts: Dispatcher.DispatchOptions): void {
    this.upstream = upstream;
    this.opts = opts;
    this.upstreamStart = performance.now();
    if (this.fast) upstream.h1.dispatch(opts as H1Request, this);
    else upstream.pool.dispatch(opts, this);
  }

  onConnect(abort: (err?: Error) => void): void {
    // Client gone or request refused while queued in the pool: do not start it at all.
    if (this.clientGone || this.state === 2)
      abort(new ProxyError('PRX_ERR_INTERNAL', 'request already ended'));
    else this.abortUpstream = abort;
  }

  /**
   * The client's own request broke after it was dispatched (bad chunked framing, EOF in the
   * middle of the body): stop the upstream request so it never completes with a body the
   * client did not frame, and answer `code` if no response byte has gone out yet.
   */
  clientFailed(code: ProxyErrorCode): void {
    if (this.state === 2 || this.finished) return;
    const started = this.state === 1 || this.res.headersSent;
    const abort = this.abortUpstream;
    this.abortUpstream = null;
    this.state = 2;
    this.errorCode = code;
    if (abort !== null) abort(new ProxyError(code)); // onError then sees state 2 and returns
    if (started) this.res.destroy();
    else sendError(this.res, code, this.snap.responseVia, true);
  }

  onHeaders(
    statusCode: number,
    rawHeaders: Buffer[] | string[],
    resume: () => void,
    statusText: string,
  ): boolean {
    const res = this.res;
    if (statusCode < 200) {
      informational(res, statusCode, rawHeaders);
      return true;
    }
    if (this.clientGone) return false;
    if (statusCode >= 500) this.ctx.stats.upstreamErrors++;
    this.state = 1;
    this.resume = resume;
    if (this.ctx.draining) res.shouldKeepAlive = false;
    const chunkable =
      this.req.httpVersionMinor === 1 &&
      this.req.method !== 'HEAD' &&
      statusCode !== 204 &&
      statusCode !== 304;
    const headers = filterResponseHeaders(rawHeaders, this.snap.responseVia, chunkable);
    try {
      res.writeHead(statusCode, statusText, headers);
    } catch (err) {
      // An upstream header Node will not write (invalid characters etc.): its response is
      // unusable; answer 502 and drop the upstream request (onError then sees state 2).
      const abort = this.abortUpstream;
      this.abortUpstream = null;
      this.fail(new ProxyError('PRX_ERR_UPSTREAM_BAD_RESPONSE', (err as Error).message));
      abort?.(new ProxyError('PRX_ERR_UPSTREAM_BAD_RESPONSE'));
      return false;
    }
    return true;
  }

  onData(chunk: Buffer): boolean {
    if (this.res.write(chunk)) return true;
    // Client is slower than upstream: undici pauses the upstream socket until 'drain'.
    if (!this.drainHooked) {
      this.drainHooked = true;
      this.res.on('drain', onResDrain);
    }
    // undici's body timeout does not run while paused, so a client that stops reading would
    // hold the upstream connection forever (slow-read attack): an idle timer on the client
    // socket, armed only while paused, destroys it (front.ts onSocketTimeout: a response is in flight).
    const idle = this.snap.bodyTimeout;
    if (idle > 0) this.socket.setTimeout(idle);
    return false;
  }

  // ---- raw-socket client flush control (h1-upstream.ts) ----

  onBody(chunk: Buffer, flushed: (err?: Error | null) => void): boolean {
    const res = this.res;
    if (res.destroyed) return false;
    res.write(chunk, flushed);
    return true;
  }

  pending(): number {
    return this.res.writableLength;
  }

  /** As in onData: a client that stops reading must not hold the upstream connection forever. */
  onPaused(): void {
    const idle = this.snap.bodyTimeout;
    if (idle > 0 && this.state === 1) this.socket.setTimeout(idle);
  }

  onResumed(): void {
    if (this.snap.bodyTimeout > 0 && this.state === 1) this.socket.setTimeout(0);
  }

  onComplete(trailers: Buffer[] | string[] | null): void {
    this.upstreamMs = performance.now() - this.upstreamStart;
    this.state = 2;
    this.abortUpstream = null;
    const res = this.res;
    if (trailers !== null && trailers.length > 0 && res.chunkedEncoding)
      res.addTrailers(trailersObject(trailers));
    res.end();
  }

  onError(err: Error): void {
    this.abortUpstream = null;
    if (this.state === 2 || this.clientGone) return;
    const code = (err as { code?: string }).code;
    if (this.state === 0 && !this.res.headersSent && this.retry(err, code)) return;
    if (this.state === 1 || this.res.headersSent) this.cut(err, code);
    else this.fail(err);
  }

  /**
   * One more attempt, only where repeating cannot surprise the application: a connection that
   * never opened (nothing was sent; another upstream is tried), or a reused keep-alive socket
   * reset before any response byte for an idempotent method without a body (RFC 9110 §9.2.2,
   * RFC 9112 §9.3.1).
   */
  private retry(err: Error, code: string | undefined): boolean {
    if (this.attempts > 0 || this.body !== null || this.opts === null || this.upstream === null) return false;
    const connectFailed =
      code === 'ECONNREFUSED' ||
      code === 'UND_ERR_CONNECT_TIMEOUT' ||
      code === 'EHOSTUNREACH' ||
      code === 'ENETUNREACH' ||
      code === 'ENOTFOUND' ||
      code === 'EAI_AGAIN' ||
      code === 'PRX_ERR_UPSTREAM_CONNECT' ||
      code === 'PRX_ERR_UPSTREAM_CONNECT_TIMEOUT';
    if (connectFailed) {
      UpstreamSet.markDown(this.upstream);
      // Nothing was sent: any method may go to another upstream, if there is one.
      if (this.snap.upstreams.list.length < 2) return false;
      const next = this.snap.upstreams.pick(this.upstream);
      if (next === this.upstream) return false;
      this.attempts++;
      this.ctx.stats.upstreamErrors++;
      this.redispatch(next);
      return true;
    }
    // A kept-alive upstream socket closed under us before any response byte (the upstream timed
    // it out as we reused it): the request may have been seen, so only idempotent methods go again.
    const reset =
      err instanceof StaleSocketError ||
      code === 'ECONNRESET' ||
      code === 'EPIPE' ||
      (code === 'UND_ERR_SOCKET' &&
        ((err as { socket?: { bytesRead?: number } }).socket?.bytesRead ?? 1) > 0);
    if (!reset || IDEMPOTENT[this.req.method!] !== true) return false;
    this.attempts++;
    this.ctx.stats.upstreamErrors++;
    this.redispatch(this.upstream);
    return true;
  }

  private redispatch(upstream: Upstream): void {
    const opts = this.opts!;
    if (this.hostFromUpstream) (opts.headers as string[])[1] = upstream.host;
    this.dispatch(upstream, opts);
  }

  /** The response has started: all we can do is cut it so the client sees it incomplete. */
  private cut(err: Error, code: string | undefined): void {
    this.state = 2;
    if (code !== 'UND_ERR_ABORTED') this.ctx.stats.upstreamErrors++;
    this.errorCode = classifyError(err, code);
    this.res.destroy();
  }

  /** No response byte sent yet: answer with our own error. */
  fail(err: Error): void {
    const code = classifyError(err, (err as { code?: string }).code);
    this.errorCode = code;
    this.state = 2;
    const entry = ProxyErrors[code];
    if (entry.status >= 500) this.ctx.stats.upstreamErrors++;
    if (code !== 'PRX_ERR_UPSTREAM_CONNECT' && code !== 'PRX_ERR_UPSTREAM_CONNECT_TIMEOUT') {
      this.ctx.logger.debug({ err, url: this.req.url }, 'upstream request failed');
    }
    sendError(this.res, code, this.snap.responseVia, this.ctx.draining);
  }

  /** Called once when the response closes (finished or the client went away). */
  finish(): void {
    if (this.finished) return;
    this.finished = true;
    const res = this.res;
    const ctx = this.ctx;
    const stats = ctx.stats;
    stats.active--;
    if (!res.writableFinished) {
      // The client went away (or we cut the response): free the upstream request now, so an
      // aborted client leaves no upstream socket busy behind it.
      this.clientGone = true;
      const abort = this.abortUpstream;
      this.abortUpstream = null;
      if (abort !== null && this.state !== 2) abort(new ProxyError('PRX_ERR_INTERNAL', 'client went away'));
    }
    const socket = this.socket;
    const bytes = attributeSocketBytes(socket, stats);
    const totalMs = performance.now() - this.start;
    const status = res.headersSent ? res.statusCode : 499;
    if (this.errorCode !== null && ProxyErrors[this.errorCode].status < 500) stats.clientErrors++;
    stats.recordResponse(status, totalMs, this.upstreamMs);
    const line = ctx.accessLine;
    if (line !== null) {
      const req = this.req;
      line(
        socket.remoteAddress,
        req.method,
        req.url,
        status,
        bytes,
        this.upstreamMs === undefined ? null : round3(this.upstreamMs),
        round3(totalMs),
        this.errorCode,
        !res.writableFinished,
      );
    }
  }
}

function round3(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

/** Map an undici / socket / our own error to a stable code. */
export function classifyError(err: Error, code: string | undefined): ProxyErrorCode {
  if (err instanceof ProxyError) return err.code;
  // undici's llhttp errors carry no code (a broken or hostile upstream response).
  if (err.name === 'HTTPParserError') return 'PRX_ERR_UPSTREAM_BAD_RESPONSE';
  switch (code) {
    case 'UND_ERR_CONNECT_TIMEOUT':
      return 'PRX_ERR_UPSTREAM_CONNECT_TIMEOUT';
    case 'ECONNREFUSED':
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EADDRNOTAVAIL':
      return 'PRX_ERR_UPSTREAM_CONNECT';
    case 'UND_ERR_HEADERS_TIMEOUT':
      return 'PRX_ERR_UPSTREAM_HEADERS_TIMEOUT';
    case 'UND_ERR_BODY_TIMEOUT':
      return 'PRX_ERR_UPSTREAM_BODY_TIMEOUT';
    case 'UND_ERR_SOCKET':
    case 'ECONNRESET':
    case 'EPIPE':
    case 'UND_ERR_CLOSED':
    case 'UND_ERR_DESTROYED':
      return 'PRX_ERR_UPSTREAM_RESET';
    case 'UND_ERR_INVALID_ARG':
    case 'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH':
      return 'PRX_ERR_BAD_REQUEST';
    case 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH':
    case 'UND_ERR_HEADERS_OVERFLOW':
    case 'UND_ERR_RES_EXCEEDED_MAX_SIZE':
    case 'UND_ERR_INFO':
      return 'PRX_ERR_UPSTREAM_BAD_RESPONSE';
    default:
      if (code !== undefined && code.startsWith('HPE_')) return 'PRX_ERR_UPSTREAM_BAD_RESPONSE';
      return 'PRX_ERR_INTERNAL';
  }
}

/** Answer with one of our errors (JSON body, stable code). */
export function sendError(res: FrontResponse, code: ProxyErrorCode, via: string, close: boolean): void {
  if (res.headersSent || res.destroyed) {
    res.destroy();
    return;
  }
  const entry = ProxyErrors[code];
  const body = errorBodies[code];
  // 4xx from us: the request body may be unread (413) or the stream unusable; do not reuse it.
  if (close || entry.status < 500) res.shouldKeepAlive = false;
  res.writeHead(entry.status, undefined, [
    'content-type',
    'application/json',
    'content-length',
    String(body.length),
    'cache-control',
    'no-store',
    'via',
    via,
  ]);
  res.end(body);
}

/** Forward 1xx responses Node can write (RFC 9110 §15.2); 100 is ours to send, 101 is a tunnel. */
function informational(res: FrontResponse, statusCode: number, raw: Buffer[] | string[]): void {
  if (statusCode === 102) {
    res.writeProcessing();
  } else if (statusCode === 103) {
    const hints: Record<string, string | string[]> = {};
    for (let i = 0; i < raw.length; i += 2) {
      const name = latin1(raw[i]!).toLowerCase();
      const value = latin1(raw[i + 1]!);
      const prev = hints[name];
      hints[name] = prev === undefined ? value : Array.isArray(prev) ? [...prev, value] : [prev, value];
    }
    if (hints.link !== undefined) res.writeEarlyHints(hints as { link: string | string[] });
  }
}

/**
 * Attribute the socket's bytes since the last finished response on it to `stats` (keep-alive
 * sockets carry many responses) and return the bytes written for this one (access log, usage).
 */
export function attributeSocketBytes(socket: CountedSocket, stats: ProxyStats): number {
  const read = socket.bytesRead;
  const written = socket.bytesWritten;
  const bytes = written - socket[kWritten];
  stats.bytesIn += read - socket[kRead];
  stats.bytesOut += bytes;
  socket[kRead] = read;
  socket[kWritten] = written;
  return bytes;
}
