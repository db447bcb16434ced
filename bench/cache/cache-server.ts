// Cache bench "ours": a node:http server whose handler is PullThroughCache.handle for one
// origin (the bench origin), as the rescue-serving path will call it. Started with
// `node --import tsx` by bench/cache/run.js; argv: origin port. Prints `{ "port": N }`.
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Pool } from 'undici';
import { MemoryStore } from '../../proxy/cache/memory-store.js';
import { PullThroughCache, type CacheOrigin } from '../../proxy/cache/pull-through.js';

const originPort = Number(process.argv[2]);
const base = new URL(`http://127.0.0.1:${originPort}`);
const cache = new PullThroughCache({ store: new MemoryStore({ maxBytes: 64 << 20 }) });
const origin: CacheOrigin = {
  id: 'origin.bench',
  fetchBase: base,
  dispatcher: new Pool(base, { connections: 8, pipelining: 1 }),
  headersForFetch: { 'x-dotslash-rescuer': 'bench' },
};
const server = http.createServer({ keepAliveTimeout: 60_000 }, (req, res) => cache.handle(req, res, origin));
server.headersTimeout = 65_000;
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(JSON.stringify({ port: (server.address() as AddressInfo).port }) + '\n');
});
process.on('SIGTERM', () => {
  process.stderr.write(JSON.stringify({ cache: cache.stats().counters }) + '\n');
  process.exit(0);
});
