// Shared fixtures for the hostile-input tests of the proxy data path: a recording upstream,
// a FrontProxy on 127.0.0.1:0 with small limits, and a raw TCP client that sends exact bytes.
import { fork } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import * as http from 'node:http';
import * as net from 'node:net';
import { fileURLToPath } from 'node:url';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import type { z } from 'zod';
import { configSchema } from '../../src/config/schema.js';
import type { ProxyConfig, proxySchema } from '../../src/config/schema.js';
import { FrontProxy } from '../../proxy/front.js';

export const silentLogger = pino({ level: 'silent' });

/** What one request looked like when it reached the upstream. */
export interface SeenRequest {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  bodyBytes: number;
  /** The whole body arrived ('end' fired). */
  complete: boolean;
  /** The exchange is over: the response's 'close' fired (it finished, or its socket went away). */
  closed: boolean;
  /** It closed without the response being finished (the proxy dropped it). */
  aborted: boolean;
}

export type Route = (req: http.IncomingMessage, res: http.ServerResponse, seen: SeenRequest) => void;

export interface Upstream {
  server: http.Server;
  port: number;
  url: string;
  /** Every request that reached the upstream, in arrival order. */
  seen: SeenRequest[];
  /** TCP connections currently open to the upstream. */
  sockets: Set<net.Socket>;
  /** TCP connections ever accepted. */
  accepted: number;
  close(): Promise<void>;
}

/** Default route: read the whole body and answer 200 with a JSON summary of what arrived. */
const echo: Route = (req, res, seen) => {
  req.on('end', () => {
    const body = JSON.stringify({ method: seen.method, url: seen.url, bytes: seen.bodyBytes });
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
};

/**
 * An upstream on `host`:0 that records each request (method, url, headers, body size, whether
 * it completed and closed) before handing it to the route for its pathname (default: echo).
 * A route that wants the body must not consume it itself: counting is done here.
 */
export async function startUpstream(
  routes: Record<string, Route> = {},
  host = '127.0.0.1',
): Promise<Upstream> {
  const seen: SeenRequest[] = [];
  const sockets = new Set<net.Socket>();
  const server = http.createServer({ keepAliveTimeout: 30_000 }, (req, res) => {
    const s: SeenRequest = {
      method: req.method ?? '',
      url: req.url ?? '',
      headers: req.headers,
      bodyBytes: 0,
      complete: false,
      closed: false,
      aborted: false,
    };
    seen.push(s);
    req.on('data', (c: Buffer) => (s.bodyBytes += c.length));
    req.on('end', () => (s.complete = true));
    // Not req 'close': since Node 16 that fires once the body is read, even if the response
    // is still streaming to a proxy that has long gone away.
    res.on('close', () => {
      s.closed = true;
      s.aborted = !res.writableFinished;
    });
    req.on('error', () => {});
    res.on('error', () => {});
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    (routes[path] ?? echo)(req, res, s);
  });
  const up: Upstream = {
    server,
    port: 0,
    url: '',
    seen,
    sockets,
    accepted: 0,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
  // See every header field the proxy sends (Node keeps only 2000 by default).
  server.maxHeadersCount = 0;
  server.on('connection', (sock: net.Socket) => {
    up.accepted++;
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
  });
  await new Promise<void>((r) => server.listen(0, host, r));
  up.port = (server.address() as AddressInfo).port;
  up.url = `http://${host}:${up.port}`;
  return up;
}

/** A URL on which nothing listens: bind a port, then close it. */
export async function deadUpstreamUrl(): Promise<string> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as AddressInfo).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return `http://127.0.0.1:${port}`;
}

type ProxyInput = z.input<typeof proxySchema>;
export interface ProxyOverrides extends Partial<Omit<ProxyInput, 'timeouts' | 'limits'>> {
  timeouts?: ProxyInput['timeouts'];
  limits?: ProxyInput['limits'];
}

/** Small timeouts and limits so the hostile cases finish quickly. */
export const TEST_TIMEOUTS = {
  connect_ms: 1_000,
  header_ms: 2_000,
  body_idle_ms: 2_000,
  client_header_ms: 1_500,
  client_request_ms: 5_000,
  client_keepalive_ms: 2_000,
  upstream_keepalive_ms: 1_000,
  drain_ms: 500,
};
export const TEST_LIMITS = { max_header_bytes: 8_192, max_body_bytes: 1_048_576 };

/** A ProxyConfig for `upstreams`, built through the real schema (so defaults stay honest). */
export function proxyConfig(upstreams: string[], overrides: ProxyOverrides = {}): ProxyConfig {
  const { timeouts, limits, ...rest } = overrides;
  return configSchema.parse({
    proxy: {
      listen: '127.0.0.1:0',
      upstreams,
      access_log: { enabled: false },
      ...rest,
      timeouts: { ...TEST_TIMEOUTS, ...timeouts },
      limits: { ...TEST_LIMITS, ...limits },
    },
  }).proxy;
}

export interface StartedProxy {
  proxy: FrontProxy;
  port: number;
  close(): Promise<void>;
}

export async function startProxy(upstreams: string[], overrides: ProxyOverrides = {}): Promise<StartedProxy> {
  const proxy = new FrontProxy({
    config: proxyConfig(upstreams, overrides),
    logger: silentLogger,
    accessLog: null,
  });
  const addr = await proxy.listen();
  return { proxy, port: addr.port, close: () => proxy.close(0) };
}

/** What the proxy child process reports (see proxy-child.ts). */
export interface ChildSample {
  rss: number;
  heapUsed: number;
  external: number;
  arrayBuffers: number;
  maxRss: number;
  /** Peak Buffer memory (process.memoryUsage().arrayBuffers) since the last resetMax. */
  maxArrayBuffers: number;
  active: number;
  connections: number;
  requests: number;
}

export interface ChildProxy {
  child: ChildProcess;
  port: number;
  sample(): Promise<ChildSample>;
  /** Sample after forcing full garbage collections in the child. */
  gc(): Promise<ChildSample>;
  resetMax(): void;
  close(): Promise<void>;
}

const projectRoot = fileURLToPath(new URL('../../', import.meta.url));

/**
 * A FrontProxy in a child process of its own (with --expose-gc), so memory can be measured
 * for the proxy alone while the test process plays client and upstream.
 */
export async function startChildProxy(
  upstreams: string[],
  overrides: ProxyOverrides = {},
): Promise<ChildProxy> {
  const config = proxyConfig(upstreams, overrides);
  const child = fork(fileURLToPath(new URL('./proxy-child.ts', import.meta.url)), [JSON.stringify(config)], {
    cwd: projectRoot,
    // Explicit execArgv: do not inherit the test runner's flags.
    execArgv: ['--import', 'tsx', '--expose-gc'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const waiting: Array<(s: ChildSample) => void> = [];
  const port = await new Promise<number>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`proxy child exited early with code ${code}`)));
    child.on('message', (m: { type: string; port?: number } & ChildSample) => {
      if (m.type === 'listening') resolve(m.port!);
      else if (m.type === 'sample') waiting.shift()?.(m);
    });
  });
  const ask = (type: string): Promise<ChildSample> =>
    new Promise((resolve) => {
      waiting.push(resolve);
      child.send({ type });
    });
  return {
    child,
    port,
    sample: () => ask('sample'),
    gc: () => ask('gc'),
    resetMax: () => void child.send({ type: 'resetMax' }),
    close: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise<void>((r) => child.once('exit', () => r()));
      child.send({ type: 'close' });
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** What came back on a raw TCP connection. */
export interface RawResult {
  data: Buffer;
  text: string;
  /** Status of the first response, or null if none arrived. */
  status: number | null;
  /** Status codes of every response head found in the stream (pipelining). */
  statuses: number[];
  /** The server closed the connection (we saw 'end' or 'close' before waitMs ran out). */
  closed: boolean;
  /** ms from the first byte sent to the close (or to the give-up). */
  elapsedMs: number;
}

export interface RawOptions {
  /** Give up (and destroy the socket) after this long; the result then has closed=false. */
  waitMs?: number;
  /** Pause between parts when `payload` is an array. */
  gapMs?: number;
  /** Send FIN after the last part (half-close). */
  end?: boolean;
}

/**
 * Status codes of the responses in `text`, in order, walking the stream by each response's
 * framing (1xx/204/304: no body; Content-Length; chunked; else to the end). A response head
 * must start exactly where the previous response ended, so bytes smuggled in a body never
 * count as a response.
 */
export function statusesOf(text: string): number[] {
  const out: number[] = [];
  let pos = 0;
  while (pos < text.length) {
    const m = /^HTTP\/1\.[01] (\d{3})[^\r\n]*\r\n/.exec(text.slice(pos, pos + 200));
    if (m === null) break;
    const headEnd = text.indexOf('\r\n\r\n', pos);
    if (headEnd < 0) break;
    const status = Number(m[1]);
    out.push(status);
    const head = text.slice(pos, headEnd).toLowerCase();
    pos = headEnd + 4;
    if (status < 200 || status === 204 || status === 304) continue;
    const cl = /\r\ncontent-length: *(\d+)/.exec(head);
    if (/\r\ntransfer-encoding: *chunked/.test(head)) {
      for (;;) {
        const lineEnd = text.indexOf('\r\n', pos);
        if (lineEnd < 0) return out;
        const size = parseInt(text.slice(pos, lineEnd), 16);
        if (!(size >= 0)) return out;
        pos = lineEnd + 2;
        if (size === 0) {
          const trailerEnd = text.indexOf('\r\n\r\n', pos - 2);
          if (trailerEnd < 0) return out;
          pos = trailerEnd + 4;
          break;
        }
        pos += size + 2;
      }
    } else if (cl !== null) {
      pos += Number(cl[1]);
    } else {
      break;
    }
  }
  return out;
}

/**
 * Open a TCP connection to 127.0.0.1:`port`, write `payload` exactly (one string/Buffer, or
 * parts separated by `gapMs`), and collect everything the server sends until it closes the
 * connection or `waitMs` passes.
 */
export function rawExchange(
  port: number,
  payload: string | Buffer | Array<string | Buffer>,
  opts: RawOptions = {},
): Promise<RawResult> {
  const { waitMs = 3_000, gapMs = 0, end = false } = opts;
  const parts = Array.isArray(payload) ? payload : [payload];
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const started = performance.now();
    let done = false;
    const sock = net.connect(port, '127.0.0.1');
    const finish = (closed: boolean): void => {
      if (done) return;
      done = true;
      clearTimeout(giveUp);
      sock.destroy();
      const data = Buffer.concat(chunks);
      const text = data.toString('latin1');
      const statuses = statusesOf(text);
      resolve({
        data,
        text,
        status: statuses[0] ?? null,
        statuses,
        closed,
        elapsedMs: performance.now() - started,
      });
    };
    const giveUp = setTimeout(() => finish(false), waitMs);
    sock.on('data', (c: Buffer) => chunks.push(c));
    sock.on('end', () => finish(true));
    sock.on('close', () => finish(true));
    sock.on('error', () => finish(true));
    sock.once('connect', async () => {
      for (let i = 0; i < parts.length; i++) {
        if (done || sock.destroyed) return;
        sock.write(parts[i]!);
        if (gapMs > 0 && i < parts.length - 1) await sleep(gapMs);
      }
      if (end && !done) sock.end();
    });
  });
}

/** A normal request through node:http (fresh connection), body collected. */
export function request(
  port: number,
  opts: { method?: string; path?: string; headers?: http.OutgoingHttpHeaders; body?: string | Buffer } = {},
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        method: opts.method ?? 'GET',
        path: opts.path ?? '/',
        headers: opts.headers,
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString(),
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(opts.body);
  });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Poll `check` until it returns true or `timeoutMs` passes; returns the last result. */
export async function waitFor(
  check: () => boolean | Promise<boolean>,
  timeoutMs = 5_000,
  stepMs = 20,
): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (performance.now() > deadline) return false;
    await sleep(stepMs);
  }
}

/** Body of a response in `text` (after the first blank line). */
export function bodyOf(text: string): string {
  const i = text.indexOf('\r\n\r\n');
  return i < 0 ? '' : text.slice(i + 4);
}
