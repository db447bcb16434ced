// The registry's own config file: defaults, and bad files reported with positions and key paths.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/config/errors.js';
import { loadRegistryConfigFile } from '../../src/config/load.js';
import { tempDir } from './helpers.js';

function load(text: string) {
  const file = join(tempDir(), 'registry.yaml');
  writeFileSync(file, text);
  return () => loadRegistryConfigFile(file);
}

describe('registry config', () => {
  it('fills the documented defaults', () => {
    const c = load('id: reg.example.org\ncommunities: [{ name: example }]\n')();
    expect(c.listen).toBe('127.0.0.1:7700');
    expect(c.admin.listen).toBe('127.0.0.1:7701');
    expect(c.lease).toEqual({ min_ms: 3_000, max_ms: 600_000 });
    expect(c.communities[0]).toMatchObject({ name: 'example', type: 'open' });
    expect(c.communities[0]!.policy.spend_amount).toBe(100);
  });

  it('names every problem with its position', () => {
    const bad = load(
      [
        'id: reg.example.org',
        'listne: 127.0.0.1:7700',
        'communities:',
        '  - { name: Bad_Name, type: secret }',
        'lease: { min_ms: 10000, max_ms: 5 }',
        'peers: [{ id: reg.example.org, url: "http://x:1", public_key: "ed25519:nope" }]',
      ].join('\n'),
    );
    let err: unknown;
    try {
      bad();
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const text = (err as ConfigError).issues.map((i) => `${i.line}:${i.path}: ${i.message}`).join('\n');
    expect(text).toMatch(/2:listne: unknown key "listne" \(did you mean "listen"\?\)/);
    expect(text).toMatch(/communities\[0\]\.name/);
    expect(text).toMatch(/communities\[0\]\.type/);
    expect(text).toMatch(/lease\.min_ms: min_ms must not exceed max_ms/);
    expect(text).toMatch(/peers\[0\]\.public_key/);
  });
});
