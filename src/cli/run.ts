// Starts a Daemon for a CLI command: resolves (and once prints) the admin token, opens the
// listeners, prints where they are, and hands the process's signals to the daemon.
import type { AddressInfo } from 'node:net';
import { resolveAdminToken } from '../admin/token.js';
import type { Config } from '../config/schema.js';
import { Daemon } from '../daemon.js';
import type { DaemonAddresses } from '../daemon.js';
import { createLogger } from '../log.js';
import { packageVersion } from './package-info.js';

export interface RunOptions {
  configPath?: string;
  /** --admin-token, highest precedence. */
  explicitToken?: string;
  /** Called after the daemon has drained, before the process exits (e.g. close the example site). */
  beforeExit?: () => Promise<void>;
  /** Print the standard "listening" lines (the example prints its own). */
  quiet?: boolean;
}

export const urlOf = (a: AddressInfo): string =>
  `http://${a.family === 'IPv6' || a.address.includes(':') ? `[${a.address}]` : a.address}:${a.port}`;

/** Start the daemon and keep the process running until SIGTERM/SIGINT. */
export async function runDaemon(
  config: Config,
  opts: RunOptions = {},
): Promise<{ daemon: Daemon; addresses: DaemonAddresses; tokenFrom: string }> {
  const logger = createLogger(config.log.level);
  const token = resolveAdminToken(config.admin, {
    ...(opts.explicitToken !== undefined && { explicit: opts.explicitToken }),
    env: process.env,
  });
  if (token.source === 'generated') {
    // Shown exactly once: later runs read it from the file (or the environment variable).
    process.stderr.write(
      `dotslash: generated an admin token (shown once; saved to ${token.file ?? config.admin.token_file}, mode 0600):\n` +
        `  ${token.token}\n` +
        `  (or set ${config.admin.token_env} to choose your own)\n`,
    );
  }
  if (token.warning !== undefined) process.stderr.write(`dotslash: warning: ${token.warning}\n`);
  const daemon = new Daemon(config, {
    logger,
    adminToken: token.token,
    info: { version: packageVersion() },
    ...(opts.configPath !== undefined && { configPath: opts.configPath }),
  });
  const addresses = await daemon.start();
  daemon.installSignalHandlers((code) => {
    const finish = opts.beforeExit ?? (() => Promise.resolve());
    finish().finally(() => process.exit(code));
  });
  if (opts.quiet !== true) {
    process.stderr.write(
      `dotslash: front ${urlOf(addresses.front)} -> ${config.proxy.upstreams.join(', ')}\n` +
        `dotslash: admin ${urlOf(addresses.admin)} (/healthz /readyz open; /metrics /status need the token)\n` +
        (addresses.dns
          ? `dotslash: dns ${addresses.dns.address}:${addresses.dns.port} udp+tcp (zones ${config.dns.zones.map((z) => z.name).join(', ')})\n`
          : ''),
    );
  }
  const tokenFrom =
    token.source === 'env'
      ? `$${config.admin.token_env}`
      : token.source === 'flag'
        ? '--admin-token'
        : (token.file ?? config.admin.token_file);
  return { daemon, addresses, tokenFrom };
}
