// Fallback runner for the proxy bench: our FrontProxy alone (no admin, no monitor), for when
// the `dotslash proxy` CLI is not built yet, or to measure the data path in isolation.
// Usage: node bench/proxy/ours.js --listen 127.0.0.1:PORT --upstream URL [--no-access-log]
//        [--upstream-client fast|undici] [--front-parser fast|node]
// Access log as configured by default (enabled, to stdout), so redirect stdout to a file.
import { parseArgs } from 'node:util';
import pino from 'pino';
import { proxySchema } from '../../dist/src/config/schema.js';
import { FrontProxy } from '../../dist/proxy/front.js';
import { createAccessLogger } from '../../dist/proxy/access-log.js';

const { values } = parseArgs({
  options: {
    listen: { type: 'string' },
    upstream: { type: 'string', multiple: true },
    'no-access-log': { type: 'boolean', default: false },
    'upstream-client': { type: 'string', default: 'fast' },
    'front-parser': { type: 'string', default: 'fast' },
  },
});
const config = proxySchema.parse({
  listen: values.listen,
  upstreams: values.upstream,
  upstream_client: values['upstream-client'],
  front_parser: values['front-parser'],
  ...(values['no-access-log'] ? { access_log: { enabled: false } } : {}),
});
const logger = pino({ level: 'warn' }, pino.destination(2));
const accessLog = createAccessLogger(config.access_log);
const proxy = new FrontProxy({ config, logger, accessLog });
await proxy.listen();

// Exit through process.exit so `node --cpu-prof` writes its profile.
const stop = () => {
  proxy.close(1_000).finally(() => process.exit(0));
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
