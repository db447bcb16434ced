// WebSocket (HTTP/1.1 Upgrade) through the proxy's socket tunnel: echo both ways, headers
// rewritten on the way in, and both sockets released when either side closes.
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { freePort, startProxy, type RunningProxy } from './helpers.js';

let server: http.Server | null = null;
let wss: WebSocketServer | null = null;
let front: RunningProxy | null = null;

afterEach(async () => {
  await front?.proxy.close(500);
  wss?.close();
  if (server) {
    server.closeAllConnections();
    await new Promise<void>((r) => server!.close(() => r()));
  }
  front = null;
  server = null;
  wss = null;
});

async function echoServer(): Promise<{ url: string; headers: http.IncomingHttpHeaders[] }> {
  const headers: http.IncomingHttpHeaders[] = [];
  server = http.createServer((_req, res) => res.end('plain'));
  wss = new WebSocketServer({ server });
  wss.on('connection', (ws, req) => {
    headers.push(req.headers);
    ws.on('message', (data, isBinary) =>
      ws.send(isBinary ? data : `echo:${data.toString()}`, { binary: isBinary }),
    );
  });
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, headers };
}

function open(url: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

function next(ws: WebSocket): Promise<{ data: Buffer; binary: boolean }> {
  return new Promise((resolve) =>
    ws.once('message', (data, binary) => resolve({ data: data as Buffer, binary })),
  );
}

describe('WebSocket through the proxy', () => {
  it('echoes text and binary messages and forwards X-Forwarded-For', async () => {
    const up = await echoServer();
    front = await startProxy({ upstreams: [up.url] });
    const ws = await open(`ws://127.0.0.1:${front.port}/chat?room=1`);
    const m1 = next(ws);
    ws.send('hello');
    expect((await m1).data.toString()).toBe('echo:hello');
    const big = Buffer.alloc(256 * 1024, 7);
    const m2 = next(ws);
    ws.send(big);
    const got = await m2;
    expect(got.binary).toBe(true);
    expect(got.data.equals(big)).toBe(true);
    expect(up.headers[0]!['x-forwarded-for']).toBe('127.0.0.1');
    expect(up.headers[0]!.via).toBe('1.1 dotslash');
    expect(front.proxy.stats.active).toBe(1);
    const closed = new Promise<number>((r) => ws.once('close', (code) => r(code)));
    ws.close(1000, 'bye');
    expect(await closed).toBe(1000);
    await waitFor(() => front!.proxy.stats.active === 0);
    expect(front.proxy.stats.snapshot().status['1xx']).toBe(1);
  });

  it('the upstream going away closes the client side too', async () => {
    const up = await echoServer();
    front = await startProxy({ upstreams: [up.url] });
    const ws = await open(`ws://127.0.0.1:${front.port}/`);
    const closed = new Promise<void>((r) => ws.once('close', () => r()));
    for (const c of wss!.clients) c.terminate();
    await closed;
    await waitFor(() => front!.proxy.stats.active === 0);
  });

  it('upstream down -> the upgrade gets a 502 response', async () => {
    front = await startProxy({ upstreams: [`http://127.0.0.1:${await freePort()}`] });
    const status = await new Promise<number>((resolve, reject) => {
      const ws = new WebSocket(`ws://127.0.0.1:${front!.port}/`);
      ws.once('unexpected-response', (_req, res) => resolve(res.statusCode!));
      ws.once('open', () => reject(new Error('opened')));
      ws.once('error', () => {});
    });
    expect(status).toBe(502);
    await waitFor(() => front!.proxy.stats.active === 0);
  });
});

async function waitFor(cond: () => boolean, ms = 3_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}
