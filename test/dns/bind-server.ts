// A real BIND 9 (`named -g`) for tests: a temp dir with named.conf, one dynamic primary zone and a
// TSIG key that may update it. Fails clearly when named is not installed (apt package bind9).
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface BindServer {
  readonly host: string;
  readonly port: number;
  readonly zone: string;
  readonly keyName: string;
  /** base64, as tsig-keygen prints it. */
  readonly keySecret: string;
  readonly dir: string;
  log(): string;
  stop(): Promise<void>;
}

/** Throws a clear error naming the package when a tool is missing (tests must not skip). */
export function requireTool(tool: string, pkg: string): string {
  try {
    return execFileSync('sh', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).trim();
  } catch {
    throw new Error(`${tool} not found on PATH: install the apt package ${pkg} (.ci/run does)`);
  }
}

/** A port free for both TCP and UDP on host (BIND needs both). */
export async function freePort(host: string): Promise<number> {
  for (let i = 0; i < 20; i++) {
    const port = await new Promise<number>((resolve, reject) => {
      const s = createServer();
      s.once('error', reject);
      s.listen(0, host, () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => resolve(p));
      });
    });
    const udpFree = await new Promise<boolean>((resolve) => {
      const u = createSocket('udp4');
      u.once('error', () => resolve(false));
      u.bind(port, host, () => u.close(() => resolve(true)));
    });
    if (udpFree) return port;
  }
  throw new Error(`no port free for TCP and UDP on ${host}`);
}

/**
 * Starts named on 127.0.0.1 (BIND only listens on addresses an interface has, and lo has just
 * 127.0.0.1; the free port keeps parallel tests apart) with zone `zone` holding `records`.
 * The port is picked before named binds it, so a parallel test can take it in between: named
 * then logs "address in use" yet still says "running", and dig would reach someone else. So
 * readiness is proven by asking for the zone's SOA and seeing this instance's random
 * RNAME; on a lost port the attempt is stopped and retried on another.
 */
export async function startBind(opts: {
  zone: string;
  records: string;
  keyName?: string;
}): Promise<BindServer> {
  const failures: string[] = [];
  for (let attempt = 1; attempt <= 4; attempt++) {
    let started: StartedBind;
    try {
      started = await startBindOnce(opts);
    } catch (err) {
      failures.push(`attempt ${attempt}: ${(err as Error).message}`);
      continue;
    }
    const problem = await proveOurs(started);
    if (problem === null) return started.server;
    failures.push(`attempt ${attempt} on port ${started.server.port}: ${problem}`);
    await started.server.stop();
  }
  throw new Error(`named never served zone ${opts.zone}:\n${failures.join('\n')}`);
}

interface StartedBind {
  server: BindServer;
  /** The SOA RNAME only this instance serves, e.g. admin-3f9a.origin.test. */
  rname: string;
}

/** null when this named answers the zone's SOA with its own RNAME; else what went wrong. */
async function proveOurs(started: StartedBind): Promise<string | null> {
  const { server, rname } = started;
  const end = Date.now() + 10_000;
  let last = '';
  while (Date.now() < end) {
    if (/address in use/i.test(server.log())) return 'port taken by another process (address in use)';
    try {
      const soa = dig(server, server.zone, 'SOA');
      if (soa.some((l) => l.split(/\s+/)[1] === rname)) return null;
      last = `SOA answer ${JSON.stringify(soa)} is not ours`;
    } catch (err) {
      last = (err as Error).message.split('\n')[0] ?? String(err);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return `no SOA with RNAME ${rname} in 10 s (${last}); named log:\n${server.log().slice(-1500)}`;
}

async function startBindOnce(opts: {
  zone: string;
  records: string;
  keyName?: string;
}): Promise<StartedBind> {
  const named = requireTool('named', 'bind9');
  const host = '127.0.0.1';
  const port = await freePort(host);
  const dir = mkdtempSync(join(tmpdir(), 'dotslash-bind-'));
  const keyName = opts.keyName ?? 'dotslash-update';
  const keySecret = randomBytes(32).toString('base64');
  const rname = `admin-${randomBytes(4).toString('hex')}.${opts.zone}.`;
  const zoneFile = join(dir, `${opts.zone}.zone`);
  writeFileSync(
    join(dir, 'named.conf'),
    `options {
  directory "${dir}";
  pid-file "${join(dir, 'named.pid')}";
  session-keyfile "${join(dir, 'session.key')}";
  listen-on port ${port} { ${host}; };
  listen-on-v6 { none; };
  recursion no;
  dnssec-validation no;
  notify no;
};
key "${keyName}" { algorithm hmac-sha256; secret "${keySecret}"; };
controls { };
zone "${opts.zone}" {
  type primary;
  file "${zoneFile}";
  allow-update { key "${keyName}"; };
};
`,
  );
  writeFileSync(
    zoneFile,
    `$TTL 300
@ IN SOA ns1.${opts.zone}. ${rname} 1 3600 600 86400 60
@ IN NS ns1.${opts.zone}.
ns1 IN A ${host}
${opts.records}
`,
  );
  // -g: foreground, logs to stderr; as root without -u it stays root (CI runs as root).
  const child: ChildProcess = spawn(named, ['-g', '-c', join(dir, 'named.conf')], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  child.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`named did not start in 20 s:\n${log.slice(-3000)}`)),
      20_000,
    );
    const check = (): void => {
      if (/\brunning\b/.test(log) && log.includes(`${host}#${port}`)) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stderr!.on('data', check);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`named exited (${code}) before it was ready:\n${log.slice(-3000)}`));
    });
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
  const server: BindServer = {
    host,
    port,
    zone: opts.zone,
    keyName,
    keySecret,
    dir,
    log: () => log,
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(t);
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return { server, rname };
}

/** The real `dig` (bind9-dnsutils): the sorted answers for name/type, e.g. ["127.0.0.10"]. */
export function dig(server: { host: string; port: number }, name: string, type = 'A'): string[] {
  const digPath = requireTool('dig', 'bind9-dnsutils');
  const out = execFileSync(
    digPath,
    [`@${server.host}`, '-p', String(server.port), name, type, '+short', '+time=2', '+tries=2'],
    { encoding: 'utf8' },
  );
  return out
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith(';'))
    .sort();
}

/** dig's TTL of the first answer record (+noall +answer), or null when there is none. */
export function digTtl(server: { host: string; port: number }, name: string, type = 'A'): number | null {
  const out = execFileSync(
    requireTool('dig', 'bind9-dnsutils'),
    [`@${server.host}`, '-p', String(server.port), name, type, '+noall', '+answer', '+time=2', '+tries=2'],
    { encoding: 'utf8' },
  );
  const first = out.split('\n').find((l) => l.trim() !== '' && !l.startsWith(';'));
  return first === undefined ? null : Number(first.split(/\s+/)[1]);
}
