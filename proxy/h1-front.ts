// The fast front: our own HTTP/1.1 reader and writer for the requests nearly all traffic is
// made of (a GET or HEAD without a body, its head in one read), so they skip node:http's
// IncomingMessage/ServerResponse machinery. bench/proxy measured that machinery at about a
// third of our CPU per 4 KiB request (node:http 21 µs of user time per request against 9 µs for
// raw sockets). Anything else (a body, Expect, Upgrade, pipelining, a head split over reads, a
// byte llhttp might read differently, a rescue in progress) hands the connection, with the
// bytes already read, to node:http for the rest of its life: the unusual cases keep the
// behaviour the node path's tests pin down. The reader accepts a strict subset of RFC 9112
// and hands off everything outside it instead of judging it.
import { EventEmitter } from 'node:events';
import { STATUS_CODES, validateHeaderName, validateHeaderValue } from 'node:http';
import type { Socket } from 'node:net';
import { CLOSE_TOKEN } from './h1-parse.js';

/** A request head the fast front serves itself. */
export interface SimpleRequest {
  method: 'GET' | 'HEAD';
  /** The request target, origin-form ("/..."). */
  url: string;
  /** Flat [name, value, ...] as the client sent them (names as sent, values trimmed). */
  rawHeaders: string[];
  /** False when the client sent `Connection: close`. */
  keepAlive: boolean;
}

const SP = 0x20;
const HTAB = 0x09;
const CR = 0x0d;
const LF = 0x0a;
const COLON = 0x3a;
// "HTTP/1.1"
const VERSION = [0x48, 0x54, 0x54, 0x50, 0x2f, 0x31, 0x2e, 0x31];

/** RFC 9110 tchar. */
const TCHAR = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
  TCHAR[c.charCodeAt(0)] = 1;

/**
 * Parse the request head in `b[0, end)` (`end` is where its blank line's CRLFCRLF starts).
 * Returns null for anything the fast front does not serve itself (node:http then reads the
 * same bytes and answers, refuses or tunnels as usual): another method or version, a target
 * that is not plain origin-form ASCII, any byte outside printable ASCII and HTAB in a field,
 * obs-fold, bare CR or LF, no or several Host fields, and Content-Length, Transfer-Encoding,
 * Expect, Upgrade or a Connection naming `upgrade`.
 */
export function parseSimpleRequest(b: Buffer, end: number): SimpleRequest | null {
  let i: number;
  let method: 'GET' | 'HEAD';
  if (b[0] === 0x47 && b[1] === 0x45 && b[2] === 0x54 && b[3] === SP) {
    method = 'GET';
    i = 4;
  } else if (b[0] === 0x48 && b[1] === 0x45 && b[2] === 0x41 && b[3] === 0x44 && b[4] === SP) {
    method = 'HEAD';
    i = 5;
  } else return null;
  if (b[i] !== 0x2f) return null;
  const urlStart = i;
  for (; i < end; i++) {
    const c = b[i]!;
    if (c === SP) break;
    if (c < 0x21 || c > 0x7e) return null;
  }
  const urlEnd = i;
  // " HTTP/1.1" CRLF
  if (i + 10 > end + 1 || b[i] !== SP) return null;
  for (let k = 0; k < 8; k++) if (b[i + 1 + k] !== VERSION[k]) return null;
  if (b[i + 9] !== CR || b[i + 10] !== LF) return null;
  i += 11;
  const rawHeaders: string[] = [];
  let hosts = 0;
  let keepAlive = true;
  while (i < end) {
    const nameStart = i;
    while (TCHAR[b[i]!] === 1) i++;
    if (i === nameStart || b[i] !== COLON) return null; // empty name, space before ':', obs-fold
    const nameEnd = i++;
    while (b[i] === SP || b[i] === HTAB) i++;
    const valueStart = i;
    let valueEnd = i;
    for (; i < end; i++) {
      const c = b[i]!;
      if (c === CR) break;
      if (c === SP || c === HTAB) continue;
      if (c < 0x21 || c > 0x7e) return null;
      valueEnd = i + 1;
    }
    if (b[i] !== CR || b[i + 1] !== LF) return null;
    i += 2;
    const name = b.toString('latin1', nameStart, nameEnd);
    const value = b.toString('latin1', valueStart, valueEnd);
    switch (name.length) {
      case 4:
        if (name.toLowerCase() === 'host') hosts++;
        break;
      case 6:
        if (name.toLowerCase() === 'expect') return null;
        break;
      case 7:
        if (name.toLowerCase() === 'upgrade') return null;
        break;
      case 10:
        if (name.toLowerCase() === 'connection') {
          const v = value.toLowerCase();
          if (v !== 'keep-alive') {
            if (v.includes('upgrade')) return null;
            if (CLOSE_TOKEN.test(v)) keepAlive = false;
          }
        }
        break;
      case 14:
        if (name.toLowerCase() === 'content-length') return null;
        break;
      case 17:
        if (name.toLowerCase() === 'transfer-encoding') return null;
        break;
    }
    rawHeaders.push(name, value);
  }
  if (hosts !== 1) return null;
  return { method, url: b.toString('latin1', urlStart, urlEnd), rawHeaders, keepAlive };
}

// ---- the response -----------------------------------------------------------------------

let dateCache = '';
let dateSecond = -1;
/** The Date header value, formatted at most once a second (as node:http does). */
function utcDate(): string {
  const now = Date.now();
  const s = Math.floor(now / 1000);
  if (s !== dateSecond) {
    dateSecond = s;
    dateCache = new Date(now).toUTCString();
  }
  return dateCache;
}

type WriteCallback = (err?: Error | null) => void;

/**
 * The response to one request of a FastConn: the subset of ServerResponse that Exchange and
 * sendError use, written straight to the socket with the same head node:http would write
 * (Date unless the upstream sent one, Connection and Keep-Alive, chunked framing when there is
 * no Content-Length and a body is allowed). 'close' is emitted once, when the response is
 * flushed or the connection is gone; `writableFinished` tells which.
 */
export class FastResponse extends EventEmitter {
  /** The Exchange answering it (set by Exchange). */
  exchange: unknown = null;
  readonly viaUndici = false;
  statusCode = 200;
  headersSent = false;
  writableEnded = false;
  writableFinished = false;
  destroyed = false;
  chunkedEncoding = false;
  shouldKeepAlive: boolean;
  private head: string | null = null;
  private noBody: boolean;
  private trailers = '';

  constructor(
    private readonly conn: FastConn,
    readonly req: FastRequest,
  ) {
    super();
    this.shouldKeepAlive = req.keepAlive;
    this.noBody = req.method === 'HEAD';
  }

  get writableLength(): number {
    return this.conn.socket.writableLength;
  }

  writeHead(statusCode: number, reason: string | undefined, headers: string[]): this {
    if (this.headersSent) throw new Error('FastResponse: head already written');
    let sawDate = false;
    let sawLength = false;
    let head = '';
    for (let i = 0; i < headers.length; i += 2) {
      const name = headers[i]!;
      const value = headers[i + 1]!;
      // Throws on what node:http would refuse to write (Exchange answers 502 then).
      validateHeaderName(name);
      validateHeaderValue(name, value);
      if (name.length === 4 && name.toLowerCase() === 'date') sawDate = true;
      else if (name.length === 14 && name.toLowerCase() === 'content-length') sawLength = true;
      head += `${name}: ${value}\r\n`;
    }
    const text = reason ?? STATUS_CODES[statusCode] ?? 'unknown';
    if (/[\r\n]/.test(text)) throw new Error('FastResponse: invalid status message');
    if (statusCode === 204 || statusCode === 304) this.noBody = true;
    if (!sawDate) head += `Date: ${utcDate()}\r\n`;
    const front = this.conn.front;
    if (this.shouldKeepAlive && !front.draining()) {
      const ms = front.keepAliveMs();
      // As node:http: no Keep-Alive field when idle connections never time out.
      head +=
        ms > 0
          ? `Connection: keep-alive\r\nKeep-Alive: timeout=${Math.floor(ms / 1000)}\r\n`
          : 'Connection: keep-alive\r\n';
    } else {
      this.shouldKeepAlive = false;
      head += 'Connection: close\r\n';
    }
    if (!sawLength && !this.noBody) {
      head += 'Transfer-Encoding: chunked\r\n';
      this.chunkedEncoding = true;
    }
    this.statusCode = statusCode;
    this.head = `HTTP/1.1 ${statusCode} ${text}\r\n${head}\r\n`;
    this.headersSent = true;
    return this;
  }

  write(chunk: Buffer | string, cb?: WriteCallback): boolean {
    if (this.destroyed || this.writableEnded) return false;
    if (!this.headersSent) this.writeHead(this.statusCode, undefined, []);
    const conn = this.conn;
    if (this.noBody || chunk.length === 0) {
      if (this.head !== null) this.flushHead();
      if (cb !== undefined) process.nextTick(cb);
      return true;
    }
    const socket = conn.socket;
    socket.cork();
    if (this.head !== null) this.flushHead();
    this.sendBody(chunk, cb ?? null);
    socket.uncork();
    return socket.writableLength < socket.writableHighWaterMark;
  }

  end(data?: Buffer | string): this {
    if (this.writableEnded || this.destroyed) return this;
    if (!this.headersSent) this.writeHead(this.statusCode, undefined, []);
    this.writableEnded = true;
    const conn = this.conn;
    const socket = conn.socket;
    socket.cork();
    if (this.head !== null) this.flushHead();
    if (data !== undefined && data.length > 0 && !this.noBody) this.sendBody(data, null);
    if (this.chunkedEncoding) conn.send(`0\r\n${this.trailers}\r\n`, null);
    socket.uncork();
    conn.ended(this);
    return this;
  }

  addTrailers(trailers: Record<string, string>): void {
    for (const name of Object.keys(trailers)) {
      const value = trailers[name]!;
      validateHeaderName(name);
      validateHeaderValue(name, value);
      this.trailers += `${name}: ${value}\r\n`;
    }
  }

  /** 102 from the upstream, as ServerResponse.writeProcessing writes it. */
  writeProcessing(): void {
    if (!this.headersSent && !this.destroyed) this.conn.send('HTTP/1.1 102 Processing\r\n\r\n', null);
  }

  /** 103 from the upstream, as ServerResponse.writeEarlyHints writes it (Link first). */
  writeEarlyHints(hints: Record<string, string | string[]>): void {
    if (this.headersSent || this.destroyed) return;
    const raw = hints.link;
    const link = Array.isArray(raw) ? raw.join(', ') : raw;
    if (link === undefined || link.length === 0) return;
    validateHeaderValue('link', link);
    let head = `HTTP/1.1 103 Early Hints\r\nLink: ${link}\r\n`;
    for (const key of Object.keys(hints)) {
      if (key === 'link') continue;
      const v = hints[key]!;
      const value = Array.isArray(v) ? v.join(', ') : v;
      validateHeaderName(key);
      validateHeaderValue(key, value);
      head += `${key}: ${value}\r\n`;
    }
    this.conn.send(`${head}\r\n`, null);
  }

  destroy(): this {
    if (!this.destroyed) this.conn.socket.destroy();
    return this;
  }

  /** One piece of body, chunk-framed when the response is chunked; `cb` once it is flushed. */
  private sendBody(data: Buffer | string, cb: WriteCallback | null): void {
    const conn = this.conn;
    if (this.chunkedEncoding) {
      const size = typeof data === 'string' ? Buffer.byteLength(data) : data.length;
      conn.send(`${size.toString(16)}\r\n`, null);
      conn.send(data, null);
      conn.send('\r\n', cb);
    } else conn.send(data, cb);
  }

  private flushHead(): void {
    this.conn.send(this.head!, null);
    this.head = null;
  }

  /** The connection is done with it: flushed (finished) or gone. */
  closed(finished: boolean): void {
    if (this.destroyed || this.writableFinished) return;
    if (finished) this.writableFinished = true;
    else this.destroyed = true;
    this.emit('close');
  }
}

/** What Exchange reads of a fast request (IncomingMessage's names). */
export class FastRequest {
  readonly httpVersionMajor = 1;
  readonly httpVersionMinor = 1;
  readonly complete = true;
  constructor(
    readonly method: 'GET' | 'HEAD',
    readonly url: string,
    readonly rawHeaders: string[],
    readonly keepAlive: boolean,
    readonly socket: Socket,
  ) {}
}

/** What a FastConn needs from the FrontProxy that adopted it. */
export interface FastFrontHost {
  /** Serve a parsed request (FrontProxy: build the upstream headers, start an Exchange). */
  serve(req: FastRequest, res: FastResponse): void;
  /** Give the socket to node:http with the bytes already read. */
  handOff(socket: Socket, head: Buffer | null): void;
  /** A connection that sent nothing within the header timeout: 408 as node:http does. */
  timedOut(socket: Socket): void;
  /** False while a rescue is active or the fast front is switched off (hand every request over). */
  fastEnabled(): boolean;
  draining(): boolean;
  keepAliveMs(): number;
  headerTimeoutMs(): number;
  maxHeaderBytes(): number;
}

const CRLF2 = Buffer.from('\r\n\r\n');
/** node:http's HTTP_SERVER_KEEP_ALIVE_TIMEOUT_BUFFER. */
const KEEP_ALIVE_BUFFER_MS = 1_000;

/** Nothing read yet; first request pending. */
const FRESH = 0;
/** Between requests (keep-alive). */
const IDLE = 1;
/** A response in flight. */
const BUSY = 2;
/** Handed to node:http, or closed. */
const DONE = 3;

function flushConn(conn: FastConn): void {
  conn.flushed();
}

function onSocketError(): void {
  // 'close' follows; the Exchange (if any) learns of it there.
}

/** One client connection read by the fast front. */
export class FastConn {
  private state = FRESH;
  private buf: Buffer | null = null;
  private res: FastResponse | null = null;
  /** User callbacks of our socket writes, in order (writes complete in order). */
  private readonly callbacks: (WriteCallback | null)[] = [];
  private readonly afterWrite = (err?: Error | null): void => {
    const cb = this.callbacks.shift();
    if (cb != null) cb(err);
    if (this.callbacks.length === 0 && this.res !== null && this.res.writableEnded) this.flushed();
  };
  private readonly onData = (chunk: Buffer): void => this.received(chunk);
  private readonly onTimeout = (): void => this.timeout();
  private readonly onDrain = (): void => {
    this.res?.emit('drain');
  };
  private readonly onClose = (): void => this.gone();
  /**
   * The client sent FIN. As node:http (httpAllowHalfOpen false): a request being answered is
   * aborted and our side closes too, so no half-open socket is left behind.
   */
  private readonly onEnd = (): void => {
    if (this.socket.writable) this.socket.end();
  };

  constructor(
    readonly front: FastFrontHost,
    readonly socket: Socket,
    private readonly all: Set<FastConn>,
  ) {
    all.add(this);
    socket.on('data', this.onData);
    socket.on('timeout', this.onTimeout);
    socket.on('drain', this.onDrain);
    socket.on('error', onSocketError);
    socket.on('close', this.onClose);
    socket.on('end', this.onEnd);
    socket.setTimeout(front.headerTimeoutMs());
  }

  /** No response in flight (shutdown closes these at once). */
  get idle(): boolean {
    return this.state !== BUSY;
  }

  send(data: Buffer | string, cb: WriteCallback | null): void {
    this.callbacks.push(cb);
    if (typeof data === 'string') this.socket.write(data, 'latin1', this.afterWrite);
    else this.socket.write(data, this.afterWrite);
  }

  private received(chunk: Buffer): void {
    if (this.state === DONE) return; // closing after Connection: close: the rest is discarded
    this.buf = this.buf === null ? chunk : Buffer.concat([this.buf, chunk]);
    if (this.state === BUSY) {
      // The next request while this one is answered (pipelining): look at it afterwards.
      this.socket.pause();
      return;
    }
    this.next();
  }

  /** Serve what is buffered if it is one complete simple request, else hand the connection over. */
  private next(): void {
    const b = this.buf;
    if (b === null) return;
    const front = this.front;
    const end = b.indexOf(CRLF2);
    const req =
      end > 0 && end + 4 === b.length && b.length <= front.maxHeaderBytes() && front.fastEnabled()
        ? parseSimpleRequest(b, end)
        : null;
    if (req === null) {
      this.handOff();
      return;
    }
    this.buf = null;
    this.state = BUSY;
    this.socket.setTimeout(0);
    const fr = new FastRequest(req.method, req.url, req.rawHeaders, req.keepAlive, this.socket);
    const res = new FastResponse(this, fr);
    this.res = res;
    front.serve(fr, res);
  }

  /** res.end() ran: finished once everything written has been handed to the kernel. */
  ended(res: FastResponse): void {
    if (res === this.res && this.callbacks.length === 0) process.nextTick(flushConn, this);
  }

  /** The ended response is flushed: close it, then keep the connection or close it. */
  flushed(): void {
    const res = this.res;
    if (res === null || this.state !== BUSY) return;
    this.res = null;
    res.closed(true);
    if (this.state !== BUSY) return; // closed meanwhile
    if (!res.shouldKeepAlive) {
      this.state = DONE;
      this.buf = null;
      this.all.delete(this);
      this.socket.end();
      // Read and drop what the client still sends: unread input would turn the close into an
      // RST that can destroy the response before the client has read it.
      this.socket.resume();
      return;
    }
    this.state = IDLE;
    // As node:http: the advertised timeout plus a second, so a client that reuses the
    // connection just before the advertised expiry does not race our close.
    const ms = this.front.keepAliveMs();
    this.socket.setTimeout(ms > 0 ? ms + KEEP_ALIVE_BUFFER_MS : 0);
    if (this.buf !== null) {
      this.socket.resume();
      this.next();
    }
  }

  private timeout(): void {
    if (this.state === BUSY) {
      // Armed by Exchange while a slow reader holds the response: give up on it.
      this.socket.destroy();
      return;
    }
    // As front.ts onSocketTimeout: after an event-loop stall the timer can run before the
    // poll phase reads a request that came in time; look again after it.
    setImmediate(() => {
      if (this.state === BUSY || this.state === DONE || this.buf !== null) return;
      if (this.state === FRESH) {
        this.state = DONE;
        this.detach();
        this.front.timedOut(this.socket);
      } else this.socket.destroy();
    });
  }

  private handOff(): void {
    const head = this.buf;
    this.buf = null;
    this.state = DONE;
    this.detach();
    this.socket.setTimeout(0);
    this.front.handOff(this.socket, head);
  }

  private detach(): void {
    this.all.delete(this);
    const s = this.socket;
    s.removeListener('data', this.onData);
    s.removeListener('timeout', this.onTimeout);
    s.removeListener('drain', this.onDrain);
    s.removeListener('error', onSocketError);
    s.removeListener('close', this.onClose);
    s.removeListener('end', this.onEnd);
  }

  private gone(): void {
    const wasBusy = this.state === BUSY;
    this.state = DONE;
    this.all.delete(this);
    const res = this.res;
    this.res = null;
    if (wasBusy && res !== null) res.closed(false);
  }

  /** Shutdown: close now if idle (closeIdleConnections), or whatever it is doing (closeAll). */
  close(evenIfBusy: boolean): void {
    if (evenIfBusy || this.state !== BUSY) this.socket.destroy();
  }
}
