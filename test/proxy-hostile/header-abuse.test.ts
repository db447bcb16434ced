// Hostile headers that parse fine: hop-by-hop tricks (Connection naming our own headers),
// spoofed X-Forwarded-* from an untrusted client, httpoxy; and a hostile upstream trying to
// poison the response stream with bytes past its Content-Length.
import * as net from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rawExchange, startProxy, startUpstream } from './helpers.js';
import type { StartedProxy, Upstream } from './helpers.js';

let upstream: Upstream;
let front: StartedProxy;

beforeAll(async () => {
  upstream = await startUpstream();
  front = await startProxy([upstream.url]);
});
afterAll(async () => {
  await front?.close();
  await upstream?.close();
});

describe('hostile request headers', () => {
  it('Connection naming X-Forwarded-For, Via, Host and Content-Length cannot strip what the proxy adds', async () => {
    const res = await rawExchange(
      front.port,
      'POST /hop HTTP/1.1\r\nHost: site.example\r\n' +
        'Connection: close, X-Forwarded-For, Via, Host, Content-Length, X-Forwarded-Proto\r\n' +
        'Content-Length: 5\r\n\r\nhello',
    );
    expect(res.status).toBe(200);
    const seen = upstream.seen.at(-1)!;
    expect(seen).toMatchObject({ url: '/hop', bodyBytes: 5, complete: true });
    expect(seen.headers.host).toBe('site.example');
    expect(seen.headers['x-forwarded-for']).toBe('127.0.0.1');
    expect(seen.headers['x-forwarded-proto']).toBe('http');
    expect(seen.headers.via).toMatch(/dotslash/);
  });

  it('Connection-listed custom headers are removed (RFC 9110 §7.6.1)', async () => {
    await rawExchange(
      front.port,
      'GET /named HTTP/1.1\r\nHost: a\r\nConnection: close, X-Secret-Hop\r\nX-Secret-Hop: 1\r\nKeep-Alive: timeout=5\r\n\r\n',
    );
    const seen = upstream.seen.at(-1)!;
    expect(seen.url).toBe('/named');
    expect(seen.headers['x-secret-hop']).toBeUndefined();
    expect(seen.headers['keep-alive']).toBeUndefined();
  });

  it('X-Forwarded-* from an untrusted client are replaced, not believed', async () => {
    await rawExchange(
      front.port,
      'GET /spoof HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 10.6.6.6\r\nX-Forwarded-Proto: https\r\n' +
        'X-Forwarded-Host: admin.internal\r\nConnection: close\r\n\r\n',
    );
    const seen = upstream.seen.at(-1)!;
    expect(seen.url).toBe('/spoof');
    expect(seen.headers['x-forwarded-for']).toBe('127.0.0.1');
    expect(seen.headers['x-forwarded-proto']).toBe('http');
    expect(seen.headers['x-forwarded-host']).toBe('a');
  });

  it('httpoxy: a Proxy request header is never forwarded', async () => {
    await rawExchange(
      front.port,
      'GET /httpoxy HTTP/1.1\r\nHost: a\r\nProxy: http://evil.example:8080\r\nProxy-Authorization: Basic eA==\r\nConnection: close\r\n\r\n',
    );
    const seen = upstream.seen.at(-1)!;
    expect(seen.url).toBe('/httpoxy');
    expect(seen.headers.proxy).toBeUndefined();
    expect(seen.headers['proxy-authorization']).toBeUndefined();
  });
});

/** An upstream speaking raw bytes: answers every request head it reads with `reply(path)`. */
async function rawUpstream(
  reply: (path: string) => string,
): Promise<{ url: string; close(): Promise<void> }> {
  const socks = new Set<net.Socket>();
  const srv = net.createServer((s) => {
    socks.add(s);
    s.on('close', () => socks.delete(s));
    s.on('error', () => {});
    let buf = '';
    s.on('data', (c: Buffer) => {
      buf += c.toString('latin1');
      let end: number;
      while ((end = buf.indexOf('\r\n\r\n')) >= 0) {
        const head = buf.slice(0, end);
        buf = buf.slice(end + 4);
        s.write(reply(head.split(' ')[1] ?? '/'));
      }
    });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(srv.address() as AddressInfo).port}`,
    close: async () => {
      for (const s of socks) s.destroy();
      await new Promise<void>((r) => srv.close(() => r()));
    },
  };
}

describe('hostile upstream responses', () => {
  it('bytes past Content-Length (a smuggled response) never reach another client request', async () => {
    const up = await rawUpstream((path) =>
      path === '/poison'
        ? 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello' +
          'HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nPOISONED'
        : 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok',
    );
    const p = await startProxy([up.url], { connections: 1 });
    try {
      const first = await rawExchange(p.port, 'GET /poison HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
      expect(first.status).toBe(200);
      for (let i = 0; i < 5; i++) {
        const next = await rawExchange(
          p.port,
          `GET /next${i} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n`,
        );
        expect(next.text).not.toContain('POISONED');
        expect(next.status).toBe(200);
      }
    } finally {
      await p.close();
      await up.close();
    }
  });

  it('a response with both Content-Length and Transfer-Encoding is refused with 502', async () => {
    const up = await rawUpstream(
      () =>
        'HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n',
    );
    const p = await startProxy([up.url]);
    try {
      const res = await rawExchange(p.port, 'GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
      expect(res.status).toBe(502);
      expect(res.text).toContain('PRX_ERR_UPSTREAM_BAD_RESPONSE');
    } finally {
      await p.close();
      await up.close();
    }
  });

  it('a response header with a bare LF inside is refused with 502, no header injected', async () => {
    const up = await rawUpstream(
      () => 'HTTP/1.1 200 OK\r\nX-A: b\nSet-Cookie: injected=1\r\nContent-Length: 2\r\n\r\nok',
    );
    const p = await startProxy([up.url]);
    try {
      const res = await rawExchange(p.port, 'GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
      expect(res.text).not.toMatch(/\r\nSet-Cookie: injected/i);
      expect(res.status).toBe(502);
    } finally {
      await p.close();
      await up.close();
    }
  });
});
