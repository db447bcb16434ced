// The raw-socket upstream client (proxy/h1-upstream.ts), driven by a raw TCP upstream that
// writes exact bytes: response framing edge cases, keep-alive reuse, pool limits, idle expiry,
// timeouts and a byte-exact body through a slow client (the read buffer is reused).
import { createHash, randomBytes } from 'node:crypto';
import * as http from 'node:http';
import * as net from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { proxyConfig, request, startProxy, type RunningProxy } from './helpers.js';

let front: RunningProxy | null = null;
let raw: net.Server | null = null;

afterEach(async () => {
  await front?.proxy.close(500);
  if (raw) {
    const r = raw;
    await new Promise<void>((resolve) => r.close(() => resolve()));
  }
  front = null;
  raw = null;
});

interface RawUpstream {
  url: string;
  /** Connections accepted so far. */
  connections: () => number;
  /** Connections open now. */
  open: () => number;
  /** Request heads seen, in order. */
  heads: string[];
}

/**
 * A raw TCP upstream: `answer(sock, head, n)` is called for each request head (n = its index
 * on that connection) and writes whatever bytes the case needs.
 */
async function rawUpstream(
  answer: (sock: net.Socket, head: string, n: number) => void,
): Promise<RawUpstream> {
  let connections = 0;
  let open = 0;
  const heads: string[] = [];
  raw = net.createServer((sock) => {
    connections++;
    open++;
    sock.on('close', () => open--);
    sock.on('error', () => {});
    let buf = '';
    let n = 0;
    sock.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      for (let i = buf.indexOf('\r\n\r\n'); i >= 0; i = buf.indexOf('\r\n\r\n')) {
        const head = buf.slice(0, i);
        buf = buf.slice(i + 4);
        heads.push(head);
        answer(sock, head, n++);
      }
    });
  });
  await new Promise<void>((r) => raw!.listen(0, '127.0.0.1', r));
  const port = (raw.address() as AddressInfo).port;
  return { url: `http://127.0.0.1:${port}`, connections: () => connections, open: () => open, heads };
}

function errorCode(body: Buffer): string {
  return (JSON.parse(body.toString()) as { error: { code: string } }).error.code;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function proxyTo(u: RawUpstream, over: Record<string, unknown> = {}): Promise<RunningProxy> {
  front = await startProxy({ upstreams: [u.url], upstream_client: 'fast', ...over });
  return front;
}

describe('h1 upstream: request head', () => {
  it('sends the rewritten head with keep-alive and no body framing for a GET', async () => {
    const u = await rawUpstream((s) => s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'));
    const f = await proxyTo(u);
    const r = await request(`${f.url}/p?q=1`, {
      headers: { 'x-app': 'v', connection: 'keep-alive, x-hop', 'x-hop': '1' },
    });
    expect(r.body.toString()).toBe('ok');
    const head = u.heads[0]!;
    expect(head.split('\r\n')[0]).toBe('GET /p?q=1 HTTP/1.1');
    expect(head).toMatch(/\r\nx-app: v\r\n/i);
    expect(head).toMatch(/\r\nx-forwarded-for: 127\.0\.0\.1\r\n/);
    expect(head).toMatch(/\r\nvia: 1\.1 dotslash\r\n/);
    expect(head).toMatch(/\r\nconnection: keep-alive$/);
    expect(head).not.toMatch(/x-hop|content-length|transfer-encoding/i);
  });
});

describe('h1 upstream: response framing', () => {
  it('a head split across many packets', async () => {
    const u = await rawUpstream((s) => {
      const bytes = 'HTTP/1.1 200 OK\r\nX-Split: yes\r\nContent-Length: 5\r\n\r\nhello';
      let i = 0;
      const step = (): void => {
        if (i >= bytes.length || s.destroyed) return;
        s.write(bytes.slice(i, i + 3));
        i += 3;
        setTimeout(step, 2);
      };
      step();
    });
    const f = await proxyTo(u);
    const r = await request(`${f.url}/`);
    expect(r.status).toBe(200);
    expect(r.headers['x-split']).toBe('yes');
    expect(r.body.toString()).toBe('hello');
  });

  it('a body shorter than its Content-Length aborts the client connection (no truncated success)', async () => {
    const u = await rawUpstream((s) => {
      s.write('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly-some');
      setTimeout(() => s.destroy(), 50);
    });
    const f = await proxyTo(u);
    await expect(request(`${f.url}/`)).rejects.toThrow(/aborted|socket hang up|ECONNRESET/);
  });

  it('bytes past Content-Length are not taken as a next response: the connection is dropped', async () => {
    const u = await rawUpstream((s) =>
      s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n'),
    );
    const f = await proxyTo(u);
    expect((await request(`${f.url}/`)).body.toString()).toBe('ok');
    expect((await request(`${f.url}/`)).body.toString()).toBe('ok');
    expect(u.connections()).toBe(2);
  });

  it('upstream closing mid chunked body aborts the client connection', async () => {
    const u = await rawUpstream((s) => {
      s.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n');
      setTimeout(() => s.end(), 50);
    });
    const f = await proxyTo(u);
    await expect(request(`${f.url}/`)).rejects.toThrow(/aborted|socket hang up|ECONNRESET/);
  });

  it('decodes a chunked body (extensions, split sizes) and passes trailers to a client that is chunked', async () => {
    const u = await rawUpstream((s) => {
      s.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: x-sum\r\n\r\n4;ext=1\r\nwiki\r\n');
      setTimeout(() => s.write('5\r\npedia\r\n'), 10);
      setTimeout(() => s.write('0\r\nx-sum: 42\r'), 20);
      setTimeout(() => s.write('\n\r\n'), 30);
    });
    const f = await proxyTo(u);
    const r = await request(`${f.url}/`);
    expect(r.body.toString()).toBe('wikipedia');
    expect(r.trailers['x-sum']).toBe('42');
    // Kept alive after the last chunk: a second request reuses the connection.
    expect((await request(`${f.url}/`)).body.toString()).toBe('wikipedia');
    expect(u.connections()).toBe(1);
  });

  it('bad chunked framing after the head cuts the client connection', async () => {
    const u = await rawUpstream((s) =>
      s.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nxx\r\n'),
    );
    const f = await proxyTo(u);
    await expect(request(`${f.url}/`)).rejects.toThrow(/aborted|socket hang up|ECONNRESET/);
  });

  it('a body delimited by the upstream closing is streamed whole, and the socket is not reused', async () => {
    const u = await rawUpstream((s) => {
      s.write('HTTP/1.1 200 OK\r\n\r\nuntil-');
      setTimeout(() => s.end('close'), 20);
    });
    const f = await proxyTo(u);
    expect((await request(`${f.url}/`)).body.toString()).toBe('until-close');
    expect((await request(`${f.url}/`)).body.toString()).toBe('until-close');
    expect(u.connections()).toBe(2);
  });

  it('HEAD, 204 and 304 carry no body whatever their headers say, and keep the connection', async () => {
    const u = await rawUpstream((s, head) => {
      const path = head.split(' ')[1];
      if (head.startsWith('HEAD')) s.write('HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n');
      else if (path === '/204') s.write('HTTP/1.1 204 No Content\r\n\r\n');
      else s.write('HTTP/1.1 304 Not Modified\r\nContent-Length: 50\r\n\r\n');
    });
    const f = await proxyTo(u);
    const h = await request(`${f.url}/`, { method: 'HEAD' });
    expect(h.status).toBe(200);
    expect(h.headers['content-length']).toBe('1000');
    expect((await request(`${f.url}/204`)).status).toBe(204);
    expect((await request(`${f.url}/304`)).status).toBe(304);
    expect(u.connections()).toBe(1);
  });

  it('forwards 103 Early Hints, then the final response', async () => {
    const u = await rawUpstream((s) =>
      s.write(
        'HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok',
      ),
    );
    const f = await proxyTo(u);
    const hints: string[] = [];
    const body = await new Promise<string>((resolve, reject) => {
      const req = http.get(`${f.url}/`, { agent: false }, (res) => {
        let b = '';
        res.on('data', (c: Buffer) => (b += c.toString()));
        res.on('end', () => resolve(b));
      });
      req.on('information', (i) => hints.push(String(i.headers.link)));
      req.on('error', reject);
    });
    expect(body).toBe('ok');
    expect(hints).toEqual(['</a.css>; rel=preload']);
  });

  const badHeads: [string, string][] = [
    ['duplicate Content-Length', 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok'],
    [
      'Content-Length with Transfer-Encoding',
      'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n',
    ],
    ['obs-fold', 'HTTP/1.1 200 OK\r\nX-A: one\r\n two\r\nContent-Length: 2\r\n\r\nok'],
    ['bare LF', 'HTTP/1.1 200 OK\nContent-Length: 2\r\n\r\nok'],
    ['a control byte in a value', 'HTTP/1.1 200 OK\r\nX-A: a\x01b\r\nContent-Length: 2\r\n\r\nok'],
    ['a space before the colon', 'HTTP/1.1 200 OK\r\nX-A : b\r\nContent-Length: 2\r\n\r\nok'],
    ['a bad status line', 'HTTP/1.1 2OO OK\r\nContent-Length: 2\r\n\r\nok'],
    ['HTTP/2 in the status line', 'HTTP/2 200 OK\r\nContent-Length: 2\r\n\r\nok'],
    ['a non-numeric Content-Length', 'HTTP/1.1 200 OK\r\nContent-Length: 2x\r\n\r\nok'],
    [
      'Transfer-Encoding gzip, chunked',
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n',
    ],
    ['101 without an upgrade', 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n'],
    ['garbage', '\x00\x01\x02 not http at all\r\n\r\n'],
  ];
  for (const [what, bytes] of badHeads) {
    it(`${what} -> 502 PRX_ERR_UPSTREAM_BAD_RESPONSE`, async () => {
      const u = await rawUpstream((s) => s.write(bytes));
      const f = await proxyTo(u);
      const r = await request(`${f.url}/`);
      expect(r.status).toBe(502);
      expect(errorCode(r.body)).toBe('PRX_ERR_UPSTREAM_BAD_RESPONSE');
    });
  }

  it('a response head larger than the limit -> 502', async () => {
    const u = await rawUpstream((s) => s.write(`HTTP/1.1 200 OK\r\nX-Big: ${'a'.repeat(70_000)}\r\n\r\n`));
    const f = await proxyTo(u);
    const r = await request(`${f.url}/`);
    expect(r.status).toBe(502);
  });
});

describe('h1 upstream: connections', () => {
  it('reuses a keep-alive connection; Connection: close from the upstream is honoured', async () => {
    const u = await rawUpstream((s, head) => {
      if (head.startsWith('GET /close'))
        s.write('HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\nc');
      else s.write('HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nk');
    });
    const f = await proxyTo(u);
    for (let i = 0; i < 3; i++) expect((await request(`${f.url}/`)).body.toString()).toBe('k');
    expect(u.connections()).toBe(1);
    expect((await request(`${f.url}/close`)).body.toString()).toBe('c');
    expect((await request(`${f.url}/`)).body.toString()).toBe('k');
    expect(u.connections()).toBe(2);
  });

  it('never opens more than proxy.connections; the rest wait their turn', async () => {
    let busy = 0;
    let most = 0;
    const u = await rawUpstream((s) => {
      busy++;
      most = Math.max(most, busy);
      setTimeout(() => {
        busy--;
        s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
      }, 30);
    });
    const f = await proxyTo(u, { connections: 2 });
    const all = await Promise.all(Array.from({ length: 8 }, () => request(`${f.url}/`)));
    expect(all.map((r) => r.body.toString())).toEqual(Array(8).fill('ok'));
    expect(most).toBeLessThanOrEqual(2);
    expect(u.connections()).toBeLessThanOrEqual(2);
  });

  it('a reload retires the pool: requests queued in it are still answered by the old upstream', async () => {
    const u = await rawUpstream((s) => {
      setTimeout(() => s.write('HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nold'), 60);
    });
    const f = await proxyTo(u, { connections: 1 });
    const pending = Array.from({ length: 3 }, () => request(`${f.url}/`));
    await sleep(20); // all three dispatched: one on the connection, two queued
    const fresh = http.createServer((_req, res) => res.end('new'));
    await new Promise<void>((r) => fresh.listen(0, '127.0.0.1', r));
    try {
      const port = (fresh.address() as AddressInfo).port;
      f.proxy.update(
        proxyConfig({ upstreams: [`http://127.0.0.1:${port}`], connections: 1, upstream_client: 'fast' }),
      );
      const rs = await Promise.all(pending);
      expect(rs.map((r) => `${r.status} ${r.body.toString()}`)).toEqual(['200 old', '200 old', '200 old']);
      expect((await request(`${f.url}/`)).body.toString()).toBe('new');
      for (let i = 0; i < 40 && u.open() > 0; i++) await sleep(25);
      expect(u.open()).toBe(0); // the retired pool closed its connection when done
    } finally {
      fresh.closeAllConnections();
      await new Promise<void>((r) => fresh.close(() => r()));
    }
  });

  it('closes idle connections after upstream_keepalive_ms', async () => {
    const u = await rawUpstream((s) => s.write('HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nk'));
    const f = await proxyTo(u, { timeouts: { upstream_keepalive_ms: 100 } });
    await request(`${f.url}/`);
    expect(u.open()).toBe(1);
    for (let i = 0; i < 40 && u.open() > 0; i++) await sleep(50);
    expect(u.open()).toBe(0);
    expect((await request(`${f.url}/`)).body.toString()).toBe('k');
    expect(u.connections()).toBe(2);
  });

  it('no response head within header_ms -> 504; a stalled body is cut after body_idle_ms', async () => {
    const u = await rawUpstream((s, head) => {
      if (head.startsWith('GET /body')) s.write('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc');
      else s.write('HTTP/1.1 200 OK\r\n'); // and nothing more
    });
    const f = await proxyTo(u, { timeouts: { header_ms: 150, body_idle_ms: 150 } });
    const r = await request(`${f.url}/head`);
    expect(r.status).toBe(504);
    expect(errorCode(r.body)).toBe('PRX_ERR_UPSTREAM_HEADERS_TIMEOUT');
    await expect(request(`${f.url}/body`)).rejects.toThrow(/aborted|socket hang up|ECONNRESET/);
  });

  it('a bodiless POST on a reused socket that is reset is not sent again; a GET is', async () => {
    const u = await rawUpstream((s, _head, n) => {
      if (n === 0) s.write('HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nk');
      else s.resetAndDestroy();
    });
    const f = await proxyTo(u, { connections: 1 });
    await request(`${f.url}/warm`);
    const post = await request(`${f.url}/post`, { method: 'POST', headers: { 'content-length': '0' } });
    expect(post.status).toBe(502);
    expect(errorCode(post.body)).toBe('PRX_ERR_UPSTREAM_RESET');
    expect(u.heads.filter((h) => h.startsWith('POST')).length).toBe(1);
    await request(`${f.url}/warm`);
    const get = await request(`${f.url}/again`);
    expect(get.status).toBe(200);
    expect(u.heads.filter((h) => h.startsWith('GET /again')).length).toBe(2);
  });
});

describe('h1 upstream: streaming', () => {
  it('a large body reaches a slow client byte-exact (reused read buffer, backpressure)', async () => {
    const body = randomBytes(8 * 1024 * 1024);
    const want = createHash('sha256').update(body).digest('hex');
    const u = await rawUpstream((s) => {
      s.write(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n`);
      s.write(body);
    });
    const f = await proxyTo(u);
    const got = await new Promise<string>((resolve, reject) => {
      http
        .get(`${f.url}/`, { agent: false }, (res) => {
          const h = createHash('sha256');
          let n = 0;
          res.on('data', (c: Buffer) => {
            h.update(c);
            // Read slowly at first so the proxy has to stop reading the upstream.
            if (n++ % 16 === 0 && n < 400) {
              res.pause();
              setTimeout(() => res.resume(), 2);
            }
          });
          res.on('end', () => resolve(h.digest('hex')));
          res.on('error', reject);
        })
        .on('error', reject);
    });
    expect(got).toBe(want);
  });

  it('many keep-alive responses in a row through one client connection stay byte-exact', async () => {
    const bodies = Array.from({ length: 20 }, (_, i) => randomBytes(50_000 + i * 1_000));
    const u = await rawUpstream((s, head) => {
      const i = Number(head.split(' ')[1]!.slice(1));
      s.write(`HTTP/1.1 200 OK\r\nContent-Length: ${bodies[i]!.length}\r\n\r\n`);
      s.write(bodies[i]!);
    });
    const f = await proxyTo(u);
    const agent = new http.Agent({ keepAlive: true, maxSockets: 2 });
    try {
      const rs = await Promise.all(bodies.map((_, i) => request(`${f.url}/${i}`, { agent })));
      rs.forEach((r, i) => expect(r.body.equals(bodies[i]!)).toBe(true));
    } finally {
      agent.destroy();
    }
  });
});
