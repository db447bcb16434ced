// The dotslash command line as a real process: --version, validate (ok / errors, exit codes),
// usage errors, the `proxy` one-liner through to a test upstream with its admin token, a
// port already in use (exit 2), and `dotslash example` (what npm start runs).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import type { AddressInfo, Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { REPO, cleanEnv, killAll, listenersOf, runBin, runCli, startUpstream } from '../e2e/helpers.js';
import type { TestUpstream } from '../e2e/helpers.js';

const version = (JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string }).version;
const tmp = (): string => mkdtempSync(join(tmpdir(), 'dotslash-cli-'));

let upstreams: TestUpstream[] = [];
afterEach(async () => {
  killAll();
  await Promise.all(upstreams.map((u) => u.close()));
  upstreams = [];
});

describe('dotslash --version', () => {
  beforeAll(() => {
    // `npm test` builds first (pretest); a lone `vitest run test/cli` may not have.
    if (!existsSync(join(REPO, 'dist/src/cli/main.js'))) {
      execFileSync(
        process.execPath,
        [join(REPO, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'],
        {
          cwd: REPO,
        },
      );
    }
  });

  it('prints the package.json version and exits 0 (installed entry point bin/dotslash.js)', async () => {
    const p = runBin(['--version']);
    expect(await p.exited).toBe(0);
    expect(p.out.stdout).toBe(`${version}\n`);
  });

  it('the same from source', async () => {
    const p = runCli(['--version']);
    expect(await p.exited).toBe(0);
    expect(p.out.stdout.trim()).toBe(version);
  });
});

describe('dotslash validate', () => {
  it('prints "ok" and exits 0 for a valid file', async () => {
    const p = runCli(['validate', '-c', 'examples/dotslash.yaml']);
    expect(await p.exited).toBe(0);
    expect(p.out.stdout).toBe('ok\n');
    expect(p.out.stderr).toBe('');
  });

  it('prints every error as file:line:column: key: message and exits 1', async () => {
    const file = join(tmp(), 'bad.yaml');
    writeFileSync(
      file,
      [
        'proxy:',
        '  upstreams:',
        '    - ftp://files.example',
        '  timeouts:',
        '    drain: 5',
        'log:',
        '  level: loud',
        '',
      ].join('\n'),
    );
    const p = runCli(['validate', '-c', file]);
    expect(await p.exited).toBe(1);
    expect(p.out.stdout).toBe('');
    expect(p.out.stderr.trim().split('\n')).toEqual([
      `${file}:3:7: proxy.upstreams[0]: upstream URL must use http:// or https://`,
      `${file}:5:5: proxy.timeouts.drain: unknown key "drain"`,
      `${file}:7:10: log.level: expected one of "trace"|"debug"|"info"|"warn"|"error"|"fatal"|"silent"`,
    ]);
  });

  it('reports YAML syntax errors with their position', async () => {
    const file = join(tmp(), 'broken.yaml');
    writeFileSync(file, 'proxy:\n  upstreams: [http://a.test:1\n');
    const p = runCli(['validate', '-c', file]);
    expect(await p.exited).toBe(1);
    expect(p.out.stderr).toMatch(new RegExp(`^${file.replace(/[.]/g, '\\.')}:\\d+:\\d+: `));
  });

  it('a missing file is a config error (exit 1)', async () => {
    const p = runCli(['validate', '-c', '/nonexistent/dotslash.yaml']);
    expect(await p.exited).toBe(1);
    expect(p.out.stderr).toContain('/nonexistent/dotslash.yaml:1:1: cannot read file (ENOENT)');
  });
});

describe('usage errors exit 1', () => {
  it.each([
    [['frobnicate'], /unknown command 'frobnicate'/],
    [['proxy', '--upstream', 'http://127.0.0.1:1'], /required option '--listen <host:port>' not specified/],
    [['proxy', '--listen', '127.0.0.1:0'], /--upstream: at least one upstream URL is required/],
    [
      ['proxy', '--listen', 'nowhere', '--upstream', 'http://127.0.0.1:1'],
      /--listen "nowhere": expected HOST:PORT/,
    ],
    [['start'], /required option '-c, --config <file>' not specified/],
  ])('dotslash %j', async (args, message) => {
    const p = runCli(args);
    expect(await p.exited).toBe(1);
    expect(p.out.stderr).toMatch(message);
  });
});

describe('dotslash proxy (the one-liner)', { timeout: 60_000 }, () => {
  it('serves requests through to the upstream; generates the admin token once, saved 0600', async () => {
    const up = await startUpstream('hello from upstream');
    upstreams.push(up);
    const cwd = tmp();
    const args = ['proxy', '--listen', '127.0.0.1:0', '--upstream', up.url, '--admin', '127.0.0.1:0'];

    const first = runCli(args, { cwd });
    const { front, admin } = await listenersOf(first);
    const res = await fetch(`${front}/some/path?q=1`);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('hello from upstream');
    expect(up.requests.at(-1)!.url).toBe('/some/path?q=1');
    expect(up.requests.at(-1)!.headers['x-forwarded-for']).toBe('127.0.0.1');

    // The token is printed once on stderr and saved with mode 0600 in a 0700 directory.
    const printed = first.out.stderr.match(/generated an admin token[^\n]*\n\s+(\S+)/)![1]!;
    const file = join(cwd, '.dotslash/admin.token');
    expect(readFileSync(file, 'utf8').trim()).toBe(printed);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(statSync(join(cwd, '.dotslash')).mode & 0o777).toBe(0o700);
    expect((await fetch(`${admin}/status`)).status).toBe(401);
    expect((await fetch(`${admin}/status`, { headers: { authorization: `Bearer ${printed}` } })).status).toBe(
      200,
    );
    expect((await fetch(`${admin}/healthz`)).status).toBe(200);

    first.kill('SIGTERM');
    expect(await first.exited).toBe(0);

    // Second run in the same directory: the saved token is used and not printed again.
    const second = runCli(args, { cwd });
    const again = await listenersOf(second);
    expect(second.out.stderr).not.toContain(printed);
    expect(second.out.stderr).not.toContain('generated an admin token');
    expect(
      (await fetch(`${again.admin}/status`, { headers: { authorization: `Bearer ${printed}` } })).status,
    ).toBe(200);
    second.kill('SIGINT');
    expect(await second.exited).toBe(0);
  });

  it('takes the token from --admin-token or DOTSLASH_ADMIN_TOKEN and writes no file', async () => {
    const up = await startUpstream('x');
    upstreams.push(up);
    const cwd = tmp();
    const base = ['proxy', '--listen', '127.0.0.1:0', '--upstream', up.url, '--admin', '127.0.0.1:0'];

    const fromEnv = runCli(base, { cwd, env: cleanEnv({ DOTSLASH_ADMIN_TOKEN: 'env-secret-token' }) });
    const a = await listenersOf(fromEnv);
    expect(
      (await fetch(`${a.admin}/status`, { headers: { authorization: 'Bearer env-secret-token' } })).status,
    ).toBe(200);
    fromEnv.kill();
    expect(await fromEnv.exited).toBe(0);

    const fromFlag = runCli([...base, '--admin-token', 'flag-secret-token'], { cwd });
    const b = await listenersOf(fromFlag);
    expect(
      (await fetch(`${b.admin}/status`, { headers: { authorization: 'Bearer flag-secret-token' } })).status,
    ).toBe(200);
    fromFlag.kill();
    expect(await fromFlag.exited).toBe(0);
    expect(existsSync(join(cwd, '.dotslash'))).toBe(false);
  });

  it.each(['front', 'admin'])(
    'a port already in use is a runtime failure: exit 2, naming the address (%s listener)',
    async (which) => {
      const blocker: Server = createServer();
      await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
      const taken = `127.0.0.1:${(blocker.address() as AddressInfo).port}`;
      try {
        const [listen, admin] = which === 'front' ? [taken, '127.0.0.1:0'] : ['127.0.0.1:0', taken];
        const p = runCli(
          ['proxy', '--listen', listen, '--upstream', 'http://127.0.0.1:1', '--admin', admin],
          {
            cwd: tmp(),
            env: cleanEnv({ DOTSLASH_ADMIN_TOKEN: 't' }),
          },
        );
        expect(await p.exited).toBe(2);
        expect(p.out.stderr).toContain(
          `dotslash: cannot listen on ${taken} (${which} listener): address already in use [EADDRINUSE]`,
        );
      } finally {
        blocker.close();
      }
    },
  );
});

describe('dotslash example (npm start)', { timeout: 60_000 }, () => {
  it('serves the example site through the proxy and prints its URLs; Ctrl-C stops it cleanly', async () => {
    const p = runCli(
      ['example', '--listen', '127.0.0.1:0', '--site', '127.0.0.1:0', '--admin', '127.0.0.1:0'],
      {
        cwd: tmp(),
      },
    );
    const site = (await p.waitForStderr(/site through the proxy:\s+(http:\/\/\S+)/))[1]!;
    const upstream = (await p.waitForStderr(/upstream \(direct\):\s+(http:\/\/\S+)/))[1]!;
    const admin = (await p.waitForStderr(/admin \(open\):\s+(http:\/\/[^/\s]+)/))[1]!;
    expect(site).not.toBe(upstream);

    const index = await fetch(site);
    expect(index.status).toBe(200);
    expect(index.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(await index.text()).toContain('<title>Example site behind DotSlash</title>');
    const css = await fetch(new URL('/style.css', site));
    expect(css.headers.get('content-type')).toBe('text/css; charset=utf-8');
    const big = await fetch(new URL('/files/100k.bin', site));
    expect((await big.arrayBuffer()).byteLength).toBe(100 * 1024);
    const png = await fetch(new URL('/img/pixel-art.png', site));
    expect(png.headers.get('content-type')).toBe('image/png');
    expect((await fetch(new URL('/../../package.json', site))).status).toBe(404);
    expect((await fetch(new URL('/nope.html', site))).status).toBe(404);
    expect((await fetch(`${admin}/readyz`)).status).toBe(200);

    p.kill('SIGINT');
    expect(await p.exited).toBe(0);
    // The access log went to stdout, one JSON line per request.
    expect(p.out.stdout).toContain('"url":"/files/100k.bin"');
  });
});

describe('dotslash keygen / pubkey', () => {
  it('writes a 0600 private key, prints the public key line, refuses to overwrite, and pubkey prints it again', async () => {
    const dir = tmp();
    const keyFile = join(dir, 'keys', 'member.key');
    const gen = runCli(['keygen', '-o', keyFile]);
    expect(await gen.exited).toBe(0);
    const line = gen.out.stdout.trim();
    expect(line).toMatch(/^ed25519:[A-Za-z0-9_-]{43}$/);
    expect(statSync(keyFile).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, 'keys')).mode & 0o777).toBe(0o700);

    const again = runCli(['keygen', '-o', keyFile]);
    expect(await again.exited).toBe(1);
    expect(again.out.stderr).toMatch(/RSC_ERR_KEY_FILE_EXISTS|exists/);

    const pub = runCli(['pubkey', '-k', keyFile]);
    expect(await pub.exited).toBe(0);
    expect(pub.out.stdout.trim()).toBe(line);

    const missing = runCli(['pubkey', '-k', join(dir, 'nope.key')]);
    expect(await missing.exited).toBe(1);
    expect(missing.out.stderr).toMatch(/nope\.key/);
  });
});

describe('dotslash registry admit -c FILE', () => {
  it("takes the admin address and token file from admit's own -c (not the parent command's)", async () => {
    const dir = tmp();
    // Nothing listens there: the error names the config's admin URL, so the file was read.
    const port = await new Promise<number>((resolve) => {
      const s: Server = createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as AddressInfo).port;
        s.close(() => resolve(p));
      });
    });
    const tokenFile = join(dir, 'admin.token');
    writeFileSync(tokenFile, 'secret-token\n', { mode: 0o600 });
    const config = join(dir, 'registry.yaml');
    writeFileSync(
      config,
      `id: reg.test\ncommunities: [{ name: club, type: closed }]\n` +
        `admin: { listen: "127.0.0.1:${port}", token_file: "${tokenFile}" }\n`,
    );
    const key = runCli(['keygen', '-o', join(dir, 'member.key')]);
    expect(await key.exited).toBe(0);
    const p = runCli(['registry', 'admit', key.out.stdout.trim(), '-c', config]);
    expect(await p.exited).not.toBe(0);
    expect(p.out.stderr).toContain(`http://127.0.0.1:${port}`);
    expect(p.out.stderr).not.toMatch(/no admin token/);
  });
});
