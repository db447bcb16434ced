// CPU use in cores' worth: the whole host from /proc/stat, or given processes from /proc/<pid>/stat.
import { execFileSync } from 'node:child_process';
import { MonitorError } from './errors.js';
import { readProc, readProcIfExists } from './proc.js';

/** Cumulative host CPU time in clock ticks, summed over all CPUs (first line of /proc/stat). */
export interface HostCpuTimes {
  readonly busy: number;
  readonly total: number;
  /** Number of `cpuN` lines: the host's logical CPUs. */
  readonly cores: number;
}

/**
 * Parses /proc/stat (proc(5)). busy = total - idle - iowait; total sums user..steal. guest and
 * guest_nice are left out because the kernel already counts them inside user and nice.
 */
export function parseProcStat(text: string): HostCpuTimes {
  let cores = 0;
  let times: number[] | null = null;
  for (const line of text.split('\n')) {
    if (line.startsWith('cpu ')) times = line.trim().split(/\s+/).slice(1, 9).map(Number);
    else if (/^cpu\d+ /.test(line)) cores++;
  }
  if (!times || times.length < 4 || times.some((n) => !Number.isFinite(n))) {
    throw new MonitorError('MON_ERR_PROC_MALFORMED', '/proc/stat has no aggregate "cpu" line');
  }
  const total = times.reduce((a, b) => a + b, 0);
  const idle = times[3]! + (times[4] ?? 0);
  return { busy: total - idle, total, cores: Math.max(cores, 1) };
}

/** CPU time of one process from /proc/<pid>/stat: utime + stime in ticks, and its start time. */
export interface ProcessCpuTimes {
  readonly ticks: number;
  /** Field 22: start time after boot; a different value means the pid was reused. */
  readonly start: number;
}

/**
 * Parses /proc/<pid>/stat. The command name (field 2) is in parentheses and may itself contain
 * spaces or ')', so fields are counted from the last ')'.
 */
export function parsePidStat(text: string): ProcessCpuTimes {
  const close = text.lastIndexOf(')');
  const fields =
    close < 0
      ? []
      : text
          .slice(close + 2)
          .trim()
          .split(/\s+/);
  // After ')': field 3 (state) is index 0, so field N is index N - 3.
  const utime = Number(fields[14 - 3]);
  const stime = Number(fields[15 - 3]);
  const start = Number(fields[22 - 3]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime) || !Number.isFinite(start)) {
    throw new MonitorError('MON_ERR_PROC_MALFORMED', 'a /proc/<pid>/stat line has too few fields');
  }
  return { ticks: utime + stime, start };
}

let clockTicks: number | undefined;

/** USER_HZ from `getconf CLK_TCK` (asked once per process); 100, the Linux default, if that fails. */
export function clockTicksPerSecond(): number {
  if (clockTicks === undefined) {
    try {
      const n = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8', timeout: 2_000 }).trim());
      clockTicks = Number.isInteger(n) && n > 0 ? n : 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

/** The host's logical CPU count from /proc/stat. */
export function hostCores(procRoot = '/proc'): number {
  return parseProcStat(readProc(`${procRoot}/stat`)).cores;
}

export interface CpuReading {
  /** CPU in use, in cores' worth, averaged since the previous reading. */
  readonly cores: number;
  /** Host logical CPUs (the default capacity). */
  readonly hostCores: number;
  /** Configured pids that were not running (counted as 0). Empty in host mode. */
  readonly missingPids: readonly number[];
}

export interface CpuMeterOptions {
  readonly source: 'host' | 'processes';
  /** Counted in `processes` mode besides this daemon's own pid. */
  readonly pids: readonly number[];
  readonly procRoot?: string;
}

/**
 * Turns cumulative /proc counters into cores' worth between two reads. The first read only sets
 * the baseline. Cost per read: one small file per counted process (or /proc/stat).
 */
export class CpuMeter {
  readonly source: 'host' | 'processes';
  private readonly pids: readonly number[];
  private readonly procRoot: string;
  /** Host logical CPUs, read once when the meter is made. */
  readonly hostCores: number;
  private prevHost: HostCpuTimes | null = null;
  private prevAt = 0;
  private readonly prevProc = new Map<number, ProcessCpuTimes>();

  constructor(opts: CpuMeterOptions) {
    this.source = opts.source;
    this.procRoot = opts.procRoot ?? '/proc';
    // This daemon always counts in processes mode: its own proxying is part of the site's load.
    this.pids = [...new Set([process.pid, ...opts.pids])];
    this.hostCores = hostCores(this.procRoot);
  }

  /** Reads the counters now; returns null on the first call (baseline only). `nowMs` is monotonic. */
  read(nowMs: number): CpuReading | null {
    return this.source === 'host' ? this.readHost() : this.readProcesses(nowMs);
  }

  private readHost(): CpuReading | null {
    const now = parseProcStat(readProc(`${this.procRoot}/stat`));
    const prev = this.prevHost;
    this.prevHost = now;
    if (!prev) return null;
    const total = now.total - prev.total;
    // Two reads inside one tick: no new information, report idle rather than divide by zero.
    const cores = total > 0 ? ((now.busy - prev.busy) / total) * now.cores : 0;
    return { cores: Math.max(0, cores), hostCores: now.cores, missingPids: [] };
  }

  private readProcesses(nowMs: number): CpuReading | null {
    const first = this.prevAt === 0;
    const seconds = (nowMs - this.prevAt) / 1000;
    this.prevAt = nowMs;
    let ticks = 0;
    const missing: number[] = [];
    for (const pid of this.pids) {
      const text = readProcIfExists(`${this.procRoot}/${pid}/stat`);
      if (text === null) {
        missing.push(pid);
        this.prevProc.delete(pid);
        continue;
      }
      const now = parsePidStat(text);
      const prev = this.prevProc.get(pid);
      this.prevProc.set(pid, now);
      // A pid seen for the first time (or reused by a new process) only sets its baseline.
      if (prev && prev.start === now.start) ticks += Math.max(0, now.ticks - prev.ticks);
    }
    if (first || seconds <= 0) return null;
    const cores = ticks / clockTicksPerSecond() / seconds;
    return { cores, hostCores: this.hostCores, missingPids: missing };
  }
}
