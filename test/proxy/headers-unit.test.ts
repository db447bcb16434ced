// Pure header functions (headers.ts, snapshot.ts trustedList): the edge cases that are awkward
// to produce on the wire.
import { describe, expect, it } from 'vitest';
import {
  buildRequestHeaders,
  filterResponseHeaders,
  requestInfo,
  type HeaderPolicy,
} from '../../proxy/headers.js';
import { trustedList } from '../../proxy/snapshot.js';

const policy = (over: Partial<HeaderPolicy> = {}): HeaderPolicy => ({
  via11: '1.1 ds',
  via10: '1.0 ds',
  hostMode: 0,
  fixedHost: '',
  trusted: null,
  ...over,
});

const toMap = (flat: string[]): Record<string, string> => {
  const m: Record<string, string> = {};
  for (let i = 0; i < flat.length; i += 2) m[flat[i]!.toLowerCase()] = flat[i + 1]!;
  return m;
};

describe('buildRequestHeaders', () => {
  it('puts host first, reports framing, and refuses contradictions', () => {
    const out = buildRequestHeaders(
      ['Host', 'a.example', 'Content-Length', '12'],
      policy(),
      '10.0.0.1',
      'http',
      true,
      false,
    )!;
    expect(out.slice(0, 2)).toEqual(['host', 'a.example']);
    expect(requestInfo).toMatchObject({ contentLength: 12, chunked: false, host: 'a.example' });
    expect(
      buildRequestHeaders(['Host', 'a', 'Host', 'b'], policy(), '1.1.1.1', 'http', true, false),
    ).toBeNull();
    expect(buildRequestHeaders(['Host', 'a b'], policy(), '1.1.1.1', 'http', true, false)).toBeNull();
    expect(buildRequestHeaders(['Host', 'a/b'], policy(), '1.1.1.1', 'http', true, false)).toBeNull();
    expect(buildRequestHeaders(['Accept', '*/*'], policy(), '1.1.1.1', 'http', true, false)).toBeNull();
    expect(buildRequestHeaders(['Accept', '*/*'], policy(), '1.1.1.1', 'http', false, false)).not.toBeNull();
    expect(
      buildRequestHeaders(
        ['Host', 'a', 'Content-Length', '1', 'content-length', '1'],
        policy(),
        '1.1.1.1',
        'http',
        true,
        false,
      ),
    ).toBeNull();
    expect(
      buildRequestHeaders(
        ['Host', 'a', 'Transfer-Encoding', 'gzip'],
        policy(),
        '1.1.1.1',
        'http',
        true,
        false,
      ),
    ).toBeNull();
    buildRequestHeaders(
      ['Host', 'a', 'Transfer-Encoding', 'Chunked'],
      policy(),
      '1.1.1.1',
      'http',
      true,
      false,
    );
    expect(requestInfo.chunked).toBe(true);
  });

  it('accepts IP-literal hosts with ports', () => {
    expect(buildRequestHeaders(['Host', '[::1]:8080'], policy(), '::1', 'http', true, false)).not.toBeNull();
    expect(
      buildRequestHeaders(['Host', '127.0.0.1:80'], policy(), '::1', 'http', true, false),
    ).not.toBeNull();
  });

  it('a Connection header cannot strip what the proxy adds', () => {
    const out = toMap(
      buildRequestHeaders(
        ['Host', 'a', 'Connection', 'x-forwarded-for, via, host', 'X-Forwarded-For', '6.6.6.6'],
        policy(),
        '10.0.0.1',
        'http',
        true,
        false,
      )!,
    );
    expect(out['x-forwarded-for']).toBe('10.0.0.1');
    expect(out.via).toBe('1.1 ds');
    expect(out.host).toBe('a');
  });

  it('keeps Upgrade and Connection: upgrade only for tunnels', () => {
    const raw = ['Host', 'a', 'Connection', 'Upgrade', 'Upgrade', 'websocket'];
    expect(toMap(buildRequestHeaders(raw, policy(), '1.1.1.1', 'http', true, false)!)).not.toHaveProperty(
      'upgrade',
    );
    const t = toMap(buildRequestHeaders(raw, policy(), '1.1.1.1', 'http', true, true)!);
    expect(t.upgrade).toBe('websocket');
    expect(t.connection).toBe('upgrade');
  });

  it('fixed host mode and trusted IPv4-mapped clients', () => {
    const p = policy({ hostMode: 2, fixedHost: 'inner', trusted: trustedList(['192.168.0.0/16']) });
    const out = toMap(
      buildRequestHeaders(
        ['Host', 'outer', 'X-Forwarded-For', '1.2.3.4'],
        p,
        '::ffff:192.168.1.5',
        'http',
        true,
        false,
      )!,
    );
    expect(out.host).toBe('inner');
    expect(out['x-forwarded-host']).toBe('outer');
    expect(out['x-forwarded-for']).toBe('1.2.3.4, ::ffff:192.168.1.5');
  });
});

describe('filterResponseHeaders', () => {
  const b = (...s: string[]): Buffer[] => s.map((x) => Buffer.from(x, 'latin1'));

  it('drops hop-by-hop fields and Connection-named ones, appends Via, keeps bytes exact', () => {
    const out = filterResponseHeaders(
      b(
        'Connection',
        'close, X-Internal',
        'X-Internal',
        '1',
        'Transfer-Encoding',
        'chunked',
        'X-Name',
        'caf\xe9',
        'Via',
        '1.0 up',
      ),
      '1.1 ds',
      true,
    );
    expect(out).toEqual(['X-Name', 'caf\xe9', 'via', '1.0 up, 1.1 ds']);
  });

  it('keeps Trailer only on a response that will be chunked', () => {
    expect(filterResponseHeaders(b('Trailer', 'x-sum'), 'v', true)).toContain('Trailer');
    expect(filterResponseHeaders(b('Trailer', 'x-sum'), 'v', false)).not.toContain('Trailer');
    expect(filterResponseHeaders(b('Trailer', 'x-sum', 'Content-Length', '3'), 'v', true)).not.toContain(
      'Trailer',
    );
  });
});

describe('trustedList', () => {
  it('parses addresses and CIDR ranges, refuses garbage', () => {
    const l = trustedList(['10.0.0.0/8', '::1', '2001:db8::/32'])!;
    expect(l.check('10.1.2.3', 'ipv4')).toBe(true);
    expect(l.check('::ffff:10.1.2.3', 'ipv6')).toBe(true);
    expect(l.check('11.0.0.1', 'ipv4')).toBe(false);
    expect(l.check('::1', 'ipv6')).toBe(true);
    expect(l.check('2001:db8::5', 'ipv6')).toBe(true);
    expect(trustedList([])).toBeNull();
    expect(() => trustedList(['not-an-ip'])).toThrow(/trusted_proxies/);
  });
});
