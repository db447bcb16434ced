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
      this.connectTimer = null;
      up.write(text);
      if (head.length > 0) up.write(head);
      up.once('data', (chunk: Buffer) => {
        // "HTTP/1.1 101 ...": the status code sits at bytes 9-11.
        this.status = Number(chunk.toString('latin1', 9, 12)) || 0;
        this.upstreamMs = performance.now() - this.start;
      });
      up.pipe(client);
      client.pipe(up);
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
