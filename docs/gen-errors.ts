// Regenerates docs/errors.md from the errors.ts code tables:
//   npx tsx docs/gen-errors.ts > docs/errors.md && npx prettier --write docs/errors.md
// (test/e2e/docs.test.ts fails when the two differ).
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

interface Entry {
  message: string;
  status?: number;
}

const REPO = fileURLToPath(new URL('..', import.meta.url));
const out: string[] = [
  '# Error codes',
  '',
  'Every error DotSlash reports has a stable code, never reused: `CFG_ERR_*` (configuration),',
  '`PRX_ERR_*` (the proxy data path: the JSON body of a response the proxy generates is',
  '`{ "error": { "code", "message" } }`), `ADM_ERR_*` (admin listener), `MON_ERR_*` (workload',
  'monitor). This file is generated from the `errors.ts` tables (`npx tsx docs/gen-errors.ts >',
  'docs/errors.md && npx prettier --write docs/errors.md`); a test keeps the two equal.',
  '',
  'The CLI prints configuration errors as `file:line:column: key: message` and exits 1; runtime',
  'failures (such as a port already in use) exit 2.',
];

for (const top of ['src', 'proxy', 'dns', 'rescue-protocol']) {
  let files: string[];
  try {
    files = (readdirSync(join(REPO, top), { recursive: true }) as string[]).sort();
  } catch {
    continue;
  }
  for (const file of files) {
    if (!(file === 'errors.ts' || file.endsWith('/errors.ts'))) continue;
    const mod = (await import(pathToFileURL(join(REPO, top, file)).href)) as Record<string, unknown>;
    for (const [name, table] of Object.entries(mod)) {
      if (table === null || typeof table !== 'object') continue;
      const codes = Object.entries(table as Record<string, Entry>).filter(
        ([c, e]) => /^[A-Z]{3}_ERR_/.test(c) && typeof e?.message === 'string',
      );
      if (codes.length === 0) continue;
      const withStatus = codes.some(([, e]) => e.status !== undefined);
      out.push('', `## ${top}/${file} (\`${name}\`)`, '');
      out.push(withStatus ? '| code | HTTP status | meaning |' : '| code | meaning |');
      out.push(withStatus ? '| --- | --- | --- |' : '| --- | --- |');
      for (const [code, e] of codes) {
        const msg = e.message.replace(/\|/g, '\\|');
        out.push(withStatus ? `| \`${code}\` | ${e.status ?? ''} | ${msg} |` : `| \`${code}\` | ${msg} |`);
      }
    }
  }
}
process.stdout.write(out.join('\n') + '\n');
