// Shared by test/cli and test/e2e: spawn the dotslash CLI as a real process (from source via
// tsx, so a stale dist/ cannot fool a test), watch its output, and run small test upstreams.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { sleep, until as pollUntil } from '../wait.js';

export const REPO = fileURLToPath(new URL('../../', import.meta.url));
const ENTRY = fileURLToPath(new URL('./cli-entry.ts', import.meta.url));
// tsx's ESM loader, as a file URL so it resolves whatever the child's cwd is.
const TSX = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;

export interface CliProcess {
  readonly child: ChildProcess;
  /** Everything written so far (live). */
  readonly out: { stdout: string; stderr: string };
  /** Resolves with the exit code (or 128 + signal number style: null code -> -1). */
  readonly exited: Promise<number>;
  /** Wait until stderr matches `re`; returns the match. Rejects on exit or after `ms`. */
  waitForStderr(re: RegExp, ms?: number): Promise<RegExpMatchArray>;
  kill(signal?: NodeJS.Signals): void;
}

/** Children still running when a test ends are killed by `killAll()` (call it in afterEach). */
const running = new Set<ChildProcess>();

/** Environment for a child: this one's minus the admin-token variable (tests opt in to it). */
export function cleanEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env = { ...process.env, ...extra };
  if (!('DOTSLASH_ADMIN_TOKEN' in extra)) delete env.DOTSLASH_ADMIN_TOKEN;
  return env;
}

/** Run `dotslash <args>` in `cwd`. */
export function runCli(args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): CliProcess {
  const child = spawn(process.execPath, ['--import', TSX, ENTRY, ...args], {
    cwd: opts.cwd ?? REPO,
    env: opts.env ?? cleanEnv(),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return watch(child);
}

/** Run the installed entry point bin/dotslash.js (needs `npm run build`). */
export function runBin(args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): CliProcess {
  const child = spawn(
    process.execPath,
    [fileURLToPath(new URL('../../bin/dotslash.js', import.meta.url)), ...args],
    {
      cwd: opts.cwd ?? REPO,
      env: opts.env ?? cleanEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  return watch(child);
}

function watch(child: ChildProcess): CliProcess {
  running.add(child);
  const out = { stdout: '', stderr: '' };
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (out.stdout += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (out.stderr += d));
  const exited = new Promise<number>((resolve) => {
    child.on('close', (code) => {
      running.delete(child);
      resolve(code ?? -1);
    });
  });
  let done = false;
  void exited.then(() => (done = true));
  const waitForStderr = async (re: RegExp, ms = 30_000): Promise<RegExpMatchArray> => {
    const until = Date.now() + ms;
    for (;;) {
      const m = out.stderr.match(re);
      if (m) return m;
      if (done) throw new Error(`process exited before stderr matched ${re}:\n${out.stderr}`);
      if (Date.now() > until) throw new Error(`timed out waiting for ${re} in stderr:\n${out.stderr}`);
      await sleep(25);
    }
  };
  return { child, out, exited, waitForStderr, kill: (signal = 'SIGTERM') => child.kill(signal) };
}

export function killAll(): void {
  for (const child of running) child.kill('SIGKILL');
  running.clear();
}

export { sleep };

/** Poll `fn` every 25 ms until it returns a truthy value (or `ms` passes): test/wait.ts's until. */
export function until<T>(fn: () => Promise<T> | T, ms = 10_000, what = 'condition'): Promise<T> {
  return pollUntil(fn, ms, what, 25);
}

/** Wait for `dotslash: front URL -> …` and `dotslash: admin URL` lines (printed by proxy/start). */
export async function listenersOf(p: CliProcess): Promise<{ front: string; admin: string }> {
  const front = (await p.waitForStderr(/dotslash: front (http:\/\/\S+)/))[1]!;
  const admin = (await p.waitForStderr(/dotslash: admin (http:\/\/\S+)/))[1]!;
  return { front, admin };
}

export interface TestUpstream {
  readonly url: string;
  readonly server: Server;
  readonly requests: IncomingMessage[];
  close(): Promise<void>;
}

/** An HTTP server on 127.0.0.1:0; by default answers `name` as text/plain. */
export async function startUpstream(
  name: string,
  handler?: (req: IncomingMessage, res: ServerResponse) => void,
): Promise<TestUpstream> {
  const requests: IncomingMessage[] = [];
  const server = createServer((req, res) => {
    requests.push(req);
    if (handler) handler(req, res);
    else res.writeHead(200, { 'content-type': 'text/plain' }).end(name);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    server,
    requests,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
