// `dotslash registry -c FILE`: runs a registry until SIGTERM/SIGINT; prints its listeners (and a
// newly generated admin token, once) on stderr. `admit` / `revoke` talk to a running one.
import { readFileSync } from 'node:fs';
import { parsePublicKey } from '../../rescue-protocol/keys.js';
import type { RegistryServiceConfig } from '../config/schema.js';
import { createLogger } from '../log.js';
import { RegistryError } from './errors.js';
import { ADMIT_PATH, REVOKE_PATH } from './messages.js';
import { RegistryService } from './service.js';

export async function runRegistry(
  config: RegistryServiceConfig,
  opts: { adminToken?: string } = {},
): Promise<RegistryService> {
  const logger = createLogger(config.log.level);
  const svc = new RegistryService(config, {
    logger,
    ...(opts.adminToken !== undefined && { adminToken: opts.adminToken }),
  });
  if (svc.adminTokenGenerated)
    process.stderr.write(
      `dotslash: generated a registry admin token (shown once; saved to ${config.admin.token_file}, mode 0600):\n  ${svc.adminToken}\n`,
    );
  try {
    await svc.start();
  } catch (err) {
    await svc.close();
    throw err;
  }
  process.stderr.write(
    `dotslash: registry ${config.id} (${svc.publicKey})\n` +
      `dotslash: registry API ${svc.url} (signed: /v1/register /v1/lookup ...; /v1/health open)\n` +
      `dotslash: registry admin ${svc.adminUrl} (admit, revoke, status; bearer token)\n`,
  );
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'registry stopping');
    svc.close().then(
      () => process.exit(0),
      () => process.exit(2),
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  return svc;
}

export interface AdmitOptions {
  readonly publicKey: string;
  readonly admit: boolean;
  readonly community?: string;
  /** Admin base URL; default from the config file, else http://127.0.0.1:7701. */
  readonly adminUrl?: string;
  readonly token?: string;
  readonly config?: RegistryServiceConfig;
  readonly env?: NodeJS.ProcessEnv;
}

/** POSTs admit/revoke to a running registry's admin API; returns its JSON answer. */
export async function admitKeyRemote(o: AdmitOptions): Promise<unknown> {
  const publicKey = o.publicKey.trim();
  parsePublicKey(publicKey); // the `dotslash keygen` / `pubkey` line, checked before anything is sent
  const cfg = o.config;
  const closed = cfg?.communities.filter((c) => c.type !== 'open').map((c) => c.name) ?? [];
  const community = o.community ?? (closed.length === 1 ? closed[0] : undefined);
  if (community === undefined)
    throw new RegistryError(
      'REG_ERR_CONFIG',
      '--community NAME is required (the config has no single closed community)',
    );
  const adminUrl = (o.adminUrl ?? (cfg ? `http://${cfg.admin.listen}` : 'http://127.0.0.1:7701')).replace(
    /\/+$/,
    '',
  );
  const env = o.env ?? process.env;
  const token =
    o.token ??
    env[cfg?.admin.token_env ?? 'DOTSLASH_REGISTRY_TOKEN']?.trim() ??
    readToken(cfg?.admin.token_file ?? '.dotslash/registry-admin.token');
  let res: Response;
  try {
    res = await fetch(adminUrl + (o.admit ? ADMIT_PATH : REVOKE_PATH), {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ community, public_key: publicKey }),
      signal: AbortSignal.timeout(10_000),
    });
  } catch (err) {
    throw new RegistryError('REG_ERR_UNREACHABLE', `${adminUrl}: ${(err as Error).message}`, { cause: err });
  }
  const body = (await res.json().catch(() => null)) as { error?: { code: string; message: string } } | null;
  if (!res.ok)
    throw new RegistryError(
      'REG_ERR_REMOTE',
      `${body?.error?.code ?? res.status}: ${body?.error?.message ?? ''}`,
    );
  return body;
}

function readToken(file: string): string {
  try {
    return readFileSync(file, 'utf8').trim();
  } catch (err) {
    throw new RegistryError(
      'REG_ERR_CONFIG',
      `no admin token: give --token, set the variable, or make ${file} readable (${(err as Error).message})`,
    );
  }
}
