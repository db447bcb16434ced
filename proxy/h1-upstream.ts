// The fast upstream client: a keep-alive pool of raw net.Sockets per upstream that writes the
// request head itself and parses the response (h1-parse.ts), streaming the body into the
// client's response. Why not undici here: bench/proxy measured its per-read 64 KiB buffers as
// the cause of the 100 KiB case's full GCs and its dispatch path as a large share of the 4 KiB
// cost. Each socket reads into one buffer of its own (`onread`), reused for every read; bytes
// handed to the client are not copied, so the socket stops reading until they are flushed.
// Used for requests without a body (front.ts decides before dispatch); everything else stays
// on undici. It speaks the handler protocol Exchange already implements for undici.
import { maxHeaderSize } from 'node:http';
import * as net from 'node:net';
import { ProxyError, StaleSocketError } from './errors.js';
import { ChunkedDecoder, parseResponseHead, responseInfo, type ChunkSink } from './h1-parse.js';

/** What Exchange implements for this client (the undici classic handler plus flush control). */
export interface H1Handler {
  onConnect(abort: (err?: Error) => void): void;
  onHeaders(statusCode: number, rawHeaders: string[], resume: () => void, statusText: string): boolean;
  /**
   * Write `chunk` (a view of the socket's read buffer) to the client with `flushed` as the write
   * callback. Returns false if nothing was written (then `flushed` is never called).
   */
  onBody(chunk: Buffer, flushed: (err?: Error | null) => void): boolean;
  /** Bytes written to the client and not yet handed to the kernel. */
  pending(): number;
  /** Reading stopped until the client takes what it has (and started again). */
  onPaused(): void;
  onResumed(): void;
  onComplete(trailers: string[] | null): void;
  onError(err: Error): void;
}

export interface H1Request {
  path: string;
  method: string;
  /** Flat [name, value, ...] as buildRequestHeaders made them. */
  headers: string[];
  headersTimeout?: number | null;
  bodyTimeout?: number | null;
}

const READ_BUFFER_BYTES = 64 * 1024;
const CRLF2 = Buffer.from('\r\n\r\n');
const MAX_HEAD_BYTES = maxHeaderSize;

// Connection phases.
const IDLE = 0;
/** Handed a request, onConnect running, nothing written yet. */
const ASSIGNED = 1;
const HEAD = 2;
const BODY_LENGTH = 3;
const BODY_CHUNKED = 4;
/** No Content-Length or Transfer-Encoding: the body ends when the upstream closes. */
const BODY_CLOSE = 5;

function noop(): void {}

function serializeHead(req: H1Request): string {
  let head = `${req.method} ${req.path} HTTP/1.1\r\n`;
  const h = req.headers;
  for (let i = 0; i < h.length; i += 2) head += `${h[i]}: ${h[i + 1]}\r\n`;
  return `${head}connection: keep-alive\r\n\r\n`;
}

/** Runs after the nextTick in which ServerResponse uncorks the client socket. */
function checkFlush(conn: H1Conn): void {
  conn.checkFlush();
}

class H1Conn implements ChunkSink {
  readonly socket: net.Socket;
  private readonly buf = Buffer.allocUnsafeSlow(READ_BUFFER_BYTES);
  private handler: H1Handler | null = null;
  private phase = IDLE;
  private connected = false;
  /** The request this connection was opened for (until connected). */
  private pending: { req: H1Request; handler: H1Handler } | null;
  private connectTimer: NodeJS.Timeout | null = null;
  private lastError: Error | null = null;
  /** Responses completed on this socket: > 0 means a reused keep-alive socket. */
  private served = 0;
  /** Some byte of the current response arrived. */
  private seen = false;
  private headOnly = false;
  private partial: Buffer | null = null;
  private headDeadline = Infinity;
  private bodyMs = 0;
  private armedMs = -1;
  private remaining = 0;
  private keepAlive = true;
  private chunked: ChunkedDecoder | null = null;
  /** Client writes made from `buf` whose callbacks have not run yet. */
  private unflushed = 0;
  private paused = false;
  private checkQueued = false;
  /** The handler whose writes may still hold `buf`. */
  private writer: H1Handler | null = null;
  dead = false;
  lastUsed = 0;
  private readonly abort = (err?: Error): void => this.abortRequest(err);
  private readonly flushed = (): void => this.onFlushed();

  constructor(
    private readonly pool: H1Pool,
    req: H1Request,
    handler: H1Handler,
  ) {
    this.pending = { req, handler };
    this.socket = net.connect({
      host: pool.host,
      port: pool.port,
      noDelay: true,
      onread: { buffer: this.buf, callback: (n: number) => this.onRead(n) },
    });
    if (pool.connectMs > 0) {
      this.connectTimer = setTimeout(() => {
        this.socket.destroy(new ProxyError('PRX_ERR_UPSTREAM_CONNECT_TIMEOUT'));
      }, pool.connectMs);
    }
    this.socket.on('connect', () => this.onConnected());
    this.socket.on('error', (err: Error) => {
      this.lastError = err;
    });
    this.socket.on('end', () => this.onEnd());
    this.socket.on('close', () => this.onGone());
    this.socket.on('timeout', () => this.onTimeout());
  }

  private onConnected(): void {
    this.connected = true;
    if (this.connectTimer !== null) clearTimeout(this.connectTimer);
    this.connectTimer = null;
    const p = this.pending!;
    this.pending = null;
    if (!this.start(p.req, p.handler)) this.pool.release(this);
  }

  /** Send `req`. False if its handler aborted it in onConnect (the connection is still free). */
  start(req: H1Request, h: H1Handler): boolean {
    this.handler = h;
    this.phase = ASSIGNED;
    h.onConnect(this.abort);
    if (this.handler !== h) return false;
    this.phase = HEAD;
    this.seen = false;
    this.partial = null;
    this.headOnly = req.method === 'HEAD';
    this.bodyMs = req.bodyTimeout ?? 0;
    const t = req.headersTimeout ?? 0;
    this.headDeadline = t > 0 ? performance.now() + t : Infinity;
    this.arm(t);
    this.socket.write(serializeHead(req), 'latin1');
    return true;
  }

  /** Socket idle timer: headers timeout, then body idle timeout (re-armed only on change). */
  private arm(ms: number): void {
    if (ms !== this.armedMs) {
      this.armedMs = ms;
      this.socket.setTimeout(ms);
    }
  }

  // ---- reading ------------------------------------------------------------------------------

  private onRead(n: number): boolean {
    const h = this.handler;
    if (h === null || this.phase < HEAD) {
      // Bytes nobody asked for (an idle connection): the stream is out of step; drop it.
      this.destroy();
      return false;
    }
    this.seen = true;
    let src = this.buf;
    let off = 0;
    let end = n;
    while (this.phase === HEAD) {
      let from = off;
      if (this.partial !== null) {
        const prev = this.partial.length;
        src = Buffer.concat([this.partial, src.subarray(off, end)]);
        this.partial = null;
        from = Math.max(0, prev - 3);
        off = 0;
        end = src.length;
      }
      const idx = src.indexOf(CRLF2, from);
      if (idx < 0 || idx >= end) {
        if (end - off > MAX_HEAD_BYTES) return this.fail(bad('response head too large'));
        if (performance.now() > this.headDeadline)
          return this.fail(new ProxyError('PRX_ERR_UPSTREAM_HEADERS_TIMEOUT'));
        // Copy: `buf` is overwritten by the next read.
        this.partial = Buffer.from(src.subarray(off, end));
        return true;
      }
      if (idx - off > MAX_HEAD_BYTES) return this.fail(bad('response head too large'));
      const headers = parseResponseHead(src.toString('latin1', off, idx));
      off = idx + 4;
      if (headers === null) return this.fail(bad(responseInfo.error));
      const status = responseInfo.status;
      if (status < 200) {
        // 1xx: forwarded where the client can take it; the final response follows.
        if (status === 101) return this.fail(bad('101 Switching Protocols to a request without Upgrade'));
        h.onHeaders(status, headers, noop, responseInfo.reason);
        if (this.handler !== h) return false;
        continue;
      }
      if (!this.startBody(h, status, headers)) return false;
    }
    switch (this.phase) {
      case BODY_LENGTH: {
        const take = Math.min(this.remaining, end - off);
        if (take > 0) {
          this.remaining -= take;
          this.deliver(h, src.subarray(off, off + take));
          if (this.handler !== h) return false;
          off += take;
        }
        if (this.remaining === 0) return this.complete(h, off < end, null);
        break;
      }
      case BODY_CHUNKED: {
        const dec = this.chunked!;
        const used = dec.feed(src, off, end, this);
        if (this.handler !== h) return false;
        if (used < 0) return this.fail(bad(`invalid chunked body: ${dec.error}`));
        if (dec.done) return this.complete(h, off + used < end, dec.trailers);
        break;
      }
      case BODY_CLOSE:
        if (off < end) this.deliver(h, src.subarray(off, end));
        if (this.handler !== h) return false;
        break;
      default: // bodiless response completed in startBody
        break;
    }
    return true;
  }

  /** The final response head: decide its framing and hand it to the client. */
  private startBody(h: H1Handler, status: number, headers: string[]): boolean {
    const info = responseInfo;
    this.keepAlive = !info.close;
    const noBody = this.headOnly || status === 204 || status === 304;
    if (noBody || info.contentLength >= 0) {
      this.phase = BODY_LENGTH;
      this.remaining = noBody ? 0 : info.contentLength;
    } else if (info.chunked) {
      this.phase = BODY_CHUNKED;
      (this.chunked ??= new ChunkedDecoder(MAX_HEAD_BYTES)).reset();
    } else {
      this.phase = BODY_CLOSE;
      this.keepAlive = false;
    }
    this.arm(this.bodyMs);
    if (!h.onHeaders(status, headers, noop, info.reason)) {
      // The client side refused it (already answered 502 or gone); the body is unread.
      if (this.handler === h) this.abortRequest(new ProxyError('PRX_ERR_INTERNAL', 'response refused'));
      return false;
    }
    return this.handler === h;
  }

  chunkData(data: Buffer): void {
    const h = this.handler;
    if (h !== null) this.deliver(h, data);
  }

  private deliver(h: H1Handler, chunk: Buffer): void {
    if (!h.onBody(chunk, this.flushed)) return;
    this.unflushed++;
    this.writer = h;
    // ServerResponse corks the client socket until the next tick; look after that whether the
    // write left bytes queued (they still point into `buf`).
    if (!this.checkQueued) {
      this.checkQueued = true;
      process.nextTick(checkFlush, this);
    }
  }

  checkFlush(): void {
    this.checkQueued = false;
    const w = this.writer;
    if (w === null || this.paused || this.unflushed === 0 || this.dead) return;
    if (w.pending() === 0) return;
    this.paused = true;
    this.socket.pause();
    w.onPaused();
  }

  private onFlushed(): void {
    this.unflushed--;
    if (this.unflushed > 0 || !this.paused) return;
    this.paused = false;
    const w = this.writer;
    this.writer = null;
    if (this.dead) return;
    w?.onResumed();
    this.socket.resume();
  }

  /** The response ended cleanly. `extra`: bytes followed it (never valid without pipelining). */
  private complete(h: H1Handler, extra: boolean, trailers: string[] | null): boolean {
    this.handler = null;
    this.phase = IDLE;
    this.served++;
    h.onComplete(trailers);
    if (extra || !this.keepAlive) {
      this.destroy();
      return false;
    }
    // Reuse at once: if the last write still holds `buf`, checkFlush pauses reading first.
    this.pool.release(this);
    return true;
  }

  // ---- failures -----------------------------------------------------------------------------

  private abortRequest(err?: Error): void {
    const h = this.handler;
    if (h === null) return;
    this.handler = null;
    const untouched = this.phase === ASSIGNED;
    this.phase = IDLE;
    if (!untouched) this.destroy();
    h.onError(err ?? new ProxyError('PRX_ERR_INTERNAL', 'request aborted'));
  }

  /** Fail the current request with `err` and drop the connection. */
  fail(err: Error): false {
    const h = this.handler;
    this.handler = null;
    this.phase = IDLE;
    this.destroy();
    if (h !== null) h.onError(err);
    return false;
  }

  private onTimeout(): void {
    if (this.handler === null) {
      this.destroy();
      return;
    }
    if (this.phase <= HEAD) this.fail(new ProxyError('PRX_ERR_UPSTREAM_HEADERS_TIMEOUT'));
    // Paused: the client is slow, not the upstream (the client socket has its own idle timer).
    else if (!this.paused) this.fail(new ProxyError('PRX_ERR_UPSTREAM_BODY_TIMEOUT'));
  }

  private onEnd(): void {
    const h = this.handler;
    if (h !== null && this.phase === BODY_CLOSE) {
      this.handler = null;
      this.phase = IDLE;
      this.destroy();
      h.onComplete(null);
      return;
    }
    this.onGone();
  }

  /** The socket ended or closed: what that means depends on where the request was. */
  private onGone(): void {
    if (!this.connected) {
      const p = this.pending;
      this.pending = null;
      if (this.connectTimer !== null) clearTimeout(this.connectTimer);
      this.destroy();
      if (p !== null) p.handler.onError(this.lastError ?? new ProxyError('PRX_ERR_UPSTREAM_CONNECT'));
      return;
    }
    if (this.handler === null) {
      this.destroy();
      return;
    }
    const why = this.lastError?.message ?? 'the upstream closed the connection';
    if (this.phase <= HEAD && !this.seen) {
      this.fail(this.served > 0 ? new StaleSocketError(why) : new ProxyError('PRX_ERR_UPSTREAM_RESET', why));
    } else {
      this.fail(new ProxyError('PRX_ERR_UPSTREAM_RESET', `${why} (response incomplete)`));
    }
  }

  destroy(): void {
    if (this.dead) return;
    this.dead = true;
    this.socket.destroy();
    this.pool.remove(this);
  }
}

function bad(why: string): ProxyError {
  return new ProxyError('PRX_ERR_UPSTREAM_BAD_RESPONSE', why);
}

/**
 * Connections to one upstream: at most `max`, idle ones reused last-in first-out (the rest age
 * out), requests beyond `max` queued in order.
 */
export class H1Pool {
  private readonly idle: H1Conn[] = [];
  private readonly queue: { req: H1Request; handler: H1Handler }[] = [];
  private readonly all = new Set<H1Conn>();
  private sweeper: NodeJS.Timeout | null = null;
  private onEmpty: (() => void) | null = null;
  closed = false;

  constructor(
    readonly host: string,
    readonly port: number,
    readonly max: number,
    readonly connectMs: number,
    readonly keepAliveMs: number,
  ) {}

  /** Connections open (busy, idle or connecting). */
  get size(): number {
    return this.all.size;
  }

  get idleCount(): number {
    return this.idle.length;
  }

  dispatch(req: H1Request, handler: H1Handler): void {
    if (this.closed) {
      handler.onError(new ProxyError('PRX_ERR_SHUTTING_DOWN', 'upstream pool closed'));
      return;
    }
    const now = performance.now();
    for (let c = this.idle.pop(); c !== undefined; c = this.idle.pop()) {
      // Past the keep-alive idle time the upstream may be closing it right now.
      if (now - c.lastUsed >= this.keepAliveMs) {
        c.destroy();
        continue;
      }
      if (!c.start(req, handler)) this.idle.push(c);
      return;
    }
    if (this.all.size < this.max) {
      this.all.add(new H1Conn(this, req, handler));
      return;
    }
    this.queue.push({ req, handler });
  }

  /** `c` finished a response and can take the next request. */
  release(c: H1Conn): void {
    if (c.dead) return;
    // Queued requests are served even after close() (as undici's Pool.close does).
    while (this.queue.length > 0) {
      const next = this.queue.shift()!;
      if (c.start(next.req, next.handler)) return;
    }
    if (this.closed) {
      c.destroy();
      return;
    }
    c.lastUsed = performance.now();
    this.idle.push(c);
    if (this.sweeper === null) {
      const every = Math.max(25, Math.min(1_000, Math.floor(this.keepAliveMs / 4)));
      this.sweeper = setInterval(() => this.sweep(), every);
      this.sweeper.unref();
    }
  }

  /** `c` is gone: free its place (a queued request may open a new connection). */
  remove(c: H1Conn): void {
    if (!this.all.delete(c)) return;
    const i = this.idle.indexOf(c);
    if (i >= 0) this.idle.splice(i, 1);
    if (this.queue.length > 0 && this.all.size < this.max) {
      const next = this.queue.shift()!;
      this.all.add(new H1Conn(this, next.req, next.handler));
    }
    if (this.all.size === 0) {
      this.stopSweeper();
      this.onEmpty?.();
    }
  }

  private sweep(): void {
    const now = performance.now();
    let n = 0;
    while (n < this.idle.length && now - this.idle[n]!.lastUsed >= this.keepAliveMs) n++;
    for (const c of this.idle.splice(0, n)) c.destroy();
    if (this.idle.length === 0) this.stopSweeper();
  }

  private stopSweeper(): void {
    if (this.sweeper !== null) clearInterval(this.sweeper);
    this.sweeper = null;
  }

  /**
   * Stop taking requests; queued ones are still served, idle connections close now, busy ones
   * after their response (and the queue).
   */
  close(): Promise<void> {
    this.closed = true;
    for (const c of this.idle.splice(0)) c.destroy();
    if (this.all.size === 0) return Promise.resolve();
    return new Promise((resolve) => {
      this.onEmpty = resolve;
    });
  }

  /** Close everything now; requests in flight fail. */
  destroy(): Promise<void> {
    this.closed = true;
    this.failQueued();
    for (const c of [...this.all]) c.fail(new ProxyError('PRX_ERR_SHUTTING_DOWN'));
    return Promise.resolve();
  }

  private failQueued(): void {
    for (const q of this.queue.splice(0)) q.handler.onError(new ProxyError('PRX_ERR_SHUTTING_DOWN'));
  }
}
