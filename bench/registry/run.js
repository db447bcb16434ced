/* global fetch, AbortSignal */
// `node bench/registry/run.js` (`npm run bench:registry`): (1) signed lookups/s of one registry
// process holding 10k registered members, on one core, beside a bare node:http server answering
// the same JSON bytes (the anchor; ratio printed); target >= 5k lookups/s. (2) Time for 3
// registries to converge after 1k updates, and after a healed partition (one SIGSTOPped while
// 1k updates land on the others, then SIGCONTed). Appends a dated section to bench/RESULTS.md.
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { generateKeyPair, parsePrivateKey } from '../../dist/rescue-protocol/keys.js';
import { RegistryStore } from '../../dist/src/registry/store.js';
import { sealRequest } from '../../dist/src/registry/signed.js';
import { summarise, summaryMarkdown } from '../proxy/profile-summary.js';
import { freePort, killAll, killAllSync, say, sleep, start } from '../proxy/procs.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const { values: opt } = parseArgs({
  options: {
    members: { type: 'string', default: '10000' },
    duration: { type: 'string', default: '8' },
    rounds: { type: 'string', default: '3' },
    connections: { type: 'string', default: '32' },
    updates: { type: 'string', default: '1000' },
    'no-record': { type: 'boolean', default: false },
    quick: { type: 'boolean', default: false },
    // Run the lookup registry under `node --cpu-prof` and print where its time goes (not recorded).
    profile: { type: 'boolean', default: false },
  },
});
if (opt.quick) Object.assign(opt, { duration: '3', rounds: '1' });
const MEMBERS = Number(opt.members);
const DURATION = Number(opt.duration);
const ROUNDS = Number(opt.rounds);
const CONNECTIONS = Number(opt.connections);
const UPDATES = Number(opt.updates);
const TARGET = 5_000;
const COMMUNITY = 'bench';
const TOKEN = 'bench-token';
const HOST = '127.0.0.1';
const multiCpu = os.cpus().length >= 2;
const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
const SERVER_CPU = multiCpu ? '1' : undefined;
const LOAD_CPU = multiCpu ? '0' : undefined;

process.on('exit', killAllSync);
for (const sig of ['SIGINT', 'SIGTERM'])
  process.on(sig, () => {
    killAllSync();
    process.exit(130);
  });

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dotslash-bench-registry-'));
const cli = path.join(root, 'bin/dotslash.js');

function registration(id, publicKey, spare) {
  return {
    id,
    names: [id],
    control_url: `http://${id}:9181`,
    public_key: publicKey,
    community: COMMUNITY,
    lease_ms: 3_600_000,
    willing: true,
    capacity: { uplink_bps: 12_500_000, cpu: 2, rps: 1000 },
    spare: { uplink_bps: spare, cpu: 1, rps: 500 },
  };
}

async function registryConfig(name, peers = []) {
  const dir = path.join(tmp, name);
  fs.mkdirSync(dir, { recursive: true });
  const kp = generateKeyPair();
  fs.writeFileSync(path.join(dir, 'registry.key'), kp.privateKeyPem, { mode: 0o600 });
  fs.writeFileSync(path.join(dir, 'admin.token'), `${TOKEN}\n`, { mode: 0o600 });
  const [api, admin] = [await freePort(), await freePort()];
  return {
    name,
    dir,
    publicKey: kp.publicKey,
    url: `http://${HOST}:${api}`,
    adminUrl: `http://${HOST}:${admin}`,
    file: path.join(dir, 'registry.yaml'),
    write(peerList = peers) {
      const yaml = [
        `id: ${name}`,
        `listen: ${HOST}:${api}`,
        `state_file: ${path.join(dir, 'registry.db')}`,
        `key_file: ${path.join(dir, 'registry.key')}`,
        `communities: [{ name: ${COMMUNITY} }]`,
        `admin: { listen: '${HOST}:${admin}', token_file: '${path.join(dir, 'admin.token')}' }`,
        `lease: { min_ms: 1000, max_ms: 3600000 }`,
        `mesh: { anti_entropy_ms: 500, push_delay_ms: 20 }`,
        `max_body_bytes: 65536`,
        `log: { level: warn }`,
        `peers:`,
        ...(peerList.length === 0
          ? ['  []']
          : peerList.map((p) => `  - { id: ${p.name}, url: '${p.url}', public_key: '${p.publicKey}' }`)),
      ].join('\n');
      fs.writeFileSync(this.file, `${yaml}\n`);
    },
  };
}

async function waitHealth(url, child, ms = 30_000) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (child.exitCode !== null) throw new Error(`${url}: process exited`);
    const ok = await fetch(`${url}/v1/health`, { signal: AbortSignal.timeout(2_000) }).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return;
    await sleep(100);
  }
  throw new Error(`${url} not ready`);
}

function runRegistry(cfg, cpus, nodeArgs = []) {
  const child = start(cfg.name, process.execPath, [...nodeArgs, cli, 'registry', '-c', cfg.file], {
    cpus,
    stdout: 'ignore',
    stderr: 'pipe',
  });
  let errText = '';
  child.stderr.on('data', (d) => (errText = (errText + d).slice(-4000)));
  child.errText = () => errText;
  return child;
}

function lineOf(child) {
  return new Promise((resolve, reject) => {
    let buf = '';
    const onData = (d) => {
      buf += d;
      const i = buf.indexOf('\n');
      if (i >= 0) {
        child.stdout.off('data', onData);
        resolve(buf.slice(0, i));
      }
    };
    child.stdout.on('data', onData);
    child.once('exit', () => reject(new Error(`${child.benchName} exited`)));
  });
}

/** utime + stime of a process, in seconds (/proc/PID/stat fields 14 and 15). */
function procCpuSeconds(pid) {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
}

/** One measured run of the load generator against `url`; returns its JSON result. */
async function load(url, originsFile) {
  // Enough for ~8k req/s; a run that uses them all up stops early and reports requests / time taken.
  const presign = Math.min(100_000, Math.ceil(DURATION * 8_000));
  const gen = spawn(
    ...(LOAD_CPU ? ['taskset', ['-c', LOAD_CPU, process.execPath]] : [process.execPath, []]).flatMap(
      (x, i) =>
        i === 0
          ? [x]
          : [
              [
                ...x,
                path.join(here, 'loadgen.js'),
                url,
                originsFile,
                COMMUNITY,
                String(DURATION),
                String(CONNECTIONS),
                String(presign),
              ],
            ],
    ),
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  gen.benchName = 'loadgen';
  await lineOf(gen); // signed
  gen.stdin.write('go\n');
  const result = JSON.parse(await lineOf(gen));
  gen.stdin.end();
  return result;
}

async function status(adminUrl) {
  const r = await fetch(`${adminUrl}/v1/admin/status`, {
    headers: { authorization: `Bearer ${TOKEN}` },
    signal: AbortSignal.timeout(10_000),
  });
  return r.json();
}

/** ms until every registry reports the same vector and `members` member records. */
async function converged(regs, members, t0, ms = 120_000) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const s = await Promise.all(regs.map((r) => status(r.adminUrl).catch(() => null)));
    if (
      s.every(
        (x) => x && x.records.member === members && JSON.stringify(x.vector) === JSON.stringify(s[0].vector),
      )
    )
      return performance.now() - t0;
    await sleep(20);
  }
  throw new Error('no convergence');
}

async function post(url, sealed) {
  const r = await fetch(url, {
    method: 'POST',
    headers: sealed.headers,
    body: sealed.bytes,
    signal: AbortSignal.timeout(30_000),
  });
  await r.arrayBuffer();
  if (r.status !== 200) throw new Error(`${url}: ${r.status}`);
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function lookupBench() {
  const cfg = await registryConfig('lookup.bench');
  cfg.write([]);
  // 10k members written straight into the store file (the registry loads them at start).
  const store = RegistryStore.open(path.join(cfg.dir, 'registry.db'), { self: cfg.name });
  // The first ORIGINS members sign the lookups (the replay cache bounds nonces per sender).
  const ORIGINS = 16;
  const origins = Array.from({ length: ORIGINS }, (_, i) => ({
    id: `origin${i}.bench`,
    ...generateKeyPair(),
  }));
  const expires = Date.now() + 3_600_000;
  const someKey = generateKeyPair().publicKey;
  say(`writing ${MEMBERS} members into the store`);
  for (let i = 0; i < MEMBERS; i++) {
    const o = origins[i];
    const id = o ? o.id : `m${i}.bench`;
    const pk = o ? o.publicKey : someKey;
    store.local('member', `${COMMUNITY}/${id}`, registration(id, pk, 1_000_000 + ((i * 7919) % 10_000_000)), {
      expiresAt: expires,
    });
  }
  store.close();
  const originKey = origins[0];

  const profDir = path.join(tmp, 'profile');
  const reg = runRegistry(cfg, SERVER_CPU, opt.profile ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`] : []);
  const spawned = Date.now();
  await waitHealth(cfg.url, reg);
  // Each origin registers once over HTTP (signed) for its session key, as a daemon does.
  for (const o of origins) {
    const r = sealRequest(
      o.id,
      COMMUNITY,
      'register',
      registration(o.id, o.publicKey, 1_000_000),
      parsePrivateKey(o.privateKeyPem),
    );
    const res = await fetch(`${cfg.url}/v1/register`, { method: 'POST', headers: r.headers, body: r.bytes });
    const answer = await res.json();
    if (res.status !== 200) throw new Error(`register ${o.id}: ${JSON.stringify(answer)}`);
    o.sessionKey = answer.session_key;
  }
  const originsFile = path.join(tmp, 'origins.json');
  const write = (auth) =>
    fs.writeFileSync(
      originsFile,
      JSON.stringify(
        origins.map((o) => ({
          id: o.id,
          pem: o.privateKeyPem,
          ...(auth === 'mac' && { sessionKey: o.sessionKey }),
        })),
      ),
      { mode: 0o600 },
    );
  // One real answer: the anchor serves exactly these bytes.
  const sealed = sealRequest(
    originKey.id,
    COMMUNITY,
    'lookup',
    { community: COMMUNITY, origin: originKey.id, exclude: [], limit: 4 },
    parsePrivateKey(originKey.privateKeyPem),
  );
  const sample = await fetch(`${cfg.url}/v1/lookup`, {
    method: 'POST',
    headers: sealed.headers,
    body: sealed.bytes,
  });
  const sampleBody = Buffer.from(await sample.arrayBuffer());
  if (sample.status !== 200) throw new Error(`lookup failed: ${sampleBody}`);
  const candidates = JSON.parse(sampleBody).candidates.length;
  const bodyFile = path.join(tmp, 'answer.json');
  fs.writeFileSync(bodyFile, sampleBody);
  const barePort = await freePort();
  const bare = start(
    'bare',
    process.execPath,
    [path.join(here, 'bare.js'), HOST, String(barePort), bodyFile],
    { cpus: SERVER_CPU },
  );
  await lineOf(bare);
  const skipMs = Date.now() - spawned;
  // Alternate the order every round, so drift in machine load hits both alike.
  const ours = [];
  const signed = [];
  const anchor = [];
  const [oursCpu, signedCpu, anchorCpu] = [[], [], []];
  for (let r = 0; r < ROUNDS; r++) {
    // Profiling looks at what daemons send (MAC lookups) only.
    const order = opt.profile
      ? ['ours']
      : r % 2 === 0
        ? ['ours', 'signed', 'bare']
        : ['bare', 'signed', 'ours'];
    for (const run of order) {
      // "ours": lookups with the session-key MAC (what daemons send); "signed": Ed25519 on each.
      write(run === 'signed' ? 'signature' : 'mac');
      const which = run === 'bare' ? 'bare' : 'ours';
      // Only the measured server may run on the server core: the other one is stopped.
      (which === 'ours' ? bare : reg).kill('SIGSTOP');
      const measured = which === 'ours' ? reg : bare;
      const cpu0 = procCpuSeconds(measured.pid);
      const res = await load(
        which === 'ours' ? `${cfg.url}/v1/lookup` : `http://${HOST}:${barePort}/v1/lookup`,
        originsFile,
      );
      (which === 'ours' ? bare : reg).kill('SIGCONT');
      if (res.errors > 0) throw new Error(`${which}: ${res.errors} errors`);
      // The server's own CPU per answer: what one fully used core could answer, whatever the
      // load generator (one Node process, itself the limit near 3-5k req/s) manages to send.
      const perCpuS = res.requests / Math.max(1e-6, procCpuSeconds(measured.pid) - cpu0);
      (run === 'ours' ? ours : run === 'signed' ? signed : anchor).push(res.rps);
      (run === 'ours' ? oursCpu : run === 'signed' ? signedCpu : anchorCpu).push(perCpuS);
      say(
        `round ${r + 1} ${run}: ${Math.round(res.rps)} req/s, ${Math.round(perCpuS)} per server CPU-second${res.exhausted ? ' (pre-signed requests ran out: raise presign)' : ''}`,
      );
    }
  }
  reg.kill('SIGTERM');
  bare.kill('SIGTERM');
  if (opt.profile) await printProfile(reg, profDir, skipMs);
  return { ours, signed, anchor, oursCpu, signedCpu, anchorCpu, candidates, answerBytes: sampleBody.length };
}

/** `--profile`: the lookup registry's .cpuprofile, summarised (start-up and loading skipped). */
async function printProfile(reg, profDir, skipMs) {
  await new Promise((resolve) => (reg.exitCode !== null ? resolve() : reg.once('exit', resolve)));
  const files = fs.existsSync(profDir)
    ? fs.readdirSync(profDir).filter((f) => f.endsWith('.cpuprofile'))
    : [];
  if (files.length === 0)
    throw new Error(`no .cpuprofile in ${profDir}: did the registry exit through process.exit?`);
  const file = path.join(profDir, files.sort().pop());
  const summary = summarise(JSON.parse(fs.readFileSync(file, 'utf8')), { top: 30, root, skipMs });
  console.log(
    summaryMarkdown(summary, {
      title: `Registry lookups under --cpu-prof (node bench/registry/run.js --profile), ${new Date().toISOString()}`,
      context: `The lookup registry (${MEMBERS} members) answering session-key MAC lookups (what daemons send). Profile: ${file}.`,
    }),
  );
}

async function meshBench() {
  const names = ['a.bench', 'b.bench', 'c.bench'];
  const cfgs = [];
  for (const n of names) cfgs.push(await registryConfig(n));
  for (const c of cfgs) c.write(cfgs.filter((o) => o !== c));
  const procs = cfgs.map((c) => runRegistry(c, undefined));
  say('mesh: starting 3 registries');
  await Promise.all(cfgs.map((c, i) => waitHealth(c.url, procs[i])));
  say(`mesh: making ${UPDATES} member keys`);
  const members = Array.from({ length: UPDATES }, (_, i) => {
    const kp = generateKeyPair();
    return { id: `u${i}.bench`, publicKey: kp.publicKey, key: parsePrivateKey(kp.privateKeyPem) };
  });
  const seal = (m, spare) =>
    sealRequest(m.id, COMMUNITY, 'register', registration(m.id, m.publicKey, spare), m.key);
  const send = async (url, list, spare) => {
    const sealed = list.map((m) => seal(m, spare));
    let i = 0;
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (i < sealed.length) await post(`${url}/v1/register`, sealed[i++]);
      }),
    );
  };
  say(`mesh: ${UPDATES} registrations to a`);
  let t0 = performance.now();
  await send(cfgs[0].url, members, 1_000);
  const acceptedMs = performance.now() - t0;
  const afterUpdates = await converged(cfgs, UPDATES, t0);

  say(`mesh: partition (c stopped), ${UPDATES} updates to a and b, heal`);
  procs[2].kill('SIGSTOP');
  const half = Math.floor(UPDATES / 2);
  await send(cfgs[0].url, members.slice(0, half), 2_000);
  await send(cfgs[1].url, members.slice(half), 3_000);
  t0 = performance.now();
  procs[2].kill('SIGCONT');
  const afterHeal = await converged(cfgs, UPDATES, t0);
  for (const p of procs) p.kill('SIGTERM');
  return { acceptedMs, afterUpdates, afterHeal };
}

try {
  const load0 = os
    .loadavg()
    .map((x) => x.toFixed(2))
    .join(' ');
  const lk = await lookupBench();
  if (opt.profile) process.exit(0); // a diagnosis, not a result: nothing recorded
  await sleep(500);
  const mesh = await meshBench();
  const ours = median(lk.ours);
  const anchor = median(lk.anchor);
  const ratio = ours / anchor;
  const oursPerCpu = median(lk.oursCpu);
  const pass = ours >= TARGET;
  const passCpu = oursPerCpu >= TARGET;
  const fmt = (x) => Math.round(x).toLocaleString('en');
  const rows = [
    `| server | median req/s | rounds | median answers per server CPU-second | rounds |`,
    `| --- | ---: | --- | ---: | --- |`,
    `| registry: POST /v1/lookup with the session-key MAC, ${MEMBERS} members, ${lk.candidates} candidates answered | ${fmt(ours)} | ${lk.ours.map(fmt).join(', ')} | ${fmt(oursPerCpu)} | ${lk.oursCpu.map(fmt).join(', ')} |`,
    `| registry: the same, Ed25519-signed | ${fmt(median(lk.signed))} | ${lk.signed.map(fmt).join(', ')} | ${fmt(median(lk.signedCpu))} | ${lk.signedCpu.map(fmt).join(', ')} |`,
    `| bare node:http, same ${lk.answerBytes}-byte JSON answer | ${fmt(anchor)} | ${lk.anchor.map(fmt).join(', ')} | ${fmt(median(lk.anchorCpu))} | ${lk.anchorCpu.map(fmt).join(', ')} |`,
  ];
  const lines = [
    ...rows,
    '',
    `- ${pass ? 'PASS' : 'MISS'}: lookups/s >= ${TARGET.toLocaleString('en')} with ${MEMBERS.toLocaleString('en')} members on one core, as sent by the load generator: ${fmt(ours)} (${(ratio * 100).toFixed(1)}% of the bare server's req/s, which the same generator bounds)`,
    `- ${passCpu ? 'PASS' : 'MISS'}: the same from the registry's own CPU time (lookups answered per CPU-second, i.e. on one fully used core): ${fmt(oursPerCpu)} (bare node:http: ${fmt(median(lk.anchorCpu))})`,
    `- Mesh of 3 registries: ${UPDATES} registrations accepted by one in ${Math.round(mesh.acceptedMs)} ms; all 3 converged (equal version vectors, ${UPDATES} members each) ${Math.round(mesh.afterUpdates)} ms after the first was sent`,
    `- Healed partition: one registry SIGSTOPped while ${UPDATES} updates landed on the other two, then SIGCONTed: converged ${Math.round(mesh.afterHeal)} ms after the heal (anti_entropy_ms 500)`,
  ];
  process.stdout.write(`\n${lines.join('\n')}\n`);
  process.stdout.write(
    `BENCH_JSON ${JSON.stringify({ lookups_per_s: ours, lookups_per_cpu_s: oursPerCpu, bare_per_s: anchor, ratio, mesh })}\n`,
  );
  if (!opt['no-record']) {
    const now = new Date().toISOString();
    const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
    const section = [
      `\n## Registry bench, ${now}\n`,
      `- Command: \`node bench/registry/run.js${process.argv.slice(2).length ? ' ' + process.argv.slice(2).join(' ') : ''}\``,
      `- Date: ${now}`,
      `- Machine: ${os.cpus().length} CPUs, ${cpu}; Node ${process.version}; load average at start ${load0}`,
      `- Lookups: one \`dotslash registry\` process${SERVER_CPU ? ` pinned to CPU ${SERVER_CPU}` : ''} (the bare server on the same CPU, each stopped while the other is measured), load generator (bench/registry/loadgen.js${LOAD_CPU ? `, CPU ${LOAD_CPU}` : ''}) sending pre-built lookups (fresh nonce each, from 16 registered origins in turn; authenticated by the session-key HMAC the registration answer gave, or Ed25519-signed) over ${CONNECTIONS} keep-alive connections for ${DURATION} s; ${ROUNDS} round(s), order alternated, median shown. The registry checks each HMAC (or Ed25519 signature), the timestamp and the nonce, ranks, and answers unsigned (no DotSlash-Want-Signed).`,
      '',
      ...lines,
      '',
    ];
    fs.appendFileSync(path.join(root, 'bench/RESULTS.md'), section.join('\n'));
    say('appended to bench/RESULTS.md');
  }
} catch (err) {
  say(`failed: ${err instanceof Error ? err.stack : String(err)}`);
  process.exitCode = 1;
} finally {
  await killAll();
  fs.rmSync(tmp, { recursive: true, force: true });
}
