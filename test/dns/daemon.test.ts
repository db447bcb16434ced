// The daemon runs the embedded DNS server when dns.mode is embedded: its address is reported,
// setDnsRecordSets() swaps the served sets, reload() re-reads zones (and refuses bad ones,
// keeping the served data), shutdown closes it.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfigFile } from '../../src/config/load.js';
import { Daemon } from '../../src/daemon.js';
import { dig, requireTool } from './helpers.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function yaml(upstream: string, records: string[]): string {
  return [
    'proxy:',
    '  listen: 127.0.0.1:0',
    `  upstreams: [${upstream}]`,
    '  access_log: { enabled: false }',
    'admin:',
    '  listen: 127.0.0.1:0',
    'log:',
    '  level: silent',
    'dns:',
    '  mode: embedded',
    '  listen: 127.0.0.1:0',
    '  zones:',
    '    - name: origin.test',
    '      soa: { mname: ns1.origin.test, rname: hostmaster.origin.test, serial: 7 }',
    '      ns: [ns1.origin.test]',
    '      records:',
    ...records.map((r) => `        - ${r}`),
    '',
  ].join('\n');
}

describe('daemon with dns.mode embedded', () => {
  it('serves the zones, swaps dynamic sets, reloads zones, refuses a bad reload, closes on shutdown', async () => {
    requireTool('dig', 'bind9-dnsutils');
    const upstream = createServer((_req, res) => res.end('ok'));
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', () => r()));
    cleanups.push(() => new Promise((r) => upstream.close(() => r())));
    const url = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
    const file = join(mkdtempSync(join(tmpdir(), 'dotslash-dns-')), 'dotslash.yaml');
    writeFileSync(file, yaml(url, ['{ name: www, type: A, value: 127.0.0.2 }']));

    const daemon = new Daemon(loadConfigFile(file), {
      logger: pino({ level: 'silent' }),
      configPath: file,
      adminToken: 't',
    });
    cleanups.push(() => daemon.shutdown('test'));
    const { dns } = await daemon.start();
    expect(dns).toBeDefined();
    const at = { host: '127.0.0.1', port: dns!.port };
    expect((await dig(at, 'www.origin.test', 'A')).answer).toEqual(['www.origin.test. 300 IN A 127.0.0.2']);

    // The rescue record set: the origin plus a rescuer, short TTL.
    expect(
      daemon.setDnsRecordSets([
        {
          name: 'www.origin.test',
          type: 'A',
          ttl: 20,
          values: ['127.0.0.2', { address: '127.0.0.3', weight: 3 }],
        },
      ]),
    ).toBe(true);
    const during = await dig(at, 'www.origin.test', 'A');
    expect(during.answer.map((l) => l.split(' ')[4]).sort()).toEqual(['127.0.0.2', '127.0.0.3']);
    expect(during.answer[0]).toMatch(/ 20 IN A /);
    // A set outside the zones is refused and the served data kept.
    expect(
      daemon.setDnsRecordSets([{ name: 'www.other.test', type: 'A', ttl: 20, values: ['127.0.0.9'] }]),
    ).toBe(false);
    expect((await dig(at, 'www.origin.test', 'A')).answer).toHaveLength(2);

    // Reload: a new record appears; the dynamic set survives the reload.
    writeFileSync(
      file,
      yaml(url, ['{ name: www, type: A, value: 127.0.0.2 }', '{ name: new, type: TXT, value: hello }']),
    );
    expect(await daemon.reload()).toEqual({ ok: true, restartNeeded: [] });
    expect((await dig(at, 'new.origin.test', 'TXT')).answer).toEqual(['new.origin.test. 300 IN TXT "hello"']);
    expect((await dig(at, 'www.origin.test', 'A')).answer).toHaveLength(2);

    // An invalid zone is refused with its position; the served zone stays.
    writeFileSync(file, yaml(url, ['{ name: www, type: A, value: not-an-ip }']));
    const bad = await daemon.reload();
    expect(bad.ok).toBe(false);
    expect(!bad.ok && bad.error).toMatch(
      /dotslash\.yaml:\d+:\d+: dns\.zones\[0\]\.records\[0\]\.value: .*DNS_ERR_BAD_ADDRESS/,
    );
    expect((await dig(at, 'new.origin.test', 'TXT')).answer).toHaveLength(1);

    // Back to no rescue: only the origin.
    daemon.setDnsRecordSets([]);
    expect((await dig(at, 'www.origin.test', 'A')).answer).toEqual(['www.origin.test. 300 IN A 127.0.0.2']);

    await daemon.shutdown('test');
    const after = await dig(at, 'www.origin.test', 'A', '+time=1', '+tries=1').catch(
      (e: { stdout?: string }) => ({ raw: e.stdout ?? '' }),
    );
    expect(after.raw).toMatch(/timed out|no servers could be reached|connection refused/);
  });
});
