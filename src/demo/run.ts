// `dotslash demo`: a community on one machine (origin + 3 rescuers, each a daemon process on its
// own 127.0.0.x address) and a built-in flash crowd at ~10x the origin's capacity; shows the origin
// being rescued and released, with numbers (issue 3 item 6).
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Community, type CommunityOptions, type Member } from './community.js';
import { Crowd, type CrowdOptions } from './crowd.js';
import { memberStatus, originSessionCounts, type MemberStatus } from './status.js';

export interface DemoOptions {
  /** Crowd for this many seconds, then wait for release and exit; unset = cycles until Ctrl-C. */
  duration?: number;
  json?: boolean;
  /** Crowd arrival rate in fetches/s (default 10 x originRps). */
  crowdRps?: number;
  /** Origin's capacity in requests/s (default 10). */
  originRps?: number;
  baseDir?: string;
  /** Cycle mode: seconds of crowd and of calm. */
  crowdSeconds?: number;
  calmSeconds?: number;
  /** How long to wait for release after the crowd (exit code 2 when exceeded). */
  releaseTimeoutS?: number;
  /** Passed to Community.create (tests). */
  community?: Partial<CommunityOptions>;
  stderr?: NodeJS.WritableStream & { isTTY?: boolean };
  stdout?: NodeJS.WritableStream;
}

export interface DemoEndpoints {
  base_dir: string;
  site: string;
  members: {
    name: string;
    role: 'origin' | 'rescuer';
    address: string;
    front: string;
    admin: string;
    admin_token_file: string;
    control: string;
    /** Its embedded DNS server (UDP and TCP) and the zone it answers for. */
    dns: string;
    zone: string;
    log: string;
  }[];
}

export interface DemoSummary {
  requests: number;
  served_by_origin: number;
  served_by_rescuers: number;
  /** Of served_by_rescuers: fetches that reached a rescuer by the origin's DNS answer (round robin), not a redirect. */
  served_via_dns_rr: number;
  errors: number;
  max_pr: number;
  sessions_opened: number;
  sessions_closed: number;
  final_state: 'normal' | 'sos' | 'rescue';
  endpoints: DemoEndpoints;
}

export const DEMO_EXIT_OK = 0;
/** The origin was not released within releaseTimeoutS, or the demo failed. */
export const DEMO_EXIT_NOT_RELEASED = 2;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Runs the demo to its end; resolves with the process exit code. */
export async function runDemo(opts: DemoOptions = {}): Promise<number> {
  const err = opts.stderr ?? process.stderr;
  const out = opts.stdout ?? process.stdout;
  const originRps = opts.originRps ?? 10;
  const crowdRps = opts.crowdRps ?? 10 * originRps;
  const baseDir = opts.baseDir ?? mkdtempSync(join(tmpdir(), 'dotslash-demo-'));
  const say = (s: string): void => void err.write(s);

  say(`DotSlash community demo: setting up in ${baseDir}\n`);
  // Rescuers are discovered through a registry, not configured (issue 5).
  const community = await Community.create({ baseDir, originRps, discovery: 'registry', ...opts.community });
  let stopping = false;
  let interrupted = false;
  const onSignal = (): void => {
    if (interrupted) {
      // Second Ctrl-C: no more waiting.
      community.killAll('SIGKILL');
      process.exit(130);
    }
    interrupted = true;
    stopping = true;
    say('\ninterrupted: stopping the crowd and the community (Ctrl-C again to kill at once)\n');
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  let crowd: Crowd | null = null;
  try {
    await community.start();
    const endpoints = endpointsOf(community);
    say(describeEndpoints(endpoints, originRps, crowdRps, opts.duration));

    crowd = crowdFor(community);

    const progress = new Progress(community, crowd, err);
    progress.start();

    let code = DEMO_EXIT_OK;
    if (opts.duration !== undefined) {
      await runCrowd(crowd, crowdRps, opts.duration * 1000, () => stopping);
      await crowd.close();
      if (!stopping) {
        progress.note('crowd over: waiting for every rescue to be released');
        const released = await waitForRelease(
          community.origin,
          (opts.releaseTimeoutS ?? 120) * 1000,
          () => stopping,
        );
        if (!released && !stopping) {
          progress.note(`not released within ${opts.releaseTimeoutS ?? 120} s: giving up`);
          code = DEMO_EXIT_NOT_RELEASED;
        }
      }
    } else {
      for (let cycle = 1; !stopping; cycle++) {
        progress.note(`cycle ${cycle}: flash crowd`);
        await runCrowd(crowd, crowdRps, (opts.crowdSeconds ?? 60) * 1000, () => stopping);
        if (stopping) break;
        progress.note(`cycle ${cycle}: calm`);
        const calmUntil = Date.now() + (opts.calmSeconds ?? 60) * 1000;
        while (!stopping && Date.now() < calmUntil) await sleep(200);
      }
      await crowd.close();
    }
    await progress.poll();
    progress.stop();

    const status = await memberStatus(community.origin).catch(() => null);
    const counts = originSessionCounts(community.origin);
    const summary = summarize(crowd, community, progress.maxPr, counts, status, endpoints);
    const t = crowd.tally;
    say(
      `errors: ${t.timeouts} timeouts (10 s), ${t.httpErrors} HTTP >= 400, ` +
        `${t.errors - t.timeouts - t.httpErrors} transport; ${t.redirected} fetches redirected` +
        (t.skipped > 0 ? `; ${t.skipped} arrivals not sent (too many in flight)` : '') +
        (crowd.dnsStats
          ? `; DNS: ${crowd.dnsStats.queries} queries to ${community.origin.dns}, ` +
            `${crowd.dnsStats.cached} answers from client caches, ${crowd.dnsStats.failures} failed`
          : '') +
        '\n',
    );
    await community.stop();
    if (opts.json) out.write(JSON.stringify(summary) + '\n');
    else out.write(describeSummary(summary));
    return code;
  } catch (e) {
    say(`dotslash demo: ${e instanceof Error ? e.message : String(e)}\n`);
    return DEMO_EXIT_NOT_RELEASED;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    if (crowd) await crowd.close().catch(() => undefined);
    await community.stop();
  }
}

/**
 * A crowd aimed at the community's origin site: the origin's name is resolved through the origin's
 * DNS server (cached per TTL per client, so rescuers in its answers get clients by DNS round
 * robin); every other member name (and vhN.<name>) maps to its address.
 */
export function crowdFor(community: Community, opts: Partial<CrowdOptions> = {}): Crowd {
  const hosts: Record<string, string> = {};
  for (const m of community.members) {
    hosts[m.name] = m.host;
    hosts[`*.${m.name}`] = m.host;
  }
  const memberOf = (host: string): string =>
    community.members.find((m) => host === m.name || host.endsWith(`.${m.name}`) || host === m.host)?.name ??
    host;
  return new Crowd({
    target: community.origin.publicUrl,
    hosts,
    memberOf,
    dns: { server: community.origin.dns },
    ...opts,
  });
}

/** Crowd for `ms`: a short ramp (a flash crowd builds up in seconds), then the full rate. */
export async function runCrowd(crowd: Crowd, rps: number, ms: number, stop: () => boolean): Promise<void> {
  const end = Date.now() + ms;
  const rampMs = Math.min(5_000, ms / 4);
  const start = Date.now();
  while (!stop() && Date.now() < end) {
    const f = rampMs > 0 ? Math.min(1, (Date.now() - start + 500) / rampMs) : 1;
    crowd.setRate(rps * Math.max(0.1, f));
    await sleep(Math.min(500, Math.max(0, end - Date.now())));
  }
  crowd.setRate(0);
}

/** Polls the origin until it is back to normal with no sessions; false after `ms`. */
export async function waitForRelease(
  origin: Member,
  ms: number,
  stop: () => boolean = () => false,
): Promise<boolean> {
  const until = Date.now() + ms;
  while (!stop() && Date.now() < until) {
    const st = await memberStatus(origin).catch(() => null);
    if (st && st.state === 'normal' && st.sessions.every((s) => s.role !== 'origin')) return true;
    await sleep(500);
  }
  return false;
}

function summarize(
  crowd: Crowd,
  community: Community,
  maxPr: number,
  counts: { opened: number; closed: number },
  status: MemberStatus | null,
  endpoints: DemoEndpoints,
): DemoSummary {
  const t = crowd.tally;
  const byOrigin = t.servedBy[community.origin.name] ?? 0;
  // Anything not from the origin was sent by a rescuer (the final URL's host named it).
  const byRescuers = Object.entries(t.servedBy)
    .filter(([k]) => k !== community.origin.name)
    .reduce((a, [, v]) => a + v, 0);
  return {
    requests: t.requests,
    served_by_origin: byOrigin,
    served_by_rescuers: byRescuers,
    served_via_dns_rr: t.viaDnsRr,
    errors: t.errors,
    max_pr: Math.round(maxPr * 1000) / 1000,
    sessions_opened: counts.opened,
    sessions_closed: counts.closed,
    final_state: status?.state ?? 'normal',
    endpoints,
  };
}

function endpointsOf(c: Community): DemoEndpoints {
  return {
    base_dir: c.baseDir,
    site: `${c.origin.publicUrl}/`,
    members: c.members.map((m) => ({
      name: m.name,
      role: m.role,
      address: m.host,
      front: m.frontUrl,
      admin: m.adminUrl,
      admin_token_file: m.tokenFile,
      control: m.controlUrl,
      dns: m.dns,
      zone: m.zone,
      log: m.logFile,
    })),
  };
}

function describeEndpoints(e: DemoEndpoints, originRps: number, crowdRps: number, duration?: number): string {
  const lines = [
    '',
    `site:  ${e.site}  (the crowd resolves ${e.members[0]!.name} through its DNS server ${e.members[0]!.dns}, zone ${e.members[0]!.zone};`,
    `       try: dig @${e.members[0]!.dns.replace(/:(\d+)$/, ' -p $1')} www.${e.members[0]!.zone})`,
    `       origin capacity ${originRps} req/s (queues beyond it); flash crowd ${crowdRps} fetches/s` +
      (duration !== undefined ? ` for ${duration} s` : ', 60 s crowd / 60 s calm cycles until Ctrl-C'),
  ];
  for (const m of e.members) {
    lines.push(
      `${m.role === 'origin' ? 'origin ' : 'rescuer'} ${m.name.padEnd(14)} front ${m.front}  control ${m.control}`,
      `        admin ${m.admin}/status (token in ${m.admin_token_file})  log ${m.log}`,
      `        dns ${m.dns} (zone ${m.zone})`,
    );
  }
  return lines.join('\n') + '\n\n';
}

function describeSummary(s: DemoSummary): string {
  const pct = (n: number): string => (s.requests > 0 ? `${((100 * n) / s.requests).toFixed(1)}%` : '-');
  return (
    [
      '',
      'DotSlash demo summary',
      `  client fetches       ${s.requests}`,
      `  served by origin     ${s.served_by_origin} (${pct(s.served_by_origin)})`,
      `  served by rescuers   ${s.served_by_rescuers} (${pct(s.served_by_rescuers)})`,
      `    by DNS round robin ${s.served_via_dns_rr} (${pct(s.served_via_dns_rr)}; the rest by redirect)`,
      `  errors               ${s.errors} (${pct(s.errors)})`,
      `  highest Pr           ${s.max_pr}`,
      `  rescue sessions      ${s.sessions_opened} opened, ${s.sessions_closed} closed (at the origin)`,
      `  origin's final state ${s.final_state}`,
      `  files and logs       ${s.endpoints.base_dir}`,
    ].join('\n') + '\n'
  );
}

/** The live line: origin state and Pr, fetches/s served by each member, errors. */
class Progress {
  maxPr = 0;
  readonly #c: Community;
  readonly #crowd: Crowd;
  readonly #err: NodeJS.WritableStream & { isTTY?: boolean };
  readonly #tty: boolean;
  readonly #started = Date.now();
  #timer: NodeJS.Timeout | null = null;
  #prev: { at: number; served: Record<string, number>; errors: number } = {
    at: Date.now(),
    served: {},
    errors: 0,
  };
  #lastPrinted = 0;
  #lineOpen = false;

  constructor(c: Community, crowd: Crowd, err: NodeJS.WritableStream & { isTTY?: boolean }) {
    this.#c = c;
    this.#crowd = crowd;
    this.#err = err;
    this.#tty = err.isTTY === true;
  }

  start(): void {
    this.#timer = setInterval(() => void this.poll(), 1_000);
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    if (this.#lineOpen) this.#err.write('\n');
    this.#lineOpen = false;
  }

  note(text: string): void {
    if (this.#lineOpen) this.#err.write('\n');
    this.#lineOpen = false;
    this.#err.write(`[${this.#elapsed()}] ${text}\n`);
  }

  async poll(): Promise<void> {
    const st = await memberStatus(this.#c.origin, 900).catch(() => null);
    if (st) this.maxPr = Math.max(this.maxPr, st.pr);
    const now = Date.now();
    const t = this.#crowd.tally;
    const secs = Math.max(0.001, (now - this.#prev.at) / 1000);
    const perMember = this.#c.members.map((m) => {
      const d = (t.servedBy[m.name] ?? 0) - (this.#prev.served[m.name] ?? 0);
      return `${short(m.name)} ${Math.round(d / secs)}`;
    });
    const errRate = Math.round((t.errors - this.#prev.errors) / secs);
    this.#prev = { at: now, served: { ...t.servedBy }, errors: t.errors };
    const line =
      `[${this.#elapsed()}] origin ${st ? `${st.state.padEnd(6)} Pr ${st.pr.toFixed(2)}` : '(no status)'}` +
      ` | crowd ${Math.round(this.#crowd.rate)}/s | served/s: ${perMember.join(', ')}` +
      ` | errors/s ${errRate} (total ${t.errors} of ${t.requests})`;
    if (this.#tty) {
      this.#err.write(`\r${line}\x1b[K`);
      this.#lineOpen = true;
    } else if (now - this.#lastPrinted >= 3_000) {
      this.#err.write(line + '\n');
      this.#lastPrinted = now;
    }
  }

  #elapsed(): string {
    return `${String(Math.round((Date.now() - this.#started) / 1000)).padStart(4)}s`;
  }
}

const short = (name: string): string => name.split('.')[0]!;
