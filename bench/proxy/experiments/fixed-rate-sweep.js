// Experiment (issue 2's p99 target): tail latency against load, for direct, nginx and ours.
// For each rate, each target gets an open-loop fixed-rate run (bench/proxy/loadgen.c, or
// loadgen.js with --loadgen node) and we read, over the same run, the proxy's CPU per request
// (and its user/kernel split), its busy share of one core, its time runnable but not running
// (run-queue wait, /proc/PID/task/*/schedstat), and how busy the whole machine was. It answers: is our p99 at half our max rate a property of our code, or of
// any single-threaded proxy at that load on this machine (compare nginx at the rate where it is
// as busy as ours)?
//   node bench/proxy/experiments/fixed-rate-sweep.js [--rates 2500,5000,8000] [--targets direct,nginx,ours]
//        [--size 4k] [--repeat 2] [--duration 10] [--warmup 3] [--perf] [--loadgen c|node]
// --perf (needs Linux perf; sets kernel.perf_event_paranoid -1 and kptr_restrict 0 when root):
// also samples each proxy with `perf record` for the middle of its run and adds where its CPU
// went: the kernel's share, the hottest kernel symbol's share (on a paravirtualised guest,
// pvm_irq_enable: the hypervisor's price of socket wake-ups on loopback) and user space's.
// "ours" is `bin/dotslash.js proxy` (needs `npm run build`). Targets to add: "ours-front" is
// bench/proxy/ours.js (FrontProxy alone), "raw-splice" experiments/raw-splice.js (the leanest
// Node proxy), "ours-cluster" experiments/cluster-front.js (FrontProxy in WORKERS processes).
// Prints one table; records nothing.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ensureTools, startNginx } from '../nginx.js';
import {
  cpuSnapshot,
  cpuSplitMs,
  freePort,
  killAll,
  killAllSync,
  output,
  say,
  start,
  startUpstream,
  waitReady,
} from '../procs.js';
import { loadgenOrExit } from '../loadgens.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../../..');
const { values: opt } = parseArgs({
  options: {
    rates: { type: 'string', default: '2500,5000,8000' },
    targets: { type: 'string', default: 'direct,nginx,ours' },
    size: { type: 'string', default: '4k' },
    repeat: { type: 'string', default: '2' },
    duration: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '3' },
    perf: { type: 'boolean', default: false },
    loadgen: { type: 'string', default: 'c' },
  },
});
const rates = opt.rates.split(',').map(Number);
const names = opt.targets.split(',');
const TARGETS = ['direct', 'nginx', 'ours', 'ours-front', 'ours-cluster', 'raw-splice'];
for (const n of names) {
  if (!TARGETS.includes(n)) {
    console.error(`--targets: unknown target "${n}" (known: ${TARGETS.join(', ')})`);
    process.exit(2);
  }
}
if (rates.some((r) => !(r > 0))) {
  console.error(`--rates: want positive numbers, got "${opt.rates}"`);
  process.exit(2);
}
const BYTES = { '4k': 4096, '100k': 102_400 };
const generator = loadgenOrExit(opt.loadgen);

/**
 * Run time of all threads of `pids`, and run-queue wait of their main threads (the event
 * loops; ms), from schedstat (ns, exact).
 */
function sched(pids) {
  let run = 0;
  let wait = 0;
  let slices = 0;
  for (const pid of pids) {
    let tasks = [];
    try {
      tasks = fs.readdirSync(`/proc/${pid}/task`);
    } catch {
      continue;
    }
    for (const t of tasks) {
      try {
        const [r, w, n] = fs.readFileSync(`/proc/${pid}/task/${t}/schedstat`, 'utf8').split(' ').map(Number);
        run += r / 1e6;
        if (Number(t) === pid) {
          wait += w / 1e6;
          slices += n;
        }
      } catch {
        // Thread gone.
      }
    }
  }
  return { run, wait, slices };
}

/**
 * `perf record` of `pids` for `seconds`, started after `delayS`; resolves to the shares of the
 * samples: kernel, hottest kernel symbol, the proxy binary (node or nginx), JIT code, libc.
 */
async function perfShares(pids, delayS, seconds, file) {
  await new Promise((r) => setTimeout(r, delayS * 1000));
  const rec = start('perf', 'perf', [
    'record',
    '-q',
    '-F',
    '1999',
    '-p',
    pids.join(','),
    '-o',
    file,
    '--',
    'sleep',
    String(seconds),
  ]);
  await output(rec, (seconds + 30) * 1000);
  const report = async (sort) => {
    const child = start('perf-report', 'perf', ['report', '-i', file, '--stdio', '-q', '--sort', sort]);
    const { out } = await output(child, 60_000);
    return out
      .split('\n')
      .map((l) => l.trim().match(/^([\d.]+)%\s+(.*)$/))
      .filter(Boolean)
      .map((m) => ({ pct: Number(m[1]), name: m[2].trim() }));
  };
  const dsos = await report('dso');
  const share = (re) => dsos.filter((d) => re.test(d.name)).reduce((a, d) => a + d.pct, 0);
  const kernelSyms = (await report('sym')).filter((x) => x.name.startsWith('[k]'));
  const top = kernelSyms[0] ?? { pct: 0, name: '-' };
  return {
    kernel: share(/kernel/),
    topKernel: `${top.name.replace('[k] ', '')} ${top.pct.toFixed(1)}%`,
    binary: share(/^(node|nginx)$/),
    jit: share(/JIT|perf-\d+\.map/),
    libc: share(/^libc/),
  };
}

/** nginx's worker(s): children of the master. */
function childPids(pid) {
  try {
    return fs
      .readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
      .trim()
      .split(/\s+/)
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
}

async function fixed(url, rate, pids, perfFile) {
  const s0 = sched(pids);
  const k0 = cpuSplitMs(pids); // each pid with its threads, as sched() counts them
  const m0 = cpuSnapshot();
  const t0 = performance.now();
  const child = start('loadgen', generator.file, [
    ...generator.args,
    ...['--url', url, '--rate', String(rate), '--duration', opt.duration, '--warmup', opt.warmup],
  ]);
  const perf =
    perfFile && pids.length
      ? perfShares(pids, Number(opt.warmup) + 1, Math.max(1, Number(opt.duration) - 2), perfFile)
      : null;
  const { out } = await output(child, (Number(opt.duration) + Number(opt.warmup) + 30) * 1000);
  const perfed = perf ? await perf : null;
  const wall = performance.now() - t0;
  const s1 = sched(pids);
  const k1 = cpuSplitMs(pids);
  const m1 = cpuSnapshot();
  const l = JSON.parse(out.trim().split('\n').pop());
  const sent = rate * (Number(opt.duration) + Number(opt.warmup));
  return {
    ...l.latencyMs,
    errors: l.errors + l.non2xx,
    generatorCpuUs: l.generatorCpuUs,
    cpuUs: pids.length ? ((s1.run - s0.run) * 1000) / sent : null,
    userUs: pids.length ? ((k1.user - k0.user) * 1000) / sent : null,
    kernelUs: pids.length ? ((k1.sys - k0.sys) * 1000) / sent : null,
    busy: pids.length ? (s1.run - s0.run) / wall : null,
    runqWait: pids.length ? (s1.wait - s0.wait) / wall : null,
    // Times the main thread was put on a CPU (schedstat's third field): its wake-ups.
    wakeups: pids.length ? (s1.slices - s0.slices) / sent : null,
    perf: perfed,
    machine: (m1.busy - m0.busy) / (m1.total - m0.total),
  };
}

/** perf needs to see kernel symbols and other processes; as root, allow it for this run. */
function preparePerf() {
  if (spawnSync('perf', ['--version']).status !== 0) {
    console.error('--perf: perf not found (Debian: apt-get install -y linux-perf)');
    process.exit(2);
  }
  if (process.getuid?.() === 0) {
    fs.writeFileSync('/proc/sys/kernel/perf_event_paranoid', '-1');
    fs.writeFileSync('/proc/sys/kernel/kptr_restrict', '0');
  }
}

async function main() {
  ensureTools();
  if (opt.perf) preparePerf();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dotslash-sweep-'));
  try {
    const up = await startUpstream();
    const upUrl = `http://127.0.0.1:${up.port}`;
    await waitReady('upstream', `${upUrl}/${opt.size}`, BYTES[opt.size], up.child);
    const urls = { direct: upUrl };
    const pids = { direct: [] };
    if (names.includes('nginx')) {
      const port = await freePort();
      const nginx = startNginx({ dir, port, upstreamPort: up.port });
      urls.nginx = `http://127.0.0.1:${port}`;
      await waitReady('nginx', `${urls.nginx}/${opt.size}`, BYTES[opt.size], nginx);
      pids.nginx = [nginx.pid, ...childPids(nginx.pid)];
    }
    if (names.includes('ours')) {
      const port = await freePort();
      const admin = await freePort();
      const log = fs.openSync(path.join(dir, 'ours.log'), 'w');
      const ours = start(
        'ours',
        process.execPath,
        [
          'bin/dotslash.js',
          'proxy',
          ...['--listen', `127.0.0.1:${port}`, '--upstream', upUrl],
          ...['--admin', `127.0.0.1:${admin}`, '--admin-token', 'bench'],
        ],
        { stdout: log, cwd: root },
      );
      fs.closeSync(log);
      urls.ours = `http://127.0.0.1:${port}`;
      await waitReady('ours', `${urls.ours}/${opt.size}`, BYTES[opt.size], ours);
      pids.ours = [ours.pid];
    }
    /** Start `node SCRIPT --listen ... --upstream ...` (stdout to a log file) as target `name`. */
    const startScript = async (name, script) => {
      const port = await freePort();
      const log = fs.openSync(path.join(dir, `${name}.log`), 'w');
      const child = start(
        name,
        process.execPath,
        [script, '--listen', `127.0.0.1:${port}`, '--upstream', upUrl],
        { stdout: log, cwd: root },
      );
      fs.closeSync(log);
      urls[name] = `http://127.0.0.1:${port}`;
      await waitReady(name, `${urls[name]}/${opt.size}`, BYTES[opt.size], child);
      // With its children: cluster-front.js's workers.
      pids[name] = [child.pid, ...childPids(child.pid)];
    };
    // FrontProxy alone (bench/proxy/ours.js: default config and access log, no admin listener,
    // monitor or metrics): what the daemon around it costs at a fixed rate.
    if (names.includes('ours-front')) await startScript('ours-front', path.join(root, 'bench/proxy/ours.js'));
    // FrontProxy in WORKERS processes (default 2).
    if (names.includes('ours-cluster'))
      await startScript('ours-cluster', path.join(here, 'cluster-front.js'));
    // The leanest Node proxy we know (no node:http, no access log): the floor for Node here.
    if (names.includes('raw-splice')) await startScript('raw-splice', path.join(here, 'raw-splice.js'));
    const rows = [];
    for (const rate of rates) {
      for (let r = 0; r < Number(opt.repeat); r++) {
        for (const name of names) {
          const perfFile = opt.perf ? path.join(dir, `perf-${name}.data`) : null;
          const x = await fixed(`${urls[name]}/${opt.size}`, rate, pids[name], perfFile);
          say(`${name} @ ${rate} req/s: p50 ${x.p50} p99 ${x.p99} p99.9 ${x.p999} ms`);
          rows.push({ rate, name, ...x });
        }
      }
    }
    const pct = (x) => (x === null ? '-' : `${Math.round(x * 100)}%`);
    const lines = [
      `Fixed-rate sweep, ${opt.size}, ${opt.warmup} s + ${opt.duration} s per run, ${new Date().toISOString()}, ` +
        `${os.cpus().length} CPUs, Node ${process.version}`,
      '',
      '| rate req/s | target | p50 ms | p99 ms | p99.9 ms | max ms | proxy CPU µs/req | user / kernel µs/req | proxy busy (one core) | main thread run-queue wait | main thread wake-ups/req | machine busy | load generator CPU µs/req | errors |',
      '| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
      ...rows.map(
        (x) =>
          `| ${x.rate} | ${x.name} | ${x.p50} | ${x.p99} | ${x.p999} | ${x.max} | ` +
          `${x.cpuUs === null ? '-' : Math.round(x.cpuUs)} | ` +
          `${x.userUs === null ? '-' : `${Math.round(x.userUs)} / ${Math.round(x.kernelUs)}`} | ${pct(x.busy)} | ${pct(x.runqWait)} | ` +
          `${x.wakeups === null ? '-' : x.wakeups.toFixed(2)} | ${pct(x.machine)} | ${x.generatorCpuUs} | ${x.errors} |`,
      ),
    ];
    const perfRows = rows.filter((x) => x.perf);
    if (perfRows.length) {
      const f = (v) => `${v.toFixed(1)}%`;
      lines.push(
        '',
        `Where each proxy's CPU went (perf record -F 1999, ${Math.max(1, Number(opt.duration) - 2)} s from 1 s after the warm-up; shares of its samples):`,
        '',
        '| rate req/s | target | kernel | hottest kernel symbol | proxy binary (node / nginx) | JIT code | libc |',
        '| ---: | --- | ---: | --- | ---: | ---: | ---: |',
        ...perfRows.map(
          (x) =>
            `| ${x.rate} | ${x.name} | ${f(x.perf.kernel)} | ${x.perf.topKernel} | ${f(x.perf.binary)} | ` +
            `${f(x.perf.jit)} | ${f(x.perf.libc)} |`,
        ),
      );
    }
    console.log(lines.join('\n'));
  } finally {
    await killAll();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

process.on('exit', killAllSync);
// Stopped by a signal: 'exit' does not run by itself, so nginx and the proxies would be left.
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(130));
main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
