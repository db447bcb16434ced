// DNS round robin end to end (issue 4 part B): daemons as processes, each running its embedded DNS
// server; the real `dig` against the origin's server shows the rescuers' addresses while the crowd
// is on and only the origin's after the release; a rescuer's server answers for its vhN name while
// its session lives; clients that resolved through the origin's server reached rescuers by DNS.
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import type { Member } from '../../src/demo/community.js';
import { crowdFor, waitForRelease } from '../../src/demo/run.js';
import { memberStatus } from '../../src/demo/status.js';
import { dig } from '../dns/bind-server.js';
import { hostsFrom, makeCommunity, sleep, stopAll, until } from './helpers.js';

afterEach(stopAll);

/** Requests a rescuer's ended sessions served to clients that arrived by DNS (its state file). */
function dnsUsage(m: Member): number {
  const db = new Database(m.stateFile, { readonly: true, fileMustExist: true });
  try {
    const rows = db
      .prepare(`SELECT usage FROM sessions WHERE role = 'rescuer' AND usage IS NOT NULL`)
      .all() as {
      usage: string;
    }[];
    return rows.reduce(
      (n, r) => n + ((JSON.parse(r.usage) as { by_dns?: { requests: number } }).by_dns?.requests ?? 0),
      0,
    );
  } finally {
    db.close();
  }
}

const serverOf = (m: Member): { host: string; port: number } => {
  const cut = m.dns.lastIndexOf(':');
  return { host: m.dns.slice(0, cut), port: Number(m.dns.slice(cut + 1)) };
};

describe('demo community DNS', () => {
  it(
    'dig @origin shows rescuers during the crowd and only the origin after; vhN answers at the rescuer',
    { timeout: 180_000 },
    async () => {
      const c = await makeCommunity({ hosts: hostsFrom(90), originRps: 10 });
      await c.start();
      const origin = serverOf(c.origin);
      const www = `www.${c.origin.zone}`;
      expect(dig(origin, www)).toEqual([c.origin.host]);
      expect(dig(origin, c.origin.zone)).toEqual([c.origin.host]);

      const crowd = crowdFor(c);
      let during: string[] = [];
      try {
        for (let i = 1; i <= 5; i++) {
          crowd.setRate(20 * i); // up to 10x the origin's capacity
          await sleep(1_000);
        }
        during = (await until(
          () => {
            const a = dig(origin, www);
            return a.length > 1 ? a : undefined;
          },
          60_000,
          `rescuers in ${www}'s answer`,
        ))!;
        const rescuerHosts = c.rescuers.map((r) => r.host);
        expect(during).toContain(c.origin.host);
        expect(during.filter((a) => rescuerHosts.includes(a)).length).toBe(during.length - 1);
        // The rescuer in the answer has a live session whose vhN name its own server answers for.
        const r = c.rescuers.find((x) => x.host === during.find((a) => a !== c.origin.host))!;
        const st = await memberStatus(r);
        const active = st.sessions.find((s) => s.role === 'rescuer' && s.state === 'active');
        const vhost = (active as { vhost?: string } | undefined)?.vhost;
        expect(vhost, JSON.stringify(st.sessions)).toBeDefined();
        expect(dig(serverOf(r), vhost!)).toEqual([r.host]);
        // Let DNS-resolved clients (TTL 2 s while rescued) reach the rescuers.
        await sleep(8_000);
      } finally {
        await crowd.close();
      }
      expect(crowd.tally.viaDnsRr, JSON.stringify(crowd.tally)).toBeGreaterThan(0);
      expect(crowd.dnsStats!.queries).toBeGreaterThan(0);

      expect(await waitForRelease(c.origin, 120_000)).toBe(true);
      expect(dig(origin, www)).toEqual([c.origin.host]);
      expect(dig(origin, c.origin.zone)).toEqual([c.origin.host]);
      // The rescuers counted the clients that came with the origin's name in Host as by DNS.
      // (Stored when a session closes, after its drain.)
      await until(
        () => c.rescuers.reduce((n, r) => n + dnsUsage(r), 0) > 0,
        30_000,
        'by_dns usage in a rescuer state file',
      );
    },
  );
});
