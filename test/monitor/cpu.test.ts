// CPU meters: /proc/stat and /proc/<pid>/stat parsing, live host CPU, and a busy child process.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { clockTicksPerSecond, CpuMeter, parsePidStat, parseProcStat } from '../../src/monitor/cpu.js';
import { assertLinux, MonitorError } from '../../src/monitor/errors.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const PROC_STAT = `cpu  4705 150 1120 16250 520 30 45 7 100 0
cpu0 2300 75 560 8125 260 15 22 3 50 0
cpu1 2405 75 560 8125 260 15 23 4 50 0
intr 114930548 113199788 3 0 5 263 0 4 [... lots more numbers ...]
ctxt 1990473
btime 1062191376
`;

let children: ChildProcess[] = [];
afterEach(() => {
  for (const c of children) c.kill('SIGKILL');
  children = [];
});

/**
 * A child that, on 'go', spins until it has used `cpuMs` of CPU time (by its own
 * process.cpuUsage) and reports the exact amount. Measuring CPU time rather than wall time
 * makes the tests independent of how busy the machine is. It exits by itself after 20 s.
 */
const WORKER = `
  setTimeout(() => process.exit(0), 20000);
  process.on('message', (cpuMs) => {
    const t0 = process.cpuUsage();
    let used = 0;
    while (used < cpuMs * 1000) {
      for (let i = 0; i < 1e5; i++);
      const u = process.cpuUsage(t0);
      used = u.user + u.system;
    }
    process.send(used / 1e6);
  });
  process.send('ready');
`;

interface Worker {
  pid: number;
  /** Spins for `cpuMs` of CPU; resolves with the CPU seconds it measured itself. */
  burn(cpuMs: number): Promise<number>;
}

async function startWorker(): Promise<Worker> {
  const child = spawn(process.execPath, ['-e', WORKER], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  children.push(child);
  const [first] = (await once(child, 'message')) as [unknown];
  expect(first).toBe('ready'); // node has booted: its start-up CPU is behind us
  return {
    pid: child.pid!,
    async burn(cpuMs) {
      child.send(cpuMs);
      const [used] = (await once(child, 'message')) as [number];
      return used;
    },
  };
}

/** This process's CPU seconds since `start` (processes mode always counts the daemon itself). */
const ownCpuSince = (start: NodeJS.CpuUsage): number => {
  const u = process.cpuUsage(start);
  return (u.user + u.system) / 1e6;
};

/** USER_HZ granularity: each of the two reads may be off by one tick per process. */
const tickSlack = () => (4 / clockTicksPerSecond()) * 2;

describe('parsers', () => {
  it('parses /proc/stat: busy excludes idle and iowait, guest is not double counted', () => {
    const t = parseProcStat(PROC_STAT);
    expect(t.cores).toBe(2);
    expect(t.total).toBe(4705 + 150 + 1120 + 16250 + 520 + 30 + 45 + 7);
    expect(t.busy).toBe(t.total - 16250 - 520);
  });

  it('rejects a /proc/stat without the aggregate line', () => {
    expect(() => parseProcStat('intr 1 2 3\n')).toThrow(MonitorError);
    try {
      parseProcStat('');
    } catch (err) {
      expect((err as MonitorError).code).toBe('MON_ERR_PROC_MALFORMED');
    }
  });

  it('parses /proc/<pid>/stat even when the command name has spaces and parentheses', () => {
    // pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime ... starttime
    const line = '4242 (evil ) (name) R 1 4242 4242 0 -1 4194304 100 0 0 0 250 50 0 0 20 0 1 0 987654 0 0\n';
    expect(parsePidStat(line)).toEqual({ ticks: 300, start: 987654 });
    expect(() => parsePidStat('4242 (x) R 1')).toThrow(/MON_ERR|too few fields/);
  });

  it('reads this process from the live /proc', async () => {
    const { readFileSync } = await import('node:fs');
    const own = parsePidStat(readFileSync(`/proc/${process.pid}/stat`, 'latin1'));
    expect(own.ticks).toBeGreaterThanOrEqual(0);
    expect(clockTicksPerSecond()).toBeGreaterThan(0);
  });

  it('refuses to run on other platforms with a clear error', () => {
    expect(() => assertLinux('darwin')).toThrow(/Linux/);
    try {
      assertLinux('win32');
    } catch (err) {
      expect((err as MonitorError).code).toBe('MON_ERR_UNSUPPORTED_PLATFORM');
      expect((err as Error).message).toContain('win32');
    }
    expect(() => assertLinux('linux')).not.toThrow();
  });
});

describe('CpuMeter', () => {
  it('host mode: first read is the baseline; a busy child shows up in the host total', async () => {
    const w = await startWorker();
    const meter = new CpuMeter({ source: 'host', pids: [] });
    const t1 = performance.now();
    expect(meter.read(t1)).toBeNull();
    const used = await w.burn(400);
    const t2 = performance.now();
    const r = meter.read(t2)!;
    expect(r.hostCores).toBe(meter.hostCores);
    const cpuSeconds = r.cores * ((t2 - t1) / 1000);
    // The host total includes the child's CPU (and whatever else ran meanwhile).
    expect(cpuSeconds).toBeGreaterThan(used - tickSlack());
    expect(r.cores).toBeLessThanOrEqual(r.hostCores + 1e-9);
  });

  it('processes mode: counts the configured pids plus this process, to the tick', async () => {
    const w = await startWorker();
    const meter = new CpuMeter({ source: 'processes', pids: [w.pid] });
    const own = process.cpuUsage();
    const t1 = performance.now();
    expect(meter.read(t1)).toBeNull();
    const used = await w.burn(400);
    const t2 = performance.now();
    const r = meter.read(t2)!;
    const mine = ownCpuSince(own);
    expect(r.missingPids).toEqual([]);
    const cpuSeconds = r.cores * ((t2 - t1) / 1000);
    expect(cpuSeconds).toBeGreaterThan(used + mine - tickSlack());
    expect(cpuSeconds).toBeLessThan(used + mine + tickSlack());
  });

  it('processes mode: an idle child adds nothing', async () => {
    const w = await startWorker();
    const meter = new CpuMeter({ source: 'processes', pids: [w.pid] });
    const own = process.cpuUsage();
    const t1 = performance.now();
    meter.read(t1);
    await sleep(300);
    const t2 = performance.now();
    const r = meter.read(t2)!;
    const cpuSeconds = r.cores * ((t2 - t1) / 1000);
    expect(cpuSeconds).toBeLessThan(ownCpuSince(own) + 0.05 + tickSlack());
  });

  it('processes mode: a pid that is not running counts as zero and is reported', async () => {
    const meter = new CpuMeter({ source: 'processes', pids: [99_999_999] });
    meter.read(performance.now());
    await sleep(50);
    const r = meter.read(performance.now())!;
    expect(r.missingPids).toEqual([99_999_999]);
    expect(r.cores).toBeGreaterThanOrEqual(0);
  });
});
