// SRV discovery (dns/srv.ts) through node:dns against our own server on a custom port, and the
// RFC 2782 ordering on its own.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { orderSrv, resolveSrv } from '../../dns/index.js';
import { startTestServer } from './helpers.js';
import type { TestServer } from './helpers.js';

let t: TestServer;
beforeAll(async () => {
  t = await startTestServer();
});
afterAll(() => t.close());

describe('resolveSrv', () => {
  it('resolves _dotslash._tcp.<domain> from our server: priority first, all endpoints', async () => {
    const eps = await resolveSrv('_dotslash._tcp.origin.test', { servers: [`127.0.0.1:${t.port}`] });
    expect(eps).toHaveLength(3);
    expect(eps[2]).toEqual({ host: 'reg3.origin.test', port: 9302, priority: 20, weight: 0 });
    expect(
      eps
        .slice(0, 2)
        .map((e) => e.port)
        .sort(),
    ).toEqual([9300, 9301]);
  });

  it('a name with no SRV records or outside the zone rejects with DNS_ERR_SRV_LOOKUP', async () => {
    const servers = [`127.0.0.1:${t.port}`];
    await expect(resolveSrv('_none._tcp.origin.test', { servers })).rejects.toThrow(
      /DNS_ERR_SRV_LOOKUP.*ENOTFOUND/,
    );
    await expect(resolveSrv('_dotslash._tcp.example.com', { servers, tries: 1 })).rejects.toThrow(
      /DNS_ERR_SRV_LOOKUP/,
    );
  });
});

describe('orderSrv (RFC 2782)', () => {
  const recs = [
    { name: 'a', port: 1, priority: 10, weight: 60 },
    { name: 'b', port: 2, priority: 10, weight: 20 },
    { name: 'c', port: 3, priority: 10, weight: 0 },
    { name: 'd', port: 4, priority: 5, weight: 0 },
  ];

  it('lower priority first; within a priority the weights decide who comes first', () => {
    let seed = 1;
    const random = (): number => (seed = (seed * 16807) % 2147483647) / 2147483647;
    const firsts: Record<string, number> = { a: 0, b: 0, c: 0 };
    for (let i = 0; i < 4000; i++) {
      const order = orderSrv(recs, random);
      expect(order[0]!.host).toBe('d');
      firsts[order[1]!.host]!++;
    }
    // Weight 60 vs 20 vs 0 (chosen only when the draw is 0): about 3:1, c nearly never.
    expect(firsts.a! / firsts.b!).toBeGreaterThan(2.3);
    expect(firsts.a! / firsts.b!).toBeLessThan(3.8);
    expect(firsts.c!).toBeLessThan(200);
  });
});
