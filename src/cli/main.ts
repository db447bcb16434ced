// The `dotslash` command line (commander): proxy, start, validate, example, demo, registry. Exit codes:
// 0 ok, 1 configuration or usage error, 2 runtime failure (e.g. a port already in use).
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { ConfigError, formatIssue } from '../config/errors.js';
import { configFromFlags, loadConfigFile, loadRegistryConfigFile } from '../config/load.js';
import { packageVersion } from './package-info.js';
import type * as RunModule from './run.js';

// The daemon's modules (undici, pino, prom-client, the proxy) load only for the commands that
// run it, so `validate` and `--version` start fast and do not depend on them.
const loadRun = (): Promise<typeof RunModule> => import('./run.js');

/** The example's default addresses (the README's listener table lists them). */
export const EXAMPLE_DEFAULTS = { listen: '127.0.0.1:8080', site: '127.0.0.1:8081', admin: '127.0.0.1:9180' };

export const EXIT_OK = 0;
export const EXIT_CONFIG = 1;
export const EXIT_RUNTIME = 2;

const collect = (value: string, previous: string[]): string[] => [...previous, value];
const LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];

function buildProgram(): Command {
  const program = new Command('dotslash')
    .description(
      'DotSlash: a drop-in reverse proxy that measures its load (and, later, gets rescued from flash crowds)',
    )
    .version(packageVersion(), '-V, --version', 'print the version')
    .exitOverride()
    .showHelpAfterError('(run dotslash --help for usage)')
    // A command's options only before its subcommand: `registry admit KEY -c FILE` is admit's -c,
    // not `registry -c` (commander's default let the parent take it, and admit ignored the file).
    .enablePositionalOptions();

  program
    .command('proxy')
    .description('the one-line drop-in: proxy --listen to one or more --upstream servers, no config file')
    .requiredOption('--listen <host:port>', 'front listener address, e.g. 0.0.0.0:80')
    .requiredOption(
      '--upstream <url>',
      'upstream base URL, e.g. http://127.0.0.1:8081 (repeat for several)',
      collect,
      [],
    )
    .option('--admin <host:port>', 'admin listener address', '127.0.0.1:9180')
    .option(
      '--admin-token <token>',
      'admin bearer token (default: $DOTSLASH_ADMIN_TOKEN, the saved file, or a new one)',
    )
    .addOption(new Option('--log-level <level>', 'log level').choices(LEVELS).default('info'))
    .action(
      async (o: {
        listen: string;
        upstream: string[];
        admin: string;
        adminToken?: string;
        logLevel: string;
      }) => {
        const config = configFromFlags({
          listen: o.listen,
          upstreams: o.upstream,
          admin: o.admin,
          logLevel: o.logLevel,
        });
        await (
          await loadRun()
        ).runDaemon(config, { ...(o.adminToken !== undefined && { explicitToken: o.adminToken }) });
      },
    );

  program
    .command('start')
    .description('run the daemon with a configuration file (SIGHUP reloads it, SIGTERM drains and stops)')
    .requiredOption('-c, --config <file>', 'YAML configuration file')
    .action(async (o: { config: string }) => {
      const config = loadConfigFile(o.config);
      await (await loadRun()).runDaemon(config, { configPath: o.config });
    });

  program
    .command('validate')
    .description('check a configuration file: prints "ok", or every error as file:line:column: key: message')
    .requiredOption('-c, --config <file>', 'YAML configuration file')
    .action((o: { config: string }) => {
      loadConfigFile(o.config);
      process.stdout.write('ok\n');
    });

  program
    .command('keygen')
    .description(
      "make this member's Ed25519 key pair: writes the private key (0600) and prints the public key line " +
        'that peers put in peers[].public_key',
    )
    .option('-o, --out <file>', 'private key file (identity.key_file)', '.dotslash/member.key')
    .option('--force', 'replace an existing key file (the member gets a new identity)', false)
    .action(async (o: { out: string; force: boolean }) => {
      const { keygen } = await import('../../rescue-protocol/keygen.js');
      usageErrors(() => keygen({ keyFile: o.out, overwrite: o.force }));
    });

  program
    .command('pubkey')
    .description('print the public key line of an existing private key file (e.g. one the daemon created)')
    .option('-k, --key <file>', 'private key file (identity.key_file)', '.dotslash/member.key')
    .action(async (o: { key: string }) => {
      const { loadPrivateKey } = await import('../../rescue-protocol/keys.js');
      usageErrors(() => process.stdout.write(`${loadPrivateKey(o.key).publicKey}\n`));
    });

  const registry = program
    .command('registry')
    .description(
      'run a registry (the community directory; issue 5) with a registry config file, or admit/revoke ' +
        'keys in a running one',
    )
    .option('-c, --config <file>', 'registry YAML configuration file')
    .option('--admin-token <token>', 'admin bearer token (default: the variable or file the config names)')
    .action(async (o: { config?: string; adminToken?: string }) => {
      if (o.config === undefined) throw new InvalidArgumentError('dotslash registry needs -c FILE');
      const config = loadRegistryConfigFile(o.config);
      const { runRegistry } = await import('../registry/run.js');
      await runRegistry(config, { ...(o.adminToken !== undefined && { adminToken: o.adminToken }) });
    });
  for (const [name, admit] of [
    ['admit', true],
    ['revoke', false],
  ] as const) {
    registry
      .command(`${name} <public-key>`)
      .description(
        `${admit ? 'admit' : 'revoke'} a member key (the "ed25519:..." line \`dotslash keygen\` prints) in a ` +
          'closed community of a running registry; replicates through the mesh',
      )
      .option('-c, --config <file>', "the registry's config (admin address, token file, community)")
      .option('--community <name>', "the community (default: the config file's only closed one)")
      .option('--admin <url>', 'admin API base URL (default: http://<admin.listen> or http://127.0.0.1:7701)')
      .option('--token <token>', 'admin bearer token (default: $DOTSLASH_REGISTRY_TOKEN or the token file)')
      .action(
        async (key: string, o: { config?: string; community?: string; admin?: string; token?: string }) => {
          const { admitKeyRemote } = await import('../registry/run.js');
          const answer = await admitKeyRemote({
            publicKey: key,
            admit,
            ...(o.config !== undefined && { config: loadRegistryConfigFile(o.config) }),
            ...(o.community !== undefined && { community: o.community }),
            ...(o.admin !== undefined && { adminUrl: o.admin }),
            ...(o.token !== undefined && { token: o.token }),
          });
          process.stdout.write(`${JSON.stringify(answer)}\n`);
        },
      );
  }

  program
    .command('example')
    .description('run the example static site with the daemon in front of it (what npm start runs)')
    .option('--listen <host:port>', 'front listener address', EXAMPLE_DEFAULTS.listen)
    .option('--site <host:port>', 'example site (upstream) address', EXAMPLE_DEFAULTS.site)
    .option('--admin <host:port>', 'admin listener address', EXAMPLE_DEFAULTS.admin)
    .action(async (o: { listen: string; site: string; admin: string }) => {
      await (await import('./example.js')).runExample(o);
    });

  program
    .command('demo')
    .description(
      'the community demo (what npm start runs): an origin and 3 rescuers on 127.0.0.2-5, each a daemon ' +
        'process, and a flash crowd at ~10x the origin capacity; shows rescue and release with numbers',
    )
    .option(
      '--duration <s>',
      'crowd for S seconds, wait for release, print the summary, exit',
      positiveNumber,
    )
    .option('--json', 'stdout carries only the summary as one JSON object')
    .option(
      '--crowd-rps <n>',
      'flash crowd arrival rate in fetches/s (default 10 x origin capacity)',
      positiveNumber,
    )
    .option('--origin-rps <n>', "origin site's capacity in requests/s", positiveNumber, 10)
    .option('--crowd-s <s>', 'without --duration: seconds of crowd per cycle', positiveNumber, 60)
    .option('--calm-s <s>', 'without --duration: seconds of calm per cycle', positiveNumber, 60)
    .option(
      '--base-dir <dir>',
      'where configs, keys, tokens, state files and logs go (default: a new temp dir)',
    )
    .action(
      async (o: {
        duration?: number;
        json?: boolean;
        crowdRps?: number;
        originRps: number;
        crowdS: number;
        calmS: number;
        baseDir?: string;
      }) => {
        const { runDemo } = await import('../demo/run.js');
        process.exitCode = await runDemo({
          ...(o.duration !== undefined && { duration: o.duration }),
          json: o.json === true,
          ...(o.crowdRps !== undefined && { crowdRps: o.crowdRps }),
          originRps: o.originRps,
          crowdSeconds: o.crowdS,
          calmSeconds: o.calmS,
          ...(o.baseDir !== undefined && { baseDir: o.baseDir }),
        });
      },
    );

  return program;
}

/** Key-file problems (exists, missing, open mode) are the operator's to fix: exit 1, not 2. */
function usageErrors(fn: () => unknown): void {
  try {
    fn();
  } catch (err) {
    process.stderr.write(`dotslash: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = EXIT_CONFIG;
  }
}

function positiveNumber(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('expected a positive number');
  return n;
}

/**
 * Run the CLI with process.argv-style arguments. Long-running commands resolve once their
 * listeners are up; the process then lives until a signal. Sets process.exitCode on failure.
 */
export async function main(argv: readonly string[]): Promise<void> {
  try {
    await buildProgram().parseAsync([...argv]);
  } catch (err) {
    process.exitCode = exitCodeFor(err);
    if (process.exitCode !== EXIT_OK && !(err instanceof CommanderError)) {
      // Commander has already printed its own usage errors.
      process.stderr.write(describe(err) + '\n');
    }
  }
}

function exitCodeFor(err: unknown): number {
  if (err instanceof CommanderError) {
    return err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.exitCode === 0
      ? EXIT_OK
      : EXIT_CONFIG;
  }
  if (err instanceof ConfigError) return EXIT_CONFIG;
  return EXIT_RUNTIME;
}

function describe(err: unknown): string {
  if (err instanceof ConfigError) {
    return err.issues
      .map((i) => (i.file !== undefined ? formatIssue(i) : `dotslash: ${formatIssue(i)}`))
      .join('\n');
  }
  if (err instanceof Error) return `dotslash: ${err.message}`;
  return `dotslash: ${String(err)}`;
}
