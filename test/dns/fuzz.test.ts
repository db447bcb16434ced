// Fuzzing the embedded server: over 100k random and mutated packets (bit flips, truncation,
// absurd counts, compression pointer loops, oversize labels, garbage) over UDP, and over TCP on
// persistent connections with frames split at random points. The server must never crash, must
// answer malformed queries with FORMERR (header readable) or drop them, and must still answer a
// valid query afterwards. Counts are printed. Seeded, so a failure can be replayed (DNS_FUZZ_SEED).
import { createSocket } from 'node:dgram';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { query, rcodeOf, startTestServer, TcpClient, udpExchange } from './helpers.js';
import type { TestServer } from './helpers.js';

const SEED = Number(process.env.DNS_FUZZ_SEED ?? 0x5eed);
const UDP_PACKETS = 80_000;
const TCP_PACKETS = 24_000;

/** mulberry32: a small seeded PRNG. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const NAMES = [
  'www.origin.test',
  'origin.test',
  'alias.origin.test',
  'nope.origin.test',
  'big.origin.test',
  'example.com',
  '_dotslash._tcp.origin.test',
  'TXT.Origin.Test',
];
const TYPES = [1, 28, 5, 16, 33, 6, 2, 255, 12, 252];

function mutator(rand: () => number) {
  const int = (n: number): number => Math.floor(rand() * n);
  const valid = (): Buffer =>
    query(
      NAMES[int(NAMES.length)]!,
      TYPES[int(TYPES.length)]!,
      int(65536),
      rand() < 0.5 ? { edns: int(5000) } : {},
    );
  const mutations: ((q: Buffer) => Buffer)[] = [
    (q) => q, // valid
    (q) => {
      for (let i = 1 + int(8); i > 0; i--) q[int(q.length)]! ^= 1 << int(8);
      return q;
    },
    (q) => q.subarray(0, int(q.length)),
    (q) => {
      q.writeUInt16BE(rand() < 0.5 ? 0xffff : int(65536), 4 + 2 * int(4)); // absurd counts
      return q;
    },
    (q) => {
      // A compression pointer in the question: to itself, forward, or into the header.
      const at = 12 + int(Math.max(1, q.length - 17));
      q[at] = 0xc0;
      q[at + 1] = rand() < 0.5 ? at & 0xff : int(256);
      return q;
    },
    (q) => {
      // An additional record whose name is a pointer loop.
      q.writeUInt16BE(1, 10);
      const rr = Buffer.from([0xc0, q.length & 0xff, 0, 41, 4, 0, 0, 0, 0, 0, 0, 0]);
      return Buffer.concat([q, rr]);
    },
    (q) => {
      q[12] = 64 + int(192); // oversize / extended label type
      return q;
    },
    () => {
      const g = Buffer.allocUnsafe(int(600));
      for (let i = 0; i < g.length; i++) g[i] = int(256);
      return g;
    },
    (q) => Buffer.concat([q, Buffer.alloc(1 + int(40), int(256))]), // trailing garbage
    (q) => {
      // A name of 127 one-byte labels: over 255 bytes.
      const long = Buffer.concat(Array.from({ length: 130 }, () => Buffer.from([1, 97])));
      return Buffer.concat([q.subarray(0, 12), long, Buffer.from([0, 0, 1, 0, 1])]);
    },
    (q) => {
      // Two OPT records.
      const opt = Buffer.from([0, 0, 41, 4, 0, 0, 0, 0, 0, 0, 0]);
      q.writeUInt16BE(2, 10);
      return Buffer.concat([q, opt, opt]);
    },
    (q) => {
      q[2]! |= 0x80; // a response: dropped
      return q;
    },
  ];
  return (): Buffer => mutations[int(mutations.length)]!(valid());
}

let t: TestServer;
beforeAll(async () => {
  t = await startTestServer({ tcpIdleMs: 5_000 });
});
afterAll(() => t.close());

interface Tally {
  sent: number;
  responses: number;
  formerr: number;
  other: number;
  bad: string[];
}

/** Responses must be well-formed headers with QR set and a known rcode. */
function checkResponse(r: Buffer, tally: Tally): void {
  tally.responses++;
  // Plain checks (expect() per packet would dominate the run); a bad one is kept and asserted at the end.
  if (r.length < 12 || (r[2]! & 0x80) === 0 || ![0, 1, 3, 4, 5].includes(rcodeOf(r)))
    tally.bad.push(r.toString('hex'));
  if (rcodeOf(r) === 1) tally.formerr++;
  else tally.other++;
}

async function assertStillAnswers(): Promise<void> {
  const udp = await udpExchange(t.port, query('www.origin.test', 1, 7));
  expect(udp && rcodeOf(udp)).toBe(0);
  const c = await TcpClient.open(t.port);
  c.send(query('www.origin.test', 1, 8));
  const tcp = await c.next();
  c.close();
  expect(tcp && rcodeOf(tcp)).toBe(0);
}

describe('fuzz', () => {
  it(`UDP: ${UDP_PACKETS} random and mutated packets`, async () => {
    const next = mutator(prng(SEED));
    const tally: Tally = { sent: 0, responses: 0, formerr: 0, other: 0, bad: [] };
    const before = t.server.stats();
    const sock = createSocket('udp4');
    sock.on('message', (m) => checkResponse(m, tally));
    await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
    const BATCH = 128;
    while (tally.sent < UDP_PACKETS) {
      const target = tally.sent + BATCH;
      for (; tally.sent < target; tally.sent++) sock.send(next(), t.port, '127.0.0.1');
      // Wait until the server has handled the batch and its answers have arrived.
      const deadline = Date.now() + 2_000;
      for (;;) {
        const s = t.server.stats();
        const handled = s.udpQueries - before.udpQueries;
        const answered = handled - (s.dropped - before.dropped);
        if ((handled >= tally.sent && tally.responses >= answered) || Date.now() > deadline) break;
        await new Promise((r) => setImmediate(r));
      }
    }
    await new Promise((r) => setTimeout(r, 50));
    sock.close();
    const after = t.server.stats();
    const handled = after.udpQueries - before.udpQueries;
    const dropped = after.dropped - before.dropped;
    console.log(
      `dns fuzz UDP (seed ${SEED}): sent ${tally.sent}, handled ${handled}, FORMERR ${tally.formerr}, ` +
        `dropped ${dropped}, answered ${tally.other} (rcodes NOERROR/NXDOMAIN/NOTIMP/REFUSED), lost in transit ${handled - dropped - tally.responses + (tally.sent - handled)}`,
    );
    // Loopback UDP may lose a few packets under load; the server must have seen nearly all.
    expect(handled).toBeGreaterThan(UDP_PACKETS * 0.99);
    expect(tally.formerr).toBeGreaterThan(UDP_PACKETS * 0.2);
    expect(tally.other).toBeGreaterThan(UDP_PACKETS * 0.1);
    expect(dropped).toBeGreaterThan(0);
    expect(tally.bad).toEqual([]);
    await assertStillAnswers();
  }, 120_000);

  it(`TCP: ${TCP_PACKETS} mutated packets on persistent connections, frames split at random points`, async () => {
    const rand = prng(SEED + 1);
    const next = mutator(rand);
    const tally: Tally = { sent: 0, responses: 0, formerr: 0, other: 0, bad: [] };
    const before = t.server.stats();
    const CONNECTIONS = 4;
    const PIPELINE = 50;
    const clients = await Promise.all(Array.from({ length: CONNECTIONS }, () => TcpClient.open(t.port)));
    let turn = 0;
    while (tally.sent < TCP_PACKETS) {
      const c = clients[turn++ % CONNECTIONS]!;
      const s0 = t.server.stats();
      const frames: Buffer[] = [];
      for (let i = 0; i < PIPELINE; i++, tally.sent++) {
        const msg = next();
        const p = Buffer.alloc(2);
        p.writeUInt16BE(msg.length);
        frames.push(p, msg);
      }
      const stream = Buffer.concat(frames);
      // Split the pipelined frames at random points (partial frames, partial length prefixes).
      for (let at = 0; at < stream.length;) {
        const n = 1 + Math.floor(rand() * 700);
        c.write(stream.subarray(at, at + n));
        at += n;
      }
      let got = 0;
      const deadline = Date.now() + 5_000;
      while (Date.now() < deadline) {
        const s = t.server.stats();
        const expected = s.tcpQueries - s0.tcpQueries - (s.dropped - s0.dropped);
        if (s.tcpQueries - s0.tcpQueries >= PIPELINE && got >= expected) break;
        const r = await c.next(50);
        if (r) {
          checkResponse(r, tally);
          got++;
        }
      }
    }
    for (const c of clients) c.close();
    const after = t.server.stats();
    const handled = after.tcpQueries - before.tcpQueries;
    const dropped = after.dropped - before.dropped;
    console.log(
      `dns fuzz TCP (seed ${SEED + 1}): sent ${tally.sent} on ${CONNECTIONS} connections, handled ${handled}, ` +
        `FORMERR ${tally.formerr}, dropped ${dropped}, answered ${tally.other}`,
    );
    expect(handled).toBe(TCP_PACKETS);
    expect(tally.responses).toBe(handled - dropped);
    expect(tally.bad).toEqual([]);
    await assertStillAnswers();
  }, 120_000);

  it('TCP framing abuse: 65535-byte frame, short frames, a partial frame then close, a slow frame', async () => {
    const c = await TcpClient.open(t.port);
    // The largest frame a 2-byte prefix can announce: zeros (QDCOUNT 0), answered FORMERR.
    const big = Buffer.alloc(65535, 0);
    c.send(big);
    const r1 = await c.next(5_000);
    expect(r1 && rcodeOf(r1)).toBe(1);
    // Frames too short for a header: dropped, the connection stays usable.
    for (const n of [0, 1, 11]) c.send(Buffer.alloc(n, 1));
    c.send(query('www.origin.test', 1, 9));
    const r2 = await c.next();
    expect(r2!.readUInt16BE(0)).toBe(9);
    // A slow frame: one byte at a time.
    const q = query('www.origin.test', 28, 10);
    const framed = Buffer.concat([Buffer.from([0, q.length]), q]);
    for (const b of framed) {
      c.write(Buffer.from([b]));
      await new Promise((r) => setTimeout(r, 5));
    }
    const r3 = await c.next();
    expect(r3!.readUInt16BE(0)).toBe(10);
    c.close();
    // A partial frame and a half length prefix, then close: nothing breaks.
    const d = await TcpClient.open(t.port);
    d.write(Buffer.from([0x01, 0x00, 1, 2, 3]));
    d.close();
    const e = await TcpClient.open(t.port);
    e.write(Buffer.from([0x01]));
    e.close();
    await assertStillAnswers();
  });
});
