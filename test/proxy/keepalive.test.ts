// Idle client keep-alive connections: closed after client_keepalive_ms, but never with a request
// in them. After an event-loop stall the timers phase runs before the poll phase reads what came
// in meanwhile; Node's own expiry destroyed such connections, losing a request the client had
// sent in time (no answer, no log line). A busy-wait in this process is that stall.
import * as net from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { until } from '../wait.js';
import { startProxy, startUpstream, type RunningProxy, type Upstream } from './helpers.js';

let upstream: Upstream;
let front: RunningProxy;
// Node closes idle keep-alive connections keepAliveTimeout + 1 s after the last response.
const KEEPALIVE_MS = 1_000;
const NODE_BUFFER_MS = 1_000;

beforeEach(async () => {
  upstream = await startUpstream((_req, res) => res.end('ok'));
  front = await startProxy({ upstreams: [upstream.url], timeouts: { client_keepalive_ms: KEEPALIVE_MS } });
});
afterEach(async () => {
  await front.proxy.close(100);
  await upstream.close();
});

const REQUEST = 'GET /x HTTP/1.1\r\nHost: a.test\r\n\r\n';

/** A raw keep-alive client: counts complete responses (fixed "ok" body) and notes the close. */
function client(port: number): { socket: net.Socket; responses: () => number; closed: Promise<void> } {
  const socket = net.connect(port, '127.0.0.1');
  let text = '';
  socket.setEncoding('latin1');
  socket.on('data', (d: string) => (text += d));
  const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
  socket.on('error', () => {});
  return { socket, responses: () => text.split('HTTP/1.1 200').length - 1, closed };
}

function busyWait(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end);
}

describe('client keep-alive expiry', () => {
  it('closes an idle connection after client_keepalive_ms', async () => {
    const c = client(front.port);
    c.socket.write(REQUEST);
    await until(() => c.responses() === 1, 5_000, 'the first response', 10);
    const t0 = performance.now();
    await c.closed;
    const idleMs = performance.now() - t0;
    expect(idleMs).toBeGreaterThan(KEEPALIVE_MS);
    expect(idleMs).toBeLessThan(KEEPALIVE_MS + NODE_BUFFER_MS + 1_500);
  });

  it('answers a request that arrived while the event loop was stalled past the expiry', async () => {
    const c = client(front.port);
    c.socket.write(REQUEST);
    await until(() => c.responses() === 1, 5_000, 'the first response', 10);
    // Shortly before the idle timer fires, send the next request, then stall the loop (the
    // front runs in this process) until well past the expiry.
    // Margins of 500 ms each side keep a slow machine's late timers from deciding the outcome.
    await new Promise((r) => setTimeout(r, KEEPALIVE_MS + NODE_BUFFER_MS - 500));
    expect(c.socket.destroyed, 'closed before the test could send (timer far too late)').toBe(false);
    c.socket.write(REQUEST);
    busyWait(1_000);
    await until(() => c.responses() === 2 || c.socket.destroyed, 5_000, 'the second response or a close', 10);
    expect(c.responses()).toBe(2);
    // Still a keep-alive connection: it closes only after idling again.
    expect(c.socket.destroyed).toBe(false);
    await c.closed;
  });
});
