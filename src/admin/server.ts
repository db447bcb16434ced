// The admin listener: /healthz and /readyz for load balancers, /metrics and /status behind a bearer token.
import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { ProxyStatsSnapshot } from '../../proxy/stats.js';
import type { WorkloadMonitor } from '../monitor/monitor.js';
import { AdminErrors, errorBody, type AdminErrorCode } from './errors.js';
import { createAdminRegistry } from './metrics.js';
import type { RescueMetricsSource } from './rescue-metrics.js';

export interface AdminServerOptions {
  /** "HOST:PORT" or "[v6]:PORT"; port 0 picks a free port. */
  readonly listen: string;
  readonly token: string;
  readonly monitor: WorkloadMonitor;
  readonly stats: () => ProxyStatsSnapshot;
  /** /readyz answers 200 while this is true (the front proxy is accepting), else 503. */
  readonly isReady: () => boolean;
  readonly logger: Logger;
  /** Extra fields for /status (version, name, listeners...), under "info". */
  readonly info?: () => Record<string, unknown>;
  /** The rescue controller's kill switch and state, when rescue runs (issue 3 item 3). */
  readonly rescue?: RescueSwitch;
  /** Redirect, rescue-cache and session metrics for /metrics (read at scrape time). */
  readonly rescueMetrics?: RescueMetricsSource;
}

/** What the admin API needs of the rescue controller: its state and the run-time mode switch. */
export interface RescueSwitch {
  /** Member state (slide 18): normal, sos (being rescued) or rescue (rescuing others). */
  state(): string;
  mode(): RescueModeName;
  setMode(mode: RescueModeName): void;
}

export type RescueModeName = 'on' | 'observe' | 'off';
const RESCUE_MODES: readonly string[] = ['on', 'observe', 'off'];
/** A mode switch body is one tiny JSON object; anything bigger is refused unread. */
const MAX_MODE_BODY = 1_024;

/** Splits "HOST:PORT" / "[v6]:PORT" (already validated by the config schema). */
export function parseHostPort(listen: string): { host: string; port: number } {
  const i = listen.lastIndexOf(':');
  const host = listen.slice(0, i).replace(/^\[(.*)\]$/, '$1');
  return { host, port: Number(listen.slice(i + 1)) };
}

const sha256 = (s: string): Buffer => createHash('sha256').update(s).digest();

/** RFC 6750 section 2.1: `Bearer <token>`; the scheme is case-insensitive. */
const BEARER = /^Bearer[ \t]+([^\s]+)[ \t]*$/i;

const JSON_HEADERS = { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' };

/**
 * Lifecycle: construct, listen(), close() (idempotent, safe without listen). Requests are tiny
 * and answered from memory; slow or oversized clients are cut off by the node:http timeouts.
 */
export class AdminServer {
  private readonly opts: AdminServerOptions;
  private readonly server: Server;
  private readonly registry: Registry;
  /** Hash of the token: comparing fixed-length digests keeps timingSafeEqual free of a length leak. */
  private readonly tokenHash: Buffer;
  private readonly startedAt = Date.now();
  private closing: Promise<void> | null = null;

  constructor(opts: AdminServerOptions) {
    if (!opts.token) throw new Error('AdminServer needs a non-empty token');
    this.opts = opts;
    this.tokenHash = sha256(opts.token);
    this.registry = createAdminRegistry(opts.stats, opts.monitor, opts.rescueMetrics);
    this.server = createServer(
      { headersTimeout: 10_000, requestTimeout: 10_000, keepAliveTimeout: 5_000, maxHeaderSize: 8_192 },
      (req, res) => {
        this.handle(req, res).catch((err: unknown) => {
          opts.logger.error({ err, url: req.url }, 'admin request failed');
          if (!res.headersSent) send(res, req, 500, errorBody('ADM_ERR_INTERNAL'));
          else res.destroy();
        });
      },
    );
  }

  listen(): Promise<AddressInfo> {
    const { host, port } = parseHostPort(this.opts.listen);
    return new Promise((resolve, reject) => {
      const onError = (err: Error): void => reject(err);
      this.server.once('error', onError);
      this.server.listen(port, host, () => {
        this.server.off('error', onError);
        const addr = this.server.address() as AddressInfo;
        this.opts.logger.info({ address: addr.address, port: addr.port }, 'admin listener ready');
        resolve(addr);
      });
    });
  }

  close(): Promise<void> {
    this.closing ??= new Promise<void>((resolve) => {
      // Admin answers are instant, so there is nothing worth draining: close idle keep-alives too.
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
    return this.closing;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?', 1)[0];
    const route = ROUTES[path as keyof typeof ROUTES];
    if (route === 'rescue-mode') return this.handleRescueMode(req, res);
    req.resume(); // bodies are ignored; drain so keep-alive works
    if (!route) return fail(res, req, 'ADM_ERR_NOT_FOUND', `no admin endpoint ${JSON.stringify(path)}`);
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      return fail(res, req, 'ADM_ERR_METHOD_NOT_ALLOWED');
    }
    if (route === 'healthz') return send(res, req, 200, JSON.stringify({ status: 'ok' }));
    if (route === 'readyz') {
      const ready = this.opts.isReady();
      return send(res, req, ready ? 200 : 503, JSON.stringify({ ready }));
    }
    if (!this.checkAuth(req, res)) return;
    if (route === 'metrics') {
      const text = await this.registry.metrics();
      res.setHeader('content-type', this.registry.contentType);
      res.setHeader('cache-control', 'no-store');
      res.statusCode = 200;
      res.end(req.method === 'HEAD' ? undefined : text);
      return;
    }
    return send(res, req, 200, JSON.stringify(this.statusBody()));
  }

  /** Bearer check; on failure writes the 401 and returns false. */
  private checkAuth(req: IncomingMessage, res: ServerResponse): boolean {
    const auth = this.authorize(req);
    if (auth === 'ok') return true;
    // RFC 6750 section 3: say which scheme is wanted, and whether the token given was wrong.
    res.setHeader(
      'www-authenticate',
      auth === 'missing'
        ? 'Bearer realm="dotslash-admin"'
        : 'Bearer realm="dotslash-admin", error="invalid_token"',
    );
    fail(
      res,
      req,
      'ADM_ERR_UNAUTHORIZED',
      auth === 'missing'
        ? undefined
        : `${AdminErrors.ADM_ERR_UNAUTHORIZED.message} (the token given is wrong)`,
    );
    return false;
  }

  /**
   * GET /rescue/mode: the current mode and state; POST /rescue/mode {"mode":"on"|"observe"|"off"}:
   * the run-time kill switch (issue 3 item 3). Both need the token.
   */
  private async handleRescueMode(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method !== 'GET' && req.method !== 'HEAD' && req.method !== 'POST') {
      req.resume();
      res.setHeader('allow', 'GET, HEAD, POST');
      return fail(res, req, 'ADM_ERR_METHOD_NOT_ALLOWED', '/rescue/mode answers GET, HEAD and POST');
    }
    if (!this.checkAuth(req, res)) {
      req.resume();
      return;
    }
    const rescue = this.opts.rescue;
    if (!rescue) {
      req.resume();
      return fail(res, req, 'ADM_ERR_RESCUE_OFF');
    }
    if (req.method === 'POST') {
      const text = await readSmallBody(req, MAX_MODE_BODY);
      if (text === null) return fail(res, req, 'ADM_ERR_BAD_BODY', `body larger than ${MAX_MODE_BODY} bytes`);
      let mode: unknown;
      try {
        mode = (JSON.parse(text) as { mode?: unknown } | null)?.mode;
      } catch (err) {
        return fail(res, req, 'ADM_ERR_BAD_BODY', `not JSON: ${(err as Error).message}`);
      }
      if (typeof mode !== 'string' || !RESCUE_MODES.includes(mode)) {
        return fail(res, req, 'ADM_ERR_BAD_BODY', 'expected {"mode": "on" | "observe" | "off"}');
      }
      const from = rescue.mode();
      rescue.setMode(mode as RescueModeName);
      this.opts.logger.warn({ from, to: mode }, 'rescue mode switched from the admin API');
    }
    return send(res, req, 200, JSON.stringify({ mode: rescue.mode(), state: rescue.state() }));
  }

  private authorize(req: IncomingMessage): 'ok' | 'missing' | 'wrong' {
    const header = req.headers.authorization;
    if (!header) return 'missing';
    const m = BEARER.exec(header);
    if (!m) return 'wrong';
    return timingSafeEqual(sha256(m[1]!), this.tokenHash) ? 'ok' : 'wrong';
  }

  private statusBody(): Record<string, unknown> {
    const st = this.opts.monitor.status();
    const s = this.opts.stats();
    return {
      // Member state (slide 18) from the rescue controller; a daemon without rescue is always normal.
      state: this.opts.rescue?.state() ?? 'normal',
      rescueMode: this.opts.rescue?.mode() ?? 'off',
      ...st,
      totals: {
        requests: s.requests,
        bytesIn: s.bytesIn,
        bytesOut: s.bytesOut,
        upstreamErrors: s.upstreamErrors,
        clientErrors: s.clientErrors,
        status: s.status,
      },
      active: s.active,
      connections: s.connections,
      startedAt: this.startedAt,
      uptimeSeconds: Math.round((Date.now() - this.startedAt) / 1000),
      info: this.opts.info?.() ?? {},
    };
  }
}

const ROUTES = {
  '/healthz': 'healthz',
  '/readyz': 'readyz',
  '/metrics': 'metrics',
  '/status': 'status',
  '/rescue/mode': 'rescue-mode',
} as const;

/** The body as text, or null once it exceeds `max` bytes (the rest is drained, not stored). */
function readSmallBody(req: IncomingMessage, max: number): Promise<string | null> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= max) chunks.push(chunk);
    });
    req.on('end', () => resolve(size > max ? null : Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function send(res: ServerResponse, req: IncomingMessage, status: number, body: string): void {
  res.writeHead(status, { ...JSON_HEADERS, 'content-length': Buffer.byteLength(body) });
  res.end(req.method === 'HEAD' ? undefined : body);
}

function fail(res: ServerResponse, req: IncomingMessage, code: AdminErrorCode, message?: string): void {
  send(res, req, AdminErrors[code].status, errorBody(code, message));
}
