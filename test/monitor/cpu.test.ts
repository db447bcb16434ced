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

/** A child that spins one core for at most `ms` (bounded: it stops by itself). */
async function busyChild(ms: number): Promise<ChildProcess> {
  const child = spawn(
    process.execPath,
    ['-e', `const end = Date.now() + ${ms}; while (Date.now() < end) {}`],
    {
      stdio: 'ignore',
    },
  );
  children.push(child);
  await once(child, 'spawn');
  return child;
}

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
  it('host mode: first read is the baseline, later reads are cores in use within the host', async () => {
    const meter = new CpuMeter({ source: 'host', pids: [] });
    expect(meter.read(performance.now())).toBeNull();
    await busyChild(1_500);
    await sleep(600);
    const r = meter.read(performance.now())!;
    expect(r.hostCores).toBe(meter.hostCores);
    // The spinning child alone keeps about one core busy.
    expect(r.cores).toBeGreaterThan(0.3);
    expect(r.cores).toBeLessThanOrEqual(r.hostCores + 1e-9);
  });

  it('processes mode: counts the configured pids (a busy child shows up as about a core)', async () => {
    const child = await busyChild(2_000);
    const meter = new CpuMeter({ source: 'processes', pids: [child.pid!] });
    expect(meter.read(performance.now())).toBeNull();
    await sleep(700);
    const r = meter.read(performance.now())!;
    expect(r.missingPids).toEqual([]);
    expect(r.cores).toBeGreaterThan(0.3);
    expect(r.cores).toBeLessThan(1.5 + 0.2); // one spinning thread plus this (mostly idle) process
  });

  it('processes mode: a pid that is not running counts as zero and is reported', async () => {
    const meter = new CpuMeter({ source: 'processes', pids: [99_999_999] });
    meter.read(performance.now());
    await sleep(50);
    const r = meter.read(performance.now())!;
    expect(r.missingPids).toEqual([99_999_999]);
    expect(r.cores).toBeGreaterThanOrEqual(0);
  });

  it('processes mode: an idle child is not busy', async () => {
    const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 3000)'], { stdio: 'ignore' });
    children.push(child);
    await once(child, 'spawn');
    await sleep(300); // let node finish booting
    const meter = new CpuMeter({ source: 'processes', pids: [child.pid!] });
    meter.read(performance.now());
    await sleep(500);
    const r = meter.read(performance.now())!;
    expect(r.cores).toBeLessThan(0.3);
  });
});
