// Redirector.decide + writeRedirect inside a real node:http server on loopback: what a client
// actually receives.
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redirector, redirectSnapshot, writeRedirect } from '../../../proxy/redirect/index.js';

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

let server: http.Server;
let port: number;
let clock = 0;
const redirector = new Redirector(
  redirectSnapshot({
    pr: 1,
    sessions: [{ id: 's7', vhost: 'vh7.rescue-b.example', scheme: 'http', port: 8081, rate: 1e6 }],
    sessionCookies: ['sid'],
  }),
  // Every decision sees the clock a second later: the bucket never limits these tests.
  { now: () => (clock += 1000) },
);

beforeAll(async () => {
  server = http.createServer((req, res) => {
    const location = redirector.decide(req);
    if (location !== null) {
      writeRedirect(res, location);
      return;
    }
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end('local');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});

afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

function request(method: string, path: string, headers: http.OutgoingHttpHeaders = {}, agent?: http.Agent) {
  return new Promise<Reply>((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, method, path, headers, agent: agent ?? false },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

describe('redirect over HTTP', () => {
  it('answers an anonymous GET with a 302 to the session, same path and query, not cacheable', async () => {
    const r = await request('GET', '/news/story.html?id=42&ref=x');
    expect(r.status).toBe(302);
    expect(r.headers.location).toBe('http://vh7.rescue-b.example:8081/news/story.html?id=42&ref=x');
    expect(r.headers['cache-control']).toBe('no-store');
    expect(Number(r.headers['content-length'])).toBe(Buffer.byteLength(r.body));
    expect(r.body.length).toBeGreaterThan(0);
  });

  it('answers HEAD with the 302 headers and no body', async () => {
    const r = await request('HEAD', '/a');
    expect(r.status).toBe(302);
    expect(r.headers.location).toBe('http://vh7.rescue-b.example:8081/a');
    expect(r.body).toBe('');
  });

  it('serves locally what is not eligible', async () => {
    expect((await request('POST', '/a')).status).toBe(200);
    expect((await request('GET', '/a', { authorization: 'Bearer t' })).status).toBe(200);
    expect((await request('GET', '/a', { cookie: 'theme=1; sid=abc' })).status).toBe(200);
    expect((await request('GET', '/a', { 'x-dotslash-rescuer': 'sig' })).status).toBe(200);
    expect((await request('GET', '/.well-known/acme-challenge/tok')).status).toBe(200);
    expect((await request('GET', '/a', { cookie: 'theme=1' })).status).toBe(302);
  });

  it('keeps the connection alive across redirects', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const ports = new Set<number>();
      for (let i = 0; i < 5; i++) {
        const r = await new Promise<number>((resolve, reject) => {
          const req = http.get({ host: '127.0.0.1', port, path: `/k${i}`, agent }, (res) => {
            res.resume();
            res.on('end', () => resolve(res.statusCode === 302 ? req.socket!.localPort! : -1));
          });
          req.on('error', reject);
        });
        ports.add(r);
      }
      expect(ports.size).toBe(1);
      expect(ports.has(-1)).toBe(false);
    } finally {
      agent.destroy();
    }
  });
});
