// WebSocket and other HTTP/1.1 Upgrade requests: a byte tunnel between the client socket and
// a fresh upstream connection (RFC 9110 §7.8). We write the rewritten request head ourselves,
// then pipe both ways; either side closing or failing destroys both, so nothing leaks.
import type { IncomingMessage } from 'node:http';
import * as net from 'node:net';
import * as tls from 'node:tls';
import type { Duplex } from 'node:stream';
import { rawErrorResponses, type ProxyErrorCode } from './errors.js';
import type { FrontContext } from './exchange.js';
import { buildRequestHeaders } from './headers.js';
import type { Snapshot } from './snapshot.js';
import { UpstreamSet } from './upstreams.js';

/** Open tunnels of one FrontProxy, so close() can wait for or destroy them. */
export type TunnelSet = Set<Tunnel>;

export class Tunnel {
  private upstream: net.Socket | null = null;
  private connectTimer: NodeJS.Timeout | null = null;
  private status = 0;
  private closed = false;
  private readonly start = performance.now();
  private upstreamMs: number | undefined;
  /** The upstream's response head while it is still arriving (before the tunnel opens). */
  private headBuf: Buffer | null = null;
  /** Client bytes that arrived with the request head but after its declared body: held until 101. */
  private heldBack: Buffer | null = null;

  constructor(
    private readonly ctx: FrontContext,
    private readonly tunnels: TunnelSet,
    private readonly req: IncomingMessage,
    private readonly client: Duplex,
  ) {
    ctx.stats.active++;
    tunnels.add(this);
  }

  open(snap: Snapshot, head: Buffer): void {
    const req = this.req;
    const client = this.client;
    // Until the upstream answers 101, no client byte beyond the request goes upstream (see
    // onResponseHead); paused, they wait in the socket instead of being dropped.
    client.pause();
    client.on('error', () => this.close());
    client.on('close', () => this.close());
    const socket = req.socket;
    const headers = buildRequestHeaders(
      req.rawHeaders,
      snap.policy,
      socket.remoteAddress ?? '',
      (socket as { encrypted?: boolean }).encrypted ? 'https' : 'http',
      req.httpVersionMinor === 1,
      true,
    );
    if (headers === null) return this.refuse('PRX_ERR_BAD_REQUEST');
    const target = snap.upstreams.pick();
    const url = new URL(target.origin);
    if (snap.policy.hostMode === 1 || headers[1] === '') headers[1] = target.host;
    let text = `${req.method} ${req.url} HTTP/1.1\r\n`;
    for (let i = 0; i < headers.length; i += 2) text += `${headers[i]}: ${headers[i + 1]}\r\n`;
    text += '\r\n';

    const port = Number(url.port) || (url.protocol === 'https:' ? 443 : 80);
    const host = url.hostname.replace(/^\[|\]$/g, '');
    const up =
      url.protocol === 'https:'
        ? tls.connect({
            host,
            port,
            servername: net.isIP(host) ? undefined : host,
            ALPNProtocols: ['http/1.1'],
          })
        : net.connect({ host, port });
    this.upstream = up;
    up.setNoDelay(true);
    this.connectTimer = setTimeout(
      () => {
        this.connectTimer = null;
        UpstreamSet.markDown(target);
        this.fail('PRX_ERR_UPSTREAM_CONNECT_TIMEOUT');
      },
      snap.connectTimeout || 2 ** 31 - 1,
    );
    up.once(url.protocol === 'https:' ? 'secureConnect' : 'connect', () => {
      if (this.connectTimer !== null) clearTimeout(this.connectTimer);
      // The upstream gets header_ms to answer, as any request does; else the client hangs.
      this.connectTimer = setTimeout(
        () => {
          this.connectTimer = null;
          this.fail('PRX_ERR_UPSTREAM_HEADERS_TIMEOUT');
        },
        snap.headersTimeout || 2 ** 31 - 1,
      );
      up.write(text);
      // Only the body the request declares is part of it; anything after is for the tunnel.
      const declared = Math.min(head.length, Number(req.headers['content-length']) || 0);
      if (declared > 0) up.write(head.subarray(0, declared));
      if (head.length > declared) this.heldBack = head.subarray(declared);
      up.on('data', this.onResponseHead);
    });
    up.on('error', (err: NodeJS.ErrnoException) => {
      if (this.status === 0 && up.bytesRead === 0) {
        if (err.code === 'ECONNREFUSED' || err.code === 'EHOSTUNREACH') UpstreamSet.markDown(target);
        this.fail('PRX_ERR_UPSTREAM_CONNECT');
      } else this.close();
    });
    up.on('close', () => {
      if (up.bytesRead === 0 && this.status === 0) this.fail('PRX_ERR_UPSTREAM_RESET');
      else this.close();
    });
  }

  /**
   * Collect the upstream's response head. Only a 101 opens the tunnel. Any other answer means
   * the upstream treated this as a plain request: relay that one response and close, because
   * client bytes piped raw into a keep-alive upstream connection would be requests that
   * bypass our parser, limits, X-Forwarded-For and log (request smuggling via a fake tunnel).
   */
  private readonly onResponseHead = (chunk: Buffer): void => {
    const up = this.upstream!;
    const client = this.client;
    const buf = this.headBuf === null ? chunk : Buffer.concat([this.headBuf, chunk]);
    const end = buf.indexOf('\r\n\r\n');
    if (end < 0) {
      this.headBuf = buf;
      if (buf.length > 65_536) this.fail('PRX_ERR_UPSTREAM_BAD_RESPONSE');
      return;
    }
    up.off('data', this.onResponseHead);
    this.headBuf = null;
    if (this.connectTimer !== null) clearTimeout(this.connectTimer);
    this.connectTimer = null;
    // "HTTP/1.1 101 ...": the status code sits at bytes 9-11.
    this.status = Number(buf.toString('latin1', 9, 12)) || 0;
    this.upstreamMs = performance.now() - this.start;
    if (this.status === 101) {
      client.write(buf);
      if (this.heldBack !== null) up.write(this.heldBack);
      this.heldBack = null;
      up.pipe(client);
      client.pipe(up); // resumes the client
      return;
    }
    this.heldBack = null;
    const length = /\r\ncontent-length:[ \t]*(\d+)/i.exec(buf.toString('latin1', 0, end));
    if (length === null && this.status !== 204 && this.status !== 304) {
      // Chunked or close-delimited: relay until the upstream closes (its keep-alive bounds it).
      client.write(buf);
      up.pipe(client);
      return;
    }
    let left = length === null ? 0 : Number(length[1]) - (buf.length - end - 4);
    if (left <= 0) {
      client.end(buf.subarray(0, buf.length + Math.min(left, 0)));
      up.destroy();
      return;
    }
    client.write(buf);
    const relay = (c: Buffer): void => {
      if (c.length >= left) {
        client.end(c.subarray(0, left));
        up.destroy();
        return;
      }
      left -= c.length;
      if (!client.write(c)) {
        up.pause();
        client.once('drain', () => up.resume());
      }
    };
    up.on('data', relay);
  };

  /** Upstream unusable before any byte of its response: answer the client ourselves. */
  private fail(code: ProxyErrorCode): void {
    this.ctx.stats.upstreamErrors++;
    this.refuse(code);
  }

  refuse(code: ProxyErrorCode): void {
    if (this.closed) return;
    const client = this.client;
    const res = rawErrorResponses[code];
    this.status = Number(res.toString('latin1', 9, 12));
    if (this.status < 500) this.ctx.stats.clientErrors++;
    if (client.writable) client.end(res);
    this.upstream?.destroy();
    // Give the error response a moment to leave before the socket goes (avoids an RST eating it).
    setTimeout(() => client.destroy(), 1000).unref();
    this.close();
  }

  /** Tear down both sides. Idempotent; counts the exchange once. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.connectTimer !== null) clearTimeout(this.connectTimer);
    this.connectTimer = null;
    this.upstream?.destroy();
    if (!this.client.writableEnded) this.client.destroy();
    // Ended gracefully (a relayed non-101 answer): give it a moment to leave, then release it.
    else setTimeout(() => this.client.destroy(), 1_000).unref();
    this.tunnels.delete(this);
    const stats = this.ctx.stats;
    stats.active--;
    const totalMs = performance.now() - this.start;
    stats.recordResponse(this.status || 502, totalMs, this.upstreamMs);
    this.ctx.accessLog?.info({
      remote: this.req.socket.remoteAddress,
      method: this.req.method,
      url: this.req.url,
      status: this.status || 502,
      upgrade: this.req.headers.upgrade,
      upstream_ms: this.upstreamMs === undefined ? null : Math.round(this.upstreamMs * 1000) / 1000,
      total_ms: Math.round(totalMs * 1000) / 1000,
    });
  }

  /** Forced shutdown (drain deadline passed). */
  destroy(): void {
    this.client.destroy();
    this.close();
  }
}
