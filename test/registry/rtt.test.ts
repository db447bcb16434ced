// The origin's RTT table (src/registry/rtt.ts): EWMA per member, at most 256 members (least
// recently measured dropped first), measurements forgotten past their age, and a snapshot the
// registry's lookup schema accepts.
import { describe, expect, it } from 'vitest';
import { lookupSchema } from '../../src/registry/messages.js';
import { MAX_RTT_ENTRIES, MAX_RTT_MS, RTT_ALPHA, RttTable } from '../../src/registry/rtt.js';

function table(opts: { maxAgeMs?: number; maxEntries?: number } = {}) {
  const clock = { t: 1_000 };
  const t = new RttTable({
    maxAgeMs: opts.maxAgeMs ?? 60_000,
    maxEntries: opts.maxEntries,
    now: () => clock.t,
  });
  return { t, clock };
}

describe('RttTable', () => {
  it('starts at the first sample and smooths later ones by EWMA', () => {
    const { t } = table();
    expect(t.get('a.test')).toBeUndefined();
    t.record('a.test', 100);
    expect(t.get('a.test')).toBe(100);
    t.record('a.test', 200);
    expect(t.get('a.test')).toBeCloseTo(100 + RTT_ALPHA * 100, 9);
    for (let i = 0; i < 40; i++) t.record('a.test', 10);
    expect(t.get('a.test')).toBeCloseTo(10, 3); // converges on a steady RTT
  });

  it('ignores samples that are not a time and clamps absurd ones to what a lookup accepts', () => {
    const { t } = table();
    t.record('a.test', Number.NaN);
    t.record('a.test', -5);
    t.record('a.test', Number.POSITIVE_INFINITY);
    expect(t.get('a.test')).toBeUndefined();
    t.record('a.test', 10 * MAX_RTT_MS);
    expect(t.get('a.test')).toBe(MAX_RTT_MS);
  });

  it('keeps at most 256 members, dropping the least recently measured', () => {
    const { t, clock } = table();
    for (let i = 0; i < MAX_RTT_ENTRIES; i++) {
      t.record(`m${i}.test`, i);
      clock.t += 1;
    }
    t.record('m0.test', 1); // measured again: now the newest
    clock.t += 1;
    for (let i = 0; i < 10; i++) t.record(`new${i}.test`, 5);
    expect(t.size).toBe(MAX_RTT_ENTRIES);
    expect(t.get('m0.test')).toBeDefined();
    for (let i = 1; i <= 10; i++) expect(t.get(`m${i}.test`), `m${i}`).toBeUndefined();
    expect(t.get('m11.test')).toBe(11);
    expect(Object.keys(t.snapshot())).toHaveLength(MAX_RTT_ENTRIES);
  });

  it('never keeps more than 256 even when asked to', () => {
    const { t } = table({ maxEntries: 10_000 });
    for (let i = 0; i < 300; i++) t.record(`m${i}.test`, 1);
    expect(t.size).toBe(MAX_RTT_ENTRIES);
  });

  it('forgets a measurement older than the age limit, and starts afresh after', () => {
    const { t, clock } = table({ maxAgeMs: 10_000 });
    t.record('old.test', 300);
    clock.t += 6_000;
    t.record('young.test', 20);
    clock.t += 4_000; // old.test exactly at the limit: still known
    expect(t.get('old.test')).toBe(300);
    clock.t += 1;
    expect(t.get('old.test')).toBeUndefined();
    expect(t.measuredAt('young.test')).toBe(7_000);
    expect(t.snapshot()).toEqual({ 'young.test': 20 });
    t.record('old.test', 50); // no EWMA with the forgotten 300
    expect(t.get('old.test')).toBe(50);
    clock.t += 20_000;
    expect(t.size).toBe(0);
    expect(t.snapshot()).toEqual({});
  });

  it('snapshots to what the registry lookup schema accepts, rounded to 0.1 ms', () => {
    const { t } = table();
    for (let i = 0; i < 300; i++) t.record(`m${i}.test`, i + 0.123);
    t.record('slow.test', 59_999.99);
    const snap = t.snapshot();
    expect(snap['m299.test']).toBe(299.1);
    expect(snap['slow.test']).toBe(MAX_RTT_MS);
    const parsed = lookupSchema.safeParse({ community: 'default', origin: 'o.test', rtt_ms: snap });
    expect(parsed.success, JSON.stringify(parsed.error?.issues)).toBe(true);
  });

  it('forget() drops one member', () => {
    const { t } = table();
    t.record('a.test', 1);
    t.record('b.test', 2);
    t.forget('a.test');
    expect(t.snapshot()).toEqual({ 'b.test': 2 });
  });
});
