// Cache bench "ours": a node:http server whose handler is PullThroughCache.handle for one
// origin (the bench origin), as the rescue-serving path will call it. Started with
// `node --import tsx` by bench/cache/run.js; argv: origin port [--front [no-log]]. Prints
// `{ "port": N }`. With --front it is the whole rescuer FrontProxy instead (see below).
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Pool } from 'undici';
import { MemoryStore } from '../../proxy/cache/memory-store.js';
import { PullThroughCache, type CacheOrigin } from '../../proxy/cache/pull-through.js';

const originPort = Number(process.argv[2]);
const base = new URL(`http://127.0.0.1:${originPort}`);

if (process.argv[3] === '--front') {
  // The whole rescuer front (FrontProxy as `dotslash start` builds it, access log on to
  // /dev/null): the request's Host is looked up in the rescue serving view, then the same
  // PullThroughCache answers. wrk sends "Host: 127.0.0.1:<port>", so that name is the session's.
  const { configSchema } = await import('../../src/config/schema.js');
  const { FrontProxy } = await import('../../proxy/front.js');
  const { createAccessLogger } = await import('../../proxy/access-log.js');
  const { generateKeyPair, parsePrivateKey } = await import('../../rescue-protocol/keys.js');
  const pino = (await import('pino')).default;
  const cfg = configSchema.parse({
    proxy: {
      listen: '127.0.0.1:0',
      upstreams: ['http://127.0.0.1:9'],
      access_log: { enabled: process.argv[4] !== 'no-log', output: '/dev/null' },
      timeouts: { client_keepalive_ms: 60_000 },
    },
  });
  const front = new FrontProxy({
    config: cfg.proxy,
    logger: pino({ level: 'warn' }),
    accessLog: createAccessLogger(cfg.proxy.access_log),
    rescue: { cacheBytes: 64 << 20 },
  });
  const kp = generateKeyPair();
  front.setMembers({
    self: { id: 'rescuer.bench', privateKey: parsePrivateKey(kp.privateKeyPem) },
    peers: new Map(),
  });
  const entry = {
    session: 's1.rescuer.bench',
    origin: 'origin.bench',
    front_url: base.href,
    names: ['vh1.rescuer.bench', '127.0.0.1'],
    micro_cache: null,
    state: 'serve' as const,
    drain_until: null,
  };
  front.setRescueView({
    version: 1,
    hosts: new Map(entry.names.map((n) => [n, entry])),
    sessions: new Map([[entry.session, entry]]),
  });
  const addr = await front.listen();
  process.stdout.write(JSON.stringify({ port: addr.port }) + '\n');
  process.on('SIGTERM', () => {
    process.stderr.write(JSON.stringify({ cache: front.rescueCacheStats()?.counters }) + '\n');
    process.exit(0);
  });
} else {
  const cache = new PullThroughCache({ store: new MemoryStore({ maxBytes: 64 << 20 }) });
  const origin: CacheOrigin = {
    id: 'origin.bench',
    fetchBase: base,
    dispatcher: new Pool(base, { connections: 8, pipelining: 1 }),
    headersForFetch: { 'x-dotslash-rescuer': 'bench' },
  };
  const server = http.createServer({ keepAliveTimeout: 60_000 }, (req, res) =>
    cache.handle(req, res, origin),
  );
  server.headersTimeout = 65_000;
  server.listen(0, '127.0.0.1', () => {
    process.stdout.write(JSON.stringify({ port: (server.address() as AddressInfo).port }) + '\n');
  });
  process.on('SIGTERM', () => {
    process.stderr.write(JSON.stringify({ cache: cache.stats().counters }) + '\n');
    process.exit(0);
  });
}
