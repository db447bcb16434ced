// Round-robin rotation, weights (smooth WRR over the first address), dynamic record sets and
// snapshot swaps while queries are in flight, checked with dig and raw queries.
import dnsPacket from 'dns-packet';
import { afterEach, describe, expect, it } from 'vitest';
import { answerOrders, buildZoneSnapshot, checkZones, MAX_CYCLE } from '../../dns/index.js';
import type { ZoneConfig } from '../../dns/index.js';
import { dig, query, requireTool, startTestServer, TEST_ZONE, udpExchange } from './helpers.js';
import type { TestServer } from './helpers.js';

const servers: TestServer[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
});
async function server(...args: Parameters<typeof startTestServer>): Promise<TestServer> {
  const s = await startTestServer(...args);
  servers.push(s);
  return s;
}

async function firstAddresses(t: TestServer, name: string, n: number): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const res = await udpExchange(t.port, query(name, 1, i));
    const a = dnsPacket.decode(res!).answers![0] as { data: string };
    out.push(a.data);
  }
  return out;
}

describe('answerOrders', () => {
  it('equal weights: each value leads once per cycle, the rest follow in rotation', () => {
    expect(answerOrders([1, 1, 1])).toEqual([
      [0, 1, 2],
      [1, 2, 0],
      [2, 0, 1],
    ]);
    expect(answerOrders([5])).toEqual([[0]]);
  });

  it('weights: smooth weighted round robin on the leader, every order lists all values', () => {
    const orders = answerOrders([1, 3]);
    expect(orders.map((o) => o[0])).toEqual([1, 0, 1, 1]);
    for (const o of orders) expect([...o].sort()).toEqual([0, 1]);
  });

  it('rates as weights are scaled into a cycle of at most MAX_CYCLE encodings', () => {
    const orders = answerOrders([120, 40, 40.5]);
    expect(orders.length).toBeLessThanOrEqual(MAX_CYCLE);
    const lead = [0, 0, 0];
    for (const o of orders) lead[o[0]!]!++;
    expect(lead[0]! / orders.length).toBeCloseTo(0.6, 1);
    expect(answerOrders(Array.from({ length: 200 }, () => 1))).toHaveLength(MAX_CYCLE);
  });
});

describe('rotation over the wire', () => {
  it('a configured round-robin set rotates its first address per query', async () => {
    const t = await server();
    const firsts = await firstAddresses(t, 'rr.origin.test', 6);
    expect(firsts).toEqual(['127.0.1.1', '127.0.1.2', '127.0.1.3', '127.0.1.1', '127.0.1.2', '127.0.1.3']);
  });

  it('a weighted dynamic set: the first address follows the weights; dig sees every address', async () => {
    requireTool('dig', 'bind9-dnsutils');
    const t = await server({
      dynamic: [
        {
          name: 'www.origin.test',
          type: 'A',
          ttl: 20,
          values: ['127.0.0.2', { address: '127.0.0.3', weight: 2 }, { address: '127.0.0.4', weight: 1 }],
        },
      ],
    });
    const firsts = await firstAddresses(t, 'www.origin.test', 40);
    const count = (a: string): number => firsts.filter((f) => f === a).length;
    expect(count('127.0.0.3')).toBe(20);
    expect(count('127.0.0.2')).toBe(10);
    expect(count('127.0.0.4')).toBe(10);
    const r = await dig(t, 'www.origin.test', 'A');
    expect(r.answer.map((l) => l.split(' ').slice(1, 5).join(' ')).sort()).toEqual([
      '20 IN A 127.0.0.2',
      '20 IN A 127.0.0.3',
      '20 IN A 127.0.0.4',
    ]);
  });

  it('duplicate addresses in a dynamic set are merged, their weights added (no duplicate RRs)', async () => {
    const t = await server({
      dynamic: [
        { name: 'www.origin.test', type: 'A', ttl: 20, values: ['127.0.0.2', '127.0.0.3', '127.0.0.3'] },
      ],
    });
    const res = await udpExchange(t.port, query('www.origin.test', 1));
    expect(dnsPacket.decode(res!).answers).toHaveLength(2);
    const firsts = await firstAddresses(t, 'www.origin.test', 30);
    expect(firsts.filter((f) => f === '127.0.0.3')).toHaveLength(20);
  });

  it('a dynamic set for a new name inside the zone, and for AAAA', async () => {
    const t = await server({
      dynamic: [
        { name: 'vh1.origin.test', type: 'A', ttl: 20, values: ['127.0.0.9'] },
        { name: 'www.origin.test', type: 'AAAA', ttl: 20, values: ['::2'] },
      ],
    });
    expect((await dig(t, 'vh1.origin.test', 'A')).answer).toEqual(['vh1.origin.test. 20 IN A 127.0.0.9']);
    expect((await dig(t, 'www.origin.test', 'AAAA')).answer).toEqual(['www.origin.test. 20 IN AAAA ::2']);
  });
});

describe('snapshot swap', () => {
  it('queries during repeated swaps always see a whole snapshot, then the last one', async () => {
    const t = await server();
    const sets = (n: number) => [
      {
        name: 'www.origin.test',
        type: 'A' as const,
        ttl: 20,
        values: Array.from({ length: n }, (_, i) => `127.0.4.${i + 1}`),
      },
    ];
    let swapping = true;
    const swapper = (async () => {
      for (let i = 0; swapping; i++) {
        t.setDynamic(sets((i % 4) + 1));
        await new Promise((r) => setTimeout(r, 1));
      }
    })();
    for (let i = 0; i < 150; i++) {
      const res = await udpExchange(t.port, query('www.origin.test', 1, i));
      const answers = dnsPacket.decode(res!).answers as { data: string }[];
      // A whole snapshot: n addresses 127.0.4.1..n, for some n in 1..4.
      const addrs = answers.map((a) => a.data).sort();
      expect(addrs).toEqual(Array.from({ length: addrs.length }, (_, k) => `127.0.4.${k + 1}`));
      expect(addrs.length).toBeGreaterThanOrEqual(1);
      expect(addrs.length).toBeLessThanOrEqual(4);
    }
    swapping = false;
    await swapper;
    t.setDynamic([]);
    expect(dnsPacket.decode((await udpExchange(t.port, query('www.origin.test', 1)))!).answers).toHaveLength(
      1,
    );
  });
});

describe('zone data validation', () => {
  const zone = (records: ZoneConfig['records'], extra: Partial<ZoneConfig> = {}): ZoneConfig => ({
    ...TEST_ZONE,
    records,
    ...extra,
  });
  const codes = (zones: ZoneConfig[], dynamic: Parameters<typeof checkZones>[1]['dynamic'] = []) =>
    checkZones(zones, { defaultTtl: 300, dynamic }).map((i) => `${i.code} ${i.path.join('.')}`);

  it('names each problem with its code and path', () => {
    expect(
      codes([
        zone([
          { name: 'a', type: 'A', values: ['::1'] },
          { name: 'b', type: 'AAAA', values: ['1.2.3.4'] },
          { name: 'c.example.net.', type: 'A', values: ['1.2.3.4'] },
          { name: 'd', type: 'CNAME', values: ['www.origin.test'] },
          { name: 'd', type: 'TXT', values: ['x'] },
          { name: 'bad..name', type: 'A', values: ['1.2.3.4'] },
          { name: 'e', type: 'SRV', values: ['1 2 70000 t.origin.test'] },
          { name: 'f', type: 'TXT', values: [['y'.repeat(256)]] },
          { name: '@', type: 'CNAME', values: ['x.origin.test'] },
          { name: 'sub', type: 'NS', values: ['ns.elsewhere.net'] },
        ]),
      ]),
    ).toEqual([
      'DNS_ERR_BAD_ADDRESS zones.0.records.0.values.0',
      'DNS_ERR_BAD_ADDRESS zones.0.records.1.values.0',
      'DNS_ERR_OUTSIDE_ZONE zones.0.records.2.name',
      'DNS_ERR_BAD_NAME zones.0.records.5.name',
      'DNS_ERR_BAD_RDATA zones.0.records.6.values.0',
      'DNS_ERR_BAD_RDATA zones.0.records.7.values.0',
      'DNS_ERR_CNAME_CONFLICT zones.0.records.8.name',
      'DNS_ERR_BAD_RDATA zones.0.records.9.type',
      'DNS_ERR_CNAME_CONFLICT zones.0.records.3',
    ]);
  });

  it('nested zones and bad dynamic sets', () => {
    expect(codes([zone([]), zone([], { name: 'sub.origin.test' })])).toEqual([
      'DNS_ERR_ZONE_OVERLAP zones.1.name',
    ]);
    expect(
      codes(
        [zone([])],
        [
          { name: 'www.other.test', type: 'A', ttl: 20, values: ['1.2.3.4'] },
          { name: 'www.origin.test', type: 'A', ttl: 20, values: [{ address: '1.2.3.4', weight: 0 }, 'x'] },
        ],
      ),
    ).toEqual([
      'DNS_ERR_OUTSIDE_ZONE dynamic.0.name',
      'DNS_ERR_BAD_WEIGHT dynamic.1.values.0',
      'DNS_ERR_BAD_ADDRESS dynamic.1.values.1',
    ]);
  });

  it('buildZoneSnapshot throws a DnsError naming the first problem', () => {
    expect(() =>
      buildZoneSnapshot([zone([{ name: 'a', type: 'A', values: ['x'] }])], { defaultTtl: 1 }),
    ).toThrow(/DNS_ERR_BAD_ADDRESS/);
  });
});
