// `node bench/redirect/run.js` (`npm run bench:redirect`): redirect responses/s of the origin's
// redirector (Redirector.decide + writeRedirect, Pr = 1, 3 sessions) against a bare Node server
// answering the same 302, side by side in one run with wrk. Target (issue 3 item 4): >= 80% of
// bare. Prints a table, PASS/MISS, one `BENCH_JSON {...}` line, and appends a dated section to
// bench/RESULTS.md (generated; never edit the numbers by hand).
// `--subject front` (`npm run bench:redirect:front`) measures the whole daemon front instead
// (FrontProxy with its access log, stats and limits) against the same bare server.
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { wrkVersion } from '../proxy/nginx.js';
import {
  cpuSnapshot,
  foreignCpu,
  httpGet,
  killAll,
  killAllSync,
  output,
  say,
  setNiceness,
  start,
  waitQuiet,
} from '../proxy/procs.js';
import { parseWrk } from '../proxy/wrk.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');

const { values: opt } = parseArgs({
  options: {
    duration: { type: 'string', default: '8' },
    warmup: { type: 'string', default: '2' },
    rounds: { type: 'string', default: '5' },
    connections: { type: 'string', default: '50' },
    profiles: { type: 'string', default: 'minimal,browser' },
    pin: { type: 'string', default: 'split' },
    'quiet-wait': { type: 'string', default: '60' },
    'no-record': { type: 'boolean', default: false },
    quick: { type: 'boolean', default: false },
    nice: { type: 'string', default: '0' },
    schedule: { type: 'string', default: 'together' },
    // redirect: Redirector.decide + writeRedirect in a bare node:http server (the target);
    // front: the whole daemon front (FrontProxy, access log on) answering the same 302s.
    subject: { type: 'string', default: 'redirect' },
    'access-log': { type: 'string', default: 'on' },
  },
});
if (opt.subject !== 'redirect' && opt.subject !== 'front')
  throw new Error('--subject must be redirect or front');
const SUBJECT_TEXT =
  opt.subject === 'front'
    ? `the whole daemon front (FrontProxy from dist/, access log ${opt['access-log'] === 'off' ? 'off' : 'on, to /dev/null'}, stats, limits, rescue hook) at Pr = 1 over 3 sessions`
    : 'Redirector.decide + writeRedirect at Pr = 1 over 3 sessions';
if (opt.quick) Object.assign(opt, { duration: '3', warmup: '1', rounds: '1' });
const durationS = Number(opt.duration);
const warmupS = Number(opt.warmup);
const rounds = Number(opt.rounds);
const connections = Number(opt.connections);
const profiles = opt.profiles.split(',');
const TARGET = 0.8;
/**
 * "together" (default): both servers loaded at the same time, each by its own wrk, both pinned
 * to the same core, so the scheduler splits that core evenly between them and whatever else
 * the machine is doing hits both alike; each one's req/s is then its own efficiency. This is
 * what keeps the comparison honest on a machine shared with other work. "alternate": one at a
 * time, order swapped each round (classic, but at the mercy of load that changes in between).
 */
const schedule = opt.schedule;
if (schedule !== 'together' && schedule !== 'alternate')
  throw new Error('--schedule must be together or alternate');

// Optional priority over other work on a shared machine (as bench/proxy does): every child at
// this niceness, and with sched_autogroup the whole bench's group too.
const niceness = Number(opt.nice);
setNiceness(niceness);
if (niceness !== 0) {
  try {
    fs.writeFileSync('/proc/self/autogroup', String(niceness));
  } catch (err) {
    say(`could not set the autogroup nice (${err.message}); per-process nice only`);
  }
}

/**
 * Request header sets wrk sends. "minimal": wrk's own (Host only). "browser": what a browser
 * following a link sends, including a Cookie header with no session cookie in it, so the
 * redirector has to scan it and still redirect.
 */
const HEADER_PROFILES = {
  minimal: [],
  browser: [
    'User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0',
    'Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8',
    'Accept-Language: en-US,en;q=0.5',
    'Accept-Encoding: gzip, deflate, br',
    'Referer: https://news.example/item?id=41',
    'Cookie: _ga=GA1.2.1234567890.1700000000; theme=dark; consent=yes',
    'Upgrade-Insecure-Requests: 1',
    'Sec-Fetch-Mode: navigate',
  ],
};
for (const p of profiles) if (!HEADER_PROFILES[p]) throw new Error(`unknown profile ${p}`);
const PATH = '/articles/2026/11/flash-crowd.html?ref=front&utm_source=news';

const nproc = Number(execFileSync('nproc', { encoding: 'utf8' }).trim());
const LAYOUTS = {
  split: {
    server: '1',
    load: '0',
    text: 'taskset: both servers on CPU 1, wrk on CPU 0',
  },
  none: { text: 'none (scheduler decides)' },
};
const layout = nproc >= 2 ? LAYOUTS[opt.pin] : LAYOUTS.none;
if (!layout) throw new Error(`--pin must be one of ${Object.keys(LAYOUTS).join(', ')}`);

// Hard bound on the whole run.
const budgetS = 120 + Number(opt['quiet-wait']) + rounds * profiles.length * 2 * (warmupS + durationS + 4);
const watchdog = setTimeout(() => {
  say(`run exceeded its ${budgetS} s budget; stopping`);
  killAllSync();
  process.exit(3);
}, budgetS * 1000);
watchdog.unref();
process.on('exit', killAllSync);
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    killAllSync();
    process.exit(130);
  });
}

function which(cmd) {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' }).status === 0;
}

/** wrk from apt when missing (root only; otherwise say what to install). */
function ensureWrk() {
  const missing = ['wrk', 'taskset'].filter((c) => !which(c));
  if (missing.length === 0) return;
  const pkgs = missing.map((c) => (c === 'taskset' ? 'util-linux' : c));
  if (process.getuid?.() !== 0)
    throw new Error(`need ${pkgs.join(', ')}: sudo apt-get install -y ${pkgs.join(' ')}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  say(`apt-get install -y ${pkgs.join(' ')}`);
  let r = spawnSync('apt-get', ['install', '-y', '--no-install-recommends', ...pkgs], {
    stdio: 'inherit',
    env,
  });
  if (r.status !== 0) {
    spawnSync('apt-get', ['update'], { stdio: 'inherit', env });
    r = spawnSync('apt-get', ['install', '-y', '--no-install-recommends', ...pkgs], {
      stdio: 'inherit',
      env,
    });
  }
  if (r.status !== 0 || !which('wrk')) throw new Error('wrk still missing after apt-get install');
}

/**
 * Which build of proxy/redirect to load: dist/ when it is at least as new as every source
 * file (what the daemon runs); else the sources compiled by tsc, with the project's compiler
 * options, into bench/redirect/tmp/ (so the bench never touches the shared dist/).
 */
function redirectModule() {
  const dist = path.join(root, 'dist/proxy/redirect/index.js');
  if (opt.subject === 'front') {
    // The whole front comes from dist/: `npm run bench:redirect` builds it first.
    if (!fs.existsSync(dist)) throw new Error('--subject front needs dist/: run `npm run build` first');
    return { nodeArgs: [], module: dist, how: 'dist/ (compiled by `npm run build`)' };
  }
  const srcDir = path.join(root, 'proxy/redirect');
  const sources = fs.readdirSync(srcDir).filter((f) => f.endsWith('.ts'));
  const newestSrc = Math.max(...sources.map((f) => fs.statSync(path.join(srcDir, f)).mtimeMs));
  if (fs.existsSync(dist) && fs.statSync(dist).mtimeMs >= newestSrc) {
    return { nodeArgs: [], module: dist, how: 'dist/proxy/redirect (compiled by `npm run build`)' };
  }
  const out = path.join(here, 'tmp/build');
  fs.rmSync(out, { recursive: true, force: true });
  const tsc = path.join(root, 'node_modules/typescript/bin/tsc');
  const r = spawnSync(
    process.execPath,
    [
      tsc,
      ...['--target', 'ES2022', '--module', 'NodeNext', '--moduleResolution', 'NodeNext', '--strict'],
      ...['--types', 'node', '--skipLibCheck', '--rootDir', srcDir, '--outDir', out],
      ...sources.map((f) => path.join(srcDir, f)),
    ],
    { cwd: root, encoding: 'utf8' },
  );
  if (r.status !== 0) throw new Error(`tsc proxy/redirect failed:\n${r.stdout}${r.stderr}`);
  return {
    nodeArgs: [],
    module: path.join(out, 'index.js'),
    how: 'proxy/redirect compiled by tsc (ES2022, NodeNext) into bench/redirect/tmp/build (dist/ missing or older than the sources)',
  };
}

async function startServer(mode, mod) {
  const serverMode = mode === 'redirect' ? opt.subject : mode;
  const args = [...mod.nodeArgs, path.join(here, 'server.js'), '--mode', serverMode];
  if (mode === 'redirect') args.push('--module', mod.module, '--access-log', opt['access-log']);
  const child = start(mode, process.execPath, args, { cpus: layout.server, cwd: root });
  const port = await new Promise((resolve, reject) => {
    let buf = '';
    let err = '';
    child.stdout.on('data', (c) => {
      buf += c;
      const nl = buf.indexOf('\n');
      if (nl !== -1) resolve(JSON.parse(buf.slice(0, nl)).port);
    });
    child.stderr.on('data', (c) => (err += c));
    child.on('exit', (code) => reject(new Error(`${mode} server exited with ${code}: ${err.slice(0, 500)}`)));
    setTimeout(() => reject(new Error(`${mode} server did not start in 15 s`)), 15_000);
  });
  return { child, port, url: `http://127.0.0.1:${port}${PATH}` };
}

/** Both servers must answer 302 with the same path and query; the redirector over all 3 sessions. */
async function check(servers) {
  for (const [mode, s] of Object.entries(servers)) {
    const hosts = new Set();
    for (let i = 0; i < 12; i++) {
      const r = await httpGet(s.url);
      const loc = r.headers.location ?? '';
      if (r.status !== 302 || !loc.endsWith(PATH) || r.headers['cache-control'] !== 'no-store') {
        throw new Error(`${mode}: expected a 302 to ...${PATH}, got ${r.status} ${loc}`);
      }
      hosts.add(new URL(loc).host);
    }
    const want = mode === 'bare' ? 1 : 3;
    if (hosts.size !== want) throw new Error(`${mode}: redirected to ${[...hosts].join(', ')}`);
  }
}

async function runWrk(url, seconds, headers) {
  const args = [`-t1`, `-c${connections}`, `-d${seconds}s`, '--timeout', '5s', '--latency'];
  for (const h of headers) args.push('-H', h);
  const child = start('wrk', 'wrk', [...args, url], { cpus: layout.load });
  const { out } = await output(child, (seconds + 30) * 1000);
  return parseWrk(out);
}

const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;

/**
 * CPU seconds a process has used so far, all its threads (V8's GC helpers included), from
 * /proc/PID/task/TID/schedstat (nanoseconds on CPU, exact). utime + stime in /proc/PID/stat
 * is sampled at each clock tick, which at 100 Hz is too coarse to split one core between two
 * busy processes fairly over a few seconds; it is the fallback.
 */
function cpuSeconds(pid) {
  try {
    let ns = 0;
    for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
      try {
        ns += Number(fs.readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
      } catch {
        // Thread ended while we looked.
      }
    }
    if (ns > 0) return ns / 1e9;
  } catch {
    // No schedstat: fall back to ticks.
  }
  const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / CLK_TCK;
}

/**
 * One measured wrk run against `server`. Besides wrk's req/s, the server's own CPU time per
 * response: on a machine shared with other work, req/s depends on how much CPU the others
 * leave us, while CPU per response is what the server's code costs, so the ratio of the two
 * servers' CPU per response is the robust form of the comparison.
 */
let quietBudgetMs = niceness < 0 ? 0 : Number(opt['quiet-wait']) * 1000;
async function measure(server, headers) {
  if (quietBudgetMs > 0) {
    const t = Date.now();
    await waitQuiet(Math.min(quietBudgetMs, 10_000), 0.05);
    quietBudgetMs -= Date.now() - t;
  }
  const a = cpuSnapshot();
  const c0 = cpuSeconds(server.child.pid);
  const w = await runWrk(server.url, durationS, headers);
  const cpu = cpuSeconds(server.child.pid) - c0;
  return {
    ...w,
    noise: foreignCpu(a, cpuSnapshot()),
    cpuUsPerReq: w.requests ? (cpu * 1e6) / w.requests : NaN,
  };
}

/** measure() for several servers at once, each with its own wrk, over the same seconds. */
async function measureTogether(list, headers) {
  const a = cpuSnapshot();
  const c0 = list.map((s) => cpuSeconds(s.child.pid));
  const ws = await Promise.all(list.map((s) => runWrk(s.url, durationS, headers)));
  const noise = foreignCpu(a, cpuSnapshot());
  return ws.map((w, i) => {
    const cpu = cpuSeconds(list[i].child.pid) - c0[i];
    return { ...w, noise, cpuUsPerReq: w.requests ? (cpu * 1e6) / w.requests : NaN };
  });
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const fmtInt = (n) => Math.round(n).toLocaleString('en-US');
const fmtPct = (x) => `${(x * 100).toFixed(1)}%`;

function machine() {
  const cpu = /model name\s*:\s*(.*)/.exec(fs.readFileSync('/proc/cpuinfo', 'utf8'));
  return {
    nproc,
    cpu: cpu ? cpu[1].trim() : 'unknown',
    node: process.version,
    wrk: wrkVersion(),
    loadavg: fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' '),
  };
}

function table(result) {
  const lines = [
    '| headers | bare 302 req/s | redirector req/s | ratio | server CPU us/response bare / redirector | CPU ratio | p99 bare / redirector (ms) | rounds req/s (bare; redirector) |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |',
  ];
  for (const p of result.profiles) {
    const r = result.results[p];
    lines.push(
      `| ${p} | ${fmtInt(r.bare.rps)} | ${fmtInt(r.redirect.rps)} | ${fmtPct(r.ratio)} | ` +
        `${r.bare.cpuUs.toFixed(1)} / ${r.redirect.cpuUs.toFixed(1)} | ${fmtPct(r.cpuRatio)} | ` +
        `${r.bare.p99} / ${r.redirect.p99} | ${r.bare.runs.map(fmtInt).join(', ')}; ${r.redirect.runs.map(fmtInt).join(', ')} |`,
    );
  }
  return lines.join('\n');
}

function targetLines(result) {
  const out = [];
  for (const p of result.profiles) {
    const r = result.results[p];
    out.push(
      `- ${r.ratio >= TARGET ? 'PASS' : 'MISS'}: redirect responses/s >= 80% of a bare Node server answering 302s (${p} headers, wrk req/s): ${fmtPct(r.ratio)}`,
      `- ${r.cpuRatio >= TARGET ? 'PASS' : 'MISS'}: the same from server CPU per response (${p} headers; responses/s per CPU-second, bare = 100%): ${fmtPct(r.cpuRatio)}`,
    );
  }
  return out.join('\n');
}

function methodLines(result) {
  const m = result.machine;
  return [
    `- Command: \`${result.command}\``,
    `- Date: ${result.date}`,
    `- Machine: ${m.nproc} CPUs, ${m.cpu}; Node ${m.node}; ${m.wrk}; load average at start ${m.loadavg}`,
    `- Servers (bench/redirect/server.js, one process each): "bare" writes a fixed 302 inline; "redirector" runs ` +
      `${SUBJECT_TEXT} (rates 1e9-3e9 req/s so buckets never limit; ` +
      `session cookies PHPSESSID, wordpress_logged_in_*, sid). Identical response bytes. Redirect module: ${result.module}`,
    `- Load: wrk -t1 -c${connections}, ${warmupS} s warm-up then ${durationS} s measured, no pipelining, GET ${PATH}; ` +
      `${rounds} round(s), median shown; ${
        schedule === 'together'
          ? 'both servers loaded at the same time (one wrk each), pinned to the same core, which the scheduler splits evenly between them, so other load on the machine hits both alike'
          : 'one server at a time, order alternated each round'
      }. Header sets: minimal = wrk's Host only; ` +
      `browser = 8 more typical browser headers incl. a Cookie with no session cookie.`,
    `- CPU pinning: ${layout.text}; niceness ${niceness}${niceness < 0 ? ' (ahead of other work; no quiet wait)' : ''}`,
    `- Server CPU per response: (CPU time of all the server process's threads over the measured run, from ` +
      `/proc/PID/task/*/schedstat) / responses wrk counted. ` +
      `CPU ratio = bare's CPU per response / the redirector's, i.e. their responses/s on an equal, uncontended CPU.`,
    `- Decision cost in process (bench/redirect/micro.js, ${result.micro.n} decideRaw() calls, same CPU): ` +
      `${result.micro.minimal.toFixed(0)} ns with minimal headers, ${result.micro.browser.toFixed(0)} ns with browser headers ` +
      `(empty loop ${result.micro.loopNs.toFixed(1)} ns).`,
    `- Other processes used ${fmtPct(result.noise.max)} of all CPUs at worst during a measurement (mean ${fmtPct(result.noise.mean)}); ` +
      `both servers share that disturbance (${schedule === 'together' ? 'measured at the same time' : 'rounds alternate'}).`,
  ].join('\n');
}

async function main() {
  ensureWrk();
  const mod = redirectModule();
  say(`redirect module: ${mod.how}`);
  const m = machine();
  const servers = {
    bare: await startServer('bare', mod),
    redirect: await startServer('redirect', mod),
  };
  await check(servers);
  say(`bare on :${servers.bare.port}, redirector on :${servers.redirect.port}; both answer 302`);

  const runs = {};
  const noise = [];
  for (const p of profiles) runs[p] = { bare: [], redirect: [] };
  const report = (r, p, mode, w) => {
    noise.push(w.noise);
    say(
      `round ${r + 1}/${rounds} ${p} ${mode}: ${fmtInt(w.rps)} req/s, p99 ${w.latencyMs.p99} ms, ` +
        `server CPU ${w.cpuUsPerReq.toFixed(1)} us/response, ` +
        `errors ${w.errors}, other processes ${fmtPct(w.noise)} CPU`,
    );
    if (w.errors) throw new Error(`${mode} ${p}: wrk saw ${w.errors} socket errors`);
    runs[p][mode].push(w);
  };
  for (let r = 0; r < rounds; r++) {
    for (const p of profiles) {
      const headers = HEADER_PROFILES[p];
      if (schedule === 'together') {
        await Promise.all(['bare', 'redirect'].map((m) => runWrk(servers[m].url, warmupS, headers)));
        const [bare, redirect] = await measureTogether([servers.bare, servers.redirect], headers);
        report(r, p, 'bare', bare);
        report(r, p, 'redirect', redirect);
        continue;
      }
      const order = r % 2 ? ['redirect', 'bare'] : ['bare', 'redirect'];
      for (const mode of order) {
        await runWrk(servers[mode].url, warmupS, headers);
        report(r, p, mode, await measure(servers[mode], headers));
      }
    }
  }
  await killAll();

  // Cross-check: the decision's own cost, in process, on the servers' CPU.
  const microChild = start(
    'micro',
    process.execPath,
    [...mod.nodeArgs, path.join(here, 'micro.js'), '--module', mod.module],
    { cpus: layout.server, cwd: root },
  );
  const micro = JSON.parse((await output(microChild, 120_000)).out.trim().split('\n').pop());
  say(
    `decideRaw: ${micro.minimal.toFixed(0)} ns (minimal headers), ${micro.browser.toFixed(0)} ns (browser headers)`,
  );

  const results = {};
  for (const p of profiles) {
    const agg = (ws) => ({
      rps: median(ws.map((w) => w.rps)),
      p99: median(ws.map((w) => w.latencyMs.p99)),
      cpuUs: median(ws.map((w) => w.cpuUsPerReq)),
      runs: ws.map((w) => w.rps),
    });
    const bare = agg(runs[p].bare);
    const redirect = agg(runs[p].redirect);
    results[p] = { bare, redirect, ratio: redirect.rps / bare.rps, cpuRatio: bare.cpuUs / redirect.cpuUs };
  }
  const result = {
    date: new Date().toISOString(),
    command: `node bench/redirect/run.js ${process.argv.slice(2).join(' ')}`.trim(),
    machine: m,
    module: mod.how,
    profiles,
    results,
    noise: { max: Math.max(...noise), mean: noise.reduce((a, b) => a + b, 0) / noise.length },
    target: TARGET,
    micro,
  };

  process.stdout.write(['', table(result), '', targetLines(result), '', methodLines(result), ''].join('\n'));
  process.stdout.write(`BENCH_JSON ${JSON.stringify(result)}\n`);
  if (!opt['no-record']) {
    const file = path.join(root, 'bench/RESULTS.md');
    const header = fs.existsSync(file)
      ? ''
      : '# Benchmark results\n\nEach section below is appended by a bench script from its own measurements; numbers are never edited by hand.\n';
    const section = [
      '',
      `## Redirect bench${opt.subject === 'front' ? ' (through the full daemon front)' : ''}, ${result.date}`,
      '',
      methodLines(result),
      '',
      table(result),
      '',
      targetLines(result),
      '',
    ];
    fs.appendFileSync(file, header + section.join('\n'));
    say(`appended to ${path.relative(root, file)}`);
  }
}

main().catch(async (err) => {
  say(`failed: ${err.stack ?? err}`);
  await killAll();
  process.exit(1);
});
