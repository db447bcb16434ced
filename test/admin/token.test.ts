// Admin token resolution: flag > env > file > generated (saved 0600 in a 0700 directory).
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { adminSchema } from '../../src/config/schema.js';
import type { AdminError } from '../../src/admin/errors.js';
import { resolveAdminToken } from '../../src/admin/token.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'dotslash-token-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const cfgIn = (file: string) => adminSchema.parse({ token_file: file, token_env: 'TEST_ADMIN_TOKEN' });

describe('resolveAdminToken', () => {
  it('generates a token, saves it 0600 in a new 0700 directory, and reads it back next time', () => {
    const file = join(dir, 'state', 'admin.token');
    const first = resolveAdminToken(cfgIn(file), { env: {} });
    expect(first.source).toBe('generated');
    expect(first.file).toBe(file);
    expect(first.token).toMatch(/^[A-Za-z0-9_-]{43}$/); // 32 bytes, base64url
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, 'state')).mode & 0o777).toBe(0o700);
    expect(readFileSync(file, 'utf8').trim()).toBe(first.token);

    const second = resolveAdminToken(cfgIn(file), { env: {} });
    expect(second).toEqual({ token: first.token, source: 'file', file });
    // Two generated tokens differ.
    const other = resolveAdminToken(cfgIn(join(dir, 'other.token')), { env: {} });
    expect(other.token).not.toBe(first.token);
  });

  it('prefers the environment variable over the file, and the flag over both', () => {
    const file = join(dir, 'admin.token');
    writeFileSync(file, 'from-file\n', { mode: 0o600 });
    const cfg = cfgIn(file);
    expect(resolveAdminToken(cfg, { env: {} })).toMatchObject({ token: 'from-file', source: 'file' });
    expect(resolveAdminToken(cfg, { env: { TEST_ADMIN_TOKEN: 'from-env' } })).toEqual({
      token: 'from-env',
      source: 'env',
    });
    expect(resolveAdminToken(cfg, { explicit: 'from-flag', env: { TEST_ADMIN_TOKEN: 'from-env' } })).toEqual({
      token: 'from-flag',
      source: 'flag',
    });
    // Empty values count as unset.
    expect(resolveAdminToken(cfg, { explicit: '', env: { TEST_ADMIN_TOKEN: '  ' } }).source).toBe('file');
  });

  it('reads process.env by default', () => {
    process.env.TEST_ADMIN_TOKEN = 'from-process-env';
    try {
      expect(resolveAdminToken(cfgIn(join(dir, 'x.token')))).toEqual({
        token: 'from-process-env',
        source: 'env',
      });
    } finally {
      delete process.env.TEST_ADMIN_TOKEN;
    }
  });

  it('does not create a file when the token comes from the flag or env', () => {
    const file = join(dir, 'never', 'admin.token');
    resolveAdminToken(cfgIn(file), { env: { TEST_ADMIN_TOKEN: 'e' } });
    expect(() => statSync(join(dir, 'never'))).toThrow();
  });

  it('refuses an empty token file with a clear error', () => {
    const file = join(dir, 'empty.token');
    writeFileSync(file, '\n', { mode: 0o600 });
    try {
      resolveAdminToken(cfgIn(file), { env: {} });
      expect.unreachable();
    } catch (err) {
      expect((err as AdminError).code).toBe('ADM_ERR_TOKEN_FILE_EMPTY');
      expect((err as Error).message).toContain(file);
    }
  });

  it('warns when the token file is readable by others', () => {
    const file = join(dir, 'open.token');
    writeFileSync(file, 'tok\n');
    chmodSync(file, 0o644);
    const r = resolveAdminToken(cfgIn(file), { env: {} });
    expect(r.token).toBe('tok');
    expect(r.warning).toMatch(/0644.*chmod 600/);
  });

  it('reports a token file path it cannot create', () => {
    const blocker = join(dir, 'blocker');
    writeFileSync(blocker, 'not a directory');
    try {
      resolveAdminToken(cfgIn(join(blocker, 'admin.token')), { env: {} });
      expect.unreachable();
    } catch (err) {
      expect((err as AdminError).code).toBe('ADM_ERR_TOKEN_FILE_UNREADABLE');
    }
  });
});
