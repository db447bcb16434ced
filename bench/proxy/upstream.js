// Bench upstream: a plain Node http server answering fixed 4 KiB and 100 KiB bodies, keep-alive.
// Run as its own process by bench/proxy/run.js; prints one JSON line `{ "port": N }` when listening.
import http from 'node:http';

const BODIES = {
  '/4k': Buffer.alloc(4 * 1024, 'a'),
  '/100k': Buffer.alloc(100 * 1024, 'b'),
};
// Headers prepared once (no per-request object building) so the upstream costs as little as
// possible and the proxies, not this server, are what the bench compares.
const HEADERS = Object.fromEntries(
  Object.entries(BODIES).map(([path, body]) => [
    path,
    { 'content-type': 'application/octet-stream', 'content-length': String(body.length) },
  ]),
);

const host = process.argv[2] ?? '127.0.0.1';
const server = http.createServer({ keepAliveTimeout: 60_000 }, (req, res) => {
  const body = BODIES[req.url];
  if (body === undefined) {
    res.writeHead(404, { 'content-length': '0' });
    res.end();
    return;
  }
  res.writeHead(200, HEADERS[req.url]);
  res.end(body);
});
server.headersTimeout = 65_000;
server.listen(0, host, () => {
  process.stdout.write(JSON.stringify({ port: server.address().port }) + '\n');
});
process.on('SIGTERM', () => process.exit(0));
