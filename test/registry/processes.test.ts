// Three registries as real processes (`dotslash registry -c FILE`): one is SIGKILLed in the middle
// of a stream of registrations and restarted. Every acknowledged registration survives (WAL) and
// the mesh converges (the time is printed); a closed community refuses a stranger until the CLI
// admits its key; a member's client fails over to the second registry when the first is gone.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { openSync, closeSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { CLI_ENTRY } from '../integration/helpers.js';
import { RegistryClient } from '../../src/registry/client.js';
import { REGISTER_PATH } from '../../src/registry/messages.js';
import { sealRequest } from '../../src/registry/signed.js';
import { freePort, member, registryKey, sleep, tempDir, until, type Member } from './helpers.js';

const HOSTS = ['127.0.0.90', '127.0.0.91', '127.0.0.92'];
const TOKEN = 'registry-test-token';

interface Reg {
  readonly id: string;
  readonly dir: string;
  readonly url: string;
  readonly adminUrl: string;
  readonly config: string;
  readonly log: string;
  child: ChildProcess | null;
}

const running = new Set<ChildProcess>();
afterAll(() => {
  for (const c of running) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

async function makeMesh(): Promise<Reg[]> {
  const keys = HOSTS.map((_, i) => registryKey(`reg${i}.test`));
  const regs: Reg[] = [];
  for (const [i, host] of HOSTS.entries()) {
    const dir = tempDir();
    writeFileSync(join(dir, 'registry.key'), keys[i]!.pem, { mode: 0o600 });
    const [api, admin] = [await freePort(host), await freePort(host)];
    regs.push({
      id: keys[i]!.id,
      dir,
      url: `http://${host}:${api}`,
      adminUrl: `http://${host}:${admin}`,
      config: join(dir, 'registry.yaml'),
      log: join(dir, 'registry.log'),
      child: null,
    });
  }
  for (const [i, r] of regs.entries()) {
    const cfg = {
      id: r.id,
      listen: new URL(r.url).host,
      state_file: join(r.dir, 'registry.db'),
      key_file: join(r.dir, 'registry.key'),
      peers: regs
        .filter((o) => o !== r)
        .map((o) => ({ id: o.id, url: o.url, public_key: keys[regs.indexOf(o)]!.publicKey })),
      communities: [{ name: 'default' }, { name: 'club', type: 'closed' }],
      admin: { listen: new URL(r.adminUrl).host, token_file: join(r.dir, 'admin.token') },
      lease: { min_ms: 1_000, max_ms: 600_000 },
      mesh: { anti_entropy_ms: 500, push_delay_ms: 10 },
      log: { level: 'info' },
    };
    writeFileSync(r.config, stringify(cfg));
    writeFileSync(join(r.dir, 'admin.token'), `${TOKEN}\n`, { mode: 0o600 });
    void i;
  }
  return regs;
}

async function startReg(r: Reg): Promise<void> {
  const fd = openSync(r.log, 'a');
  const child = spawn(CLI_ENTRY[0]!, [...CLI_ENTRY.slice(1), 'registry', '-c', r.config], {
    cwd: r.dir,
    stdio: ['ignore', fd, fd],
  });
  closeSync(fd);
  running.add(child);
  r.child = child;
  await until(
    async () => {
      if (child.exitCode !== null)
        throw new Error(`registry exited: ${readFileSync(r.log, 'utf8').slice(-2000)}`);
      return (await fetch(`${r.url}/v1/health`).catch(() => null))?.ok;
    },
    30_000,
    `${r.id} ready`,
  );
}

function kill9(r: Reg): Promise<void> {
  const c = r.child!;
  return new Promise((resolve) => {
    c.once('exit', () => resolve());
    c.kill('SIGKILL');
  });
}

async function register(r: Reg, m: Member, community = 'default'): Promise<number> {
  const sealed = sealRequest(
    m.id,
    community,
    'register',
    m.registration({ community, lease_ms: 600_000 }),
    m.privateKey,
  );
  const res = await fetch(r.url + REGISTER_PATH, {
    method: 'POST',
    headers: sealed.headers,
    body: sealed.bytes,
  });
  await res.arrayBuffer();
  return res.status;
}

async function status(r: Reg): Promise<{ vector: Record<string, number>; records: { member: number } }> {
  const res = await fetch(`${r.adminUrl}/v1/admin/status`, { headers: { authorization: `Bearer ${TOKEN}` } });
  return (await res.json()) as { vector: Record<string, number>; records: { member: number } };
}

describe('registry processes', () => {
  it('survives kill -9 mid-write with nothing acknowledged lost, and the mesh converges', async () => {
    const regs = await makeMesh();
    await Promise.all(regs.map(startReg));
    const [a, b, c] = regs as [Reg, Reg, Reg];
    const members = Array.from({ length: 300 }, (_, i) => member(`m${i}.test`));
    // A stream of registrations to b; b is SIGKILLed in the middle of it.
    const acked: Member[] = [];
    const stream = (async () => {
      for (const m of members.slice(0, 200)) {
        const st = await register(b, m).catch(() => 0);
        if (st === 200) acked.push(m);
      }
    })();
    await until(() => acked.length >= 60, 30_000, '60 registrations on b');
    await kill9(b);
    await stream;
    expect(acked.length).toBeGreaterThan(50);
    // b's own file (WAL) holds every registration it acknowledged, before any peer helps.
    const db = new Database(join(b.dir, 'registry.db'), { readonly: true });
    const keys = new Set(
      (db.prepare("SELECT key FROM records WHERE kind = 'member'").all() as { key: string }[]).map(
        (r) => r.key,
      ),
    );
    db.close();
    expect(acked.filter((m) => !keys.has(`default/${m.id}`)).map((m) => m.id)).toEqual([]);
    // While b is down, a and c take more.
    for (const [i, m] of members.slice(200).entries()) expect(await register(i % 2 ? a : c, m)).toBe(200);
    const t0 = performance.now();
    await startReg(b);
    // A registration in flight at the kill may have been committed without its answer arriving.
    const expected = acked.length + 100;
    let last: unknown;
    await until(
      async () => {
        const s = await Promise.all(regs.map(status));
        last = s;
        const v = JSON.stringify(s[0]!.vector);
        const n = s[0]!.records.member;
        return (
          n >= expected &&
          n <= expected + 1 &&
          s.every((x) => x.records.member === n && JSON.stringify(x.vector) === v)
        );
      },
      60_000,
      'convergence after the restart',
    ).catch((err: unknown) => {
      throw new Error(`${String(err)}; expected ${expected}; status ${JSON.stringify(last)}`);
    });
    const ms = performance.now() - t0;
    process.stdout.write(
      `registry mesh: restarted registry converged in ${Math.round(ms)} ms (restart included); ${acked.length} acknowledged before kill -9, all kept\n`,
    );
    // Every acknowledged registration is on every registry: look for them in b's own store.
    const bStatus = await status(b);
    expect(bStatus.records.member).toBeGreaterThanOrEqual(expected);
  }, 180_000);

  it('a closed community refuses a stranger until `dotslash registry admit` (replicated to the others)', async () => {
    const regs = await makeMesh();
    await Promise.all(regs.map(startReg));
    const [a, b] = regs as [Reg, Reg];
    const m = member('club-member.test', 'club');
    expect(await register(b, m, 'club')).toBe(403);
    const cli = spawnSync(
      CLI_ENTRY[0]!,
      [
        ...CLI_ENTRY.slice(1),
        'registry',
        'admit',
        m.publicKey,
        '--community',
        'club',
        '--admin',
        a.adminUrl,
        '--token',
        TOKEN,
      ],
      { encoding: 'utf8', timeout: 30_000 },
    );
    expect(cli.status, cli.stderr).toBe(0);
    expect(JSON.parse(cli.stdout)).toMatchObject({ community: 'club', admitted: true });
    // Admitted on a, replicated to b.
    await until(async () => (await register(b, m, 'club')) === 200, 20_000, 'admission replicated to b');
    const bad = spawnSync(
      CLI_ENTRY[0]!,
      [
        ...CLI_ENTRY.slice(1),
        'registry',
        'admit',
        'ed25519:short',
        '--community',
        'club',
        '--admin',
        a.adminUrl,
        '--token',
        TOKEN,
      ],
      {
        encoding: 'utf8',
        timeout: 30_000,
      },
    );
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toMatch(/ed25519/);
  }, 120_000);

  it("a member's client fails over to the second registry when the first dies", async () => {
    const regs = await makeMesh();
    await Promise.all(regs.map(startReg));
    const [a, b] = regs as [Reg, Reg];
    const mk = (m: Member) =>
      new RegistryClient({
        self: { id: m.id, privateKey: m.privateKey },
        registration: (({ spare: _s, ...r }) => r)(m.registration({ lease_ms: 3_000 })),
        registries: [a.url, b.url],
        timeoutMs: 1_000,
      });
    const origin = mk(member('origin.test'));
    const rescuer = mk(member('rescuer.test'));
    await origin.start();
    await rescuer.start();
    expect(origin.current).toBe(a.url);
    // Both registrations reached b (pushed by a) before a dies.
    await until(async () => (await status(b)).records.member === 2, 20_000, 'registrations replicated to b');
    await kill9(a);
    await sleep(200);
    await origin.renew();
    expect(origin.current).toBe(b.url);
    expect((await origin.lookup([])).map((x) => x.id)).toEqual(['rescuer.test']);
    await origin.close();
    await rescuer.close();
  }, 120_000);
});
