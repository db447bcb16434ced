// Keeps the docs true: the README's configuration reference lists every schema key with its
// real default, and docs/errors.md lists exactly the error codes the code tables define.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { errorTables } from '../../docs/error-codes.js';
import { allKeyPaths } from '../../src/config/keys.js';
import { configSchema } from '../../src/config/schema.js';
import { REPO } from './helpers.js';

const readme = readFileSync(join(REPO, 'README.md'), 'utf8');

/** The README table row for `key`: its cells, trimmed. */
function row(key: string): string[] | undefined {
  const line = readme.split('\n').find((l) => l.startsWith(`| \`${key}\` `) || l.startsWith(`| \`${key}\`|`));
  return line
    ?.split('|')
    .slice(1, -1)
    .map((c) => c.trim());
}

describe('README configuration reference', () => {
  const defaults = configSchema.parse({ proxy: { upstreams: ['http://127.0.0.1:1'] } }) as unknown;
  const valueAt = (path: string): unknown =>
    path.split('.').reduce<unknown>((v, k) => (v as Record<string, unknown> | undefined)?.[k], defaults);

  it.each(allKeyPaths())('documents %s with its default', (key) => {
    const cells = row(key);
    expect(cells, `README.md has no table row for \`${key}\``).toBeDefined();
    const [, shown, meaning] = cells!;
    const value = valueAt(key);
    if (key === 'proxy.upstreams') expect(shown).toBe('(required)');
    else if (value === undefined) expect(shown).toBe('(unset)');
    else if (typeof value === 'object' && !Array.isArray(value))
      expect(shown).toBe(''); // a section
    else expect(shown).toBe('`' + (typeof value === 'string' ? value : JSON.stringify(value)) + '`');
    if (typeof value !== 'object' || Array.isArray(value)) expect(meaning!.length).toBeGreaterThan(0);
  });

  it('documents no key the schema does not have', () => {
    const keys = new Set(allKeyPaths());
    const documented = [...readme.matchAll(/^\| `([a-z_.]+)`\s*\|/gm)].map((m) => m[1]!);
    const inConfigTable = documented.filter((k) => /^(name|proxy|admin|monitor|log)(\.|$)/.test(k));
    expect(inConfigTable.filter((k) => !keys.has(k))).toEqual([]);
  });

  it('lists the default listeners', () => {
    expect(readme).toMatch(/\| front\s+\| 127\.0\.0\.1:8080\s+\|/);
    expect(readme).toMatch(/\| admin\s+\| 127\.0\.0\.1:9180\s+\|/);
    expect(readme).toMatch(/\| example site\s+\| 127\.0\.0\.1:8081\s+\|/);
  });
});

describe('docs/errors.md', () => {
  it('lists exactly the codes defined in the errors.ts tables', async () => {
    const inCode = new Map<string, string>();
    for (const { file, codes } of await errorTables()) for (const [code] of codes) inCode.set(code, file);
    expect(inCode.size).toBeGreaterThan(0);
    const doc = readFileSync(join(REPO, 'docs/errors.md'), 'utf8');
    const inDoc = new Set([...doc.matchAll(/^\| `([A-Z]{3}_ERR_[A-Z0-9_]+)`\s*\|/gm)].map((m) => m[1]!));
    // On a mismatch, run `npm run docs:errors`.
    const missing = [...inCode.keys()].filter((c) => !inDoc.has(c)).map((c) => `${c} (${inCode.get(c)})`);
    const stale = [...inDoc].filter((c) => !inCode.has(c));
    expect({ missing, stale }).toEqual({ missing: [], stale: [] });
  });
});
