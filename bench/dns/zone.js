// The bench zone, one source for both servers: our ZoneConfig (for dist/dns) and the same data
// as a BIND zone file; and the dnsperf query file (A / AAAA / NXDOMAIN mix).

export const ZONE = {
  name: 'bench.test',
  soa: {
    mname: 'ns1.bench.test',
    rname: 'hostmaster.bench.test',
    serial: 2026112301,
    refresh: 3600,
    retry: 600,
    expire: 604800,
    minimum: 60,
    ttl: 3600,
  },
  ns: ['ns1.bench.test'],
  records: [
    { name: 'ns1', type: 'A', values: ['127.0.0.53'] },
    { name: 'www', type: 'A', ttl: 300, values: ['127.0.0.2'] },
    { name: 'www', type: 'AAAA', ttl: 300, values: ['2001:db8::2'] },
    { name: 'rr', type: 'A', ttl: 20, values: ['127.0.1.1', '127.0.1.2', '127.0.1.3', '127.0.1.4'] },
    ...Array.from({ length: 50 }, (_, i) => ({
      name: `host${i}`,
      type: 'A',
      ttl: 300,
      values: [`127.0.2.${i + 1}`],
    })),
    ...Array.from({ length: 50 }, (_, i) => ({
      name: `host${i}`,
      type: 'AAAA',
      ttl: 300,
      values: [`2001:db8::${(i + 16).toString(16)}`],
    })),
  ],
};

/** The zone in RFC 1035 master-file form, for named. */
export function zoneFile(zone = ZONE) {
  const s = zone.soa;
  const lines = [
    `$ORIGIN ${zone.name}.`,
    `@ ${s.ttl} IN SOA ${s.mname}. ${s.rname}. ${s.serial} ${s.refresh} ${s.retry} ${s.expire} ${s.minimum}`,
    ...zone.ns.map((n) => `@ 300 IN NS ${n}.`),
  ];
  for (const r of zone.records)
    for (const v of r.values) lines.push(`${r.name} ${r.ttl ?? 300} IN ${r.type} ${v}`);
  return lines.join('\n') + '\n';
}

/** dnsperf input: 40% A, 20% AAAA (names that exist), 10% a rotating set, 30% NXDOMAIN. */
export function queryFile(lines = 10_000) {
  const out = [];
  let seed = 42;
  const rand = () => (seed = (seed * 16807) % 2147483647) / 2147483647;
  for (let i = 0; i < lines; i++) {
    const p = rand();
    const host = rand() < 0.5 ? 'www' : `host${Math.floor(rand() * 50)}`;
    if (p < 0.4) out.push(`${host}.bench.test A`);
    else if (p < 0.6) out.push(`${host}.bench.test AAAA`);
    else if (p < 0.7) out.push('rr.bench.test A');
    else out.push(`nx${Math.floor(rand() * 1e6)}.bench.test A`);
  }
  return out.join('\n') + '\n';
}
