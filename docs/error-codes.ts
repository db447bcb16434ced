// Collects the stable error codes from every errors.ts table (CFG_ERR_*, PRX_ERR_*, …), for
// docs/gen-errors.ts and the test that keeps docs/errors.md equal to the code.
import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export interface ErrorEntry {
  readonly message: string;
  readonly status?: number;
}

export interface ErrorTable {
  /** Path relative to the repository, e.g. `proxy/errors.ts`. */
  readonly file: string;
  /** The exported name of the table, e.g. `ProxyErrors`. */
  readonly name: string;
  readonly codes: readonly (readonly [string, ErrorEntry])[];
}

/** `errors.ts`, or `<part>-errors.ts` beside another part's errors.ts (e.g. dns/update-errors.ts). */
const isErrorTable = (f: string): boolean => /(?:^|\/)(?:[a-z0-9]+-)?errors\.ts$/.test(f);

export const REPO = fileURLToPath(new URL('..', import.meta.url));
const TOPS = ['src', 'proxy', 'dns', 'rescue-protocol'];

/**
 * The errors.ts files of the source folders. Only files git tracks when git is available: in
 * a shared working tree, someone's uncommitted module should not change what the docs must
 * say (a fresh clone, as CI has, would not have it).
 */
export function errorModules(): string[] {
  try {
    const out = execFileSync('git', ['ls-files', '--', ...TOPS.map((t) => `${t}/**errors.ts`)], {
      cwd: REPO,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    return out.split('\n').filter(isErrorTable).sort();
  } catch {
    const files: string[] = [];
    for (const top of TOPS) {
      let entries: string[] = [];
      try {
        entries = readdirSync(join(REPO, top), { recursive: true }) as string[];
      } catch {
        continue;
      }
      for (const e of entries) if (isErrorTable(e)) files.push(`${top}/${e}`);
    }
    return files.sort();
  }
}

/** Every exported `{ XXX_ERR_*: { message, status? } }` table of those files. */
export async function errorTables(): Promise<ErrorTable[]> {
  const tables: ErrorTable[] = [];
  for (const file of errorModules()) {
    const mod = (await import(pathToFileURL(join(REPO, file)).href)) as Record<string, unknown>;
    for (const [name, table] of Object.entries(mod)) {
      if (table === null || typeof table !== 'object') continue;
      const codes = Object.entries(table as Record<string, ErrorEntry>).filter(
        ([c, e]) => /^[A-Z]{3}_ERR_[A-Z0-9_]+$/.test(c) && typeof e?.message === 'string',
      );
      if (codes.length > 0) tables.push({ file, name, codes });
    }
  }
  return tables;
}
