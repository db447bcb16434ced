// The front listener: a node:http server whose requests are forwarded to the upstreams over
// undici pools. Owns the listener lifecycle (listen, hot update, graceful close) and the
// client-side limits; per-request work lives in exchange.ts, upgrades in tunnel.ts.
import * as http from 'node:http';
import type { IncomingMessage } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Readable } from 'node:stream';
import type pino from 'pino';
import type { Dispatcher } from 'undici';
import type { ProxyConfig } from '../src/config/schema.js';
import { accessLineWriter } from './access-log.js';
import { ProxyError, rawErrorResponses, type ProxyErrorCode } from './errors.js';
import {
  Exchange,
  ProxyResponse,
  kRead,
  kWritten,
  type CountedSocket,
  type FrontContext,
} from './exchange.js';
import { FastConn, type FastFrontHost, type FastRequest, type FastResponse } from './h1-front.js';
import { buildRequestHeaders, requestInfo, VERIFIED_RESCUER_HEADER } from './headers.js';
import { prepareSnapshot, type Snapshot } from './snapshot.js';
import { ProxyStats } from './stats.js';
import { Tunnel, type TunnelSet } from './tunnel.js';
import type { Upstream } from './upstreams.js';
import type { PullThroughCache } from './cache/pull-through.js';
import type { RedirectSnapshot, RedirectStats } from './redirect/index.js';
import { BodyLimit } from './body-limit.js';
import { kVerifiedRescuer, RescueRouter, type VerifiedRequest, type RescueMembers } from './rescue/router.js';
import type { RescueServingOptions } from './rescue/serving.js';
import type { SessionUsage } from './rescue/usage.js';
import type { RescueServingView } from './rescue/view.js';

export interface FrontProxyOptions {
  config: ProxyConfig;
  logger: pino.Logger;
  accessLog?: pino.Logger | null;
  stats?: ProxyStats;
  /** Rescue cache bounds (used once a rescue serving view maps some name). */
  rescue?: RescueServingOptions;
}

/** "HOST:PORT" / "[v6]:PORT" -> parts. */
export function splitHostPort(s: string): { host: string; port: number } {
  const i = s.lastIndexOf(':');
  return { host: s.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(s.slice(i + 1)) };
}

/** Node checks headersTimeout/requestTimeout on this period; keep it well under the timeouts. */
function checkingInterval(cfg: ProxyConfig): number {
  const t = cfg.timeouts;
  const shortest = Math.min(t.client_header_ms || Infinity, t.client_request_ms || Infinity);
  return Math.max(50, Math.min(1_000, Math.floor(shortest / 4)));
}

function onSocketClose(this: CountedSocket): void {
  // Bytes not yet attributed to a finished response (aborts, tunnels, refused requests).
  const stats = (this as CountedSocket & { _dsStats: ProxyStats })._dsStats;
  stats.connections--;
  stats.bytesIn += this.bytesRead - this[kRead];
  stats.bytesOut += this.bytesWritten - this[kWritten];
}

/**
 * A client socket's idle timer fired. With a response in flight (a client that stopped reading,
 * armed by Exchange) it is destroyed at once, as Node does without this listener. An idle
 * keep-alive connection is closed only if nothing arrived: after an event-loop stall (a long GC,
 * a burst of work) the timers phase runs before the poll phase reads what came in meanwhile, so
 * Node's own expiry destroyed connections holding a request the client sent in time, which was
 * then lost without an answer or a log line (bench/proxy/experiments/fast-client-drops.sh with
 * STALL_MS). setImmediate looks again after the poll phase has read and parsed it.
 */
function onSocketTimeout(socket: Socket): void {
  if ((socket as { _httpMessage?: unknown })._httpMessage != null) {
    socket.destroy();
    return;
  }
  setImmediate(closeIfStillIdle, socket, socket.bytesRead);
}

function closeIfStillIdle(socket: Socket, bytesReadAtTimeout: number): void {
  if (socket.destroyed) return;
  if (socket.bytesRead !== bytesReadAtTimeout) return; // a request (or part of one) came in
  if ((socket as { _httpMessage?: unknown })._httpMessage != null) return;
  socket.destroy();
}

export class FrontProxy {
  readonly stats: ProxyStats;
  private snap: Snapshot;
  private readonly server: http.Server;
  private readonly ctx: FrontContext;
  private readonly tunnels: TunnelSet = new Set();
  private readonly logger: pino.Logger;
  private closing: Promise<void> | null = null;
  /** Rescue state, made on first use; `rescueOn` is it while active, else null (one check per request). */
  private rescue: RescueRouter | null = null;
  private rescueOn: RescueRouter | null = null;
  private readonly rescueOpts: RescueServingOptions;
  private listening = false;
  /** Connections the fast front reads (h1-front.ts); the rest belong to node:http. */
  private readonly fastConns = new Set<FastConn>();
  private readonly fastHost: FastFrontHost;
  /** node:http's own 'connection' listener: the fast front hands connections to it. */
  private readonly nodeConnection: (socket: Socket) => void;

  constructor(opts: FrontProxyOptions) {
    this.stats = opts.stats ?? new ProxyStats();
    this.logger = opts.logger;
    this.rescueOpts = opts.rescue ?? {};
    const accessLog = opts.accessLog ?? null;
    this.ctx = {
      stats: this.stats,
      accessLog,
      accessLine: accessLineWriter(accessLog),
      logger: opts.logger,
      draining: false,
    };
    this.snap = prepareSnapshot(opts.config, null).snapshot;
    const cfg = opts.config;
    const t = cfg.timeouts;
    this.server = http.createServer({
      ServerResponse: ProxyResponse as unknown as typeof http.ServerResponse,
      maxHeaderSize: cfg.limits.max_header_bytes,
      headersTimeout: clampHeadersTimeout(t.client_header_ms, t.client_request_ms),
      requestTimeout: t.client_request_ms,
      keepAliveTimeout: t.client_keepalive_ms,
      connectionsCheckingInterval: checkingInterval(cfg),
      // We check Host ourselves (headers.ts) so the 400 carries our JSON body and closes.
      requireHostHeader: false,
      insecureHTTPParser: false,
      joinDuplicateHeaders: false,
      noDelay: true,
    });
    // Node keeps only the first 2000 header fields in req.rawHeaders (maxHeadersCount) while its
    // parser frames the body by all of them: Content-Length or Transfer-Encoding past #2000 made
    // us forward the request without its body. max_header_bytes already bounds the head.
    this.server.maxHeadersCount = 0;
    // Every accepted socket comes to onConnection first, which gives it to the fast front or to
    // node:http. The server still listens itself, so node:http's connection tracking (header
    // and request timeouts, closeIdleConnections) covers the sockets handed to it.
    const [nodeListener] = this.server.listeners('connection') as ((socket: Socket) => void)[];
    if (nodeListener === undefined) throw new Error('node:http server without a connection listener');
    this.server.removeAllListeners('connection');
    this.nodeConnection = (socket) => nodeListener.call(this.server, socket);
    this.fastHost = this.makeFastHost();
    this.server.on('request', this.onRequest);
    this.server.on('checkContinue', this.onCheckContinue);
    this.server.on('upgrade', this.onUpgrade);
    this.server.on('connect', this.onConnectMethod);
    this.server.on('clientError', this.onClientError);
    this.server.on('connection', this.onConnection);
    // With a 'timeout' listener Node no longer destroys timed-out sockets itself: onSocketTimeout does.
    this.server.on('timeout', onSocketTimeout);
  }

  /** Bind config.listen (port 0 picks a free port). */
  listen(): Promise<AddressInfo> {
    const { host, port } = splitHostPort(this.snap.config.listen);
    return new Promise((resolve, reject) => {
      const onError = (err: Error): void => reject(err);
      this.server.once('error', onError);
      this.server.listen({ host, port }, () => {
        this.server.off('error', onError);
        this.listening = true;
        this.server.on('error', (err: Error) => this.logger.error({ err }, 'front listener error'));
        resolve(this.server.address() as AddressInfo);
      });
    });
  }

  /** The bound address, or null before listen(). */
  address(): AddressInfo | null {
    return (this.server.address() as AddressInfo | null) ?? null;
  }

  /** Open client connections read by the fast front (h1-front.ts); node:http has the rest. */
  get fastConnections(): number {
    return this.fastConns.size;
  }

  /** False once close() began (admin /readyz turns 503). */
  get ready(): boolean {
    return this.listening && this.closing === null;
  }

  /**
   * Hot reload: prepare a new snapshot (new pools only for changed upstreams) and swap it in.
   * In-flight requests keep the snapshot they started with; retired pools close gracefully.
   * Changing `listen` needs a restart (logged).
   */
  update(config: ProxyConfig): void {
    const old = this.snap;
    const { snapshot, retired } = prepareSnapshot(config, old);
    this.snap = snapshot;
    const t = config.timeouts;
    const s = this.server;
    s.headersTimeout = clampHeadersTimeout(t.client_header_ms, t.client_request_ms);
    s.requestTimeout = t.client_request_ms;
    s.keepAliveTimeout = t.client_keepalive_ms;
    // Read by Node for each new connection's parser.
    (s as { maxHeaderSize?: number }).maxHeaderSize = config.limits.max_header_bytes;
    if (config.listen !== old.config.listen) {
      this.logger.warn(
        { from: old.config.listen, to: config.listen },
        'proxy.listen changed: takes effect on restart',
      );
    }
    for (const u of retired) closePool(u);
  }

  // ---- rescue (issue 3): fed by the controller, per-request work in rescue/router.ts ----------

  /** Origin: the redirector's snapshot (Pr 0 or no session with a rate = inactive). Throws on bad input. */
  setRedirect(snapshot: RedirectSnapshot): void {
    this.rescueRouter().setRedirect(snapshot);
  }

  /** Rescuer: which host names map to which rescue session (serve or drain). */
  setRescueView(view: RescueServingView): void {
    this.rescueRouter().setRescueView(view);
  }

  /** Own identity (signs rescuer fetches) and peers' keys (accepted rescuer-fetch markers). */
  setMembers(m: RescueMembers): void {
    this.rescueRouter().setMembers(m);
  }

  /** Rescuer: what was served per session, by vhN name (redirect) and origin site name (DNS). */
  sessionUsage(): ReadonlyMap<string, SessionUsage> {
    return this.rescue?.sessionUsage() ?? new Map();
  }

  /** Rescuer: PURGE from a session's origin (paths, or prefixes ending in "*"); returns entries dropped. */
  purge(session: string, paths: string[]): number {
    return this.rescue?.purge(session, paths) ?? 0;
  }

  /** Origin: redirects issued (Redirector.stats). */
  redirectStats(): RedirectStats {
    return this.rescue?.redirectStats() ?? { redirects: 0, noTokens: 0, sessions: {} };
  }

  /** Rescuer: the pull-through cache's counters and store stats, or null before any session. */
  rescueCacheStats(): ReturnType<PullThroughCache['stats']> | null {
    return this.rescue?.serving.cache?.stats() ?? null;
  }

  private rescueRouter(): RescueRouter {
    this.rescue ??= new RescueRouter(
      this.ctx,
      () => this.snap,
      this.logger,
      this.rescueOpts,
      () => {
        this.rescueOn = this.rescue !== null && this.rescue.active ? this.rescue : null;
      },
    );
    return this.rescue;
  }

  /**
   * Graceful shutdown: readiness flips at once, the listener stops accepting, idle keep-alive
   * connections close, in-flight requests (and tunnels) get up to `drainMs` to finish with
   * `Connection: close`, then whatever is left is destroyed and the pools closed. Idempotent.
   */
  close(drainMs: number = this.snap.config.timeouts.drain_ms): Promise<void> {
    this.closing ??= this.shutdown(drainMs);
    return this.closing;
  }

  private async shutdown(drainMs: number): Promise<void> {
    this.ctx.draining = true;
    const server = this.server;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    this.closeIdle();
    const deadline = performance.now() + drainMs;
    while ((this.stats.active > 0 || this.tunnels.size > 0) && performance.now() < deadline) {
      await sleep(Math.min(25, Math.max(1, deadline - performance.now())));
      this.closeIdle();
    }
    const forced = this.stats.active > 0 || this.tunnels.size > 0;
    for (const t of [...this.tunnels]) t.destroy();
    server.closeAllConnections();
    for (const c of [...this.fastConns]) c.close(true);
    await Promise.race([closed, sleep(1_000)]);
    await Promise.all(
      this.snap.upstreams.list.map((u) => (forced ? u.destroy() : u.close()).catch(() => {})),
    );
    this.rescueOn = null;
    if (this.rescue !== null) await this.rescue.close();
    const log = this.ctx.accessLog;
    if (log !== null) await new Promise<void>((resolve) => log.flush(() => resolve()));
    this.listening = false;
  }

  private closeIdle(): void {
    this.server.closeIdleConnections();
    for (const c of [...this.fastConns]) c.close(false);
  }

  // ---- hot path -------------------------------------------------------------------------

  private readonly onConnection = (socket: Socket): void => {
    const s = socket as CountedSocket & { _dsStats: ProxyStats };
    s[kRead] = 0;
    s[kWritten] = 0;
    s._dsStats = this.stats;
    const stats = this.stats;
    stats.connections++;
    socket.once('close', onSocketClose);
    const max = this.snap.config.limits.max_connections;
    if (max > 0 && stats.connections > max) {
      stats.clientErrors++;
      stats.recordResponse(503, 0, undefined);
      refuseSocket(socket, 'PRX_ERR_TOO_MANY_CONNECTIONS');
      return;
    }
    if (this.snap.fastFront) new FastConn(this.fastHost, socket, this.fastConns);
    else this.nodeConnection(socket);
  };

  /** What the fast front's connections ask of this proxy (h1-front.ts). */
  private makeFastHost(): FastFrontHost {
    return {
      serve: this.onFastRequest,
      handOff: (socket, head) => {
        this.nodeConnection(socket);
        // node:http's parser takes what we already read as if it had just arrived.
        if (head !== null) socket.emit('data', head);
      },
      timedOut: (socket) => this.refuse(socket, 'PRX_ERR_CLIENT_TIMEOUT', 'ERR_HTTP_REQUEST_TIMEOUT'),
      fastEnabled: () => this.snap.fastFront && this.rescueOn === null,
      draining: () => this.ctx.draining,
      keepAliveMs: () => this.snap.config.timeouts.client_keepalive_ms,
      headerTimeoutMs: () => {
        const t = this.snap.config.timeouts;
        return clampHeadersTimeout(t.client_header_ms, t.client_request_ms);
      },
      maxHeaderBytes: () => this.snap.config.limits.max_header_bytes,
    };
  }

  /** A simple GET/HEAD the fast front read (no body, no rescue active, no pipelining). */
  private readonly onFastRequest = (req: FastRequest, res: FastResponse): void => {
    const snap = this.snap;
    const socket = req.socket as CountedSocket;
    this.stats.active++;
    const headers = buildRequestHeaders(
      req.rawHeaders,
      snap.policy,
      socket.remoteAddress ?? '',
      'http',
      true,
      false,
    );
    const ex = new Exchange(this.ctx, snap, req, res, socket, null);
    if (headers === null) {
      ex.fail(new ProxyError('PRX_ERR_BAD_REQUEST', 'invalid Host, Content-Length or request target'));
      return;
    }
    this.forward(ex, snap, headers, req.url, req.method, null);
  };

  /** Expect: 100-continue: refuse an oversized body before the client sends it, else go on. */
  private readonly onCheckContinue = (req: IncomingMessage, res: ProxyResponse): void => {
    const max = this.snap.maxBodyBytes;
    const cl = Number(req.headers['content-length']);
    if (max > 0 && cl > max) {
      this.reject(req, res, 'PRX_ERR_BODY_TOO_LARGE');
      return;
    }
    // We are about to stream the body upstream; undici cannot carry Expect itself.
    res.writeContinue();
    res.viaUndici = true;
    this.onRequest(req, res);
  };

  private readonly onRequest = (req: IncomingMessage, res: ProxyResponse, dequeued?: boolean): void => {
    const snap = this.snap;
    const socket = req.socket as CountedSocket;
    // A connection refused over max_connections still has Node's parser attached.
    if (socket.writableEnded || socket.destroyed) {
      res.destroy();
      return;
    }
    // Pipelined requests go upstream one at a time, as in nginx. Node emits them all at once,
    // so one connection could otherwise hold the whole upstream pool (max_connections would
    // bound nothing). Each waits for the response just before it (the common, unpipelined
    // path costs one property read).
    if (dequeued !== true) {
      const current = (socket as { _httpMessage?: ProxyResponse | null })._httpMessage;
      if (current != null && current !== res) {
        this.enqueue(socket as PipelinedSocket, current, req, res);
        return;
      }
    }
    // Rescue (redirect, rescued host names, rescuer fetches): one null check when none is active.
    const rescue = this.rescueOn;
    if (rescue !== null && rescue.intercept(req, res)) return;
    this.stats.active++;
    const headers = buildRequestHeaders(
      req.rawHeaders,
      snap.policy,
      socket.remoteAddress ?? '',
      (socket as { encrypted?: boolean }).encrypted === true ? 'https' : 'http',
      req.httpVersionMinor === 1,
      false,
    );
    // A rescuer's fetch the rescue hook verified (only ever set while rescue is active).
    if (rescue !== null && headers !== null) {
      const rescuer = (req as VerifiedRequest)[kVerifiedRescuer];
      if (rescuer !== undefined) headers.push(VERIFIED_RESCUER_HEADER, rescuer);
    }
    let body: Readable | null = null;
    if (headers !== null) {
      const max = snap.maxBodyBytes;
      if (requestInfo.chunked) {
        body = max > 0 ? req.pipe(new BodyLimit(max)) : req;
      } else if (requestInfo.contentLength > 0) {
        if (max > 0 && requestInfo.contentLength > max) {
          this.stats.active--;
          this.reject(req, res, 'PRX_ERR_BODY_TOO_LARGE');
          return;
        }
        body = req;
      }
    }
    const ex = new Exchange(this.ctx, snap, req, res, socket, body);
    // Origin-form only: absolute-form ("GET http://elsewhere/") would make us an open proxy.
    if (headers === null || req.url!.charCodeAt(0) !== 0x2f || req.httpVersionMajor !== 1) {
      ex.fail(new ProxyError('PRX_ERR_BAD_REQUEST', 'invalid Host, Content-Length or request target'));
      return;
    }
    this.forward(ex, snap, headers, req.url!, req.method!, body);
  };

  /** Pick an upstream and send the request (either front). */
  private forward(
    ex: Exchange,
    snap: Snapshot,
    headers: string[],
    path: string,
    method: string,
    body: Readable | null,
  ): void {
    // Bodiless requests take the raw-socket client; bodies and 100-continue stay on undici.
    ex.fast = body === null && snap.fastUpstream && !ex.res.viaUndici;
    const upstream = snap.upstreams.pick();
    if (snap.policy.hostMode === 1 || headers[1] === '') {
      headers[1] = upstream.host;
      ex.hostFromUpstream = true;
    }
    ex.dispatch(upstream, {
      path,
      method: method as Dispatcher.HttpMethod,
      headers,
      body,
      headersTimeout: snap.headersTimeout,
      bodyTimeout: snap.bodyTimeout,
    });
  }

  /** Start `req` when the response before it on this connection closes (pipelining). */
  private enqueue(
    socket: PipelinedSocket,
    current: ProxyResponse,
    req: IncomingMessage,
    res: ProxyResponse,
  ): void {
    const prev = socket[kPipelineTail] ?? current;
    socket[kPipelineTail] = res;
    res.once('close', () => {
      if (socket[kPipelineTail] === res) socket[kPipelineTail] = null;
    });
    prev.once('close', () => this.onRequest(req, res, true));
  }

  /** Answer a request we will not forward (counted as a finished request). */
  private reject(req: IncomingMessage, res: ProxyResponse, code: ProxyErrorCode): void {
    this.stats.active++;
    const ex = new Exchange(this.ctx, this.snap, req, res, req.socket as CountedSocket, null);
    ex.fail(new ProxyError(code));
  }

  private readonly onUpgrade = (req: IncomingMessage, socket: Socket, head: Buffer): void => {
    if (socket.writableEnded) {
      socket.destroy();
      return;
    }
    const tunnel = new Tunnel(this.ctx, this.tunnels, req, socket);
    if (this.ctx.draining) tunnel.refuse('PRX_ERR_SHUTTING_DOWN');
    // A rescued site's name must not reach our own upstream through a tunnel either.
    else if (this.rescueOn?.claimsUpgrade(req) === true) tunnel.refuse('PRX_ERR_RESCUE_NO_UPGRADE');
    else tunnel.open(this.snap, head);
  };

  private readonly onConnectMethod = (_req: IncomingMessage, socket: Socket): void => {
    this.stats.clientErrors++;
    this.stats.recordResponse(405, 0, undefined);
    refuseSocket(socket, 'PRX_ERR_METHOD_NOT_ALLOWED');
  };

  /**
   * Parse errors, oversized heads and slow clients: answer 400/431/408 with Connection: close
   * instead of dropping the socket (Node's default writes a bare 400 without a body).
   */
  private readonly onClientError = (err: NodeJS.ErrnoException, socket: Socket): void => {
    const code = err.code;
    if (code === 'ECONNRESET' || code === 'EPIPE' || !socket.writable) {
      socket.destroy();
      return;
    }
    const prx: ProxyErrorCode =
      code === 'HPE_HEADER_OVERFLOW'
        ? 'PRX_ERR_HEADERS_TOO_LARGE'
        : code === 'ERR_HTTP_REQUEST_TIMEOUT' || code === 'HPE_HEADERS_TIMEOUT'
          ? 'PRX_ERR_CLIENT_TIMEOUT'
          : 'PRX_ERR_BAD_REQUEST';
    // A pipelined request after one still being answered: let that response finish first (it
    // must not be replaced by our error), without keep-alive, then refuse.
    const pending = (socket as { _httpMessage?: ProxyResponse | null })._httpMessage;
    // We already answered this request with our own error and close after it (headers.ts
    // refused what llhttp refuses only after the head): a second, raw 400 would read as the
    // answer to a next request.
    if (pending != null && pending.writableEnded && !pending.shouldKeepAlive) {
      setTimeout(() => socket.destroy(), 1_000).unref();
      return;
    }
    if (pending != null && !pending.writableFinished) {
      if (pending.req.complete) {
        pending.shouldKeepAlive = false;
        pending.once('close', () => this.refuse(socket, prx, code));
      } else {
        // The error is inside the request being answered (its body framing, or EOF mid-body).
        pending.exchange?.clientFailed(prx);
        setTimeout(() => socket.destroy(), 1_000).unref();
      }
      return;
    }
    this.refuse(socket, prx, code);
  };

  /** Count, log and write one of our errors on a socket that has no usable ServerResponse. */
  private refuse(socket: Socket, prx: ProxyErrorCode, reason: string | undefined): void {
    const status = Number(rawErrorResponses[prx].toString('latin1', 9, 12));
    this.stats.clientErrors++;
    this.stats.recordResponse(status, 0, undefined);
    this.ctx.accessLog?.info({
      remote: socket.remoteAddress,
      method: null,
      url: null,
      status,
      error: prx,
      reason,
    });
    refuseSocket(socket, prx);
  }
}

/** The last pipelined response waiting on a connection, so the next one queues behind it. */
const kPipelineTail = Symbol('dotslash.pipelineTail');
type PipelinedSocket = Socket & { [kPipelineTail]?: ProxyResponse | null };

/** Write a complete error response on a raw socket, then close it without racing an RST. */
function refuseSocket(socket: Socket, code: ProxyErrorCode): void {
  if (socket.writable) socket.end(rawErrorResponses[code]);
  // Keep reading (and discarding) so unread input does not turn our close into an RST that
  // destroys the response before the client reads it; give up after a second.
  socket.resume();
  setTimeout(() => socket.destroy(), 1_000).unref();
}

function clampHeadersTimeout(headerMs: number, requestMs: number): number {
  // Node requires headersTimeout <= requestTimeout when both are set.
  return requestMs > 0 && headerMs > requestMs ? requestMs : headerMs;
}

function closePool(u: Upstream): void {
  u.close().catch(() => u.destroy());
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
