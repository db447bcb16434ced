// Bench server for `node bench/redirect/run.js`: answers every request with a 302, either bare
// (the response written inline, no decision) or through Redirector.decide + writeRedirect at
// Pr = 1 over 3 sessions. Both write byte-identical responses apart from the Location's host,
// so the difference between them is the redirector's decision and helper.
// Usage: node bench/redirect/server.js --mode bare|redirect|front [--module PATH]
// (front: the whole FrontProxy from dist/, found beside --module dist/proxy/redirect/index.js)
// Prints one JSON line `{ "port": N }` when listening.
import http from 'node:http';
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';

const { values: opt } = parseArgs({
  options: {
    mode: { type: 'string', default: 'bare' },
    module: { type: 'string' },
    host: { type: 'string', default: '127.0.0.1' },
    'access-log': { type: 'string', default: 'on' },
  },
});

// The same constant body and header set proxy/redirect/response.ts writes.
const BODY = 'Found: this page is served by a rescue server.\n';
const BODY_LENGTH = String(Buffer.byteLength(BODY));

let handler;
if (opt.mode === 'bare') {
  // A plain Node server answering 302s: one fixed target, headers prepared once.
  const headers = [
    'Location',
    '',
    'Cache-Control',
    'no-store',
    'Content-Type',
    'text/plain; charset=utf-8',
    'Content-Length',
    BODY_LENGTH,
  ];
  handler = (req, res) => {
    headers[1] = 'http://vh1.rescue-a.example' + req.url;
    res.writeHead(302, headers);
    res.end(BODY);
  };
} else if (opt.mode === 'redirect') {
  const mod = await import(pathToFileURL(opt.module).href);
  const redirector = new mod.Redirector(
    mod.redirectSnapshot({
      pr: 1,
      // Rates far above what one process can serve: the buckets never limit, so every request
      // takes the whole path (eligibility, draw, WRR with bucket refill, Location).
      sessions: [
        { id: 'a', vhost: 'vh1.rescue-a.example', scheme: 'http', rate: 1e9 },
        { id: 'b', vhost: 'vh2.rescue-b.example', scheme: 'http', rate: 2e9 },
        { id: 'c', vhost: 'vh3.rescue-c.example', scheme: 'http', rate: 3e9 },
      ],
      // A realistic configuration: the Cookie header, when present, is searched for these.
      sessionCookies: ['PHPSESSID', 'wordpress_logged_in_*', 'sid'],
    }),
  );
  const { writeRedirect } = mod;
  handler = (req, res) => {
    const location = redirector.decide(req);
    if (location !== null) {
      writeRedirect(res, location);
      return;
    }
    res.writeHead(500, { 'content-length': '0' });
    res.end();
  };
  process.on('SIGTERM', () => {
    process.stderr.write(JSON.stringify(redirector.stats) + '\n');
  });
} else if (opt.mode === 'front') {
  // The whole daemon front (FrontProxy from dist/, as `dotslash start` builds it): limits,
  // pipelining guard, stats, the rescue hook, and the access log on (to /dev/null, so its
  // serialisation is paid as in production but no disk is involved). The upstream is never hit.
  const dist = pathToFileURL(opt.module.replace(/proxy\/redirect\/index\.js$/, '')).href;
  const { configSchema } = await import(dist + 'src/config/schema.js');
  const { FrontProxy } = await import(dist + 'proxy/front.js');
  const { createAccessLogger } = await import(dist + 'proxy/access-log.js');
  const { redirectSnapshot } = await import(dist + 'proxy/redirect/index.js');
  const pino = (await import('pino')).default;
  const cfg = configSchema.parse({
    proxy: {
      listen: `${opt.host}:0`,
      upstreams: ['http://127.0.0.1:9'],
      access_log: { enabled: opt['access-log'] !== 'off', output: '/dev/null' },
      timeouts: { client_keepalive_ms: 60_000 },
    },
  });
  const front = new FrontProxy({
    config: cfg.proxy,
    logger: pino({ level: 'warn' }),
    accessLog: createAccessLogger(cfg.proxy.access_log),
  });
  front.setRedirect(
    redirectSnapshot({
      pr: 1,
      sessions: [
        { id: 'a', vhost: 'vh1.rescue-a.example', scheme: 'http', rate: 1e9 },
        { id: 'b', vhost: 'vh2.rescue-b.example', scheme: 'http', rate: 2e9 },
        { id: 'c', vhost: 'vh3.rescue-c.example', scheme: 'http', rate: 3e9 },
      ],
      sessionCookies: ['PHPSESSID', 'wordpress_logged_in_*', 'sid'],
    }),
  );
  const addr = await front.listen();
  // The token buckets start empty: give them a moment to fill before the check requests.
  await new Promise((r) => setTimeout(r, 50));
  process.stdout.write(JSON.stringify({ port: addr.port }) + '\n');
  process.on('SIGTERM', () => process.exit(0));
} else {
  throw new Error(`--mode must be bare, redirect or front, got ${opt.mode}`);
}

if (handler !== undefined) {
  const server = http.createServer({ keepAliveTimeout: 60_000 }, handler);
  server.headersTimeout = 65_000;
  server.listen(0, opt.host, () => {
    process.stdout.write(JSON.stringify({ port: server.address().port }) + '\n');
  });
  process.on('SIGTERM', () => process.exit(0));
}
