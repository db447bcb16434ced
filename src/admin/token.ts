// Finds the admin bearer token: flag, then environment variable, then file, else generates one.
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { AdminConfig } from '../config/schema.js';
import { AdminError } from './errors.js';

export type AdminTokenSource = 'flag' | 'env' | 'file' | 'generated';

export interface ResolvedAdminToken {
  readonly token: string;
  /** 'generated' means the CLI should print the token once: nobody has seen it yet. */
  readonly source: AdminTokenSource;
  /** Absolute path of the token file (sources 'file' and 'generated'). */
  readonly file?: string;
  /** Set when the token file is readable by group or others (worth a log warning). */
  readonly warning?: string;
}

/** 32 random bytes, base64url: 43 characters, safe in headers and shells. */
export function generateAdminToken(): string {
  return randomBytes(32).toString('base64url');
}

/**
 * Precedence: explicit (--admin-token) > env[cfg.token_env] > cfg.token_file > a new token saved
 * to cfg.token_file (mode 0600, parent directory created 0700). Empty values count as unset.
 * The file is created with O_EXCL so two daemons starting together cannot overwrite each
 * other's token; the loser reads the winner's.
 */
export function resolveAdminToken(
  cfg: AdminConfig,
  opts: { explicit?: string; env?: NodeJS.ProcessEnv } = {},
): ResolvedAdminToken {
  const explicit = opts.explicit?.trim();
  if (explicit) return { token: explicit, source: 'flag' };
  const fromEnv = (opts.env ?? process.env)[cfg.token_env]?.trim();
  if (fromEnv) return { token: fromEnv, source: 'env' };

  const file = resolve(cfg.token_file);
  const existing = readTokenFile(file);
  if (existing !== null) return existing;

  const token = generateAdminToken();
  try {
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    writeFileSync(file, `${token}\n`, { mode: 0o600, flag: 'wx' });
    // The umask can only remove bits, but a pre-existing ACL or odd umask should not leave it open.
    chmodSync(file, 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
      const raced = readTokenFile(file);
      if (raced) return raced;
    }
    throw new AdminError('ADM_ERR_TOKEN_FILE_UNREADABLE', `${file}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  return { token, source: 'generated', file };
}

/** The token in `file`, or null if the file does not exist. */
function readTokenFile(file: string): ResolvedAdminToken | null {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new AdminError('ADM_ERR_TOKEN_FILE_UNREADABLE', `${file}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  const token = text.trim();
  if (!token)
    throw new AdminError('ADM_ERR_TOKEN_FILE_EMPTY', `${file} (delete it to have a new token generated)`);
  const mode = statSync(file).mode & 0o777;
  const warning =
    mode & 0o077
      ? `admin token file ${file} has mode ${mode.toString(8).padStart(4, '0')}; run chmod 600 on it`
      : undefined;
  return warning ? { token, source: 'file', file, warning } : { token, source: 'file', file };
}
