// The `dns` config section: defaults, and invalid zone data named with file:line:column (what
// `dotslash validate` prints), including the DNS_ERR_* code in the message.
import { describe, expect, it } from 'vitest';
import { ConfigError, formatIssue } from '../../src/config/errors.js';
import { parseConfig } from '../../src/config/load.js';
import { effectiveDnsRescueTtl, effectiveDnsSiteNames } from '../../src/config/schema.js';

const base = ['proxy:', '  upstreams: [http://127.0.0.1:1]'];

function problems(lines: string[]): string[] {
  try {
    parseConfig([...base, ...lines, ''].join('\n'), 'site.yaml');
  } catch (err) {
    if (err instanceof ConfigError) return err.issues.map(formatIssue);
    throw err;
  }
  return [];
}

describe('dns config', () => {
  it('defaults: off, 127.0.0.1:5353, TTL 300, no zones', () => {
    const c = parseConfig(base.join('\n'));
    expect(c.dns).toEqual({
      mode: 'off',
      listen: '127.0.0.1:5353',
      ttl: 300,
      max_udp_size: 1232,
      tcp: { idle_ms: 10_000, max_connections: 256 },
      zones: [],
    });
  });

  it('rescue TTL and site names fall back to rescue.dns_ttl_s and site.names / name', () => {
    const c = parseConfig(
      [...base, 'name: www.origin.test', 'rescue: { mode: off, dns_ttl_s: 15 }'].join('\n'),
    );
    expect(effectiveDnsRescueTtl(c)).toBe(15);
    expect(effectiveDnsSiteNames(c)).toEqual(['www.origin.test']);
    const d = parseConfig(
      [
        ...base,
        'site: { names: [a.origin.test] }',
        'dns: { rescue_ttl: 5, site_names: [b.origin.test] }',
      ].join('\n'),
    );
    expect(effectiveDnsRescueTtl(d)).toBe(5);
    expect(effectiveDnsSiteNames(d)).toEqual(['b.origin.test']);
  });

  it('a valid embedded zone parses; SOA timers default', () => {
    const c = parseConfig(
      [
        ...base,
        'dns:',
        '  mode: embedded',
        '  zones:',
        '    - name: origin.test',
        '      soa: { mname: ns1.origin.test, rname: hostmaster.origin.test }',
        '      ns: [ns1.origin.test]',
        '      records:',
        '        - { name: www, type: A, values: [127.0.0.2, 127.0.0.3] }',
        "        - { name: txt, type: TXT, value: ['a', 'b'] }",
      ].join('\n'),
    );
    expect(c.dns.zones[0]!.soa).toMatchObject({ refresh: 3600, retry: 600, expire: 604800, minimum: 60 });
  });

  it('bad zone data is named with its position and code', () => {
    expect(
      problems([
        'dns:',
        '  mode: embedded',
        '  zones:',
        '    - name: origin.test',
        '      soa: { mname: ns1.origin.test, rname: hostmaster.origin.test }',
        '      ns: [ns1.origin.test]',
        '      records:',
        '        - { name: www, type: A, value: 300.1.1.1 }',
        '        - { name: www.other.test., type: A, value: 127.0.0.1 }',
        '        - { name: alias, type: CNAME, value: www.origin.test }',
        '        - { name: alias, type: TXT, value: hi }',
        '        - { name: "bad name", type: A, value: 127.0.0.1 }',
        '        - { name: x, type: A, value: 127.0.0.1, values: [127.0.0.2] }',
      ]),
    ).toEqual([
      'site.yaml:10:40: dns.zones[0].records[0].value: "300.1.1.1" is not an IPv4 address (DNS_ERR_BAD_ADDRESS)',
      'site.yaml:11:19: dns.zones[0].records[1].name: www.other.test is outside zone origin.test (DNS_ERR_OUTSIDE_ZONE)',
      'site.yaml:12:11: dns.zones[0].records[2]: alias.origin.test has a CNAME and other records (DNS_ERR_CNAME_CONFLICT)',
      'site.yaml:14:19: dns.zones[0].records[4].name: "bad name" is not a valid domain name (DNS_ERR_BAD_NAME)',
      'site.yaml:15:38: dns.zones[0].records[5].value: give exactly one of "value" or "values"',
    ]);
  });

  it('embedded mode needs a zone; unknown keys get a hint', () => {
    expect(problems(['dns:', '  mode: embedded'])).toEqual([
      'site.yaml:3:1: dns.zones: dns.mode embedded needs at least one zone',
    ]);
    expect(problems(['dns:', '  zone: []'])[0]).toMatch(
      /dns\.zone: unknown key "zone" \(did you mean "zones"\?\)/,
    );
  });
});
