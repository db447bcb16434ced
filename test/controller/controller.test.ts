// Controller decisions (slide 18) on scripted samples with a manual clock; members talk through an
// in-process loopback transport (the wire is tested in members.test.ts).
import { describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StateDb } from '../../src/storage/state-db.js';
import {
  LoopNet,
  ManualClock,
  member,
  memberConfig,
  run,
  sample,
  type TestMember,
} from './control-helpers.js';

const O = 'origin.example';
const A = 'a.example';
const B = 'b.example';

function community(
  opts: { origin?: Record<string, unknown>; a?: Record<string, unknown>; b?: Record<string, unknown> } = {},
) {
  const net = new LoopNet();
  const clock = new ManualClock();
  const origin = member(net, clock, memberConfig(O, [A, B], opts.origin));
  const a = member(net, clock, memberConfig(A, [O], opts.a));
  const b = member(net, clock, memberConfig(B, [O], opts.b));
  a.controller.observe(sample('light', 0.1));
  b.controller.observe(sample('light', 0.1));
  return { net, clock, origin, a, b, all: [origin, a, b] as TestMember[] };
}

const originSessions = (
  m: TestMember,
  states: ('requested' | 'active' | 'ending' | 'closed')[] = ['active'],
) => m.table.list('origin', states);

describe('origin: heavy -> SOS -> rescue, Pr up (slide 18, SOS state)', () => {
  it('sends SOS to the first candidate, raises Pr by at most pr_step_max per tick, within the granted rate, then gets more rescue', async () => {
    const { net, clock, origin, a, b, all } = community();
    origin.controller.observe(sample('heavy', 1.2, 1200));
    await run(all, clock, 1);
    expect(net.count('SOS', O, A)).toBe(1);
    const [s] = originSessions(origin);
    expect(s).toMatchObject({
      peer: A,
      vhost: 'vh1.a.example',
      vhostUrl: 'http://vh1.a.example:8080',
      rate: 500,
    });
    expect(a.table.list('rescuer', ['active'])).toHaveLength(1);
    expect(origin.controller.state).toBe('sos');
    expect(a.controller.state).toBe('rescue');

    const prs: number[] = [];
    for (let i = 0; i < 6; i++) {
      await run(all, clock, 1);
      prs.push(origin.controller.pr);
    }
    for (let i = 1; i < prs.length; i++)
      expect(Math.abs(prs[i]! - prs[i - 1]!)).toBeLessThanOrEqual(0.2 + 1e-9);
    expect(prs[0]).toBeCloseTo(0.2);
    // Pr needed more than A granted (500 of 1200 req/s): B was asked for the rest.
    expect(net.count('SOS', O, B)).toBe(1);
    expect(
      originSessions(origin)
        .map((x) => x.peer)
        .sort(),
    ).toEqual([A, B]);
    const granted = originSessions(origin).reduce((t, x) => t + x.rate, 0);
    expect(origin.controller.pr).toBeLessThanOrEqual(granted / 1200 + 1e-9);
    const snap = origin.redirects.at(-1)!;
    expect(snap.pr).toBe(origin.controller.pr);
    expect(snap.sessions.map((x) => x.vhost).sort()).toEqual(['vh1.a.example', 'vh1.b.example']);
    expect(snap.sessions[0]).toMatchObject({ scheme: 'http', port: 8080 });
    expect(b.controller.state).toBe('rescue');
  });

  it('repeated ticks in the desired region change nothing but send KEEPALIVE every lease/3', async () => {
    const { net, clock, origin, all } = community();
    origin.controller.observe(sample('heavy', 1.2, 1200));
    await run(all, clock, 3);
    origin.controller.observe(sample('desired', 0.65, 1200));
    const pr = origin.controller.pr;
    const sent = net.sent.length;
    const sessions = JSON.stringify(origin.controller.status().sessions.map((x) => [x.id, x.state, x.rate]));
    await run(all, clock, 20); // 2 s; lease 3 s -> KEEPALIVE every 1 s
    expect(origin.controller.pr).toBe(pr);
    expect(JSON.stringify(origin.controller.status().sessions.map((x) => [x.id, x.state, x.rate]))).toBe(
      sessions,
    );
    const since = net.sent.slice(sent);
    expect(new Set(since.map((x) => x.type))).toEqual(new Set(['KEEPALIVE']));
    expect(since.filter((x) => x.from === O).length).toBe(2);
    expect(since.filter((x) => x.from === A).length).toBe(2);
  });

  it('skips a candidate that declines, and does not ask it again within decline_hold_ms', async () => {
    const { net, clock, origin, a, all } = community();
    a.controller.observe(sample('heavy', 0.9));
    origin.controller.observe(sample('heavy', 1.2, 1200));
    await run(all, clock, 1);
    expect(net.count('SOS', O, A)).toBe(1);
    const declined = origin.db.sessions().find((r) => r.peer === A)!;
    expect(declined.state).toBe('closed');
    expect(declined.reason).toMatch(/declined by a\.example: CTL_ERR_HEAVY/);
    await run(all, clock, 10);
    expect(net.count('SOS', O, B)).toBe(1);
    expect(net.count('SOS', O, A)).toBe(1);
  });
});

describe('origin: light -> Pr down -> release (slide 18), with anti-thrash holds', () => {
  it('lowers Pr, holds Pr 0 for pr_zero_hold_ms and the acquire hold, SHUTDOWNs one at a time, the last -> normal; the rescuer drains then closes', async () => {
    const { net, clock, origin, a, all } = community({ a: { rescue: { max_share: 1 } } });
    net.down.add(B); // one rescuer only, so releases are easy to follow
    origin.controller.observe(sample('heavy', 1.2, 1000));
    await run(all, clock, 4);
    expect(originSessions(origin)).toHaveLength(1);
    const prHigh = origin.controller.pr;
    expect(prHigh).toBeGreaterThan(0.3);
    origin.controller.observe(sample('light', 0.2, 1000));
    await run(all, clock, 1);
    expect(origin.controller.pr).toBeCloseTo(prHigh - 0.2);
    // Pr reaches 0 in a few ticks; nothing is released before the holds pass.
    await run(all, clock, 4);
    expect(origin.controller.pr).toBe(0);
    expect(net.count('SHUTDOWN')).toBe(0);
    await run(all, clock, 12);
    expect(net.count('SHUTDOWN', O, A)).toBe(1);
    expect(origin.controller.state).toBe('normal');
    const rescuerSide = a.table.list('rescuer')[0]!;
    expect(rescuerSide.state).toBe('draining');
    expect(a.views.at(-1)!.hosts.get('vh1.a.example')).toMatchObject({ state: 'drain', origin: O });
    expect(a.views.at(-1)!.hosts.get(O)).toBeDefined();
    await run(all, clock, 16); // drain_ms 1500
    expect(a.table.list('rescuer')).toHaveLength(0);
    expect(a.views.at(-1)!.hosts.size).toBe(0);
    expect(a.controller.state).toBe('normal');
    const row = origin.db.sessions()[0]!;
    expect(origin.db.history(row.key).map((e) => e.to_state)).toEqual([
      'requested',
      'active',
      'ending',
      'closed',
    ]);
    const arow = a.db.sessions()[0]!;
    expect(a.db.history(arow.key).map((e) => [e.to_state, e.reason])).toEqual([
      ['active', expect.stringMatching(/SOS from origin\.example accepted/)],
      ['draining', expect.stringMatching(/SHUTDOWN from origin\.example/)],
      ['closed', 'drain time over'],
    ]);
  });

  it('after a release, sends no SOS for release_hold_ms even when heavy again', async () => {
    const { net, clock, origin, all } = community();
    origin.controller.observe(sample('heavy', 1.2, 1000));
    await run(all, clock, 2);
    origin.controller.observe(sample('light', 0.1, 100));
    for (let i = 0; i < 60 && origin.controller.state !== 'normal'; i++) await run(all, clock, 1);
    expect(origin.controller.state).toBe('normal');
    const releasedAt = clock.t;
    const sos = net.count('SOS');
    origin.controller.observe(sample('heavy', 1.2, 1000));
    let sentAt: number | null = null;
    for (let i = 0; i < 30 && sentAt === null; i++) {
      await run(all, clock, 1);
      if (net.count('SOS') > sos) sentAt = clock.t;
    }
    expect(sentAt).not.toBeNull();
    // release_hold_ms 2000.
    expect(sentAt! - releasedAt).toBeGreaterThanOrEqual(2000);
  });
});

describe('rescuer (slide 18, rescue state)', () => {
  it('heavy: lowers Rr with RATE, still heavy after the hold: SHUTDOWN; never asks for rescue while rescuing', async () => {
    // One origin, one rescuer.
    const clock = new ManualClock();
    const net2 = new LoopNet();
    const o = member(net2, clock, memberConfig(O, [A]));
    const r = member(net2, clock, memberConfig(A, [O]));
    r.controller.observe(sample('light', 0.1));
    o.controller.observe(sample('heavy', 1.2, 1000));
    await run([o, r], clock, 2);
    const before = o.table.list('origin', ['active'])[0]!.rate;
    r.controller.observe(sample('heavy', 1.0, 1000));
    await run([o, r], clock, 1);
    expect(net2.count('RATE', A, O)).toBe(1);
    const lowered = o.table.list('origin', ['active'])[0]!.rate;
    expect(lowered).toBeLessThan(before);
    expect(lowered).toBe(r.table.list('rescuer', ['active'])[0]!.rate);
    expect(net2.count('SOS', A)).toBe(0);
    await run([o, r], clock, 21);
    expect(net2.count('SHUTDOWN', A, O)).toBe(1);
    expect(o.db.sessions()[0]!.reason).toMatch(/SHUTDOWN from a\.example: heavy/);
    expect(r.table.list('rescuer')[0]!.state).toBe('draining');
    // Rescuing nobody now, A may ask for help; its only peer is being rescued and declines.
    await run([o, r], clock, 2);
    const asked = net2.sent.filter((x) => x.type === 'SOS' && x.from === A);
    expect(asked.length).toBeGreaterThanOrEqual(1);
    expect(r.db.sessions().filter((x) => x.role === 'origin')[0]!.reason).toMatch(
      /declined by origin\.example/,
    );
  });

  it('light: raises Rr towards what the origin wanted, within its spare capacity', async () => {
    const { clock, origin, a, all } = community();
    a.controller.observe(sample('desired', 0.55)); // headroom (0.65 - 0.55) x 1000 = 100 req/s
    origin.controller.observe(sample('heavy', 1.2, 1200));
    await run(all, clock, 1);
    const s = origin.table.list('origin', ['active']).find((x) => x.peer === A)!;
    expect(s.rate).toBe(100);
    origin.controller.observe(sample('desired', 0.7, 1200));
    a.controller.observe(sample('light', 0.1));
    await run(all, clock, 12);
    expect(s.rate).toBeGreaterThan(100);
    expect(s.rate).toBeLessThanOrEqual(Math.min(s.want, 500));
  });

  it('declines SOS at max_sessions, and an SOS for someone else (NOT_A_PARTY)', async () => {
    const { clock, origin, a, all } = community({ a: { rescue: { max_sessions: 1 } } });
    origin.controller.observe(sample('heavy', 1.2, 1200));
    await run(all, clock, 1);
    const sos = (from: string) =>
      a.controller.onMessage({
        v: 1,
        type: 'SOS',
        from,
        to: A,
        ts: Date.now(),
        nonce: 'x'.repeat(22),
        body: {
          origin: { id: 'c.example', names: ['c.example'], front_url: 'http://c.example' },
          content: 'static',
          want_rate: 10,
        },
      });
    expect(sos('c.example')).toMatchObject({ accepted: false, code: 'CTL_ERR_MAX_SESSIONS' });
    expect(() => sos('d.example')).toThrow(expect.objectContaining({ code: 'RSC_ERR_NOT_A_PARTY' }));
    expect(a.table.list('rescuer')).toHaveLength(1);
  });
});

describe('rescue.mode', () => {
  it('observe decides and says what it would do, sends nothing and publishes Pr 0; on, switched at run time, acts', async () => {
    const { net, clock, origin, all } = community({ origin: { rescue: { mode: 'observe' } } });
    const decisions: { action: string; acted: boolean }[] = [];
    origin.controller.on('decision', (d: { action: string; acted: boolean }) => decisions.push(d));
    origin.controller.observe(sample('heavy', 1.2, 1200));
    await run(all, clock, 10);
    expect(net.sent).toEqual([]);
    expect(origin.db.sessions()).toEqual([]);
    expect(decisions).toEqual([{ action: expect.stringMatching(/^send SOS to a\.example/), acted: false }]);
    expect(origin.redirects.every((s) => s.pr === 0)).toBe(true);
    origin.controller.setMode('on');
    await run(all, clock, 3);
    expect(net.count('SOS', O, A)).toBe(1);
    expect(origin.redirects.at(-1)!.pr).toBeGreaterThan(0);
    // Back to observe: Pr 0 published at once; nothing more is sent.
    origin.controller.setMode('observe');
    expect(origin.redirects.at(-1)!.pr).toBe(0);
    const sent = net.sent.filter((x) => x.from === O).length;
    await run(all, clock, 5);
    expect(net.sent.filter((x) => x.from === O).length).toBe(sent);
  });

  it('a rescuer in observe mode declines SOS, saying what it would have granted', async () => {
    const { clock, origin, all } = community({ a: { rescue: { mode: 'observe' } } });
    origin.controller.observe(sample('heavy', 1.2, 1200));
    await run(all, clock, 1);
    expect(origin.db.sessions()[0]!.reason).toMatch(/CTL_ERR_MODE_OBSERVE.*would grant 500/);
  });

  it('off (the kill switch) shuts every session down and declines SOS', async () => {
    const { net, clock, origin, a, all } = community();
    origin.controller.observe(sample('heavy', 1.2, 1200));
    await run(all, clock, 6);
    expect(originSessions(origin).length).toBeGreaterThan(0);
    origin.controller.setMode('off');
    await run(all, clock, 1);
    expect(originSessions(origin, ['requested', 'active', 'ending'])).toEqual([]);
    expect(net.count('SHUTDOWN', O)).toBeGreaterThan(0);
    expect(a.table.list('rescuer', ['active'])).toEqual([]);
    expect(origin.redirects.at(-1)!.pr).toBe(0);
    a.controller.setMode('off');
    const answer = a.controller.onMessage({
      v: 1,
      type: 'SOS',
      from: O,
      to: A,
      ts: Date.now(),
      nonce: 'x'.repeat(22),
      body: {
        origin: { id: O, names: [O], front_url: 'http://origin.example' },
        content: 'static',
        want_rate: 10,
      },
    });
    expect(answer).toMatchObject({ accepted: false, code: 'CTL_ERR_MODE_OFF' });
  });
});

describe("early SOS from the traffic predictor (WWW'03)", () => {
  it('asks for rescue while still in the desired region when the predicted bound exceeds the upper threshold', async () => {
    const net = new LoopNet();
    const clock = new ManualClock();
    const o = member(
      net,
      clock,
      memberConfig(O, [A], { rescue: { predictor: { enabled: true, sub_intervals: 5 } } }),
    );
    const r = member(net, clock, memberConfig(A, [O]));
    r.controller.observe(sample('light', 0.1));
    for (const rate of [500, 600, 700, 780, 790]) {
      o.controller.observe(sample('desired', 0.6, rate));
      await run([o, r], clock, 1, 1000);
    }
    expect(o.controller.status().predicted_rate).toBeGreaterThan(800);
    expect(net.count('SOS', O, A)).toBe(1);
    expect(o.db.history(o.db.sessions()[0]!.key)[0]!.reason).toMatch(/^predicted heavy/);
    // Not heavy: Pr stays 0 until the load really is heavy.
    expect(o.controller.pr).toBe(0);
  });
});

describe('state file', () => {
  it('never reuses a vhost number across restarts', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dotslash-ctl-'));
    try {
      const file = join(dir, 'state.db');
      const vhosts: string[] = [];
      for (let i = 0; i < 2; i++) {
        const net = new LoopNet();
        const clock = new ManualClock();
        const db = StateDb.open(file);
        db.closeOpenSessions('daemon restarted', clock.wall());
        const o = member(net, clock, memberConfig(O, [A]));
        const r = member(net, clock, memberConfig(A, [O]), db);
        r.controller.observe(sample('light', 0.1));
        o.controller.observe(sample('heavy', 1.2, 1000));
        await run([o, r], clock, 1);
        vhosts.push(r.table.list('rescuer')[0]!.vhost!);
        await r.controller.close({ shutdown: false });
        db.close();
      }
      expect(vhosts).toEqual(['vh1.a.example', 'vh2.a.example']);
      const db = StateDb.open(file);
      expect(db.sessions().map((x) => [x.vhost, x.state, x.reason])).toEqual([
        ['vh1.a.example', 'closed', 'daemon restarted'],
        ['vh2.a.example', 'active', null],
      ]);
      db.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
