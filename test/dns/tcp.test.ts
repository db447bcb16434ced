// DNS over TCP (RFC 7766): pipelined queries answered in order on one connection, the idle
// timeout (a frame trickled in does not keep a connection alive), the connection cap.
import dnsPacket from 'dns-packet';
import { afterEach, describe, expect, it } from 'vitest';
import { query, startTestServer, TcpClient } from './helpers.js';
import type { TestServer } from './helpers.js';

const servers: TestServer[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
});

describe('DNS over TCP', () => {
  it('pipelined queries on one connection are all answered, in order, with full answers', async () => {
    const t = await startTestServer();
    servers.push(t);
    const c = await TcpClient.open(t.port);
    const names = ['www.origin.test', 'huge.origin.test', 'nope.origin.test', 'example.com'];
    const frames = names.flatMap((n, i) => {
      const q = query(n, 1, 100 + i);
      return [Buffer.from([q.length >> 8, q.length & 0xff]), q];
    });
    c.write(Buffer.concat(frames)); // all four in one write
    const answers = [];
    for (let i = 0; i < names.length; i++) answers.push(dnsPacket.decode((await c.next())!));
    expect(answers.map((a) => a.id)).toEqual([100, 101, 102, 103]);
    expect(answers[1]!.answers).toHaveLength(100); // no truncation over TCP
    expect(answers.map((a) => (a.flags ?? 0) & 0x0f)).toEqual([0, 0, 3, 5]); // NOERROR, NOERROR, NXDOMAIN, REFUSED
    c.close();
  });

  it('idle timeout: a silent connection and one trickling a frame are both closed', async () => {
    const t = await startTestServer({ tcpIdleMs: 300 });
    servers.push(t);
    const idle = await TcpClient.open(t.port);
    const slow = await TcpClient.open(t.port);
    // Announce 200 bytes, then send one byte every 50 ms: never completes a query.
    slow.write(Buffer.from([0, 200]));
    const trickle = setInterval(() => slow.write(Buffer.from([0])), 50);
    const started = Date.now();
    await Promise.all([idle.closed, slow.closed]);
    clearInterval(trickle);
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('a connection that keeps completing queries stays open past the idle time', async () => {
    const t = await startTestServer({ tcpIdleMs: 300 });
    servers.push(t);
    const c = await TcpClient.open(t.port);
    for (let i = 0; i < 6; i++) {
      c.send(query('www.origin.test', 1, i));
      expect((await c.next())!.readUInt16BE(0)).toBe(i);
      await new Promise((r) => setTimeout(r, 150));
    }
    c.close();
  });

  it('max connections: those over the cap are closed at once, the others still answer', async () => {
    const t = await startTestServer({ tcpMaxConnections: 2 });
    servers.push(t);
    const a = await TcpClient.open(t.port);
    const b = await TcpClient.open(t.port);
    const over = await TcpClient.open(t.port);
    await over.closed;
    a.send(query('www.origin.test', 1, 1));
    expect(await a.next()).toBeDefined();
    expect(t.server.stats().tcpRejected).toBe(1);
    a.close();
    b.close();
  });
});
