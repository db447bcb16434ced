// The anchor: a bare node:http server answering every POST with a fixed JSON body (the bytes of
// a real lookup answer), reading the request body first like the registry does.
import http from 'node:http';

const [host, port, bodyFile] = process.argv.slice(2);
const body = (await import('node:fs')).readFileSync(bodyFile);
const server = http.createServer((req, res) => {
  req.on('data', () => {});
  req.on('end', () => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length });
    res.end(body);
  });
});
server.keepAliveTimeout = 60_000;
server.listen(Number(port), host, () => process.stdout.write('ready\n'));
