// `npm run bench:dns` (node bench/dns/run.js): queries/s of our embedded DNS server against BIND
// 9 (`named -n 1`: one worker, as nginx gets one) serving the same zone (bench/dns/zone.js), in
// one run. Each server is pinned to the same core, dnsperf to the other; the same query file
// (A / AAAA / NXDOMAIN mix) for the same duration, rounds alternated so machine noise hits both.
// Prints qps, loss and the ratio ours/BIND; PASS when ours >= 50% of BIND with < 0.5% loss;
// appends a dated section to bench/RESULTS.md (--no-record: don't).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import {
  cpuSnapshot,
  foreignCpu,
  freePort,
  killAll,
  killAllSync,
  say,
  sleep,
  start,
  treeCpuMs,
  waitQuiet,
} from '../proxy/procs.js';
import { queryFile, zoneFile, ZONE } from './zone.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');

const { values: opt } = parseArgs({
  options: {
    duration: { type: 'string', default: '10' },
    rounds: { type: 'string', default: '3' },
    clients: { type: 'string', default: '4' },
    outstanding: { type: 'string', default: '100' },
    'quiet-wait': { type: 'string', default: '120' },
    'no-record': { type: 'boolean', default: false },
    quick: { type: 'boolean', default: false },
  },
});
if (opt.quick) Object.assign(opt, { duration: '4', rounds: '1', 'quiet-wait': '0' });
const durationS = Number(opt.duration);
const rounds = Number(opt.rounds);
const TARGET_RATIO = 0.5;
const TARGET_LOSS = 0.005;
// Servers on one core, the load generator on the other (2-core machine); one core if that is all.
const SERVER_CPU = os.cpus().length > 1 ? '1' : '0';
const LOAD_CPU = '0';

function requireTools() {
  const missing = [];
  for (const [tool, pkg] of [
    ['named', 'bind9'],
    ['dnsperf', 'dnsperf'],
    ['dig', 'bind9-dnsutils'],
  ]) {
    try {
      execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
    } catch {
      missing.push(`${tool} (apt-get install ${pkg})`);
    }
  }
  if (missing.length > 0) throw new Error(`bench:dns needs ${missing.join(', ')}`);
  if (!fs.existsSync(path.join(root, 'dist/dns/index.js')))
    throw new Error('dist/dns is missing: run npm run build');
}

async function waitAnswering(name, host, port, child) {
  for (let i = 0; i < 100; i++) {
    if (child.exitCode !== null) throw new Error(`${name} exited (code ${child.exitCode}) before answering`);
    try {
      const out = execFileSync(
        'dig',
        [`@${host}`, '-p', String(port), '+short', '+time=1', '+tries=1', `www.${ZONE.name}`, 'A'],
        {
          encoding: 'utf8',
        },
      );
      if (out.trim() === '127.0.0.2') return;
    } catch {
      // Not up yet.
    }
    await sleep(100);
  }
  throw new Error(`${name} did not answer on ${host}:${port}`);
}

async function startOurs(host, port) {
  const child = start('ours', process.execPath, [path.join(here, 'ours.js'), `${host}:${port}`], {
    cpus: SERVER_CPU,
  });
  child.stderr.on('data', (c) => process.stderr.write(`[ours] ${c}`));
  await waitAnswering('ours', host, port, child);
  return child;
}

async function startBind(dir, host, port) {
  fs.writeFileSync(path.join(dir, `${ZONE.name}.zone`), zoneFile());
  const conf = path.join(dir, 'named.conf');
  fs.writeFileSync(
    conf,
    [
      'options {',
      `  directory "${dir}";`,
      `  pid-file "${dir}/named.pid";`,
      `  session-keyfile "${dir}/session.key";`,
      `  managed-keys-directory "${dir}";`,
      `  listen-on port ${port} { ${host}; };`,
      '  listen-on-v6 { none; };',
      '  recursion no;',
      '  allow-query { any; };',
      '  dnssec-validation no;',
      // Same answer content as ours: no NS/glue added to authority/additional.
      '  minimal-responses yes;',
      '  querylog no;',
      '};',
      // No rndc channel: it would take 127.0.0.1:953, which another named on this machine may hold.
      'controls { };',
      `zone "${ZONE.name}" { type primary; file "${dir}/${ZONE.name}.zone"; };`,
      '',
    ].join('\n'),
  );
  const child = start('named', 'named', ['-g', '-n', '1', '-c', conf], { cpus: SERVER_CPU });
  let log = '';
  child.stderr.on('data', (c) => (log += c));
  try {
    await waitAnswering('named', host, port, child);
  } catch (err) {
    throw new Error(`${err.message}\n${log.slice(-2000)}`);
  }
  return child;
}

function dnsperf(host, port, queries) {
  const out = execFileSync(
    'taskset',
    [
      '-c',
      LOAD_CPU,
      'dnsperf',
      '-s',
      host,
      '-p',
      String(port),
      '-d',
      queries,
      '-l',
      String(durationS),
      '-c',
      opt.clients,
      '-q',
      opt.outstanding,
      '-t',
      '2',
    ],
    { encoding: 'utf8', timeout: (durationS + 30) * 1000 },
  );
  const num = (re) => Number(re.exec(out)?.[1] ?? NaN);
  return {
    qps: num(/Queries per second:\s+([\d.]+)/),
    sent: num(/Queries sent:\s+(\d+)/),
    lost: num(/Queries lost:\s+(\d+)/),
    latencyMs: num(/Average Latency \(s\):\s+([\d.]+)/) * 1000,
  };
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

async function main() {
  requireTools();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dotslash-bench-dns-'));
  const queries = path.join(dir, 'queries.txt');
  fs.writeFileSync(queries, queryFile());
  const oursAt = { host: '127.0.0.2', port: await freePort() };
  // named only binds addresses of its interfaces: lo has 127.0.0.1 (the /8 is routed, not assigned).
  const bindAt = { host: '127.0.0.1', port: await freePort() };
  const results = { ours: [], bind: [] };
  const foreign = [];
  try {
    const quiet = Number(opt['quiet-wait']);
    if (quiet > 0) {
      const f = await waitQuiet(quiet * 1000, 0.15);
      say(`other processes use ${(f * 100).toFixed(0)}% of the machine before the run`);
    }
    const ours = await startOurs(oursAt.host, oursAt.port);
    const bind = await startBind(dir, bindAt.host, bindAt.port);
    say(
      `ours ${oursAt.host}:${oursAt.port} (pid ${ours.pid}), named ${bindAt.host}:${bindAt.port} (pid ${bind.pid}), both on cpu ${SERVER_CPU}; dnsperf on cpu ${LOAD_CPU}`,
    );
    // Warm both (JIT, caches).
    dnsperfShort(oursAt, queries);
    dnsperfShort(bindAt, queries);
    for (let r = 0; r < rounds; r++) {
      const order = r % 2 === 0 ? ['ours', 'bind'] : ['bind', 'ours'];
      for (const who of order) {
        const at = who === 'ours' ? oursAt : bindAt;
        const pid = (who === 'ours' ? ours : bind).pid;
        const a = cpuSnapshot();
        const cpu0 = treeCpuMs(pid);
        const res = dnsperf(at.host, at.port, queries);
        // Answers per CPU-second of the server: what the server costs, whoever limits the rate.
        res.perCpuS = (res.sent - res.lost) / Math.max(1e-9, (treeCpuMs(pid) - cpu0) / 1000);
        foreign.push(foreignCpu(a, cpuSnapshot()));
        results[who].push(res);
        say(
          `round ${r + 1} ${who.padEnd(4)} ${res.qps.toFixed(0)} q/s, ${res.perCpuS.toFixed(0)} answers per server CPU-s, ` +
            `lost ${res.lost}/${res.sent}, avg latency ${res.latencyMs.toFixed(2)} ms`,
        );
      }
    }
  } finally {
    await killAll();
  }

  const summary = (rs) => ({
    qps: median(rs.map((r) => r.qps)),
    perCpuS: median(rs.map((r) => r.perCpuS)),
    loss:
      rs.reduce((s, r) => s + r.lost, 0) /
      Math.max(
        1,
        rs.reduce((s, r) => s + r.sent, 0),
      ),
  });
  const o = summary(results.ours);
  const b = summary(results.bind);
  const ratio = o.qps / b.qps;
  const cpuRatio = o.perCpuS / b.perCpuS;
  const pass = ratio >= TARGET_RATIO && o.loss < TARGET_LOSS;
  const foreignAvg = foreign.reduce((s, f) => s + f, 0) / Math.max(1, foreign.length);
  const result = {
    date: new Date().toISOString(),
    ours: o,
    bind: b,
    ratio,
    cpuRatio,
    pass,
    rounds: results,
    foreignCpu: foreignAvg,
  };
  const line =
    `ours ${o.qps.toFixed(0)} q/s (loss ${(o.loss * 100).toFixed(3)}%), BIND ${b.qps.toFixed(0)} q/s ` +
    `(loss ${(b.loss * 100).toFixed(3)}%), ratio ${(ratio * 100).toFixed(0)}%: ${pass ? 'PASS' : 'MISS'} ` +
    `(target >= ${TARGET_RATIO * 100}% with < ${TARGET_LOSS * 100}% loss); answers per server CPU-second: ` +
    `ours ${o.perCpuS.toFixed(0)}, BIND ${b.perCpuS.toFixed(0)}, ratio ${(cpuRatio * 100).toFixed(0)}% ` +
    '(dnsperf shares the machine, so q/s can be capped by it; CPU per answer is not)';
  console.log(line);
  console.log(`BENCH_JSON ${JSON.stringify(result)}`);
  if (!opt['no-record']) record(result, line);
  fs.rmSync(dir, { recursive: true, force: true });
}

function dnsperfShort(at, queries) {
  execFileSync(
    'taskset',
    [
      '-c',
      LOAD_CPU,
      'dnsperf',
      '-s',
      at.host,
      '-p',
      String(at.port),
      '-d',
      queries,
      '-l',
      '2',
      '-c',
      opt.clients,
      '-q',
      opt.outstanding,
    ],
    {
      stdio: 'ignore',
      timeout: 30_000,
    },
  );
}

function record(result, line) {
  /** The first `lines` lines a tool prints about itself (on stdout or, failing, stderr). */
  const version = (cmd, args, lines = 1) => {
    let out;
    try {
      out = execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (err) {
      out = `${err.stdout ?? ''}${err.stderr ?? ''}`;
    }
    return out.split('\n').slice(0, lines).join(' ').trim() || '?';
  };
  const cpu = os.cpus()[0]?.model ?? '?';
  const rows = [
    '| round | ours q/s | ours answers/CPU-s | ours lost | BIND q/s | BIND answers/CPU-s | BIND lost |',
    '| ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  result.rounds.ours.forEach((o, i) => {
    const b = result.rounds.bind[i];
    rows.push(
      `| ${i + 1} | ${o.qps.toFixed(0)} | ${o.perCpuS.toFixed(0)} | ${o.lost}/${o.sent} | ` +
        `${b.qps.toFixed(0)} | ${b.perCpuS.toFixed(0)} | ${b.lost}/${b.sent} |`,
    );
  });
  const file = path.join(root, 'bench', 'RESULTS.md');
  fs.appendFileSync(
    file,
    [
      '',
      `## DNS bench, ${result.date}`,
      '',
      `Command: \`npm run bench:dns\` (node bench/dns/run.js --duration ${durationS} --rounds ${rounds} --clients ${opt.clients} --outstanding ${opt.outstanding}).`,
      `Machine: ${os.cpus().length} CPUs (nproc), ${cpu}, node ${process.version}, ${version('named', ['-v'])}, dnsperf ${/Version ([\d.]+)/.exec(version('dnsperf', ['-h'], 2))?.[1] ?? '?'}.`,
      `Our embedded server (dist/dns, one Node process) and BIND \`named -n 1\` (minimal-responses) serve the same zone`,
      `(bench/dns/zone.js), both pinned to cpu ${SERVER_CPU}, dnsperf on cpu ${LOAD_CPU}; the same query file (40% A, 20% AAAA,`,
      `10% a 4-address round-robin set, 30% NXDOMAIN), ${durationS} s per run, rounds alternated. Median q/s of the rounds.`,
      `Other processes used ${(result.foreignCpu * 100).toFixed(0)}% of the machine on average during the runs (shared, noisy machine).`,
      '',
      ...rows,
      '',
      line,
      '',
    ].join('\n'),
  );
  say(`appended to ${path.relative(root, file)}`);
}

process.on('exit', killAllSync);
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => killAll().then(() => process.exit(130)));
main().catch(async (err) => {
  console.error(err.message ?? err);
  await killAll();
  process.exit(1);
});
