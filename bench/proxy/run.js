// `npm run bench:proxy`: our proxy against nginx and the bare upstream, in one run.
// Starts an upstream (separate Node process), nginx (1 worker, upstream keepalive) and our
// proxy (`dotslash proxy`, or bench/proxy/ours.js if the CLI is not built), measures req/s and
// p99 with wrk for 4 KiB and 100 KiB bodies, then p99 added latency at a fixed rate of half our
// max; prints a table, PASS/MISS per target, one `BENCH_JSON {...}` line, and appends a dated
// section to bench/RESULTS.md. `--profile` instead runs our proxy under `node --cpu-prof` and
// summarises where its time goes (bench/proxy/profile-summary.js).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ensureTools, nginxVersion, startNginx, wrkVersion } from './nginx.js';
import {
  cpuSnapshot,
  foreignCpu,
  freePort,
  killAll,
  killAllSync,
  output,
  say,
  setNiceness,
  sleep,
  mainThreadCpuMs,
  treeCpuMs,
  treeCpuSplitMs,
  start,
  startUpstream,
  waitQuiet,
  waitReady,
} from './procs.js';
import { appendResults, consoleReport, targets } from './report.js';
import { loadgenOrExit } from './loadgens.js';
import { wrk } from './wrk.js';
import { summarise, summaryMarkdown } from './profile-summary.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');

const { values: opt } = parseArgs({
  options: {
    duration: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '3' },
    connections: { type: 'string', default: '50' },
    rounds: { type: 'string', default: '3' },
    pin: { type: 'string', default: 'none' },
    ours: { type: 'string', default: 'auto' },
    'ours-script': { type: 'string' },
    variants: { type: 'boolean', default: false },
    clients: { type: 'boolean', default: false },
    fronts: { type: 'boolean', default: false },
    variant: { type: 'string', multiple: true, default: [] },
    nice: { type: 'string', default: '0' },
    pick: { type: 'string', default: 'best' },
    sizes: { type: 'string', default: '4k,100k' },
    'no-record': { type: 'boolean', default: false },
    'quiet-wait': { type: 'string', default: '300' },
    profile: { type: 'boolean', default: false },
    quick: { type: 'boolean', default: false },
    keep: { type: 'boolean', default: false },
    'no-anchor-half': { type: 'boolean', default: false },
    loadgen: { type: 'string', default: 'c' },
  },
});
if (opt.quick) Object.assign(opt, { duration: '4', warmup: '2', rounds: '1' });
const durationS = Number(opt.duration);
const warmupS = Number(opt.warmup);
const connections = Number(opt.connections);
const rounds = Number(opt.rounds);
const sizes = opt.sizes.split(',');
const BODY_BYTES = { '4k': 4096, '100k': 102_400 };

/**
 * CPU layouts (2 cores here). Default "none": the scheduler places wrk, the upstream and the
 * proxy, so the proxy's CPU cost per request competes with the upstream's and the client's,
 * as on a real two-core host. "split" gives the proxy CPU 1 to itself and puts wrk and the
 * upstream on CPU 0; measured here, that core then caps nginx (nginx/direct 0.90: nginx was
 * waiting for the upstream), which flatters our ratio, so it is not the default.
 */
const LAYOUTS = {
  split: {
    load: '0',
    upstream: '0',
    proxy: '1',
    text: 'taskset: proxy under test (nginx master+worker, or our Node process) on CPU 1; wrk/loadgen and the upstream on CPU 0',
  },
  none: { text: 'none (scheduler decides)' },
};
const niceness = Number(opt.nice);
setNiceness(niceness);
if (niceness !== 0) {
  // With sched_autogroup on, nice only ranks processes within one session; the autogroup's own
  // nice ranks this bench (this process and its children) against other sessions' work.
  try {
    fs.writeFileSync('/proc/self/autogroup', String(niceness));
  } catch (err) {
    say(`could not set the autogroup nice (${err.message}); per-process nice only`);
  }
}
const layout = LAYOUTS[opt.pin];
if (!layout) throw new Error(`--pin must be one of ${Object.keys(LAYOUTS).join(', ')}`);

// Hard bound on the whole run, whatever happens.
const perRun = warmupS + durationS + 2;
const quietWaitS = Number(opt['quiet-wait']);
const budgetS =
  120 +
  2 * rounds * sizes.length * 3 * perRun +
  2 * rounds * sizes.length * 5 * (perRun + 6) +
  quietWaitS +
  60;
const watchdog = setTimeout(() => {
  say(`run exceeded its ${budgetS} s budget; stopping`);
  killAllSync();
  process.exit(3);
}, budgetS * 1000);
watchdog.unref();
process.on('exit', killAllSync);
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    say(`${sig}: stopping children`);
    killAllSync();
    process.exit(130);
  });
}

/**
 * Other sessions may be running tests on this machine. Before each measurement wait for the
 * others' CPU share to drop below QUIET (from a total budget of --quiet-wait seconds), and
 * re-measure (up to twice) a run during which it was above NOISY.
 */
const QUIET = 0.05;
const NOISY = 0.1;
// With a negative --nice the bench runs ahead of other work, which then only fills idle CPU
// time: waiting for quiet would wait for nothing.
let quietBudgetMs = niceness < 0 ? 0 : quietWaitS * 1000;
async function measured(label, run) {
  let best = null;
  for (let attempt = 0; attempt < 3; attempt++) {
    if (quietBudgetMs > 0) {
      const t = Date.now();
      const f = await waitQuiet(Math.min(quietBudgetMs, 20_000), QUIET);
      quietBudgetMs -= Date.now() - t;
      if (f >= QUIET)
        say(`${label}: machine still busy (others ${Math.round(f * 100)}% CPU); measuring anyway`);
    }
    const a = cpuSnapshot();
    const value = await run();
    const noise = foreignCpu(a, cpuSnapshot());
    if (best === null || noise < best.noise) best = { value, noise };
    if (noise < NOISY || quietBudgetMs <= 0) break;
    say(`${label}: others used ${Math.round(noise * 100)}% CPU meanwhile; measuring again`);
  }
  return best;
}

if (opt.pick !== 'median' && opt.pick !== 'best') throw new Error('--pick must be median or best');
/**
 * How rounds combine: "median", or "best" (highest req/s with that run's latencies, lowest
 * p99 for fixed-rate runs): on a machine shared with other work, the least disturbed round
 * is the better estimate of what the software can do.
 */
const pickRun = (runs, better) =>
  opt.pick === 'best'
    ? runs.reduce((a, b) => (better(b, a) ? b : a))
    : [...runs].sort((a, b) => (better(a, b) ? -1 : 1))[runs.length >> 1];

/**
 * Start our proxy. The CLI (`node bin/dotslash.js proxy ...`) with admin listener and monitor is
 * what an operator runs, so it is preferred; ours.js (FrontProxy alone) is the fallback.
 * stdout (where the default access log goes) is a file in the temp dir.
 */
async function startOurs({
  dir,
  upstreamPort,
  nodeArgs = [],
  tag = 'ours',
  runnerArgs = null,
  script = 'bench/proxy/ours.js',
}) {
  const port = await freePort();
  const adminPort = await freePort();
  const logFile = path.join(dir, `${tag}-stdout.log`);
  const errFile = path.join(dir, `${tag}-stderr.log`);
  const upstream = `http://127.0.0.1:${upstreamPort}`;
  const tries = [];
  const cliBuilt = fs.existsSync(path.join(root, 'dist/src/cli/main.js'));
  if (opt.ours === 'cli' || (opt.ours === 'auto' && cliBuilt)) {
    tries.push({
      how:
        '`node bin/dotslash.js proxy --listen 127.0.0.1:PORT --upstream http://127.0.0.1:UP ' +
        '--admin 127.0.0.1:PORT2 --admin-token bench` (the CLI: front proxy, admin listener, monitor)',
      args: [
        'bin/dotslash.js',
        'proxy',
        '--listen',
        `127.0.0.1:${port}`,
        '--upstream',
        upstream,
        '--admin',
        `127.0.0.1:${adminPort}`,
        '--admin-token',
        'bench',
      ],
    });
  }
  if (opt.ours === 'runner' || opt.ours === 'auto') {
    tries.push({
      how: '`node bench/proxy/ours.js` (FrontProxy alone with its default config and access log; no admin listener or monitor)',
      args: ['bench/proxy/ours.js', '--listen', `127.0.0.1:${port}`, '--upstream', upstream],
    });
  }
  if (runnerArgs !== null) {
    // A diagnostic variant: FrontProxy alone through ours.js with extra flags, or an experiment.
    tries.length = 0;
    tries.push({
      how: `\`node ${[script, ...runnerArgs].join(' ')}\``,
      args: [script, '--listen', `127.0.0.1:${port}`, '--upstream', upstream, ...runnerArgs],
    });
  } else if (opt['ours-script']) {
    // Any script taking --listen/--upstream, e.g. to measure an experimental hot path.
    tries.length = 0;
    tries.push({
      how: `\`node ${opt['ours-script']}\` (given with --ours-script)`,
      args: [opt['ours-script'], '--listen', `127.0.0.1:${port}`, '--upstream', upstream],
    });
  }
  let lastErr;
  for (const t of tries) {
    const out = fs.openSync(logFile, 'w');
    const err = fs.openSync(errFile, 'w');
    const child = start(tag, process.execPath, [...nodeArgs, ...t.args], {
      cpus: layout.proxy,
      stdout: out,
      stderr: err,
      cwd: root,
    });
    fs.closeSync(out);
    fs.closeSync(err);
    try {
      await waitReady(tag, `http://127.0.0.1:${port}/4k`, 4096, child, 15_000);
      say(`${tag}: node ${t.args.join(' ')}`);
      return { child, port, how: t.how, logFile };
    } catch (e) {
      lastErr = e;
      say(
        `${t.args[0]} did not come up (${e.message}); stderr: ${fs.readFileSync(errFile, 'utf8').slice(0, 400)}`,
      );
      child.kill('SIGKILL');
      await sleep(200);
    }
  }
  throw lastErr ?? new Error(`--ours ${opt.ours}: nothing to start (is the project built?)`);
}

/** Lines and bytes written to an access-log file so far. */
function logStats(file) {
  try {
    const text = fs.readFileSync(file, 'utf8');
    const lines = text.split('\n').filter(Boolean);
    return { lines: lines.length, bytes: Buffer.byteLength(text), sample: lines[lines.length - 1] ?? '' };
  } catch {
    return { lines: 0, bytes: 0, sample: '' };
  }
}

/** Which build of our proxy was measured: proxy/'s last commit, and when dist/ was built. */
function buildInfo() {
  const git = (args) => {
    try {
      return execFileSync('git', args, { cwd: root, encoding: 'utf8' }).trim();
    } catch {
      return '';
    }
  };
  let distBuilt = null;
  try {
    distBuilt = fs.statSync(path.join(root, 'dist/proxy/front.js')).mtime.toISOString();
  } catch {
    // Not built.
  }
  return {
    proxyCommit: git(['log', '-1', '--format=%h %s', '--', 'proxy']),
    proxyDirty: git(['status', '--porcelain', '--', 'proxy']) !== '',
    distBuilt,
  };
}

function machine() {
  const cpu = /model name\s*:\s*(.*)/.exec(fs.readFileSync('/proc/cpuinfo', 'utf8'));
  return {
    nproc: Number(execFileSync('nproc', { encoding: 'utf8' }).trim()),
    cpu: cpu ? cpu[1].trim() : 'unknown',
    node: process.version,
    nginx: nginxVersion(),
    wrk: wrkVersion(),
    loadavg: fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' '),
  };
}

/**
 * `pids`: for each target, the root pid of the proxy process(es) to charge CPU to (none for
 * direct), plus `upstream`. CPU time per request is far less disturbed by other work than
 * req/s (a descheduled proxy serves fewer requests but spends the same CPU on each), so it
 * is the steadier measure of how much leaner one proxy is than another.
 */
async function throughput(targets, noise, pids) {
  const res = {};
  for (const size of sizes) {
    res[size] = {};
    for (const name of Object.keys(targets)) res[size][name] = [];
  }
  const names = Object.keys(targets);
  for (let r = 0; r < rounds; r++) {
    const order = names.map((_, i) => names[(i + r) % names.length]);
    for (const size of sizes) {
      for (const name of order) {
        const url = `${targets[name]}/${size}`;
        await wrk(url, { connections, seconds: warmupS, cpus: layout.load });
        const { value: w, noise: f } = await measured(`${size} ${name}`, async () => {
          const p0 = pids[name] ? treeCpuSplitMs(pids[name]) : null;
          const u0 = treeCpuMs(pids.upstream);
          const res = await wrk(url, { connections, seconds: durationS, cpus: layout.load });
          const n = res.requests || 1;
          const p1 = p0 ? treeCpuSplitMs(pids[name]) : null;
          res.proxyCpuUs = p0 ? ((p1.user - p0.user + p1.sys - p0.sys) * 1000) / n : null;
          res.proxySysUs = p0 ? ((p1.sys - p0.sys) * 1000) / n : null;
          res.upstreamCpuUs = ((treeCpuMs(pids.upstream) - u0) * 1000) / n;
          return res;
        });
        noise.push(f);
        say(
          `round ${r + 1}/${rounds} ${size} ${name}: ${Math.round(w.rps)} req/s, p99 ${w.latencyMs.p99} ms` +
            (w.proxyCpuUs !== null ? `, proxy CPU ${Math.round(w.proxyCpuUs)} us/req` : '') +
            `${w.errors || w.non2xx ? `, errors ${w.errors}, non-2xx ${w.non2xx}` : ''}, other processes ${Math.round(f * 100)}% CPU`,
        );
        if (w.errors || w.non2xx)
          throw new Error(`${name} ${size}: wrk saw ${w.errors} errors, ${w.non2xx} non-2xx`);
        res[size][name].push(w);
      }
    }
  }
  const out = {};
  for (const size of sizes) {
    out[size] = {};
    for (const name of names) {
      const runs = res[size][name];
      const chosen = pickRun(runs, (a, b) => a.rps > b.rps);
      // CPU per request: the median of the rounds (it is steady; no need to pick).
      const cpu = runs.map((w) => w.proxyCpuUs).filter((x) => x !== null);
      out[size][name] = {
        rps: chosen.rps,
        p50: chosen.latencyMs.p50,
        p99: chosen.latencyMs.p99,
        cpuUs: cpu.length ? [...cpu].sort((a, b) => a - b)[cpu.length >> 1] : null,
        sysUs: cpu.length ? [...runs.map((w) => w.proxySysUs)].sort((a, b) => a - b)[runs.length >> 1] : null,
        upstreamCpuUs: [...runs.map((w) => w.upstreamCpuUs)].sort((a, b) => a - b)[runs.length >> 1],
        runs: runs.map((w) => ({ rps: w.rps, p99: w.latencyMs.p99, cpuUs: w.proxyCpuUs })),
      };
    }
  }
  return out;
}

// Built (loadgen.c) or found before anything starts, so a missing compiler fails at once.
const generator = opt.profile ? null : loadgenOrExit(opt.loadgen);

async function fixedRate(url, rate) {
  const child = start(
    'loadgen',
    generator.file,
    [
      ...generator.args,
      '--url',
      url,
      '--rate',
      String(rate),
      '--duration',
      String(durationS),
      '--warmup',
      String(warmupS),
      '--connections',
      String(connections),
    ],
    { cpus: layout.load },
  );
  const { out } = await output(child, (warmupS + durationS + 30) * 1000);
  return JSON.parse(out.trim().split('\n').pop());
}

/**
 * One fixed-rate run of `name` at `rate`, with the CPU the proxy under test (pids[name]; none
 * for direct) and the machine spent meanwhile: at a fixed rate a proxy is woken for a few
 * requests at a time, so its CPU per request is higher than under wrk, and its busy share of
 * one core is what its tail latency depends on.
 */
async function fixedRun(name, url, rate, pids) {
  const pid = pids[name];
  const t0 = performance.now();
  const c0 = pid ? treeCpuMs(pid) : 0;
  const m0 = cpuSnapshot();
  const l = await fixedRate(url, rate);
  const m1 = cpuSnapshot();
  const wallMs = performance.now() - t0;
  const cpuMs = pid ? treeCpuMs(pid) - c0 : 0;
  const sent = Math.round((warmupS + durationS) * rate) || 1;
  l.proxyCpuUs = pid ? (cpuMs * 1000) / sent : null;
  l.proxyBusy = pid ? cpuMs / wallMs : null;
  const total = m1.total - m0.total;
  l.machineBusy = total > 0 ? (m1.busy - m0.busy) / total : null;
  return l;
}

const aggFixed = (ls) => {
  const chosen = pickRun(ls, (a, b) => a.latencyMs.p99 < b.latencyMs.p99);
  const med = (xs) => (xs.length ? [...xs].sort((a, b) => a - b)[xs.length >> 1] : null);
  return {
    p50: chosen.latencyMs.p50,
    p99: chosen.latencyMs.p99,
    achieved: chosen.achievedRate,
    errors: chosen.errors + chosen.non2xx,
    cpuUs: med(ls.map((l) => l.proxyCpuUs).filter((x) => x !== null)),
    busy: med(ls.map((l) => l.proxyBusy).filter((x) => x !== null)),
    machineBusy: med(ls.map((l) => l.machineBusy).filter((x) => x !== null)),
    runs: ls.map((l) => ({ p50: l.latencyMs.p50, p99: l.latencyMs.p99, errors: l.errors })),
  };
};

/** Rounds of fixed-rate runs of `names` at `rate`, order rotated per round. */
async function fixedRounds(label, names, targets, size, rate, pids, noise) {
  const runs = Object.fromEntries(names.map((n) => [n, []]));
  for (let r = 0; r < rounds; r++) {
    for (const name of names.map((_, i) => names[(i + r) % names.length])) {
      const { value: l, noise: f } = await measured(`fixed ${size} ${name}`, () =>
        fixedRun(name, `${targets[name]}/${size}`, rate, pids),
      );
      noise.push(f);
      say(
        `round ${r + 1}/${rounds} ${label} ${rate} req/s ${size} ${name}: achieved ${l.achievedRate}, ` +
          `p50 ${l.latencyMs.p50} ms, p99 ${l.latencyMs.p99} ms, errors ${l.errors}` +
          (l.proxyCpuUs !== null
            ? `, proxy CPU ${Math.round(l.proxyCpuUs)} us/req (${Math.round(l.proxyBusy * 100)}% of a core)`
            : '') +
          `, machine ${Math.round(l.machineBusy * 100)}% busy, other processes ${Math.round(f * 100)}% CPU`,
      );
      runs[name].push(l);
    }
  }
  return Object.fromEntries(names.map((n) => [n, aggFixed(runs[n])]));
}

async function latency(targets, tp, noise, pids) {
  const res = {};
  for (const size of sizes) {
    const rate = Math.max(100, Math.round(tp[size].ours.rps / 2));
    // nginx at the same rate is the reference: what one proxy hop adds on this machine anyway.
    const at = await fixedRounds('fixed', Object.keys(targets), targets, size, rate, pids, noise);
    const { direct, ours } = at;
    const nginx = at.nginx ?? null;
    res[size] = {
      rate,
      direct,
      ours,
      nginx,
      addedP99: ours.p99 - direct.p99,
      nginxAddedP99: nginx ? nginx.p99 - direct.p99 : null,
    };
    // The same test applied to the anchor: nginx at half of *its own* max rate, where it is
    // about as busy as ours is at half of ours. Whether the target can be met on this machine
    // at all is what this shows.
    if (nginx && !opt['no-anchor-half']) {
      const ownRate = Math.max(100, Math.round(tp[size].nginx.rps / 2));
      const own = await fixedRounds(
        'nginx own half',
        ['direct', 'nginx'],
        targets,
        size,
        ownRate,
        pids,
        noise,
      );
      res[size].nginxOwnHalf = {
        rate: ownRate,
        direct: own.direct,
        nginx: own.nginx,
        addedP99: own.nginx.p99 - own.direct.p99,
      };
    }
  }
  return res;
}

/**
 * `--profile`: our proxy under `node --cpu-prof` at full load (wrk), then the summary. The
 * profile covers the process's whole life; start-up and the warm-up run are skipped in the
 * summary (skipMs), so it shows the steady state.
 */
async function profile(dir, upstreamPort) {
  const profDir = path.join(root, 'bench/proxy/tmp');
  fs.mkdirSync(profDir, { recursive: true });
  for (const f of fs.readdirSync(profDir)) if (f.endsWith('.cpuprofile')) fs.rmSync(path.join(profDir, f));
  const spawned = Date.now();
  const ours = await startOurs({
    dir,
    upstreamPort,
    nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${profDir}`],
    tag: 'ours-prof',
  });
  const size = sizes[0];
  const url = `http://127.0.0.1:${ours.port}/${size}`;
  await wrk(url, { connections, seconds: warmupS, cpus: layout.load });
  const skipMs = Date.now() - spawned;
  const main0 = mainThreadCpuMs(ours.child.pid);
  const tree0 = treeCpuMs(ours.child.pid);
  const { value: w, noise } = await measured(`profile ${size}`, () =>
    wrk(url, { connections, seconds: durationS, cpus: layout.load }),
  );
  const profiledMs = Date.now() - spawned - skipMs;
  // The V8 profiler samples wall-clock time: a thread pre-empted inside a syscall is charged to
  // that syscall. The main thread's real CPU time over the same window says how much of the
  // "busy" profile was work.
  const mainCpuMs = mainThreadCpuMs(ours.child.pid) - main0;
  const treeCpu = treeCpuMs(ours.child.pid) - tree0;
  say(
    `profiling ${size}: ${Math.round(w.rps)} req/s under --cpu-prof, other processes ${Math.round(noise * 100)}% CPU`,
  );
  ours.child.kill('SIGTERM');
  await new Promise((resolve) => (ours.child.exitCode !== null ? resolve() : ours.child.on('exit', resolve)));
  const files = fs.readdirSync(profDir).filter((f) => f.endsWith('.cpuprofile'));
  if (files.length === 0)
    throw new Error(`no .cpuprofile in ${profDir}: did the proxy exit through process.exit?`);
  const file = path.join(profDir, files.sort().pop());
  const summary = summarise(JSON.parse(fs.readFileSync(file, 'utf8')), { top: 25, root, skipMs });
  const md = summaryMarkdown(summary, {
    title: `Where the time goes (generated by \`node bench/proxy/run.js --profile\`), ${new Date().toISOString()}`,
    context:
      `Our proxy (${ours.how}) under \`node --cpu-prof\`, loaded by wrk -t1 -c${connections} with ${size} bodies: ` +
      `${warmupS} s warm-up (skipped, with start-up: first ${skipMs} ms), then ${durationS} s at ` +
      `${Math.round(w.rps)} req/s (slower than unprofiled; other processes used ${Math.round(noise * 100)}% of the CPUs). ` +
      `Pinning: ${layout.text}. The summary covers ${profiledMs} ms after the skip. ` +
      `Profile: ${path.relative(root, file)} (not committed; \`node bench/proxy/profile-summary.js FILE --callers NAME\` ` +
      'shows where a function is called from). ' +
      `Over the same window the main thread was on a CPU for ${Math.round(mainCpuMs)} ms ` +
      `(the whole process, all threads: ${Math.round(treeCpu)} ms) against ${Math.round(summary.busyMs)} ms of ` +
      'busy samples, so ' +
      (mainCpuMs >= 0.95 * summary.busyMs
        ? 'the busy samples are real CPU work (user or kernel), not time spent pre-empted.'
        : `${Math.round(100 - (100 * mainCpuMs) / summary.busyMs)}% of the busy samples are time the main thread ` +
          'was runnable but not running (pre-empted), charged to the function it was in.'),
  });
  console.log(md);
  if (!opt['no-record']) {
    fs.appendFileSync(path.join(root, 'bench/RESULTS.md'), '\n' + md);
    say('appended to bench/RESULTS.md');
  }
}

async function main() {
  ensureTools();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dotslash-bench-'));
  say(`temp dir ${dir}; pinning: ${layout.text}`);
  try {
    const upstream = await startUpstream({ cpus: layout.upstream });
    const up = `http://127.0.0.1:${upstream.port}`;
    await waitReady('upstream', `${up}/4k`, 4096, upstream.child);
    say(`upstream (node bench/proxy/upstream.js) on ${up}`);
    if (opt.profile) {
      await profile(dir, upstream.port);
      return;
    }

    const nginxPort = await freePort();
    const nginx = startNginx({ dir, port: nginxPort, upstreamPort: upstream.port, cpus: layout.proxy });
    await waitReady('nginx', `http://127.0.0.1:${nginxPort}/4k`, 4096, nginx);
    say(`nginx (${nginxVersion()}, config ${dir}/nginx.conf) on 127.0.0.1:${nginxPort}`);
    const ours = await startOurs({ dir, upstreamPort: upstream.port });
    for (const size of sizes) {
      await waitReady('ours', `http://127.0.0.1:${ours.port}/${size}`, BODY_BYTES[size], ours.child);
      await waitReady('nginx', `http://127.0.0.1:${nginxPort}/${size}`, BODY_BYTES[size], nginx);
    }
    const targetsUrls = {
      direct: up,
      nginx: `http://127.0.0.1:${nginxPort}`,
      ours: `http://127.0.0.1:${ours.port}`,
    };
    // --variants: where our cost comes from, measured in the same run. "ours-core" is
    // FrontProxy alone (no admin listener, no monitor) with its default access log;
    // "ours-nolog" the same with the access log off.
    // --variant NAME=SCRIPT adds any script taking --listen/--upstream (bench/proxy/experiments/).
    const variants = {};
    const pids = { upstream: upstream.child.pid, nginx: nginx.pid, ours: ours.child.pid };
    // --clients: the two upstream clients side by side, FrontProxy alone: "ours-core" (the
    // default, raw-socket client for bodiless requests) and "ours-undici" (undici for all).
    const wanted = opt.variants
      ? [
          ['ours-core', 'bench/proxy/ours.js', []],
          ['ours-nolog', 'bench/proxy/ours.js', ['--no-access-log']],
        ]
      : [];
    if (opt.clients) {
      if (!opt.variants) wanted.push(['ours-core', 'bench/proxy/ours.js', []]);
      wanted.push(['ours-undici', 'bench/proxy/ours.js', ['--upstream-client', 'undici']]);
    }
    // --fronts: the two client request readers side by side, FrontProxy alone: "ours-core"
    // (the default fast front, proxy/h1-front.ts) and "ours-nodefront" (node:http for all).
    if (opt.fronts) {
      if (!wanted.some(([tag]) => tag === 'ours-core')) wanted.push(['ours-core', 'bench/proxy/ours.js', []]);
      wanted.push(['ours-nodefront', 'bench/proxy/ours.js', ['--front-parser', 'node']]);
    }
    for (const v of opt.variant) {
      const eq = v.indexOf('=');
      if (eq < 1) throw new Error(`--variant wants NAME=SCRIPT, got "${v}"`);
      wanted.push([v.slice(0, eq), v.slice(eq + 1), []]);
    }
    for (const [tag, script, args] of wanted) {
      const v = await startOurs({ dir, upstreamPort: upstream.port, tag, script, runnerArgs: args });
      targetsUrls[tag] = `http://127.0.0.1:${v.port}`;
      pids[tag] = v.child.pid;
      variants[tag] = v.how;
    }
    const m = machine();
    const noise = [];
    const tp = await throughput(targetsUrls, noise, pids);
    const lat = await latency(
      { direct: up, nginx: targetsUrls.nginx, ours: targetsUrls.ours },
      tp,
      noise,
      pids,
    );

    const oursLog = logStats(ours.logFile);
    const nginxLog = logStats(path.join(dir, 'nginx-access.log'));
    const perLine = (s) => (s.lines ? Math.round(s.bytes / s.lines) : 0);
    const result = {
      bench: 'proxy',
      date: new Date().toISOString(),
      command: `node bench/proxy/run.js ${process.argv.slice(2).join(' ')}`.trim(),
      machine: m,
      ours: { how: ours.how, build: buildInfo() },
      method: {
        threads: 1,
        connections,
        warmupS,
        durationS,
        rounds,
        pick: opt.pick,
        loadgen: generator.text,
        pinning: layout.text,
        nice:
          niceness === 0
            ? 'all bench processes at normal priority'
            : `all bench processes (upstream, nginx, ours, wrk, loadgen) at niceness ${niceness}, ahead of other work on the machine`,
        quiet:
          niceness < 0
            ? 'no waiting for a quiet machine (the bench ran ahead of other work, see niceness)'
            : `before each measurement waited (up to 20 s, ${quietWaitS} s in all) for other processes to use < ${QUIET * 100}% ` +
              `of the CPUs; a measurement during which they used > ${NOISY * 100}% was repeated (up to 2 times, least disturbed kept)`,
      },
      accessLogs:
        `both on, both to a file in the temp dir: nginx \`access_log FILE combined\` ` +
        `(${nginxLog.lines} lines, ~${perLine(nginxLog)} B/line); ours as configured by default ` +
        `(access_log enabled, output stdout, stdout redirected to a file: ${oursLog.lines} lines, ~${perLine(oursLog)} B/line)`,
      sizes,
      variants,
      throughput: tp,
      latency: lat,
      noise: { max: Math.max(...noise), mean: noise.reduce((a, b) => a + b, 0) / noise.length },
    };
    result.targets = targets(result);
    console.log(consoleReport(result));
    console.log(`BENCH_JSON ${JSON.stringify(result)}`);
    if (!opt['no-record']) {
      appendResults(path.join(root, 'bench/RESULTS.md'), result);
      say('appended to bench/RESULTS.md');
    }
  } finally {
    await killAll();
    if (!opt.keep) fs.rmSync(dir, { recursive: true, force: true });
    else say(`kept ${dir}`);
  }
}

main().then(
  () => process.exit(0),
  async (err) => {
    console.error(`[bench] failed: ${err.stack ?? err}`);
    await killAll();
    process.exit(1);
  },
);
