// A FrontProxy alone in a child process, so memory tests measure the proxy and nothing else.
// Run with `node --import tsx --expose-gc proxy-child.ts '<ProxyConfig JSON>'`; talks over IPC:
//   -> { type: 'listening', port }               once bound
//   <- { type: 'sample' }  -> { type: 'sample', rss, heapUsed, maxRss, maxArrayBuffers, active, ... }
//   <- { type: 'gc' }      -> the same after forcing full GCs
//   <- { type: 'resetMax' } resets the peaks to the current values
//   <- { type: 'close' }   closes the proxy and exits 0
import pino from 'pino';
import { FrontProxy } from '../../proxy/front.js';
import type { ProxyConfig } from '../../src/config/schema.js';

const config = JSON.parse(process.argv[2] ?? '{}') as ProxyConfig;
const proxy = new FrontProxy({ config, logger: pino({ level: 'silent' }), accessLog: null });

let maxRss = process.memoryUsage.rss();
let maxArrayBuffers = process.memoryUsage().arrayBuffers;
// Sample often so a short spike during the transfer is not missed. RSS rarely shrinks once
// grown, so Buffer memory (arrayBuffers) is tracked too: it shows a queue that grew and drained.
const sampler = setInterval(() => {
  const m = process.memoryUsage();
  maxRss = Math.max(maxRss, m.rss);
  maxArrayBuffers = Math.max(maxArrayBuffers, m.arrayBuffers);
}, 20);

function report(): Record<string, unknown> {
  const m = process.memoryUsage();
  maxRss = Math.max(maxRss, m.rss);
  maxArrayBuffers = Math.max(maxArrayBuffers, m.arrayBuffers);
  const s = proxy.stats;
  return {
    type: 'sample',
    rss: m.rss,
    heapUsed: m.heapUsed,
    external: m.external,
    arrayBuffers: m.arrayBuffers,
    maxRss,
    maxArrayBuffers,
    active: s.active,
    connections: s.connections,
    requests: s.requests,
  };
}

async function fullGc(): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc;
  for (let i = 0; i < 4; i++) {
    gc?.();
    await new Promise((r) => setImmediate(r));
  }
}

process.on('message', (msg: { type: string }) => {
  if (msg.type === 'sample') process.send?.(report());
  else if (msg.type === 'gc') void fullGc().then(() => process.send?.(report()));
  else if (msg.type === 'resetMax') {
    const m = process.memoryUsage();
    maxRss = m.rss;
    maxArrayBuffers = m.arrayBuffers;
  } else if (msg.type === 'close') {
    clearInterval(sampler);
    void proxy.close(0).then(() => process.exit(0));
  }
});
process.on('disconnect', () => process.exit(0));

const addr = await proxy.listen();
process.send?.({ type: 'listening', port: addr.port });
