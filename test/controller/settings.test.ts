// Rescue configuration: defaults that depend on other keys, and the schema's cross-key rules.
import { describe, expect, it } from 'vitest';
import { configSchema } from '../../src/config/schema.js';
import { rescueSettings, virtualHost } from '../../src/controller/settings.js';
import { FAKE_KEY } from './control-helpers.js';

const base = { proxy: { upstreams: ['http://127.0.0.1:1'], listen: '127.0.0.1:8082' } };
const peer = (id: string) => ({ id, control_url: `http://${id}:9181`, public_key: FAKE_KEY });

describe('rescue settings', () => {
  it('fills the defaults that depend on other keys', () => {
    const s = rescueSettings(
      configSchema.parse({ ...base, name: 'rescue-b.example', peers: [peer('o.example')] }),
    );
    expect(s.mode).toBe('on'); // peers configured
    expect(s.site.names).toEqual(['rescue-b.example']);
    expect(s.site.frontUrl).toBe('http://127.0.0.1:8082');
    expect(s.site.publicUrl).toBe('http://rescue-b.example:8082');
    expect(s.drainMs).toBe(40_000); // 2 x dns_ttl_s 20
    expect(s.site.sessionCookies).toContain('PHPSESSID');
    expect(s.site.redirectExclude).toEqual(['/.well-known/acme-challenge/']);
    expect(s.predictor.intervalMs).toBe(10_000);
    expect(virtualHost(s, 3)).toEqual({
      vhost: 'vh3.rescue-b.example',
      vhostUrl: 'http://vh3.rescue-b.example:8082',
    });
  });

  it('a wildcard front listener gives rescuers the member name as front host, not 0.0.0.0', () => {
    const cfg = (listen: string) =>
      configSchema.parse({ proxy: { upstreams: ['http://127.0.0.1:1'], listen }, name: 'o.example' });
    expect(rescueSettings(cfg('0.0.0.0:80')).site.frontUrl).toBe('http://o.example:80');
    expect(rescueSettings(cfg('[::]:8080')).site.frontUrl).toBe('http://o.example:8080');
    expect(rescueSettings(cfg('10.0.0.5:80')).site.frontUrl).toBe('http://10.0.0.5:80');
  });

  it('mode defaults to off without peers; an explicit mode wins', () => {
    expect(rescueSettings(configSchema.parse(base)).mode).toBe('off');
    expect(
      rescueSettings(configSchema.parse({ ...base, name: 'x.example', rescue: { mode: 'observe' } })).mode,
    ).toBe('observe');
  });

  it('requires name when rescue is not off, and refuses a peer listed twice', () => {
    const r1 = configSchema.safeParse({ ...base, peers: [peer('o.example')] });
    expect(r1.success).toBe(false);
    expect(r1.error!.issues.map((i) => i.path.join('.'))).toContain('name');
    const r2 = configSchema.safeParse({
      ...base,
      name: 'x.example',
      peers: [peer('o.example'), peer('o.example')],
    });
    expect(r2.success).toBe(false);
    expect(r2.error!.issues.map((i) => i.path.join('.'))).toContain('peers.1.id');
  });

  it('refuses a malformed peer key', () => {
    const r = configSchema.safeParse({
      ...base,
      name: 'x.example',
      peers: [{ ...peer('o.example'), public_key: 'ssh-ed25519 AAAA' }],
    });
    expect(r.success).toBe(false);
    expect(r.error!.issues[0]!.path.join('.')).toBe('peers.0.public_key');
  });
});
