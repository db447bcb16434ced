// RFC 2136 + TSIG against a real BIND 9: rescue sets appear and go (checked with the real dig),
// the newest snapshot wins, bad keys get clear errors and change nothing, truncated answers fall
// back to TCP, tampered answers are not trusted.
import { createSocket, type Socket } from 'node:dgram';
import { connect, createServer, type Server } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { computeRecordSets, type DnsRecordSets, type RescuerAddresses } from '../../dns/record-sets.js';
import { Rfc2136Updater, sendUpdate, type Rfc2136Target } from '../../dns/rfc2136.js';
import { tsigKey } from '../../dns/tsig.js';
import { DnsUpdateError } from '../../dns/update-errors.js';
import pino from 'pino';
import { parseConfig } from '../../src/config/load.js';
import { DnsRecordPublisher } from '../../src/daemon-dns.js';
import { dig, digTtl, startBind, type BindServer } from './bind-server.js';

async function until(ok: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 50));
  }
}

const ZONE = 'origin.test';
const SITE = [`www.${ZONE}`, `shop.${ZONE}`];
const ORIGIN_IP = '127.0.0.10';

let bind: BindServer;
let target: Rfc2136Target;

beforeAll(async () => {
  bind = await startBind({ zone: ZONE, records: `www IN A ${ORIGIN_IP}\nshop IN A ${ORIGIN_IP}\n` });
  target = {
    host: bind.host,
    port: bind.port,
    zone: ZONE,
    key: tsigKey(bind.keyName, bind.keySecret),
  };
}, 30_000);
afterAll(async () => bind?.stop());

const sets = (version: number, rescuers: RescuerAddresses[]): DnsRecordSets =>
  computeRecordSets({
    version,
    siteNames: SITE,
    ownAddresses: [ORIGIN_IP],
    ownWeight: 100,
    ttl: 300,
    rescueTtl: 20,
    rescuers,
    vhosts: [],
  });

const applied = (u: Rfc2136Updater, version: number): Promise<void> =>
  new Promise((resolve, reject) => {
    const onApplied = (a: { version: number }): void => {
      if (a.version !== version) return;
      u.off('applied', onApplied);
      u.off('error', reject);
      resolve();
    };
    u.on('applied', onApplied);
    u.once('error', reject);
  });

async function expectCode(p: Promise<unknown>, code: string): Promise<DnsUpdateError> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err, `expected ${code}`).toBeInstanceOf(DnsUpdateError);
  expect((err as DnsUpdateError).code).toBe(code);
  return err as DnsUpdateError;
}

describe('RFC 2136 updates to BIND', () => {
  it('adds the rescuers to the site names during rescue and restores the origin set after', async () => {
    expect(dig(bind, `www.${ZONE}`)).toEqual([ORIGIN_IP]);
    const u = new Rfc2136Updater({ target, backoff: { minMs: 50, maxMs: 200 } });
    const rescue = sets(1, [
      { session: 's1', addresses: ['127.0.0.21'], rate: 200 },
      { session: 's2', addresses: ['127.0.0.22', 'fd00::22'], rate: 50 },
    ]);
    let done = applied(u, 1);
    u.publish(rescue);
    await done;
    for (const name of SITE) {
      expect(dig(bind, name)).toEqual(['127.0.0.10', '127.0.0.21', '127.0.0.22']);
      expect(dig(bind, name, 'AAAA')).toEqual(['fd00::22']);
      expect(digTtl(bind, name)).toBe(20);
    }
    done = applied(u, 2);
    u.publish(sets(2, []));
    await done;
    for (const name of SITE) {
      expect(dig(bind, name)).toEqual([ORIGIN_IP]);
      expect(dig(bind, name, 'AAAA')).toEqual([]);
      expect(digTtl(bind, name)).toBe(300);
    }
    expect(u.status()).toMatchObject({ appliedVersion: 2, failures: 0, lastError: null });
    u.close();
  });

  it('sends only the newest snapshot when several arrive while one is in flight', async () => {
    const u = new Rfc2136Updater({ target });
    const seen: number[] = [];
    u.on('applied', (a: { version: number }) => seen.push(a.version));
    const done = applied(u, 13);
    for (let v = 10; v <= 13; v++)
      u.publish(sets(v, [{ session: 's', addresses: [`127.0.0.${30 + v}`], rate: 10 }]));
    u.publish(sets(9, [{ session: 'old', addresses: ['127.0.0.99'], rate: 10 }])); // stale: ignored
    await done;
    expect(seen).toEqual([10, 13]); // 10 was in flight; 11 and 12 were superseded before sending
    expect(dig(bind, `www.${ZONE}`)).toEqual([ORIGIN_IP, '127.0.0.43'].sort());
    const back = applied(u, 14);
    u.publish(sets(14, []));
    await back;
    expect(dig(bind, `www.${ZONE}`)).toEqual([ORIGIN_IP]);
    u.close();
  });

  it('deletes the sets of names it no longer manages (a rescuer vhost whose session ended)', async () => {
    const u = new Rfc2136Updater({ target });
    const withVhost = (version: number, vhosts: { vhost: string }[]): DnsRecordSets =>
      computeRecordSets({
        version,
        siteNames: SITE,
        ownAddresses: [ORIGIN_IP],
        ownWeight: 100,
        ttl: 300,
        rescueTtl: 20,
        rescuers: [],
        vhosts,
      });
    let done = applied(u, 1);
    u.publish(withVhost(1, [{ vhost: `vh1.${ZONE}` }, { vhost: 'vh2.elsewhere.test' }]));
    await done;
    expect(dig(bind, `vh1.${ZONE}`)).toEqual([ORIGIN_IP]);
    done = applied(u, 2);
    u.publish(withVhost(2, []));
    await done;
    expect(dig(bind, `vh1.${ZONE}`)).toEqual([]);
    expect(dig(bind, `www.${ZONE}`)).toEqual([ORIGIN_IP]);
    u.close();
  });

  it('uses TCP for an UPDATE too large for UDP', async () => {
    // (BIND 9.18 caps a set at max-records-per-type 100.)
    const many = Array.from({ length: 60 }, (_, i) => ({
      session: `s${i}`,
      addresses: [`127.0.${1 + Math.floor(i / 200)}.${(i % 200) + 1}`],
      rate: 1,
    }));
    const r = await sendUpdate(target, sets(1, many).sets);
    expect(r.transport).toBe('tcp');
    expect(dig(bind, `www.${ZONE}`).length).toBe(61);
    await sendUpdate(target, sets(2, []).sets);
    expect(dig(bind, `www.${ZONE}`)).toEqual([ORIGIN_IP]);
  });

  it('a wrong secret gets DNS_ERR_UPDATE_BADSIG and changes nothing', async () => {
    const bad = { ...target, key: tsigKey(bind.keyName, Buffer.alloc(32, 7).toString('base64')) };
    const err = await expectCode(
      sendUpdate(bad, sets(1, [{ session: 'x', addresses: ['127.0.0.66'], rate: 10 }]).sets),
      'DNS_ERR_UPDATE_BADSIG',
    );
    expect(err.message).toMatch(/BADSIG/);
    expect(dig(bind, `www.${ZONE}`)).toEqual([ORIGIN_IP]);
    // The updater reports it as an error event with the code and keeps the zone unchanged.
    const u = new Rfc2136Updater({ target: bad, backoff: { minMs: 10_000, maxMs: 10_000 } });
    const failed = new Promise<DnsUpdateError>((resolve) => u.once('error', resolve));
    u.publish(sets(1, [{ session: 'x', addresses: ['127.0.0.66'], rate: 10 }]));
    expect((await failed).code).toBe('DNS_ERR_UPDATE_BADSIG');
    expect(u.status()).toMatchObject({ appliedVersion: null, failures: 1 });
    u.close();
    expect(dig(bind, `www.${ZONE}`)).toEqual([ORIGIN_IP]);
  });

  it('an unknown key name gets DNS_ERR_UPDATE_BADKEY; a name outside the zone is refused before sending', async () => {
    const other = { ...target, key: tsigKey('no-such-key', bind.keySecret) };
    await expectCode(sendUpdate(other, sets(1, []).sets), 'DNS_ERR_UPDATE_BADKEY');
    await expectCode(
      sendUpdate(target, [{ name: 'www.not-our-zone.test', ttl: 20, addresses: [] }]),
      'DNS_ERR_UPDATE_NAME',
    );
    expect(dig(bind, `www.${ZONE}`)).toEqual([ORIGIN_IP]);
  });

  it('a server that does not answer gives DNS_ERR_UPDATE_TIMEOUT', async () => {
    const silent = createSocket('udp4');
    await new Promise<void>((r) => silent.bind(0, '127.0.0.1', () => r()));
    const port = silent.address().port;
    const err = await expectCode(
      sendUpdate({ ...target, port }, sets(1, []).sets, [], { timeoutMs: 300 }),
      'DNS_ERR_UPDATE_TIMEOUT',
    );
    expect(err.retryable).toBe(true);
    silent.close();
  });

  it("the daemon's door: dns.rfc2136 config -> updater; a stop waits for the last UPDATE to land", async () => {
    const cfg = parseConfig(
      [
        'name: www.origin.test',
        'proxy: { upstreams: [http://127.0.0.1:1], listen: 0.0.0.0:0 }',
        `site: { addresses: [${ORIGIN_IP}] }`,
        'dns:',
        '  mode: rfc2136',
        `  site_names: [${SITE.join(', ')}]`,
        `  rfc2136: { server: "${bind.host}:${bind.port}", zone: ${ZONE}, key_name: ${bind.keyName}, key_secret: "\${TSIG}" }`,
      ].join('\n'),
      'test.yaml',
      { env: { TSIG: bind.keySecret } },
    );
    const publisher = new DnsRecordPublisher(cfg, pino({ level: 'silent' }), () => false);
    publisher.publish(sets(1, [{ session: 's', addresses: ['127.0.0.88'], rate: 30 }]));
    await until(() => dig(bind, `www.${ZONE}`).includes('127.0.0.88'));
    // As at SIGTERM: the sessions ended, the normal set is published, and close() waits for it.
    publisher.publish(sets(2, []));
    await publisher.close();
    expect(dig(bind, `www.${ZONE}`)).toEqual([ORIGIN_IP]);
    expect(publisher.updaterStatus).toMatchObject({ appliedVersion: 2, failures: 0 });
  });

  describe('through a relay in front of BIND', () => {
    let relay: { port: number; close(): void } | null = null;
    afterAll(() => relay?.close());

    it('falls back to TCP when the UDP answer is truncated (TC)', async () => {
      relay = await startRelay(bind, (answer) => {
        const tc = Buffer.from(answer.subarray(0, 12));
        tc.writeUInt16BE(tc.readUInt16BE(2) | 0x0200, 2);
        tc.fill(0, 4, 12); // header only, as a server with nothing that fits would send
        return tc;
      });
      const r = await sendUpdate(
        { ...target, port: relay.port },
        sets(1, [{ session: 's', addresses: ['127.0.0.77'], rate: 5 }]).sets,
      );
      expect(r.transport).toBe('tcp');
      expect(dig(bind, `www.${ZONE}`)).toEqual([ORIGIN_IP, '127.0.0.77'].sort());
      await sendUpdate(target, sets(2, []).sets);
      relay.close();
      relay = null;
    });

    it('does not trust an answer whose TSIG does not verify (DNS_ERR_UPDATE_REPLY_BADSIG)', async () => {
      relay = await startRelay(bind, (answer) => {
        const t = Buffer.from(answer);
        t[t.length - 10] = t[t.length - 10]! ^ 0xff; // inside the MAC
        return t;
      });
      await expectCode(
        sendUpdate({ ...target, port: relay.port }, sets(3, []).sets),
        'DNS_ERR_UPDATE_REPLY_BADSIG',
      );
      relay.close();
      relay = null;
    });
  });
});

/** UDP relay to BIND that rewrites answers; TCP is passed through unchanged. */
async function startRelay(
  to: BindServer,
  rewrite: (answer: Buffer) => Buffer,
): Promise<{ port: number; close(): void }> {
  const tcp: Server = createServer((c) => {
    const up = connect({ host: to.host, port: to.port });
    c.pipe(up).pipe(c);
    up.on('error', () => c.destroy());
    c.on('error', () => up.destroy());
  });
  await new Promise<void>((r) => tcp.listen(0, '127.0.0.1', () => r()));
  const port = (tcp.address() as { port: number }).port;
  const udp: Socket = createSocket('udp4');
  await new Promise<void>((resolve, reject) => {
    udp.once('error', reject);
    udp.bind(port, '127.0.0.1', () => resolve());
  });
  udp.on('message', (msg, client) => {
    const up = createSocket('udp4');
    up.on('message', (answer) => {
      udp.send(rewrite(answer), client.port, client.address);
      up.close();
    });
    up.send(msg, to.port, to.host);
  });
  return {
    port,
    close() {
      udp.close();
      tcp.close();
    },
  };
}
