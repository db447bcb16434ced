// `dotslash example` (what `npm start` runs): the example static site with the daemon in
// front of it on embedded defaults, until Ctrl-C.
import { join } from 'node:path';
import { startStaticSite } from '../../examples/static-site/server.js';
import { configFromFlags } from '../config/load.js';
import { packageRoot } from './package-info.js';
import { runDaemon, urlOf } from './run.js';

export interface ExampleOptions {
  listen: string;
  site: string;
  admin: string;
}

export async function runExample(opts: ExampleOptions): Promise<void> {
  const sep = opts.site.lastIndexOf(':');
  const host = opts.site.slice(0, sep).replace(/^\[|\]$/g, '');
  const port = Number(opts.site.slice(sep + 1));
  // The public files are not compiled, so find them from the package root (works from src/ and dist/).
  const root = join(packageRoot(), 'examples', 'static-site', 'public');
  const site = await startStaticSite({ host, port, root }).catch((err: NodeJS.ErrnoException) => {
    const e = new Error(
      `cannot listen on ${opts.site} (example site): ${err.code === 'EADDRINUSE' ? 'address already in use' : err.message}` +
        ` — pick another with --site HOST:PORT`,
    );
    e.name = 'ListenError';
    throw e;
  });
  const upstream = urlOf(site.address);
  const config = configFromFlags({ listen: opts.listen, upstreams: [upstream], admin: opts.admin });
  let addresses;
  let tokenFrom;
  try {
    ({ addresses, tokenFrom } = await runDaemon(config, { beforeExit: () => site.close(), quiet: true }));
  } catch (err) {
    await site.close();
    throw err;
  }
  const admin = urlOf(addresses.admin);
  process.stderr.write(
    `\nDotSlash example is running.\n` +
      `  site through the proxy:  ${urlOf(addresses.front)}/\n` +
      `  upstream (direct):       ${upstream}/\n` +
      `  admin (open):            ${admin}/healthz  ${admin}/readyz\n` +
      `  admin (bearer token):    ${admin}/metrics  ${admin}/status\n` +
      `  admin token:             in ${tokenFrom}\n` +
      `Access log lines go to stdout. Press Ctrl-C to stop (graceful drain).\n\n`,
  );
}
