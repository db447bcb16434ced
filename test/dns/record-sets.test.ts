// The pure parts of the rescue DNS path: record-set computation and the updater's wire helpers.
import dnsPacket from 'dns-packet';
import { describe, expect, it } from 'vitest';
import { computeRecordSets, recordSetsKey, repeatByWeight } from '../../dns/record-sets.js';
import { buildUpdate, checkNames, inZone } from '../../dns/rfc2136.js';
import { signMessage, tsigKey, verifyResponse } from '../../dns/tsig.js';
import { DnsUpdateError } from '../../dns/update-errors.js';
import {
  addressRdata,
  readHeader,
  readRecord,
  skipQuestion,
  WireError,
  WireReader,
} from '../../dns/update-wire.js';

const base = {
  version: 1,
  siteNames: ['www.origin.test', 'WWW.origin.test.', 'origin.test'],
  ownAddresses: ['127.0.0.2'],
  ownWeight: 10,
  ttl: 300,
  rescueTtl: 20,
  rescuers: [],
  vhosts: [],
};

describe('computeRecordSets', () => {
  it('normal: the site names answer with our addresses and the normal TTL', () => {
    const s = computeRecordSets(base);
    expect(s.rescued).toBe(false);
    expect(s.sets.map((x) => x.name)).toEqual(['origin.test', 'www.origin.test']);
    expect(s.sets[0]).toEqual({
      name: 'origin.test',
      ttl: 300,
      addresses: [{ address: '127.0.0.2', weight: 10 }],
    });
    expect(Object.isFrozen(s.sets)).toBe(true);
  });

  it('rescued: rescuers join weighted by Rr (split over their addresses), with the rescue TTL', () => {
    const s = computeRecordSets({
      ...base,
      rescuers: [
        { session: 'a', addresses: ['127.0.0.3'], rate: 200 },
        { session: 'b', addresses: ['127.0.0.4', 'FD00::4'], rate: 100 },
        { session: 'c', addresses: [], rate: 100 }, // no addresses: not in DNS
        { session: 'd', addresses: ['127.0.0.9'], rate: 0 }, // Rr 0: sends nobody
        { session: 'e', addresses: ['not-an-ip'], rate: 50 },
      ],
    });
    expect(s.rescued).toBe(true);
    expect(s.sets[0]!.ttl).toBe(20);
    expect(s.sets[0]!.addresses).toEqual([
      { address: '127.0.0.2', weight: 10 },
      { address: '127.0.0.3', weight: 200 },
      { address: '127.0.0.4', weight: 50 },
      { address: 'fd00::4', weight: 50 },
    ]);
  });

  it('rescuer side: live vhN names answer with our own addresses; equal inputs, equal keys', () => {
    const s = computeRecordSets({ ...base, siteNames: [], vhosts: [{ vhost: 'vh3.rescue-a.test' }] });
    expect(s.sets).toEqual([
      { name: 'vh3.rescue-a.test', ttl: 20, addresses: [{ address: '127.0.0.2', weight: 1 }] },
    ]);
    expect(recordSetsKey(s)).toBe(recordSetsKey({ ...s, version: 9 }));
  });

  it('repeatByWeight lists each address in proportion, each at least once', () => {
    const r = repeatByWeight(
      [
        { address: 'a', weight: 1 },
        { address: 'b', weight: 3 },
      ],
      8,
    );
    expect(r.filter((x) => x === 'a')).toHaveLength(2);
    expect(r.filter((x) => x === 'b')).toHaveLength(6);
    expect(
      repeatByWeight(
        [
          { address: 'a', weight: 0.0001 },
          { address: 'b', weight: 1000 },
        ],
        4,
      ),
    ).toContain('a');
  });
});

describe('UPDATE wire format', () => {
  it('encodes addresses as dns-packet does', () => {
    for (const a of ['127.0.0.1', '::1', 'fd00::22', '2001:db8:0:1::ab:cd', '::ffff:1.2.3.4', '1::']) {
      const want = dnsPacket.encode({
        type: 'response',
        answers: [{ type: a.includes(':') ? 'AAAA' : 'A', name: 'x', data: a }],
      });
      expect(want.subarray(want.length - addressRdata(a).rdata.length).equals(addressRdata(a).rdata), a).toBe(
        true,
      );
    }
    expect(() => addressRdata('nope')).toThrow(/not an IP address/);
  });

  it('builds delete-RRset + add records in one UPDATE (opcode 5, zone SOA, class ANY deletes)', () => {
    const msg = buildUpdate(
      0x1234,
      'origin.test',
      [
        {
          name: 'www.origin.test',
          ttl: 20,
          addresses: [
            { address: '127.0.0.3', weight: 1 },
            { address: '127.0.0.3', weight: 2 },
          ],
        },
      ],
      ['vh1.origin.test'],
    );
    const r = new WireReader(msg);
    const h = readHeader(r);
    expect(h).toMatchObject({ id: 0x1234, qd: 1, an: 0, ns: 5, ar: 0 });
    expect((h.flags >> 11) & 0xf).toBe(5);
    skipQuestion(r);
    const recs = Array.from({ length: h.ns }, () => readRecord(r));
    expect(recs.map((x) => [x.name, x.type, x.klass, x.ttl, x.rdata.length])).toEqual([
      ['www.origin.test', 1, 255, 0, 0],
      ['www.origin.test', 28, 255, 0, 0],
      ['www.origin.test', 1, 1, 20, 4], // the duplicate address is sent once
      ['vh1.origin.test', 1, 255, 0, 0],
      ['vh1.origin.test', 28, 255, 0, 0],
    ]);
  });

  it('checks names against the zone before sending', () => {
    expect(inZone('WWW.Origin.test.', 'origin.test')).toBe(true);
    expect(inZone('evilorigin.test', 'origin.test')).toBe(false);
    expect(() => checkNames('origin.test', ['www.other.test'])).toThrow(DnsUpdateError);
    expect(() => checkNames('origin.test', ['bad name.origin.test'])).toThrow(/not a DNS name/);
  });

  it('the reader refuses pointer loops and truncation', () => {
    const loop = Buffer.from([0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1]);
    const r = new WireReader(loop);
    readHeader(r);
    expect(() => skipQuestion(r)).toThrow(WireError);
    expect(() => readHeader(new WireReader(Buffer.alloc(5)))).toThrow(/truncated/);
  });

  it('TSIG: an unsigned answer and a tampered one are refused', () => {
    const key = tsigKey('k', Buffer.alloc(32, 1).toString('base64'));
    const signed = signMessage(buildUpdate(7, 'origin.test', []), key, 1_700_000_000);
    // Our own signed message is not a valid answer (the answer's MAC covers the request MAC).
    expect(verifyResponse(signed.wire, key, signed.mac, 1_700_000_000)).toMatchObject({
      ok: false,
      why: 'bad-mac',
    });
    expect(verifyResponse(buildUpdate(7, 'origin.test', []), key, signed.mac)).toMatchObject({
      ok: false,
      why: 'unsigned',
    });
    expect(() => tsigKey('k', 'not base64!')).toThrow(/base64/);
    expect(() => tsigKey('k', 'AAAA')).toThrow(/shorter/);
  });
});
