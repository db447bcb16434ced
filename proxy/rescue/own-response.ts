// Accounting for responses the front answers without an upstream Exchange (redirects, rescue
// serving, marker refusals): the same stats, byte deltas and access-log line Exchange.finish()
// writes, so the monitor and the log see every request whoever answered it.
import type { IncomingMessage } from 'node:http';
import { errorBodies, ProxyErrors, type ProxyErrorCode } from '../errors.js';
import {
  attributeSocketBytes,
  type CountedSocket,
  type FrontContext,
  type ProxyResponse,
} from '../exchange.js';
import { countUsage, type SessionUsage } from './usage.js';

/** One response the front writes itself; counted once when it closes. */
export class OwnResponse {
  readonly start = performance.now();
  /** Our own error code, when we answered with one (access log, client-error count). */
  errorCode: ProxyErrorCode | null = null;
  /** Usage cell of the rescue session served, or null. */
  usage: SessionUsage | null = null;
  byRedirect = false;
  /** Captured now: Node detaches req.socket before a response's 'close' in some paths. */
  private readonly socket: CountedSocket;

  constructor(
    readonly ctx: FrontContext,
    readonly req: IncomingMessage,
    readonly res: ProxyResponse,
  ) {
    this.socket = req.socket as CountedSocket;
    ctx.stats.active++;
    if (ctx.draining) res.shouldKeepAlive = false;
    res.once('close', () => this.finish());
  }

  /** Answer with one of our errors (JSON body, stable code, connection closed after it). */
  error(code: ProxyErrorCode, via: string): void {
    this.errorCode = code;
    const res = this.res;
    if (res.headersSent || res.destroyed) {
      res.destroy();
      return;
    }
    const body = errorBodies[code];
    res.shouldKeepAlive = false;
    res.writeHead(ProxyErrors[code].status, [
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

  private finish(): void {
    const { ctx, res, req } = this;
    const stats = ctx.stats;
    stats.active--;
    const socket = this.socket;
    const bytes = attributeSocketBytes(socket, stats);
    const totalMs = performance.now() - this.start;
    const status = res.headersSent ? res.statusCode : 499;
    if (this.errorCode !== null && ProxyErrors[this.errorCode].status < 500) stats.clientErrors++;
    stats.recordResponse(status, totalMs, undefined);
    if (this.usage !== null) countUsage(this.usage, this.byRedirect, bytes);
    const line = ctx.accessLine;
    if (line !== null) {
      line(
        socket.remoteAddress,
        req.method,
        req.url,
        status,
        bytes,
        null,
        Math.round(totalMs * 1000) / 1000,
        this.errorCode,
        !res.writableFinished,
      );
    }
  }
}
