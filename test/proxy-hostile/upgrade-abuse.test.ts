// Upgrade (WebSocket) abuse: a tunnel exists only after the upstream says 101. Before that the
// client's bytes must not reach the upstream raw (they would bypass our parser: smuggling with
// spoofed X-Forwarded-For, no limits, no log), and an upstream that never answers gets a 504.
import * as http from 'node:http';
import * as net from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { bodyOf, rawExchange, startProxy, startUpstream, waitFor } from './helpers.js';
import type { StartedProxy, Upstream } from './helpers.js';

const HEADER_MS = 800;

let upstream: Upstream;
let front: StartedProxy;
const stalled: http.ServerResponse[] = [];

beforeAll(async () => {
  // A plain HTTP upstream: Node answers an Upgrade request it has no handler for as a normal
  // request (200, keep-alive), which is exactly the case to get right.
  upstream = await startUpstream({ '/never': (_req, res) => void stalled.push(res) });
  front = await startProxy([upstream.url], { timeouts: { header_ms: HEADER_MS } });
});
afterAll(async () => {
  for (const r of stalled) r.destroy();
  await front?.close();
  await upstream?.close();
});

const UPGRADE =
  'Host: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
  'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n';

describe('upgrade abuse', () => {
  for (const together of [false, true]) {
    it(`an upgrade the upstream does not accept opens no tunnel: later bytes never reach it raw (${together ? 'sent with the head' : 'sent after the answer'})`, async () => {
      const before = upstream.seen.length;
      const first = `GET /ws HTTP/1.1\r\n${UPGRADE}`;
      const second = 'GET /smuggled-via-tunnel HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 6.6.6.6\r\n\r\n';
      const res = await rawExchange(front.port, together ? first + second : [first, second], {
        gapMs: 300,
        waitMs: 4_000,
      });
      // The client gets the upstream's answer to its (failed) upgrade, then the connection ends.
      expect(res.status, res.text.slice(0, 300)).toBe(200);
      expect(res.text).toContain('"url":"/ws"');
      expect(res.closed).toBe(true);
      // Whatever reached the upstream went through the proxy's parser and header rewriting.
      const mine = upstream.seen.slice(before);
      for (const s of mine) {
        expect(s.headers.via, s.url).toMatch(/dotslash/);
        expect(s.headers['x-forwarded-for'], s.url).toBe('127.0.0.1');
      }
      expect(mine.some((s) => s.headers['x-forwarded-for'] === '6.6.6.6')).toBe(false);
    });
  }

  it('an upgrade to an upstream that never answers gets 504 after header_ms and is closed', async () => {
    const res = await rawExchange(front.port, `GET /never HTTP/1.1\r\n${UPGRADE}`, {
      waitMs: HEADER_MS + 3_000,
    });
    expect(res.status, res.text).toBe(504);
    expect(bodyOf(res.text)).toContain('PRX_ERR_UPSTREAM_HEADERS_TIMEOUT');
    expect(res.closed).toBe(true);
    expect(await waitFor(() => front.proxy.stats.active === 0, 3_000)).toBe(true);
  });

  it('300 upgrades aborted at every stage leave no tunnel, request or upstream socket behind', async () => {
    const server = http.createServer((_req, res) => res.end('plain'));
    const wss = new WebSocketServer({ server });
    wss.on('connection', (ws) => ws.on('message', (d) => ws.send(d)));
    const upSockets = new Set<net.Socket>();
    server.on('connection', (s) => {
      upSockets.add(s);
      s.on('close', () => upSockets.delete(s));
    });
    // Upgrades to this path get no answer at all (the upstream holds them).
    server.on('upgrade', (req, socket) => {
      if (req.url === '/hold') socket.on('error', () => {});
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const p = await startProxy([`http://127.0.0.1:${(server.address() as AddressInfo).port}`], {
      timeouts: { header_ms: HEADER_MS },
    });
    try {
      const stageOf = (i: number): 'head' | 'waiting' | 'open' =>
        (['head', 'waiting', 'open'] as const)[i % 3]!;
      const one = (i: number): Promise<void> =>
        new Promise((resolve) => {
          const stage = stageOf(i);
          const sock = net.connect(p.port, '127.0.0.1');
          sock.on('error', () => {});
          sock.on('close', () => resolve());
          const path = stage === 'waiting' ? '/hold' : '/ws';
          sock.once('connect', () => {
            if (stage === 'head') {
              sock.write(`GET ${path} HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n`);
              setTimeout(() => sock.destroy(), 5);
              return;
            }
            sock.write(`GET ${path} HTTP/1.1\r\n${UPGRADE}`);
            if (stage === 'waiting') return void setTimeout(() => sock.destroy(), 20);
            sock.once('data', () => sock.destroy()); // the 101 arrived: tunnel open, walk away
          });
        });
      for (let i = 0; i < 300; i += 50) await Promise.all(Array.from({ length: 50 }, (_, j) => one(i + j)));
      expect(await waitFor(() => p.proxy.stats.active === 0 && p.proxy.stats.connections === 0, 5_000)).toBe(
        true,
      );
      expect(
        await waitFor(() => upSockets.size === 0, 5_000),
        `${upSockets.size} upstream sockets left`,
      ).toBe(true);
    } finally {
      await p.close();
      wss.close();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    }
  });

  it('control: a real WebSocket upgrade still tunnels, including a message sent right after open', async () => {
    const server = http.createServer((_req, res) => res.end('plain'));
    const wss = new WebSocketServer({ server });
    wss.on('connection', (ws) => ws.on('message', (d) => ws.send(`echo:${String(d)}`)));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const p = await startProxy([`http://127.0.0.1:${(server.address() as AddressInfo).port}`], {
      timeouts: { header_ms: HEADER_MS },
    });
    try {
      const ws = new WebSocket(`ws://127.0.0.1:${p.port}/chat`);
      const reply = new Promise<string>((resolve, reject) => {
        ws.once('message', (d) => resolve(String(d)));
        ws.once('error', reject);
      });
      ws.once('open', () => ws.send('hi'));
      expect(await reply).toBe('echo:hi');
      ws.close();
      expect(await waitFor(() => p.proxy.stats.active === 0, 3_000)).toBe(true);
    } finally {
      await p.close();
      wss.close();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    }
  });
});
