// How many requests are redirected, and where: Pr, smooth WRR over the sessions' Rr, token
// buckets that cap each session at its Rr, and snapshot swaps. Time is an injected clock.
import { describe, expect, it } from 'vitest';
import {
  Redirector,
  redirectSnapshot,
  type RedirectSession,
  type RedirectSnapshot,
} from '../../../proxy/redirect/index.js';

class Clock {
  t = 0;
  readonly now = (): number => this.t;
}

function session(id: string, rate: number): RedirectSession {
  return { id, vhost: `vh1.${id}.example`, scheme: 'http', rate };
}

function make(snap: Partial<RedirectSnapshot>, clock = new Clock(), random?: () => number) {
  const r = new Redirector(redirectSnapshot(snap), { now: clock.now, ...(random ? { random } : {}) });
  return { r, clock };
}

/** Decide `n` anonymous GETs; count redirects by session host. */
function run(r: Redirector, n: number, onEach?: (i: number) => void): Map<string, number> {
  const by = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    onEach?.(i);
    const loc = r.decideRaw('GET', `/item/${i}`, ['Host', 'origin.example']);
    if (loc === null) continue;
    const host = new URL(loc).host;
    by.set(host, (by.get(host) ?? 0) + 1);
  }
  return by;
}

const total = (m: Map<string, number>): number => [...m.values()].reduce((a, b) => a + b, 0);

describe('redirect probability', () => {
  it('Pr 0 never redirects, even with sessions and tokens', () => {
    const { r, clock } = make({ pr: 0, sessions: [session('a', 1e6)] });
    clock.t = 10_000;
    expect(total(run(r, 10_000))).toBe(0);
    expect(r.stats.redirects).toBe(0);
  });

  it('Pr 1 redirects every eligible request while there are tokens', () => {
    const { r, clock } = make({ pr: 1, sessions: [session('a', 1e6)] });
    expect(total(run(r, 10_000, () => (clock.t += 1)))).toBe(10_000);
    expect(r.stats.redirects).toBe(10_000);
    expect(r.stats.noTokens).toBe(0);
  });

  it('Pr 0.3 redirects about 30% (seeded draws)', () => {
    let seed = 42;
    const random = (): number => {
      // mulberry32
      seed = (seed + 0x6d2b79f5) | 0;
      let x = Math.imul(seed ^ (seed >>> 15), 1 | seed);
      x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
      return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
    };
    const { r, clock } = make({ pr: 0.3, sessions: [session('a', 1e6)] }, new Clock(), random);
    const n = 20_000;
    const got = total(run(r, n, () => (clock.t += 1)));
    // Binomial(20000, 0.3): sd = 65; 5 sd of slack.
    expect(Math.abs(got - 0.3 * n)).toBeLessThan(325);
  });

  it('no session with a rate means nothing is redirected', () => {
    const { r, clock } = make({ pr: 1, sessions: [session('a', 0)] });
    clock.t = 60_000;
    expect(total(run(r, 100))).toBe(0);
  });
});

describe('weighted round robin on Rr', () => {
  it('spreads redirects exactly in proportion to the rates, interleaved', () => {
    const { r, clock } = make({
      pr: 1,
      sessions: [session('a', 1000), session('b', 2000), session('c', 3000)],
    });
    clock.t = 1_000; // every bucket full: 1 s of its rate
    const order: string[] = [];
    for (let i = 0; i < 6; i++) order.push(new URL(r.decideRaw('GET', '/', [])!).host);
    // nginx smooth WRR for weights 1:2:3 -> c b a c b c (no run of one peer longer than needed).
    expect(order).toEqual([
      'vh1.c.example',
      'vh1.b.example',
      'vh1.a.example',
      'vh1.c.example',
      'vh1.b.example',
      'vh1.c.example',
    ]);
    const by = run(r, 600);
    expect(by.get('vh1.a.example')).toBe(100);
    expect(by.get('vh1.b.example')).toBe(200);
    expect(by.get('vh1.c.example')).toBe(300);
  });

  it('keeps proportions within 1% over many decisions with fractional rates', () => {
    const rates = { a: 12.5, b: 37.5, c: 150 };
    const { r, clock } = make({
      pr: 1,
      sessions: Object.entries(rates).map(([id, rate]) => session(id, rate)),
    });
    clock.t = 1_000_000;
    // Demand well below the total rate (1 request per 10 ms = 100/s against 200/s): no bucket limits.
    const by = run(r, 50_000, () => (clock.t += 10));
    const sum = 200;
    for (const [id, rate] of Object.entries(rates)) {
      const share = (by.get(`vh1.${id}.example`) ?? 0) / 50_000;
      expect(Math.abs(share - rate / sum), id).toBeLessThan(0.01);
    }
  });
});

describe('token buckets', () => {
  it('never sends a session more than its Rr per second; the rest is served locally', () => {
    const { r, clock } = make({ pr: 1, sessions: [session('a', 50), session('b', 150)] });
    // Demand: 1000 req/s for 10 s (one request per ms), far above the 200/s the rescuers allow.
    const perSecond: Array<Record<string, number>> = [];
    for (let s = 0; s < 10; s++) {
      const by = run(r, 1000, () => (clock.t += 1));
      perSecond.push({ a: by.get('vh1.a.example') ?? 0, b: by.get('vh1.b.example') ?? 0 });
    }
    for (const [i, sec] of perSecond.entries()) {
      // Buckets start empty, so even the first second stays near Rr. A one-second window can
      // hold one redirect more than Rr: tokens a session earned while WRR picked the other
      // one carry across the window's edge.
      expect(sec.a, `second ${i}`).toBeLessThanOrEqual(51);
      expect(sec.b, `second ${i}`).toBeLessThanOrEqual(151);
      expect(sec.a, `second ${i}`).toBeGreaterThanOrEqual(49);
      expect(sec.b, `second ${i}`).toBeGreaterThanOrEqual(149);
    }
    // Over the 10 s, never above 10 s of Rr.
    const a = perSecond.reduce((n, s) => n + s.a!, 0);
    const b = perSecond.reduce((n, s) => n + s.b!, 0);
    expect(a).toBeLessThanOrEqual(500);
    expect(b).toBeLessThanOrEqual(1500);
    expect(a + b).toBeGreaterThanOrEqual(1995);
    expect(r.stats.sessions).toEqual({ a: { redirects: a, rate: 50 }, b: { redirects: b, rate: 150 } });
    expect(r.stats.noTokens).toBe(10_000 - a - b);
  });

  it('after a quiet spell allows a burst of at most 1 s of Rr, then Rr again', () => {
    const { r, clock } = make({ pr: 1, sessions: [session('a', 100)] });
    clock.t = 60_000; // a minute idle: the bucket holds 1 s worth, no more
    expect(total(run(r, 1000))).toBe(100);
    clock.t += 500;
    expect(total(run(r, 1000))).toBe(50);
  });

  it('a session with an empty bucket sits out; the others share in their own proportions', () => {
    const { r, clock } = make({ pr: 1, sessions: [session('a', 1000), session('b', 3000)] });
    clock.t = 1_000; // a holds 1000 tokens, b 3000
    // c joins with an empty bucket and the largest rate: at this instant it gets nothing.
    r.swap(
      redirectSnapshot({ pr: 1, sessions: [session('a', 1000), session('b', 3000), session('c', 6000)] }),
    );
    const by = run(r, 2000);
    expect(by.get('vh1.c.example')).toBeUndefined();
    expect(by.get('vh1.a.example')).toBe(500);
    expect(by.get('vh1.b.example')).toBe(1500);
    // 10 ms later c has 60 tokens and, being heaviest, takes most picks until it runs dry.
    clock.t += 10;
    const next = run(r, 200);
    expect(next.get('vh1.c.example')).toBe(60);
  });

  it('returns null (serve locally) when no session has a token', () => {
    const { r } = make({ pr: 1, sessions: [session('a', 5)] });
    expect(r.decideRaw('GET', '/', [])).toBeNull(); // a new session's bucket starts empty
    expect(r.stats.noTokens).toBe(1);
  });
});

describe('swap', () => {
  it('is all or nothing: an invalid snapshot throws and the old one stays in force', () => {
    const { r, clock } = make({ pr: 1, sessions: [session('a', 1e6)] });
    clock.t = 1_000;
    const before = r.snapshot;
    const bad: RedirectSnapshot[] = [
      redirectSnapshot({ pr: 1.5, sessions: [session('b', 1)] }),
      redirectSnapshot({ pr: Number.NaN }),
      redirectSnapshot({ pr: 1, sessions: [session('b', 1), { ...session('c', -1) }] }),
      redirectSnapshot({ pr: 1, sessions: [session('b', 1), session('b', 2)] }),
      redirectSnapshot({
        pr: 1,
        sessions: [{ id: 'x', vhost: 'evil.example/path', scheme: 'http', rate: 1 }],
      }),
      redirectSnapshot({
        pr: 1,
        sessions: [{ id: 'x', vhost: 'a.example', scheme: 'http', port: 70000, rate: 1 }],
      }),
      redirectSnapshot({
        pr: 1,
        sessions: [{ id: 'x', vhost: 'a.example', scheme: 'ftp' as 'http', rate: 1 }],
      }),
      redirectSnapshot({ pr: 1, excludedPaths: ['no-slash'] }),
      redirectSnapshot({ pr: 1, sessionCookies: ['bad name'] }),
      redirectSnapshot({ pr: 1, rescuerMarkerHeader: 'bad header' }),
    ];
    for (const b of bad) expect(() => r.swap(b)).toThrow(TypeError);
    expect(r.snapshot).toBe(before);
    expect(r.decideRaw('GET', '/x', [])).toBe('http://vh1.a.example/x');
  });

  it('takes effect for the next decision: new sessions, new Pr', () => {
    const { r, clock } = make({ pr: 1, sessions: [session('a', 1e6)] });
    clock.t = 1_000;
    expect(r.decideRaw('GET', '/x', [])).toBe('http://vh1.a.example/x');
    r.swap(redirectSnapshot({ pr: 1, sessions: [session('b', 1e6)] }));
    clock.t = 2_000;
    expect(r.decideRaw('GET', '/x', [])).toBe('http://vh1.b.example/x');
    expect(Object.keys(r.stats.sessions)).toEqual(['b']);
    r.swap(redirectSnapshot({ pr: 0, sessions: [session('b', 1e6)] }));
    expect(r.decideRaw('GET', '/x', [])).toBeNull();
  });

  it('keeps a staying session’s bucket and counters, so frequent swaps cannot exceed Rr', () => {
    const { r, clock } = make({ pr: 1, sessions: [session('a', 100)] });
    // The controller re-sends the same snapshot every 100 ms; demand 1000/s for 5 s.
    let redirected = 0;
    for (let i = 0; i < 5000; i++) {
      clock.t += 1;
      if (i % 100 === 0) r.swap(redirectSnapshot({ pr: 1, sessions: [session('a', 100)] }));
      if (r.decideRaw('GET', '/', []) !== null) redirected++;
    }
    expect(redirected).toBeLessThanOrEqual(500);
    expect(redirected).toBeGreaterThanOrEqual(498);
    expect(r.stats.sessions.a!.redirects).toBe(redirected);
  });

  it('a lower rate for a staying session clamps its stored tokens at once', () => {
    const { r, clock } = make({ pr: 1, sessions: [session('a', 1000)] });
    clock.t = 10_000; // bucket full: 1000 tokens
    r.swap(redirectSnapshot({ pr: 1, sessions: [session('a', 10)] }));
    expect(total(run(r, 1000))).toBe(10);
  });
});
