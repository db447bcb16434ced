// Shared by test/integration: a community of daemon processes (run from source via tsx, so a stale
// dist/ cannot fool a test) in a temp dir, on a range of 127.0.0.x addresses of the test's own.
import { mkdtempSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Community, type CommunityOptions } from '../../src/demo/community.js';

const ENTRY = fileURLToPath(new URL('../e2e/cli-entry.ts', import.meta.url));
const TSX = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;

/** node --import tsx test/e2e/cli-entry.ts: the CLI from source. */
export const CLI_ENTRY = [process.execPath, '--import', TSX, ENTRY];

/** Four addresses 127.0.0.<base> .. <base+3>: each test file takes its own base. */
export const hostsFrom = (base: number, n = 4): string[] =>
  Array.from({ length: n }, (_, i) => `127.0.0.${base + i}`);

const made: Community[] = [];

/** Creates (not starts) a community in a fresh temp dir; `stopAll()` in afterAll/afterEach stops it. */
export async function makeCommunity(
  opts: Partial<CommunityOptions> & { hosts: readonly string[]; originRps: number },
): Promise<Community> {
  const c = await Community.create({
    baseDir: mkdtempSync(join(tmpdir(), 'dotslash-it-')),
    entry: CLI_ENTRY,
    ...opts,
  });
  made.push(c);
  return c;
}

export async function stopAll(): Promise<void> {
  await Promise.all(made.splice(0).map((c) => c.stop(5_000)));
}

export { sleep, until } from '../wait.js';

/** A member's log lines as parsed JSON (pino), skipping anything else. */
export function logLines(file: string): Record<string, unknown>[] {
  let text = '';
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  const out: Record<string, unknown>[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      out.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      // a line being written
    }
  }
  return out;
}
