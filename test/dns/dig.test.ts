// The embedded server against the real dig (bind9-dnsutils): every record type and error case.
import dnsPacket from 'dns-packet';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dig, query, rcodeOf, requireTool, startTestServer, udpExchange } from './helpers.js';
import type { TestServer } from './helpers.js';

let t: TestServer;
beforeAll(async () => {
  requireTool('dig', 'bind9-dnsutils');
  t = await startTestServer();
});
afterAll(() => t.close());

describe('answers (dig)', () => {
  it('A: authoritative, TTL, no recursion offered', async () => {
    const r = await dig(t, 'www.origin.test', 'A');
    expect(r.status).toBe('NOERROR');
    expect(r.flags).toContain('aa');
    expect(r.flags).not.toContain('ra');
    expect(r.answer).toEqual(['www.origin.test. 300 IN A 127.0.0.2']);
  });

  it('AAAA', async () => {
    const r = await dig(t, 'www.origin.test', 'AAAA');
    expect(r.answer.map((l) => l.split(' ')[4]).sort()).toEqual(['2001:db8::2', '::1']);
  });

  it('CNAME chased through two hops within the zone', async () => {
    const r = await dig(t, 'alias.origin.test', 'A');
    expect(r.status).toBe('NOERROR');
    expect(r.answer).toEqual([
      'alias.origin.test. 300 IN CNAME alias2.origin.test.',
      'alias2.origin.test. 300 IN CNAME www.origin.test.',
      'www.origin.test. 300 IN A 127.0.0.2',
    ]);
    const direct = await dig(t, 'alias.origin.test', 'CNAME');
    expect(direct.answer).toEqual(['alias.origin.test. 300 IN CNAME alias2.origin.test.']);
  });

  it('CNAME to a missing name in the zone: NXDOMAIN (RFC 6604) with the chain and the SOA', async () => {
    const r = await dig(t, 'dangling.origin.test', 'A');
    expect(r.status).toBe('NXDOMAIN');
    expect(r.answer).toEqual(['dangling.origin.test. 300 IN CNAME missing.origin.test.']);
    expect(r.authority[0]).toMatch(/^origin\.test\. 30 IN SOA /);
  });

  it('CNAME out of our zones: the CNAME alone (the resolver follows it)', async () => {
    const r = await dig(t, 'outside.origin.test', 'A');
    expect(r.status).toBe('NOERROR');
    expect(r.answer).toEqual(['outside.origin.test. 300 IN CNAME www.example.net.']);
  });

  it('a CNAME loop ends after one turn (no hang): the chain and the SOA', async () => {
    const r = await dig(t, 'loop1.origin.test', 'A');
    expect(r.status).toBe('NOERROR');
    expect(r.answer).toEqual([
      'loop1.origin.test. 300 IN CNAME loop2.origin.test.',
      'loop2.origin.test. 300 IN CNAME loop1.origin.test.',
    ]);
    expect(r.authority[0]).toMatch(/SOA/);
  });

  it('TXT: a long value split into 255-byte strings, and a record of several strings', async () => {
    const r = await dig(t, 'txt.origin.test', 'TXT');
    expect(r.answer).toHaveLength(2);
    expect(r.answer).toContain(`txt.origin.test. 300 IN TXT "${'x'.repeat(255)}" "${'x'.repeat(45)}"`);
    expect(r.answer).toContain('txt.origin.test. 300 IN TXT "first string" "second string"');
  });

  it('SRV', async () => {
    const r = await dig(t, '_dotslash._tcp.origin.test', 'SRV');
    expect(r.answer.sort()).toEqual([
      '_dotslash._tcp.origin.test. 300 IN SRV 10 20 9301 reg2.origin.test.',
      '_dotslash._tcp.origin.test. 300 IN SRV 10 60 9300 reg1.origin.test.',
      '_dotslash._tcp.origin.test. 300 IN SRV 20 0 9302 reg3.origin.test.',
    ]);
  });

  it('SOA and NS at the apex', async () => {
    const soa = await dig(t, 'origin.test', 'SOA');
    expect(soa.answer).toEqual([
      'origin.test. 3600 IN SOA ns1.origin.test. hostmaster.origin.test. 2026112301 3600 600 604800 30',
    ]);
    const ns = await dig(t, 'origin.test', 'NS');
    expect(ns.answer.sort()).toEqual([
      'origin.test. 300 IN NS ns1.origin.test.',
      'origin.test. 300 IN NS ns2.origin.test.',
    ]);
  });

  it('NXDOMAIN: the SOA in authority with TTL min(SOA TTL, minimum)', async () => {
    const r = await dig(t, 'nope.origin.test', 'A');
    expect(r.status).toBe('NXDOMAIN');
    expect(r.flags).toContain('aa');
    expect(r.answer).toEqual([]);
    expect(r.authority).toEqual([
      'origin.test. 30 IN SOA ns1.origin.test. hostmaster.origin.test. 2026112301 3600 600 604800 30',
    ]);
    const deep = await dig(t, 'a.b.c.nope.origin.test', 'AAAA');
    expect(deep.status).toBe('NXDOMAIN');
  });

  it('NODATA: NOERROR, no answer, SOA in authority; also for an empty non-terminal', async () => {
    const r = await dig(t, 'www.origin.test', 'TXT');
    expect(r.status).toBe('NOERROR');
    expect(r.answer).toEqual([]);
    expect(r.authority[0]).toMatch(/^origin\.test\. 30 IN SOA /);
    const ent = await dig(t, '_tcp.origin.test', 'A');
    expect(ent.status).toBe('NOERROR');
    expect(ent.authority[0]).toMatch(/SOA/);
  });

  it('REFUSED outside our zones (and not authoritative)', async () => {
    for (const name of ['example.com', 'test', 'notorigin.test']) {
      const r = await dig(t, name, 'A');
      expect(r.status, name).toBe('REFUSED');
      expect(r.flags).not.toContain('aa');
    }
    const chaos = await dig(t, 'version.bind', 'TXT', 'CH');
    expect(chaos.status).toBe('REFUSED');
    const axfr = await dig(t, 'origin.test', 'AXFR');
    expect(axfr.raw).toMatch(/Transfer failed|REFUSED/);
  });

  it('ANY: NOTIMP (documented choice, dns/index.ts)', async () => {
    const r = await dig(t, 'origin.test', 'ANY');
    expect(r.status).toBe('NOTIMP');
  });

  it('case: the answer echoes the question as asked (0x20)', async () => {
    const r = await dig(t, 'WwW.OrIgIn.TeSt', 'A');
    expect(r.answer).toEqual(['WwW.OrIgIn.TeSt. 300 IN A 127.0.0.2']);
    const nx = await dig(t, 'NoPe.OrIgIn.TeSt', 'A');
    expect(nx.status).toBe('NXDOMAIN');
    expect(nx.authority[0]).toMatch(/^OrIgIn\.TeSt\. 30 IN SOA/);
  });

  it('name compression: owner names are pointers into the question', async () => {
    const res = await udpExchange(t.port, query('rr.origin.test', 1));
    // 3 A records with compressed owners: 12 header + 20 question + 3 * (2 + 10 + 4).
    expect(res!.length).toBe(12 + 20 + 3 * 16);
    const decoded = dnsPacket.decode(res!);
    expect(decoded.answers!.map((a) => a.name)).toEqual([
      'rr.origin.test',
      'rr.origin.test',
      'rr.origin.test',
    ]);
  });
});

describe('EDNS0 and truncation', () => {
  it('OPT echoed with our size (1232); version > 0 -> BADVERS', async () => {
    const r = await dig(t, 'www.origin.test', 'A', '+bufsize=4096');
    expect(r.ednsUdp).toBe(1232);
    const v1 = await dig(t, 'www.origin.test', 'A', '+edns=1', '+noednsneg');
    expect(v1.status).toBe('BADVERS');
    const plain = await dig(t, 'www.origin.test', 'A', '+noedns');
    expect(plain.ednsUdp).toBeUndefined();
  });

  it('over 512 bytes without EDNS: TC over UDP; dig +tcp gets the whole answer', async () => {
    const udp = await dig(t, 'big.origin.test', 'A', '+noedns', '+ignore');
    expect(udp.flags).toContain('tc');
    expect(udp.answer).toEqual([]);
    const tcp = await dig(t, 'big.origin.test', 'A', '+noedns', '+tcp');
    expect(tcp.flags).not.toContain('tc');
    expect(tcp.answer).toHaveLength(40);
    // dig's own fallback: without +ignore it retries over TCP by itself.
    const fallback = await dig(t, 'big.origin.test', 'A', '+noedns');
    expect(fallback.answer).toHaveLength(40);
  });

  it('+bufsize: fits in the advertised size; above 1232 our cap applies', async () => {
    const fits = await dig(t, 'big.origin.test', 'A', '+bufsize=1232', '+ignore');
    expect(fits.flags).not.toContain('tc');
    expect(fits.answer).toHaveLength(40);
    const small = await dig(t, 'big.origin.test', 'A', '+bufsize=600', '+ignore');
    expect(small.flags).toContain('tc');
    const huge = await dig(t, 'huge.origin.test', 'A', '+bufsize=4096', '+ignore');
    expect(huge.flags).toContain('tc');
    const huge2 = await dig(t, 'huge.origin.test', 'A', '+bufsize=4096');
    expect(huge2.answer).toHaveLength(100);
  });
});

describe('raw packets', () => {
  it('opcode other than QUERY -> NOTIMP; QDCOUNT != 1 -> FORMERR; QR=1 dropped', async () => {
    const notify = query('origin.test', 6);
    notify[2] = (4 << 3) | 0x01;
    expect(rcodeOf((await udpExchange(t.port, notify))!)).toBe(4);
    const two = query('origin.test', 1);
    two.writeUInt16BE(2, 4);
    expect(rcodeOf((await udpExchange(t.port, two))!)).toBe(1);
    const zero = query('origin.test', 1);
    zero.writeUInt16BE(0, 4);
    expect(rcodeOf((await udpExchange(t.port, zero))!)).toBe(1);
    const response = query('origin.test', 1);
    response[2]! |= 0x80;
    expect(await udpExchange(t.port, response, 300)).toBeUndefined();
  });

  it('the id and RD bit are echoed', async () => {
    const q = query('www.origin.test', 1, 0xbeef);
    const r = (await udpExchange(t.port, q))!;
    expect(r.readUInt16BE(0)).toBe(0xbeef);
    expect(r[2]! & 0x01).toBe(1);
    q[2] = 0;
    expect((await udpExchange(t.port, q))![2]! & 0x01).toBe(0);
  });
});
