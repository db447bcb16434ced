// Child-process plumbing for the proxy bench: spawn (optionally pinned with taskset), wait for
// a port to answer, kill everything we started on any exit path, and account CPU time so a run
// can say how much of the machine *other* processes took while it measured.
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';

const children = new Set();
let niceness = 0;

/** Run every child at this niceness (negative = ahead of other work on a shared machine; root only). */
export function setNiceness(n) {
  niceness = n;
}
const pidFiles = new Set();

/** Print what the bench does, prefixed so it stands apart from results. */
export function say(msg) {
  process.stderr.write(`[bench] ${msg}\n`);
}

/**
 * Spawn `cmd args` as a tracked child. `cpus` (e.g. "1") pins it with taskset.
 */
export function start(name, cmd, args, { cpus, stdout = 'pipe', stderr = 'pipe', env, cwd } = {}) {
  let argv = cpus ? ['taskset', ['-c', cpus, cmd, ...args]] : [cmd, args];
  // nice and taskset both exec the command in place: the child's pid stays the command's own.
  if (niceness !== 0) argv = ['nice', ['-n', String(niceness), argv[0], ...argv[1]]];
  const child = spawn(argv[0], argv[1], { stdio: ['ignore', stdout, stderr], env: env ?? process.env, cwd });
  child.benchName = name;
  children.add(child);
  child.on('exit', () => children.delete(child));
  return child;
}

/** Remember a pid file (nginx) whose process must be killed on exit too. */
export function trackPidFile(path) {
  pidFiles.add(path);
}

/** Kill every child we started (SIGTERM, then SIGKILL after `graceMs`), and pid-file processes. */
export async function killAll(graceMs = 3_000) {
  for (const file of pidFiles) {
    try {
      const pid = Number(fs.readFileSync(file, 'utf8').trim());
      if (pid > 0) process.kill(pid, 'SIGTERM');
    } catch {
      // No pid file or process already gone: nothing to kill.
    }
  }
  const live = [...children].filter((c) => c.exitCode === null && c.signalCode === null);
  for (const c of live) c.kill('SIGTERM');
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline && live.some((c) => c.exitCode === null && c.signalCode === null)) {
    await sleep(50);
  }
  killAllSync(); // what is left after the grace period, with its descendants
  pidFiles.clear();
}

/** Synchronous last-resort cleanup for process 'exit' (no awaiting possible there). */
export function killAllSync() {
  // Whole trees: an nginx master killed alone leaves its worker running, orphaned.
  const roots = [];
  for (const c of children) if (c.exitCode === null && c.signalCode === null) roots.push(c.pid);
  for (const file of pidFiles) {
    try {
      const pid = Number(fs.readFileSync(file, 'utf8').trim());
      if (pid > 0) roots.push(pid);
    } catch {
      // Already gone.
    }
  }
  if (roots.length === 0) return;
  for (const pid of treePids(...roots)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
}

export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A free TCP port on 127.0.0.1 (bind 0, read, close; the tiny race is acceptable for a bench). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** GET url once; resolves { status, bytes } or rejects. */
export function httpGet(url, timeoutMs = 2_000) {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false, timeout: timeoutMs }, (res) => {
      let bytes = 0;
      res.on('data', (c) => (bytes += c.length));
      res.on('end', () => resolve({ status: res.statusCode, bytes, headers: res.headers }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

/** Poll `url` until it answers 200 with `bytes` body bytes, or fail after `timeoutMs`. */
export async function waitReady(name, url, bytes, child, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer';
  while (Date.now() < deadline) {
    if (child && (child.exitCode !== null || child.signalCode !== null)) {
      throw new Error(
        `${name} exited (code ${child.exitCode}, signal ${child.signalCode}) before it was ready`,
      );
    }
    try {
      const r = await httpGet(url, 1_000);
      if (r.status === 200 && r.bytes === bytes) return r;
      last = `status ${r.status}, ${r.bytes} bytes`;
    } catch (err) {
      last = err.message;
    }
    await sleep(100);
  }
  throw new Error(`${name} not ready at ${url} after ${timeoutMs} ms (${last})`);
}

/** Collect a child's stdout until it exits; rejects if it runs past `timeoutMs` (and kills it). */
export function output(child, timeoutMs) {
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    child.stdout?.on('data', (c) => (out += c));
    child.stderr?.on('data', (c) => (err += c));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${child.benchName} ran past ${timeoutMs} ms`));
    }, timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve({ out, err });
      else reject(new Error(`${child.benchName} exited with ${code}: ${err.trim().slice(0, 500)}`));
    });
  });
}

/** Jiffies the whole machine spent busy / in total, from /proc/stat. */
function machineJiffies() {
  const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const total = f.reduce((a, b) => a + b, 0);
  const idle = f[3] + (f[4] ?? 0);
  return { busy: total - idle, total };
}

/** utime+stime+cutime+cstime of one process (own CPU plus reaped children's), 0 if gone. */
function procJiffies(pid) {
  try {
    const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    // Fields after "(comm) ": state=0 ppid=1 ... utime=11 stime=12 cutime=13 cstime=14.
    return Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
  } catch {
    return 0;
  }
}

/** CPU ms (user + system, all threads, not children) used so far by `root` and its live descendants. */
export function treeCpuMs(root) {
  const { user, sys } = treeCpuSplitMs(root);
  return user + sys;
}

/** The same, split into user and system (kernel) ms. */
export function treeCpuSplitMs(root) {
  return cpuSplitMs(treePids(root));
}

/** User and system (kernel) ms used so far by each of `pids` (all threads, not children). */
export function cpuSplitMs(pids) {
  let user = 0;
  let sys = 0;
  for (const pid of pids) {
    try {
      const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
      const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
      user += Number(f[11]);
      sys += Number(f[12]);
    } catch {
      // Gone.
    }
  }
  return { user: (user * 1000) / CLK_TCK, sys: (sys * 1000) / CLK_TCK };
}

/** CPU ms (user + system) of one process's main thread (its tid is its pid). */
export function mainThreadCpuMs(pid) {
  try {
    const s = fs.readFileSync(`/proc/${pid}/task/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return ((Number(f[11]) + Number(f[12])) * 1000) / CLK_TCK;
  } catch {
    return 0;
  }
}

const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/**
 * Process trees: each of `roots` (default this process) and every live descendant (nginx
 * workers included), from one pass over /proc.
 */
function treePids(...roots) {
  const parent = new Map();
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const s = fs.readFileSync(`/proc/${name}/stat`, 'utf8');
      parent.set(Number(name), Number(s.slice(s.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      // Process ended while we looked.
    }
  }
  const mine = new Set(roots.length ? roots : [process.pid]);
  let grew = true;
  while (grew) {
    grew = false;
    for (const [pid, ppid] of parent) {
      if (!mine.has(pid) && mine.has(ppid)) {
        mine.add(pid);
        grew = true;
      }
    }
  }
  return mine;
}

/**
 * Snapshot for `foreignCpu`: machine busy/total and our tree's CPU. A child that exits between
 * two snapshots moves its CPU into our cutime when reaped, so it stays counted.
 */
export function cpuSnapshot() {
  const m = machineJiffies();
  let ours = 0;
  for (const pid of treePids()) ours += procJiffies(pid);
  return { ...m, ours };
}

/** Share of the whole machine's CPU (0-1) used by processes outside this bench between two snapshots. */
export function foreignCpu(a, b) {
  const total = b.total - a.total;
  if (total <= 0) return 0;
  return Math.max(0, (b.busy - a.busy - (b.ours - a.ours)) / total);
}

/**
 * Wait (at most `maxMs`) until other processes use less than `threshold` of the machine's CPU
 * over one second. Returns the last measured share. Other sessions' test runs on a shared
 * machine otherwise decide the numbers.
 */
export async function waitQuiet(maxMs, threshold) {
  const deadline = Date.now() + maxMs;
  let f = 1;
  do {
    const a = cpuSnapshot();
    await sleep(1_000);
    f = foreignCpu(a, cpuSnapshot());
    if (f < threshold) return f;
  } while (Date.now() < deadline);
  return f;
}

/** Start the bench upstream (bench/proxy/upstream.js) on 127.0.0.1; it prints its port. */
export async function startUpstream({ cpus } = {}) {
  const script = new URL('./upstream.js', import.meta.url).pathname;
  const child = start('upstream', process.execPath, [script], { cpus });
  const port = await new Promise((resolve, reject) => {
    let buf = '';
    child.stdout.on('data', (c) => {
      buf += c;
      const nl = buf.indexOf('\n');
      if (nl !== -1) resolve(JSON.parse(buf.slice(0, nl)).port);
    });
    child.on('exit', (code) => reject(new Error(`upstream exited with ${code}`)));
    setTimeout(() => reject(new Error('upstream did not start in 10 s')), 10_000);
  });
  return { child, port };
}
