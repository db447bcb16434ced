// `node bench/ledger/run.js` (`npm run bench:ledger`): the token ledger's costs, each beside an
// anchor in the same run. Ingest: Ledger.add of signed receipts (schema, canonical JSON, 2 Ed25519
// verifies, indexes) against bare crypto.verify of the same two signatures. Balances: Ledger.balance
// over a community of members with receipts, against rebuilding nothing (a Map lookup) — reported
// as queries/s. Convergence: two registries holding halves of the records exchange them (merge).
// Prints a table and one `BENCH_JSON {...}` line, and appends a dated section to bench/RESULTS.md
// (generated; never edit the numbers by hand). Uses the build output in dist/ (npm run build).
import { generateKeyPairSync, verify } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const { values: opt } = parseArgs({
  options: {
    members: { type: 'string', default: '1000' },
    receipts: { type: 'string', default: '10000' },
    rounds: { type: 'string', default: '3' },
    'no-record': { type: 'boolean', default: false },
  },
});
const MEMBERS = Number(opt.members);
const RECEIPTS = Number(opt.receipts);
const ROUNDS = Number(opt.rounds);

const L = await import(path.join(root, 'dist/src/registry/ledger/index.js'));
const K = await import(path.join(root, 'dist/rescue-protocol/keys.js'));

const NOW = Date.now();
const COMMUNITY = 'bench.example';
const members = Array.from({ length: MEMBERS }, (_, i) => {
  const { privateKey } = generateKeyPairSync('ed25519');
  return { id: `m${i}.bench.example`, privateKey, publicKey: K.publicKeyText(privateKey) };
});
const keyMap = new Map(members.map((m) => [m.id, m.publicKey]));
const keys = { keyOf: (id) => keyMap.get(id) };
const policy = L.DEFAULT_LEDGER_POLICY;

function makeReceipt(i) {
  const o = members[i % MEMBERS];
  const r = members[(i * 7 + 1) % MEMBERS === i % MEMBERS ? (i + 1) % MEMBERS : (i * 7 + 1) % MEMBERS];
  const usage = {
    requests: 1000 + (i % 5000),
    bytes: 4096 * (1000 + (i % 5000)),
    by_redirect: { requests: 1000 + (i % 5000), bytes: 4096 * (1000 + (i % 5000)) },
    by_dns: { requests: 0, bytes: 0 },
  };
  const body = {
    v: 1,
    kind: 'receipt',
    community: COMMUNITY,
    session: `s${i}.${r.id}`,
    origin: { id: o.id, key: o.publicKey },
    rescuer: { id: r.id, key: r.publicKey },
    usage,
    cost: L.priceOf(usage, policy),
    started: NOW - 60_000,
    ended: NOW,
    seq: i + 1,
  };
  let rec = L.signReceipt(body, 'rescuer', r.privateKey);
  rec = L.signReceipt(rec, 'origin', o.privateKey);
  // As a registry receives it: JSON text off the wire.
  return { text: JSON.stringify(rec), rec };
}

const say = (s) => process.stderr.write(`${s}\n`);
say(`signing ${RECEIPTS} receipts for ${MEMBERS} members ...`);
const receipts = Array.from({ length: RECEIPTS }, (_, i) => makeReceipt(i));

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const rounds = { anchor: [], ingest: [], balance: [], lookup: [], merge: [] };

for (let round = 0; round < ROUNDS; round++) {
  // Anchor: the two Ed25519 verifies alone (keys parsed each time, as the ledger does).
  let t = performance.now();
  let ok = 0;
  for (const { rec } of receipts) {
    const bytes = L.canonicalBytes(rec.body);
    for (const role of ['origin', 'rescuer']) {
      const key = K.parsePublicKey(rec.body[role].key);
      if (verify(null, bytes, key, Buffer.from(rec.sigs[role], 'base64url'))) ok++;
    }
  }
  rounds.anchor.push(RECEIPTS / ((performance.now() - t) / 1000));
  if (ok !== 2 * RECEIPTS) throw new Error('anchor: a signature failed');

  const ledger = new L.Ledger({ community: COMMUNITY, policy, keys });
  t = performance.now();
  for (const { text } of receipts) ledger.add(JSON.parse(text));
  rounds.ingest.push(RECEIPTS / ((performance.now() - t) / 1000));

  const Q = Math.min(20_000, MEMBERS * 20);
  t = performance.now();
  let sum = 0;
  for (let q = 0; q < Q; q++) sum += ledger.balance(members[q % MEMBERS].id, NOW).balance;
  rounds.balance.push(Q / ((performance.now() - t) / 1000));
  if (sum === 0) throw new Error('balances all zero');
  t = performance.now();
  for (let q = 0; q < Q; q++) sum += keyMap.get(members[q % MEMBERS].id).length;
  rounds.lookup.push(Q / ((performance.now() - t) / 1000));

  // Convergence: two registries with halves exchange everything (verification included).
  const a = new L.Ledger({ community: COMMUNITY, policy, keys });
  const b = new L.Ledger({ community: COMMUNITY, policy, keys });
  const half = RECEIPTS / 2;
  receipts.forEach(({ rec }, i) => (i < half ? a : b).add(rec, { trusted: true }));
  t = performance.now();
  a.merge(b.records());
  b.merge(a.records());
  rounds.merge.push(performance.now() - t);
  if (a.size !== RECEIPTS || b.size !== RECEIPTS) throw new Error('merge lost records');
}

const res = {
  members: MEMBERS,
  receipts: RECEIPTS,
  rounds: ROUNDS,
  anchor_verify_pairs_per_s: Math.round(median(rounds.anchor)),
  ingest_receipts_per_s: Math.round(median(rounds.ingest)),
  ingest_ratio: median(rounds.ingest) / median(rounds.anchor),
  balance_queries_per_s: Math.round(median(rounds.balance)),
  records_per_member: (2 * RECEIPTS) / MEMBERS,
  map_lookups_per_s: Math.round(median(rounds.lookup)),
  merge_ms: Math.round(median(rounds.merge)),
};
const fmt = (n) => Math.round(n).toLocaleString('en-US');
const table = [
  '| measure | median | rounds |',
  '| --- | ---: | --- |',
  `| anchor: 2 x crypto.verify per receipt (receipts/s) | ${fmt(res.anchor_verify_pairs_per_s)} | ${rounds.anchor.map(fmt).join(', ')} |`,
  `| Ledger.add of a receipt from JSON (receipts/s) | ${fmt(res.ingest_receipts_per_s)} | ${rounds.ingest.map(fmt).join(', ')} |`,
  `| Ledger.balance (queries/s, ~${res.records_per_member} records per member) | ${fmt(res.balance_queries_per_s)} | ${rounds.balance.map(fmt).join(', ')} |`,
  `| anchor: Map lookup (lookups/s) | ${fmt(res.map_lookups_per_s)} | ${rounds.lookup.map(fmt).join(', ')} |`,
  `| two registries exchange ${RECEIPTS / 2} + ${RECEIPTS / 2} receipts (ms) | ${fmt(res.merge_ms)} | ${rounds.merge.map(fmt).join(', ')} |`,
];
const date = new Date().toISOString();
const text = [
  '',
  `## Ledger bench, ${date}`,
  '',
  `- Command: \`node bench/ledger/run.js --members ${MEMBERS} --receipts ${RECEIPTS} --rounds ${ROUNDS}\``,
  `- Machine: ${os.cpus().length} CPUs, ${os.cpus()[0]?.model ?? '?'}; Node ${process.version}; load average at start ${os
    .loadavg()
    .map((x) => x.toFixed(2))
    .join(' ')}`,
  '- In process, one core. Ingest = JSON.parse + schema + canonical JSON + 2 Ed25519 verifies + indexes; the anchor is the 2 verifies alone (with key parsing). Merge = both directions, every record verified.',
  '',
  ...table,
  '',
  `- Ledger.add costs ${(100 / res.ingest_ratio).toFixed(0)}% of the time of its two signature checks alone (ratio ${res.ingest_ratio.toFixed(2)}).`,
  '',
].join('\n');
process.stdout.write(`${table.join('\n')}\nBENCH_JSON ${JSON.stringify(res)}\n`);
if (!opt['no-record']) fs.appendFileSync(path.join(root, 'bench/RESULTS.md'), text);
