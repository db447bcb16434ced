// Shared fixtures for the proxy tests: a real upstream server, a FrontProxy in front of it,
// and a raw-socket client for requests that need exact bytes on the wire.
import * as http from 'node:http';
import * as net from 'node:net';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import { proxySchema, type ProxyConfig } from '../../src/config/schema.js';
import { FrontProxy } from '../../proxy/front.js';

export const silent = pino({ level: 'silent' });

export interface Upstream {
  server: http.Server;
  url: string;
  port: number;
  close(): Promise<void>;
}

/** Start an upstream with `handler` on 127.0.0.1:0. */
export async function startUpstream(handler: http.RequestListener): Promise<Upstream> {
  const server = http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    server,
    port,
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A proxy config with test-friendly defaults (no access log, port 0). */
export function proxyConfig(over: Record<string, unknown> & { upstreams: string[] }): ProxyConfig {
  return proxySchema.parse({ listen: '127.0.0.1:0', access_log: { enabled: false }, ...over });
}

export interface RunningProxy {
  proxy: FrontProxy;
  url: string;
  port: number;
}

export async function startProxy(
  over: Record<string, unknown> & { upstreams: string[] },
  extra: Partial<ConstructorParameters<typeof FrontProxy>[0]> = {},
): Promise<RunningProxy> {
  const proxy = new FrontProxy({ config: proxyConfig(over), logger: silent, ...extra });
  const addr = await proxy.listen();
  return { proxy, port: addr.port, url: `http://127.0.0.1:${addr.port}` };
}

export interface SimpleResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  rawHeaders: string[];
  body: Buffer;
  trailers: NodeJS.Dict<string>;
}

/** One request with node:http (a fresh connection unless `agent` is given). */
export function request(
  url: string,
  opts: http.RequestOptions & { body?: string | Buffer | null } = {},
): Promise<SimpleResponse> {
  return new Promise((resolve, reject) => {
    const { body, ...rest } = opts;
    const req = http.request(url, { agent: false, ...rest }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({
          status: res.statusCode!,
          headers: res.headers,
          rawHeaders: res.rawHeaders,
          body: Buffer.concat(chunks),
          trailers: res.trailers,
        }),
      );
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body ?? undefined);
  });
}

/**
 * Send `data` on a raw socket and collect everything until the server closes or `idleMs`
 * passes without data. For exact-bytes cases Node's client would refuse to produce.
 */
export function rawRequest(port: number, data: string | Buffer, idleMs = 500): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let timer: NodeJS.Timeout | null = null;
    const done = (): void => {
      if (timer) clearTimeout(timer);
      sock.destroy();
      resolve(Buffer.concat(chunks).toString('latin1'));
    };
    const arm = (): void => {
      if (timer) clearTimeout(timer);
      timer = setTimeout(done, idleMs);
    };
    sock.on('connect', () => {
      sock.write(data);
      arm();
    });
    sock.on('data', (c: Buffer) => {
      chunks.push(c);
      arm();
    });
    sock.on('end', done);
    sock.on('close', done);
    sock.on('error', (err) => (chunks.length ? done() : reject(err)));
  });
}

/** Read a request body fully (upstream side). */
export function readBody(req: http.IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/** An unused loopback port (bound then released). */
export async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}
