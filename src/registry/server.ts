// The registry's two HTTP listeners. The API listener takes signed JSON: member requests
// (register, deregister, lookup, directory) and mesh messages (push, sync), and signs its answers.
// The admin listener (loopback by default) takes the bearer token: admit, revoke, status.
import { createHash, timingSafeEqual, type KeyObject } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { readCapped } from '../../rescue-protocol/http-body.js';
import { ReplayCache } from './replay.js';
import { errorBody, RegistryError, RegistryErrors, type RegistryErrorCode } from './errors.js';
import { WANT_SIGNED_HEADER, type RegistryEnvelope, type RequestType } from './messages.js';
import { openRequest, parseJson, sealJson } from './signed.js';

const JSON_TYPE = /^application\/json[ \t]*(;.*)?$/i;
const BEARER = /^Bearer[ \t]+([^\s]+)[ \t]*$/i;
const sha256 = (s: string): Buffer => createHash('sha256').update(s).digest();

/** A signed route: who may sign it (the key for the envelope), and what it answers. */
export interface SignedRoute {
  readonly type: RequestType;
  /** Body cap for this route (mesh messages are larger than member requests). */
  readonly maxBytes?: number;
  /** The sender's key for this envelope; throws RegistryError (UNKNOWN_SENDER, BAD_REQUEST...). */
  keyOf(env: RegistryEnvelope): KeyObject;
  /** Read-only routes (lookup, directory): the sender's session key, for a MAC instead of a signature. */
  macKeyOf?(env: RegistryEnvelope): Buffer | undefined;
  /** Whether `to` names something this route serves (a community, or this registry's id). */
  to(to: string): boolean;
  handle(env: RegistryEnvelope): unknown;
}

/** An admin route: bearer token checked before it runs; `body` is the parsed JSON (POST) or null. */
export type AdminRoute = (body: unknown) => unknown;

export interface RegistryServerOptions {
  readonly id: string;
  readonly privateKey: KeyObject;
  readonly listen: string;
  readonly adminListen: string;
  readonly adminToken: string;
  readonly maxBodyBytes: number;
  readonly routes: Readonly<Record<string, SignedRoute>>;
  readonly adminRoutes: Readonly<Record<string, { method: 'GET' | 'POST'; run: AdminRoute }>>;
  readonly health: () => unknown;
  readonly logger?: Logger;
}

export class RegistryServer {
  private readonly opts: RegistryServerOptions;
  private readonly api: Server;
  private readonly admin: Server;
  private readonly nonces = new ReplayCache();
  private readonly tokenHash: Buffer;
  private closing: Promise<void> | null = null;

  constructor(opts: RegistryServerOptions) {
    if (!opts.adminToken) throw new RegistryError('REG_ERR_CONFIG', 'empty admin token');
    this.opts = opts;
    this.tokenHash = sha256(opts.adminToken);
    const settings = {
      headersTimeout: 10_000,
      requestTimeout: 30_000,
      keepAliveTimeout: 5_000,
      maxHeaderSize: 8_192,
    };
    this.api = createServer(settings, (req, res) => this.guard(req, res, () => this.handleApi(req, res)));
    this.admin = createServer(settings, (req, res) => this.guard(req, res, () => this.handleAdmin(req, res)));
    for (const s of [this.api, this.admin])
      s.on('clientError', (_err, socket) => {
        if (socket.writable)
          socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
        else socket.destroy();
      });
  }

  async listen(): Promise<{ api: AddressInfo; admin: AddressInfo }> {
    const api = await listenOn(this.api, this.opts.listen);
    const admin = await listenOn(this.admin, this.opts.adminListen);
    return { api, admin };
  }

  close(): Promise<void> {
    this.closing ??= Promise.all(
      [this.api, this.admin].map(
        (s) =>
          new Promise<void>((resolve) => {
            if (!s.listening) return resolve();
            s.close(() => resolve());
            s.closeAllConnections();
          }),
      ),
    ).then(() => this.nonces.clear());
    return this.closing;
  }

  private guard(req: IncomingMessage, res: ServerResponse, fn: () => Promise<void>): void {
    fn().catch((err: unknown) => {
      if (err instanceof RegistryError) return fail(res, err.code, err.message);
      this.opts.logger?.error({ err, url: req.url }, 'registry request failed');
      if (!res.headersSent) fail(res, 'REG_ERR_INTERNAL');
      else res.destroy();
    });
  }

  private async handleApi(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?', 1)[0]!;
    if (path === '/v1/health') {
      req.resume();
      if (req.method !== 'GET') return fail(res, 'REG_ERR_METHOD_NOT_ALLOWED', undefined, { allow: 'GET' });
      return send(res, 200, JSON.stringify(this.opts.health()));
    }
    const route = Object.hasOwn(this.opts.routes, path) ? this.opts.routes[path] : undefined;
    if (!route) {
      req.resume();
      return fail(res, 'REG_ERR_NOT_FOUND', `no registry endpoint ${JSON.stringify(path.slice(0, 100))}`);
    }
    if (req.method !== 'POST') {
      req.resume();
      return fail(res, 'REG_ERR_METHOD_NOT_ALLOWED', undefined, { allow: 'POST' });
    }
    if (!JSON_TYPE.test(req.headers['content-type'] ?? '')) {
      req.resume();
      return fail(res, 'REG_ERR_UNSUPPORTED_MEDIA_TYPE');
    }
    const cap = route.maxBytes ?? this.opts.maxBodyBytes;
    const bytes = await this.body(req, res, cap);
    if (bytes === null) return;
    const env = openRequest(bytes, req.headers, {
      keyOf: (e) => {
        if (e.type !== route.type)
          throw new RegistryError(
            'REG_ERR_BAD_REQUEST',
            `type "${e.type}" sent to ${path} (expects "${route.type}")`,
          );
        return route.keyOf(e);
      },
      to: (t) => route.to(t),
      nonces: this.nonces,
      ...(route.macKeyOf && { macKeyOf: (e: RegistryEnvelope) => route.macKeyOf!(e) }),
    });
    const answer = await route.handle(env);
    // Bound to the request by its nonce; signed when the client will verify it (it says so:
    // signing costs about as much as the whole lookup, and a client without registry keys cannot check).
    const reply = { v: 1, re: env.nonce, from: this.opts.id, ...(answer as object) };
    const sealed =
      req.headers[WANT_SIGNED_HEADER] === '1'
        ? sealJson(this.opts.id, reply, this.opts.privateKey)
        : { bytes: Buffer.from(JSON.stringify(reply)), headers: { 'content-type': 'application/json' } };
    res.writeHead(200, {
      ...sealed.headers,
      'cache-control': 'no-store',
      'content-length': sealed.bytes.length,
    });
    res.end(sealed.bytes);
  }

  private async handleAdmin(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?', 1)[0]!;
    const route = Object.hasOwn(this.opts.adminRoutes, path) ? this.opts.adminRoutes[path] : undefined;
    if (!route) {
      req.resume();
      return fail(res, 'REG_ERR_NOT_FOUND', `no admin endpoint ${JSON.stringify(path.slice(0, 100))}`);
    }
    if (req.method !== route.method) {
      req.resume();
      return fail(res, 'REG_ERR_METHOD_NOT_ALLOWED', undefined, { allow: route.method });
    }
    const m = BEARER.exec(req.headers.authorization ?? '');
    if (!m || !timingSafeEqual(sha256(m[1]!), this.tokenHash)) {
      req.resume();
      return fail(res, 'REG_ERR_UNAUTHORIZED', undefined, {
        'www-authenticate': 'Bearer realm="dotslash-registry"',
      });
    }
    let body: unknown = null;
    if (route.method === 'POST') {
      const bytes = await this.body(req, res, this.opts.maxBodyBytes);
      if (bytes === null) return;
      body = parseJson(bytes);
    } else req.resume();
    return send(res, 200, JSON.stringify(await route.run(body)));
  }

  /** The body, or null after answering 413. */
  private async body(req: IncomingMessage, res: ServerResponse, cap: number): Promise<Buffer | null> {
    const declared = Number(req.headers['content-length'] ?? 0);
    let bytes: Buffer | null = null;
    if (declared <= cap) {
      try {
        bytes = await readCapped(req, cap);
      } catch {
        res.destroy();
        return null;
      }
    }
    if (bytes === null) {
      res.setHeader('connection', 'close');
      fail(res, 'REG_ERR_TOO_LARGE', `more than ${cap} bytes`);
      req.resume();
      return null;
    }
    return bytes;
  }
}

function listenOn(server: Server, listen: string): Promise<AddressInfo> {
  const i = listen.lastIndexOf(':');
  const host = listen.slice(0, i).replace(/^\[(.*)\]$/, '$1');
  const port = Number(listen.slice(i + 1));
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve(server.address() as AddressInfo);
    });
  });
}

function send(res: ServerResponse, status: number, body: string, headers: Record<string, string> = {}): void {
  if (res.headersSent) return;
  res.writeHead(status, {
    'content-type': 'application/json',
    'cache-control': 'no-store',
    'content-length': Buffer.byteLength(body),
    ...headers,
  });
  res.end(body);
}

function fail(
  res: ServerResponse,
  code: RegistryErrorCode,
  message?: string,
  headers?: Record<string, string>,
): void {
  send(res, RegistryErrors[code].status, errorBody(code, message), headers);
}
