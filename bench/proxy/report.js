// Formats a proxy bench result: the console table, the PASS/MISS targets, and the dated
// section appended to bench/RESULTS.md (generated from the measured numbers, never typed in).
import fs from 'node:fs';

const fmtInt = (n) => (n === null || n === undefined ? '-' : Math.round(n).toLocaleString('en-US'));
const fmtMs = (n) => (n === null || n === undefined ? '-' : n.toFixed(2));
const fmtRatio = (n) => (n === null || n === undefined || !Number.isFinite(n) ? '-' : n.toFixed(2));
// One decimal, so a ratio just under a target (49.97%) does not print as the target itself.
const fmtPct = (n) => `${(Math.floor(n * 1000) / 10).toFixed(1)}%`;

/** Rows of the throughput table, one per body size. */
export function throughputRows(result) {
  return result.sizes.map((size) => {
    const s = result.throughput[size];
    return {
      size,
      direct: s.direct,
      nginx: s.nginx,
      ours: s.ours,
      oursNginx: s.ours.rps / s.nginx.rps,
      cpuRatio: s.ours.cpuUs && s.nginx.cpuUs ? s.nginx.cpuUs / s.ours.cpuUs : null,
      oursDirect: s.ours.rps / s.direct.rps,
      nginxDirect: s.nginx.rps / s.direct.rps,
    };
  });
}

/** Markdown table (also printed on the console: it reads fine as plain text). */
export function throughputTable(result) {
  const lines = [
    '| body | direct req/s | nginx req/s | ours req/s | direct p99 ms | nginx p99 ms | ours p99 ms | ours/nginx | ours/direct | nginx/direct | nginx CPU µs/req | ours CPU µs/req | CPU nginx/ours |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const r of throughputRows(result)) {
    lines.push(
      `| ${r.size} | ${fmtInt(r.direct.rps)} | ${fmtInt(r.nginx.rps)} | ${fmtInt(r.ours.rps)} | ` +
        `${fmtMs(r.direct.p99)} | ${fmtMs(r.nginx.p99)} | ${fmtMs(r.ours.p99)} | ` +
        `${fmtRatio(r.oursNginx)} | ${fmtRatio(r.oursDirect)} | ${fmtRatio(r.nginxDirect)} | ` +
        `${fmtInt(r.nginx.cpuUs)} | ${fmtInt(r.ours.cpuUs)} | ${fmtRatio(r.cpuRatio)} |`,
    );
  }
  return lines.join('\n');
}

/** Diagnostic variants (--variants): req/s and the ratio to the full daemon and to nginx. */
export function variantsTable(result) {
  const names = Object.keys(result.variants ?? {});
  if (names.length === 0) return '';
  const lines = [
    '| body | variant | req/s | p99 ms | vs ours (daemon) | vs nginx | CPU µs/req | CPU nginx/variant |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const size of result.sizes) {
    const t = result.throughput[size];
    for (const n of names) {
      lines.push(
        `| ${size} | ${n}: ${result.variants[n]} | ${fmtInt(t[n].rps)} | ${fmtMs(t[n].p99)} | ` +
          `${fmtRatio(t[n].rps / t.ours.rps)} | ${fmtRatio(t[n].rps / t.nginx.rps)} | ` +
          `${fmtInt(t[n].cpuUs)} | ${fmtRatio(t[n].cpuUs && t.nginx.cpuUs ? t.nginx.cpuUs / t[n].cpuUs : null)} |`,
      );
    }
  }
  return lines.join('\n');
}

/** Where each proxy's CPU per request goes: user space vs kernel (system calls, loopback TCP). */
export function cpuSplitTable(result) {
  const names = Object.keys(result.throughput[result.sizes[0]]).filter((n) => n !== 'direct');
  const lines = [
    '| body | proxy | CPU µs/req | user µs/req | kernel µs/req |',
    '| --- | --- | ---: | ---: | ---: |',
  ];
  for (const size of result.sizes) {
    for (const n of names) {
      const t = result.throughput[size][n];
      if (t.cpuUs === null || t.sysUs === null || t.sysUs === undefined) continue;
      lines.push(
        `| ${size} | ${n} | ${fmtInt(t.cpuUs)} | ${fmtInt(t.cpuUs - t.sysUs)} | ${fmtInt(t.sysUs)} |`,
      );
    }
  }
  return lines.length > 2 ? lines.join('\n') : '';
}

const fmtBusy = (x) => (x === null || x === undefined ? '-' : `${Math.round(x * 100)}%`);
const fmtCpu = (r) =>
  r && r.cpuUs !== null && r.cpuUs !== undefined ? `${fmtInt(r.cpuUs)} / ${fmtBusy(r.busy)}` : '-';

export function latencyTable(result) {
  const lines = [
    '| body | fixed rate req/s | direct p50 / p99 ms | nginx p50 / p99 ms | ours p50 / p99 ms | nginx added p99 ms | ours added p99 ms | nginx CPU µs/req / core busy | ours CPU µs/req / core busy | machine busy (direct/nginx/ours) | errors (direct/nginx/ours) |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const size of result.sizes) {
    const l = result.latency[size];
    if (!l) continue;
    lines.push(
      `| ${size} | ${fmtInt(l.rate)} | ${fmtMs(l.direct.p50)} / ${fmtMs(l.direct.p99)} | ` +
        `${l.nginx ? `${fmtMs(l.nginx.p50)} / ${fmtMs(l.nginx.p99)}` : '-'} | ` +
        `${fmtMs(l.ours.p50)} / ${fmtMs(l.ours.p99)} | ${fmtMs(l.nginxAddedP99)} | ${fmtMs(l.addedP99)} | ` +
        `${fmtCpu(l.nginx)} | ${fmtCpu(l.ours)} | ` +
        `${fmtBusy(l.direct.machineBusy)}/${fmtBusy(l.nginx?.machineBusy)}/${fmtBusy(l.ours.machineBusy)} | ` +
        `${l.direct.errors}/${l.nginx ? l.nginx.errors : '-'}/${l.ours.errors} |`,
    );
  }
  return lines.join('\n');
}

/** The anchor under the same test: nginx at half of its own max rate. */
export function anchorTable(result) {
  const rows = result.sizes.map((size) => [size, result.latency[size]?.nginxOwnHalf]).filter(([, o]) => o);
  if (rows.length === 0) return '';
  const lines = [
    '| body | nginx max req/s (wrk) | fixed rate req/s | direct p50 / p99 ms | nginx p50 / p99 ms | nginx added p99 ms | nginx CPU µs/req / core busy | machine busy (direct/nginx) | errors (direct/nginx) |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const [size, o] of rows) {
    lines.push(
      `| ${size} | ${fmtInt(result.throughput[size].nginx.rps)} | ${fmtInt(o.rate)} | ` +
        `${fmtMs(o.direct.p50)} / ${fmtMs(o.direct.p99)} | ${fmtMs(o.nginx.p50)} / ${fmtMs(o.nginx.p99)} | ` +
        `${fmtMs(o.addedP99)} | ${fmtCpu(o.nginx)} | ${fmtBusy(o.direct.machineBusy)}/${fmtBusy(o.nginx.machineBusy)} | ` +
        `${o.direct.errors}/${o.nginx.errors} |`,
    );
  }
  return lines.join('\n');
}

/** How far below direct our p99 may come out before the direct run is taken as disturbed. */
const ANCHOR_SLACK_MS = 5;

/** The issue's targets, each PASS, MISS or (pass null) NO VERDICT, with the measured value. */
export function targets(result) {
  const t = [];
  const r4 = result.throughput['4k'];
  const r100 = result.throughput['100k'];
  const cpuNote = (r) =>
    r.ours.cpuUs && r.nginx.cpuUs
      ? ` (CPU per request: nginx ${fmtInt(r.nginx.cpuUs)} µs, ours ${fmtInt(r.ours.cpuUs)} µs, ` +
        `i.e. ${fmtPct(r.nginx.cpuUs / r.ours.cpuUs)} of nginx's efficiency)`
      : '';
  if (r4) {
    const v = r4.ours.rps / r4.nginx.rps;
    t.push({ name: 'ours >= 50% of nginx req/s at 4 KiB', value: fmtPct(v) + cpuNote(r4), pass: v >= 0.5 });
  }
  if (r100) {
    const v = r100.ours.rps / r100.nginx.rps;
    t.push({
      name: 'ours >= 85% of nginx req/s at 100 KiB',
      value: fmtPct(v) + cpuNote(r100),
      pass: v >= 0.85,
    });
  }
  for (const size of result.sizes) {
    const l = result.latency[size];
    if (!l) continue;
    const rounds = (x) => (x.runs ?? []).map((r) => fmtMs(r.p99)).join(', ');
    // A proxy hop cannot take latency away: when the chosen rounds put ours well below direct,
    // direct's round was disturbed (e.g. its load generator starved of CPU), and a negative
    // "added" p99 would pass the target on a broken anchor.
    const anchorDisturbed = l.addedP99 < -ANCHOR_SLACK_MS;
    t.push({
      name: `p99 added latency <= 2 ms at half our max rate (${size}, ${fmtInt(l.rate)} req/s)`,
      value:
        `${fmtMs(l.addedP99)} ms` +
        (l.nginx ? ` (nginx at the same rate: ${fmtMs(l.nginxAddedP99)} ms` : '') +
        (l.nginxOwnHalf
          ? `; nginx at half its own max, ${fmtInt(l.nginxOwnHalf.rate)} req/s: ${fmtMs(l.nginxOwnHalf.addedP99)} ms)`
          : l.nginx
            ? ')'
            : '') +
        `; p99 of each round, ms: direct ${rounds(l.direct)}; ours ${rounds(l.ours)}` +
        (anchorDisturbed
          ? `; no verdict: direct's p99 (${fmtMs(l.direct.p99)} ms) exceeds ours by more than ${ANCHOR_SLACK_MS} ms, so direct's run was disturbed`
          : ''),
      pass: anchorDisturbed ? null : l.addedP99 <= 2 && l.direct.errors === 0 && l.ours.errors === 0,
    });
  }
  return t;
}

const verdict = (pass) => (pass === null ? 'NO VERDICT' : pass ? 'PASS' : 'MISS');

export function targetLines(result) {
  return targets(result)
    .map((t) => `- ${verdict(t.pass)}: ${t.name}: ${t.value}`)
    .join('\n');
}

function pickText(pick) {
  return pick === 'best'
    ? 'the best round per target (highest req/s; lowest p99 at a fixed rate), the least disturbed by other work'
    : 'the median round per target';
}

/** Notes on how the numbers were taken, generated from the run's own settings. */
function methodLines(result) {
  const m = result.method;
  const noise = result.noise;
  return [
    `- Command: \`${result.command}\``,
    `- Machine: ${result.machine.nproc} CPUs, ${result.machine.cpu}; Node ${result.machine.node}; ` +
      `${result.machine.nginx}; ${result.machine.wrk}; load average at start ${result.machine.loadavg}`,
    `- Our proxy: ${result.ours.how}` +
      (result.ours.build
        ? `; dist/ built ${result.ours.build.distBuilt}, proxy/ at ${result.ours.build.proxyCommit}` +
          (result.ours.build.proxyDirty ? ' (with uncommitted changes in the tree)' : '')
        : ''),
    `- Throughput: wrk -t${m.threads} -c${m.connections}, ${m.warmupS} s warm-up then ${m.durationS} s measured, ` +
      `no pipelining; ${m.rounds} round(s), target order rotated each round; shown: ${pickText(m.pick)}.`,
    `- Latency: open-loop fixed-rate load (${m.loadgen ?? 'bench/proxy/loadgen.js'}, latency from each request's scheduled ` +
      `send time, exact percentiles) at half our measured max req/s, ${m.connections} connections, ` +
      `${m.warmupS} s warm-up + ${m.durationS} s, against direct, nginx (reference) and ours; ${m.rounds} round(s); shown: ${pickText(m.pick)}. ` +
      'added p99 = p99(proxy) - p99(direct). At each fixed rate, the CPU per request and the share of one core ' +
      'used by the proxy under test (all its processes, median of the rounds), and how busy the whole machine was ' +
      '(all CPUs, every process). Then the same test for nginx at half of its own max req/s, against direct at that rate.',
    '- CPU µs/req: user+system CPU time of the proxy process tree (nginx master+worker; our Node process, all ' +
      'threads) over a measured run divided by the requests wrk completed; median of the rounds. Unlike req/s it ' +
      'hardly changes when other work takes CPU away, so on a shared machine it is the steadier comparison.',
    `- CPU pinning: ${m.pinning}`,
    `- Other load: ${m.quiet}; ${m.nice}`,
    `- Access logs: ${result.accessLogs}`,
    `- Other processes on the machine used ${fmtPct(noise.max)} of all CPUs at worst during a measurement ` +
      `(mean ${fmtPct(noise.mean)}); above ~5% the numbers are disturbed by work that is not this bench.`,
  ].join('\n');
}

export function consoleReport(result) {
  return [
    '',
    `Throughput (wrk, ${result.method.pick} of ${result.method.rounds} round(s)):`,
    throughputTable(result),
    '',
    ...(variantsTable(result) ? ['Diagnostic variants (same run):', variantsTable(result), ''] : []),
    ...(cpuSplitTable(result)
      ? ['CPU per request, user vs kernel (medians of the rounds):', cpuSplitTable(result), '']
      : []),
    'Added latency at a fixed rate (half our max):',
    latencyTable(result),
    '',
    ...(anchorTable(result)
      ? ['The same test for the anchor: nginx at half of its own max rate:', anchorTable(result), '']
      : []),
    'Targets:',
    targetLines(result),
    '',
    methodLines(result),
    '',
  ].join('\n');
}

/** Append a dated section to bench/RESULTS.md. */
export function appendResults(file, result) {
  const header = fs.existsSync(file)
    ? ''
    : '# Benchmark results\n\nEach section below is appended by a bench script from its own measurements; numbers are never edited by hand.\n';
  const section = [
    '',
    `## Proxy bench, ${result.date}`,
    '',
    methodLines(result),
    '',
    throughputTable(result),
    '',
    ...(variantsTable(result) ? [variantsTable(result), ''] : []),
    ...(cpuSplitTable(result) ? [cpuSplitTable(result), ''] : []),
    latencyTable(result),
    '',
    ...(anchorTable(result)
      ? ['nginx at half of its own max rate (the target applied to the anchor):', '', anchorTable(result), '']
      : []),
    targetLines(result),
    '',
  ].join('\n');
  fs.appendFileSync(file, header + section);
}
