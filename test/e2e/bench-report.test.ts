// The proxy bench's verdicts (bench/proxy/report.js): a p99 target line shows every round, and
// a disturbed anchor (direct slower than ours by more than the slack) gives no verdict rather
// than a pass on a negative "added" latency.
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { REPO } from './helpers.js';

interface Target {
  name: string;
  value: string;
  pass: boolean | null;
}
interface Report {
  targets(result: unknown): Target[];
  targetLines(result: unknown): string;
}
// A plain-JS bench module: imported by URL so the type checker does not look for its types.
const report = (await import(pathToFileURL(join(REPO, 'bench/proxy/report.js')).href)) as Report;

const fixed = (p99s: number[]) => ({
  p50: 1,
  p99: Math.min(...p99s),
  errors: 0,
  runs: p99s.map((p99) => ({ p50: 1, p99, errors: 0 })),
});

/** A run.js result with only the fixed-rate latency part, for one size. */
function result(direct: number[], ours: number[]) {
  const d = fixed(direct);
  const o = fixed(ours);
  return {
    sizes: ['100k'],
    throughput: {},
    latency: { '100k': { rate: 4000, direct: d, ours: o, nginx: null, addedP99: o.p99 - d.p99 } },
  };
}

describe('bench/proxy report: the p99 target', () => {
  it('passes within 2 ms and lists the p99 of every round', () => {
    const [t] = report.targets(result([3.1, 4.2, 3.5], [4.0, 9.9, 4.5]));
    expect(t!.pass).toBe(true);
    expect(t!.value).toContain('0.90 ms');
    expect(t!.value).toContain('direct 3.10, 4.20, 3.50; ours 4.00, 9.90, 4.50');
    expect(report.targetLines(result([3.1], [4.0]))).toMatch(/^- PASS: p99 added latency/);
  });

  it('misses above 2 ms', () => {
    const [t] = report.targets(result([3.0], [5.5]));
    expect(t!.pass).toBe(false);
    expect(report.targetLines(result([3.0], [5.5]))).toMatch(/^- MISS: /);
  });

  it('gives no verdict when direct was slower than ours by more than 5 ms', () => {
    // The --pin split run of 2026-11-23 20:12: direct's load generator starved of CPU.
    const r = result([1118.67, 4453.05, 687.39], [23.29, 11.95, 26.04]);
    const [t] = report.targets(r);
    expect(t!.pass).toBeNull();
    expect(t!.value).toContain("no verdict: direct's p99 (687.39 ms) exceeds ours by more than 5 ms");
    expect(report.targetLines(r)).toMatch(/^- NO VERDICT: /);
  });

  it('still judges a small negative difference (noise between runs)', () => {
    expect(report.targets(result([10.77], [10.48]))[0]!.pass).toBe(true);
  });
});
