// dns.rfc2136 and site.addresses (issue 4 part B): what rfc2136 mode needs, named with its position.
import { describe, expect, it } from 'vitest';
import { ConfigError, formatIssue, type ConfigIssue } from '../../src/config/errors.js';
import { parseConfig } from '../../src/config/load.js';
import { dnsSettings, rescueSettings } from '../../src/controller/settings.js';

const SECRET = Buffer.alloc(32, 9).toString('base64');
const lines = (...l: string[]): string => l.join('\n') + '\n';

function issuesOf(text: string, env: NodeJS.ProcessEnv = {}): string[] {
  try {
    parseConfig(text, 'test.yaml', { env });
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).issues.map((i: ConfigIssue) => formatIssue(i));
  }
  throw new Error('expected a ConfigError');
}

const base = ['name: www.origin.test', 'proxy: { upstreams: [http://127.0.0.1:8081], listen: 0.0.0.0:8080 }'];

describe('dns.rfc2136', () => {
  it('a complete section loads; the secret usually comes from the environment', () => {
    const cfg = parseConfig(
      lines(
        ...base,
        'site: { addresses: [192.0.2.10, "2001:db8::10"] }',
        'dns:',
        '  mode: rfc2136',
        '  site_names: [www.origin.test, origin.test]',
        '  rfc2136: { server: 192.0.2.53:53, zone: origin.test, key_name: dotslash-update, key_secret: "${TSIG}" }',
      ),
      'test.yaml',
      { env: { TSIG: SECRET } },
    );
    expect(cfg.dns.rfc2136).toEqual({
      server: '192.0.2.53:53',
      zone: 'origin.test',
      key_name: 'dotslash-update',
      key_secret: SECRET,
      algorithm: 'hmac-sha256',
      timeout_ms: 3000,
    });
    const d = dnsSettings(cfg, 'www.origin.test')!;
    expect(d.siteNames).toEqual(['www.origin.test', 'origin.test']);
    expect(d.ownAddresses).toEqual(['192.0.2.10', '2001:db8::10']);
    expect(rescueSettings(cfg).site.addresses).toEqual(['192.0.2.10', '2001:db8::10']);
  });

  it('rfc2136 mode names every missing key, a site name outside the zone, and the missing own set', () => {
    const issues = issuesOf(
      lines(
        ...base,
        'dns:',
        '  mode: rfc2136',
        '  site_names: [www.other.test]',
        '  rfc2136: { zone: origin.test }',
      ),
    );
    const text = issues.join('\n');
    expect(text).toMatch(/dns\.rfc2136\.server: dns\.mode rfc2136 needs dns\.rfc2136\.server/);
    expect(text).toMatch(/needs dns\.rfc2136\.key_name/);
    expect(text).toMatch(/needs dns\.rfc2136\.key_secret/);
    expect(text).toMatch(/dns\.site_names\[0\]: www\.other\.test is not in dns\.rfc2136\.zone origin\.test/);
    expect(text).toMatch(/site\.addresses: .*needs site\.addresses/);
  });

  it('a secret that is not base64, or too short, and an unknown algorithm are refused with their position', () => {
    const issues = issuesOf(
      lines(
        ...base,
        'site: { addresses: [192.0.2.10] }',
        'dns:',
        '  mode: rfc2136',
        '  rfc2136:',
        '    server: 192.0.2.53:53',
        '    zone: origin.test',
        '    key_name: k',
        '    key_secret: "not base64!"',
        '    algorithm: hmac-md5',
      ),
    );
    expect(issues.join('\n')).toMatch(/test\.yaml:\d+:\d+: dns\.rfc2136\.key_secret: expected base64/);
    expect(issues.join('\n')).toMatch(/dns\.rfc2136\.algorithm/);
    expect(issuesOf(lines(...base, 'dns: { rfc2136: { key_secret: "AAAA" } }')).join('\n')).toMatch(
      /at least 16 bytes/,
    );
  });

  it('site.addresses takes IP literals only', () => {
    expect(issuesOf(lines(...base, 'site: { addresses: [www.origin.test] }')).join('\n')).toMatch(
      /site\.addresses\[0\]: expected an IPv4 or IPv6 address/,
    );
  });
});
