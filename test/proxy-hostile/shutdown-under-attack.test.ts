// Graceful shutdown while hostile clients hold connections: close(drainMs) must still finish
// in about drainMs, and leave no client socket, upstream request or upstream socket behind.
import * as net from 'node:net';
import type * as http from 'node:http';
import { afterAll, describe, expect, it } from 'vitest';
import { sleep, startProxy, startUpstream, waitFor } from './helpers.js';
import type { Upstream } from './helpers.js';

let upstream: Upstream | null = null;
const stalled: http.ServerResponse[] = [];
afterAll(async () => {
  for (const r of stalled) r.destroy();
  await upstream?.close();
});

/** A client socket that we never close ourselves; resolves `closed` when the proxy closes it. */
function hostileClient(
  port: number,
  bytes: string,
  keepTrickling: boolean,
): { sock: net.Socket; closed: Promise<void> } {
  const sock = net.connect(port, '127.0.0.1');
  sock.on('error', () => {});
  sock.pause(); // never read: the proxy's close must not depend on us
  const closed = new Promise<void>((r) => sock.once('close', () => r()));
  sock.once('connect', () => {
    sock.write(bytes);
    if (!keepTrickling) return;
    const t = setInterval(() => (sock.destroyed ? clearInterval(t) : sock.write('x')), 200);
    sock.once('close', () => clearInterval(t));
  });
  // Safety net so the test never leaks a socket, whatever the proxy does.
  const cap = setTimeout(() => sock.destroy(), 15_000);
  void closed.then(() => clearTimeout(cap));
  return { sock, closed };
}

describe('shutdown under attack', () => {
  it('close(500) finishes promptly with slowloris, stalled-upstream and non-reading clients connected', async () => {
    upstream = await startUpstream({
      '/stall': (_req, res) => void stalled.push(res),
      '/big': (_req, res) => {
        const chunk = Buffer.alloc(64 * 1024, 1);
        res.writeHead(200, { 'content-length': String(1024 * chunk.length) });
        let left = 1024;
        const pump = (): void => {
          while (left-- > 0) if (!res.write(chunk)) return void res.once('drain', pump);
          res.end();
        };
        pump();
      },
    });
    // Long client timeouts: only close() may end these connections.
    const front = await startProxy([upstream.url], {
      timeouts: {
        client_header_ms: 60_000,
        client_request_ms: 120_000,
        header_ms: 60_000,
        body_idle_ms: 60_000,
      },
    });
    const clients = [
      // Slowloris heads.
      ...Array.from({ length: 20 }, (_, i) =>
        hostileClient(front.port, `GET /loris${i} HTTP/1.1\r\nHost: a\r\nX-A: `, true),
      ),
      // Requests the upstream never answers.
      ...Array.from({ length: 10 }, (_, i) =>
        hostileClient(front.port, `GET /stall?${i} HTTP/1.1\r\nHost: a\r\n\r\n`, false),
      ),
      // Body trickles.
      ...Array.from({ length: 10 }, () =>
        hostileClient(
          front.port,
          'POST /trickle HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\n',
          true,
        ),
      ),
      // Downloads nobody reads.
      ...Array.from({ length: 5 }, () =>
        hostileClient(front.port, 'GET /big HTTP/1.1\r\nHost: a\r\n\r\n', false),
      ),
    ];
    expect(
      await waitFor(() => stalled.length === 10 && front.proxy.stats.connections === clients.length, 5_000),
    ).toBe(true);
    await sleep(200);

    const t = performance.now();
    await front.proxy.close(500);
    const took = performance.now() - t;
    expect(took, `close(500) took ${took.toFixed(0)} ms`).toBeLessThan(3_000);
    expect(front.proxy.ready).toBe(false);
    // Socket 'close' events land a tick after close() resolves.
    expect(await waitFor(() => front.proxy.stats.connections === 0, 1_000)).toBe(true);
    expect(front.proxy.stats.active).toBe(0);
    // Every hostile client was disconnected (read now: a paused socket never sees the FIN),
    // and the upstream let go of everything.
    for (const c of clients) c.sock.resume();
    const allClosed = await Promise.race([
      Promise.all(clients.map((c) => c.closed)).then(() => true),
      sleep(3_000),
    ]);
    expect(allClosed, 'a client socket outlived close()').toBe(true);
    expect(
      await waitFor(() => upstream!.seen.every((s) => s.closed) && upstream!.sockets.size === 0, 3_000),
    ).toBe(true);
  });
});
