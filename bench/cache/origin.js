// Cache bench origin, and the "bare Node" reference: a plain node:http server answering a
// fixed 4 KiB body from memory with a long max-age, keep-alive. Prints `{ "port": N }`.
import http from 'node:http';

const BODY = Buffer.alloc(4 * 1024, 'c');
// Prepared once: the bare server does no per-request header building, as the cache hit path.
const HEADERS = {
  'content-type': 'application/octet-stream',
  'cache-control': 'public, max-age=3600',
  'content-length': String(BODY.length),
};

const server = http.createServer({ keepAliveTimeout: 60_000 }, (req, res) => {
  if (req.url !== '/4k') {
    res.writeHead(404, { 'content-length': '0' });
    res.end();
    return;
  }
  res.writeHead(200, HEADERS);
  res.end(BODY);
});
server.headersTimeout = 65_000;
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(JSON.stringify({ port: server.address().port }) + '\n');
});
process.on('SIGTERM', () => process.exit(0));
