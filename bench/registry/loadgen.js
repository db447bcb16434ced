// Load generator for the registry bench: pre-signs N lookup requests (each a fresh nonce, so the
// registry's replay cache accepts every one; signed in turn by several origins, as the replay
// cache bounds the nonces it keeps per sender), then sends them over `connections` keep-alive
// connections for `seconds` and prints one JSON line: { requests, errors, seconds, rps }.
import http from 'node:http';
import fs from 'node:fs';
import { parsePrivateKey } from '../../dist/rescue-protocol/keys.js';
import { macRequest, sealRequest } from '../../dist/src/registry/signed.js';

// originsFile: JSON [{ id, pem, sessionKey? }] of registered members (with a session key: MAC, else signed).
const [url, originsFile, community, seconds, connections, presign] = process.argv.slice(2);
const origins = JSON.parse(fs.readFileSync(originsFile, 'utf8')).map((o) => ({
  id: o.id,
  key: parsePrivateKey(o.pem),
  mac: o.sessionKey ? Buffer.from(o.sessionKey, 'base64url') : null,
}));
const target = new URL(url);
const n = Number(presign);
const sealed = [];
for (let i = 0; i < n; i++) {
  const o = origins[i % origins.length];
  const body = { community, origin: o.id, exclude: [], limit: 4 };
  const ts = Date.now() + 5_000;
  sealed.push(
    o.mac
      ? macRequest(o.id, community, 'lookup', body, o.mac, ts)
      : sealRequest(o.id, community, 'lookup', body, o.key, ts),
  );
}
process.stdout.write('signed\n');
await new Promise((r) => process.stdin.once('data', r)); // go

const agent = new http.Agent({ keepAlive: true, maxSockets: Number(connections) });
let next = 0;
let ok = 0;
let errors = 0;
const end = performance.now() + Number(seconds) * 1000;
const t0 = performance.now();
async function worker() {
  while (performance.now() < end && next < sealed.length) {
    const s = sealed[next++];
    await new Promise((resolve) => {
      const req = http.request(
        {
          host: target.hostname,
          port: target.port,
          path: target.pathname,
          method: 'POST',
          agent,
          headers: { ...s.headers, 'content-length': s.bytes.length },
        },
        (res) => {
          res.on('data', () => {});
          res.on('end', () => {
            if (res.statusCode === 200) ok++;
            else errors++;
            resolve();
          });
        },
      );
      req.on('error', () => {
        errors++;
        resolve();
      });
      req.end(s.bytes);
    });
  }
}
await Promise.all(Array.from({ length: Number(connections) }, worker));
const elapsed = (performance.now() - t0) / 1000;
process.stdout.write(
  JSON.stringify({
    requests: ok,
    errors,
    seconds: elapsed,
    rps: ok / elapsed,
    exhausted: next >= sealed.length,
  }) + '\n',
);
agent.destroy();
