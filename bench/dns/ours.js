// Our side of the DNS bench: the built embedded server (dist/dns) serving the bench zone.
// Usage: node bench/dns/ours.js HOST:PORT   (prints "ready" when listening)
import { buildZoneSnapshot, DnsServer } from '../../dist/dns/index.js';
import { ZONE } from './zone.js';

const listen = process.argv[2] ?? '127.0.0.2:5300';
const server = new DnsServer({ listen, zones: buildZoneSnapshot([ZONE], { defaultTtl: 300 }) });
await server.listen();
process.stdout.write('ready\n');
const stop = () => server.close().then(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
