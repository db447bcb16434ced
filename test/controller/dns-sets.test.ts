// The controller's DNS output (issue 4 part B): while an origin is rescued, its site names' sets
// carry the rescuers' addresses (from their OK), weighted by Rr, with the rescue TTL; a rescuer
// leaves as soon as its session ends or its lease lapses; the rescuer answers for its vhN name.
import { describe, expect, it } from 'vitest';
import type { DnsRecordSets, NameRecordSet } from '../../dns/record-sets.js';
import { LoopNet, ManualClock, member, memberConfig, run, sample } from './control-helpers.js';

const O = 'origin.example';
const A = 'a.example';
const B = 'b.example';

const zone = (name: string, address: string) => ({
  name,
  soa: { mname: `ns1.${name}`, rname: `hostmaster.${name}` },
  ns: [`ns1.${name}`],
  records: [
    { name: '@', type: 'A', value: address },
    { name: 'www', type: 'A', ttl: 600, value: address },
  ],
});

function community(aAddresses: string[] | null = ['192.0.2.10', '2001:db8::10']) {
  const net = new LoopNet();
  const clock = new ManualClock();
  const dnsOf = (name: string, address: string) => ({
    mode: 'embedded',
    ttl: 300,
    rescue_ttl: 20,
    zones: [zone(name, address)],
  });
  const origin = member(
    net,
    clock,
    memberConfig(O, [A, B], {
      site: { names: [O, `www.${O}`] },
      dns: dnsOf(O, '192.0.2.1'),
    }),
  );
  const a = member(
    net,
    clock,
    memberConfig(A, [O], {
      // Without site.addresses (and listening on every address) A cannot say where it is.
      ...(aAddresses
        ? { site: { addresses: aAddresses } }
        : { proxy: { upstreams: ['http://127.0.0.1:1'], listen: '0.0.0.0:8080' } }),
      dns: dnsOf(A, '192.0.2.10'),
    }),
  );
  const b = member(net, clock, memberConfig(B, [O], { site: { addresses: ['192.0.2.20'] } }));
  a.controller.observe(sample('light', 0.1));
  b.controller.observe(sample('light', 0.1));
  return { net, clock, origin, a, b, all: [origin, a, b] };
}

const setOf = (sets: DnsRecordSets | undefined, name: string): NameRecordSet | undefined =>
  sets?.sets.find((s) => s.name === name);

describe('controller: DNS record sets', () => {
  it('normal: the site names answer with their configured own sets and TTLs', async () => {
    const { clock, origin, all } = community();
    origin.controller.observe(sample('desired', 0.6));
    await run(all, clock, 1);
    const last = origin.dns.at(-1)!;
    expect(last.rescued).toBe(false);
    expect(setOf(last, O)).toEqual({
      name: O,
      ttl: 300,
      addresses: [{ address: '192.0.2.1', weight: 1000 }],
    });
    expect(setOf(last, `www.${O}`)?.ttl).toBe(600);
    const count = origin.dns.length;
    await run(all, clock, 3);
    expect(origin.dns.length).toBe(count); // published only when the sets change
  });

  it('rescued: the rescuers join, weighted by Rr, rescue TTL; each leaves when its session ends or lapses', async () => {
    const { net, clock, origin, a, b, all } = community();
    origin.controller.observe(sample('heavy', 1.2, 1200));
    await run(all, clock, 8);
    const sessions = origin.table.list('origin', ['active']);
    expect(sessions.map((s) => s.peer).sort()).toEqual([A, B]);
    const rA = sessions.find((s) => s.peer === A)!.rate;
    const rB = sessions.find((s) => s.peer === B)!.rate;
    let last = origin.dns.at(-1)!;
    expect(last.rescued).toBe(true);
    for (const name of [O, `www.${O}`]) {
      expect(setOf(last, name)).toEqual({
        name,
        ttl: 20,
        addresses: [
          { address: '192.0.2.1', weight: 1000 },
          { address: '192.0.2.10', weight: rA / 2 },
          { address: '192.0.2.20', weight: rB },
          { address: '2001:db8::10', weight: rA / 2 },
        ],
      });
    }
    // The rescuer answers for its vhN name with its own address while the session lives.
    const vh = a.table.list('rescuer', ['active'])[0]!.vhost!;
    expect(setOf(a.dns.at(-1), vh)).toEqual({
      name: vh,
      ttl: 20,
      addresses: [
        { address: '192.0.2.10', weight: 1 },
        { address: '2001:db8::10', weight: 1 },
      ],
    });

    // A dies (unreachable, no more ticks): its lease lapses at the origin, and A leaves the set.
    net.down.add(A);
    await run([origin, b], clock, 40);
    expect(origin.table.list('origin', ['active']).map((s) => s.peer)).toEqual([B]);
    last = origin.dns.at(-1)!;
    expect(setOf(last, O)!.addresses.map((x) => x.address)).toEqual(['192.0.2.1', '192.0.2.20']);
  });

  it('back to normal after release: the own set and normal TTL return; a rescuer without addresses is never in DNS', async () => {
    const { clock, origin, all } = community(null);
    origin.controller.observe(sample('heavy', 1.2, 1200));
    await run(all, clock, 8);
    expect(setOf(origin.dns.at(-1), O)!.addresses.map((x) => x.address)).toEqual(['192.0.2.1', '192.0.2.20']);
    origin.controller.observe(sample('light', 0.1));
    await run(all, clock, 100);
    expect(origin.table.list('origin', ['active'])).toHaveLength(0);
    expect(origin.dns.at(-1)!.rescued).toBe(false);
    expect(setOf(origin.dns.at(-1), O)).toEqual({
      name: O,
      ttl: 300,
      addresses: [{ address: '192.0.2.1', weight: 1000 }],
    });
  });

  it('observe mode keeps rescuers out of DNS', async () => {
    const { clock, origin, all } = community();
    origin.controller.observe(sample('heavy', 1.2, 1200));
    await run(all, clock, 8);
    expect(origin.dns.at(-1)!.rescued).toBe(true);
    origin.controller.setMode('observe');
    await run(all, clock, 1);
    expect(origin.dns.at(-1)!.rescued).toBe(false);
  });
});
