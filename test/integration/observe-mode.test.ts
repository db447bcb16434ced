// rescue.mode observe on a crowded origin (daemon processes): it decides and logs what it would do
// ("would send SOS ..."), but sends nothing (no rescuer hears an SOS, no session anywhere) and
// publishes Pr 0 (every fetch is served by the origin itself).
import { afterAll, describe, expect, it } from 'vitest';
import { crowdFor } from '../../src/demo/run.js';
import { memberStatus, originSessionCounts } from '../../src/demo/status.js';
import { hostsFrom, logLines, makeCommunity, sleep, stopAll, until } from './helpers.js';

afterAll(stopAll);

describe('observe mode', { timeout: 120_000 }, () => {
  it('acts on nothing: no SOS sent, Pr published 0, the log says what it would do', async () => {
    const originRps = 10;
    const c = await makeCommunity({
      hosts: hostsFrom(50),
      originRps,
      modes: { 'origin.test': 'observe' },
    });
    await c.start();
    const crowd = crowdFor(c, { timeoutMs: 10_000 });
    let maxPr = 0;
    const prs: number[] = [];
    crowd.setRate(8 * originRps);
    try {
      await until(
        async () => {
          const st = await memberStatus(c.origin);
          maxPr = Math.max(maxPr, st.pr);
          prs.push(st.pr);
          return logLines(c.origin.logFile).some((l) => /^would send SOS to /.test(String(l.msg)));
        },
        45_000,
        'the origin to log "would send SOS"',
      );
      await sleep(2_000); // a few more ticks of wanting to
    } finally {
      await crowd.close();
    }
    const st = await memberStatus(c.origin);
    expect(st.mode).toBe('observe');
    expect(st.pr).toBe(0);
    expect(maxPr).toBe(0);
    expect(st.state).toBe('normal');
    expect(st.sessions).toEqual([]);
    expect(originSessionCounts(c.origin)).toEqual({ opened: 0, closed: 0 });

    const would = logLines(c.origin.logFile).filter((l) => String(l.msg).startsWith('would '));
    expect(would.length).toBeGreaterThan(0);
    expect(would.every((l) => l.mode === 'observe')).toBe(true);
    // Each "would" is logged when it starts, not on every tick it persists.
    expect(would.length).toBeLessThan(200);

    for (const r of c.rescuers) {
      const lines = logLines(r.logFile);
      expect(lines.some((l) => /SOS/.test(String(l.msg)))).toBe(false);
      const rs = await memberStatus(r);
      expect(rs.sessions).toEqual([]);
    }
    // Nothing was redirected: whatever was answered came from the origin itself.
    const served = crowd.tally.servedBy;
    expect(Object.keys(served).filter((k) => k !== c.origin.name)).toEqual([]);
    expect(crowd.tally.redirected).toBe(0);
  });
});
