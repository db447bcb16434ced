// Shared by test/registry: registry configs in temp dirs, member identities, free ports.
import { mkdtempSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { until as waitUntil } from '../wait.js';
import { generateKeyPair, parsePrivateKey } from '../../rescue-protocol/keys.js';
import { registryServiceSchema, type RegistryServiceConfig } from '../../src/config/schema.js';
import type { Registration } from '../../src/registry/messages.js';

export const tempDir = (): string => mkdtempSync(join(tmpdir(), 'dotslash-reg-'));

/** A port free right now on `host` (the caller binds it soon after). */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, host, () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

export interface RegistryKey {
  readonly id: string;
  readonly publicKey: string;
  readonly pem: string;
}

export function registryKey(id: string): RegistryKey {
  const kp = generateKeyPair();
  return { id, publicKey: kp.publicKey, pem: kp.privateKeyPem };
}

/** A registry config for tests: temp state/key/token files; raw overrides merged in. */
export function registryConfig(dir: string, raw: Record<string, unknown>): RegistryServiceConfig {
  return registryServiceSchema.parse({
    id: 'reg.test',
    listen: '127.0.0.1:0',
    state_file: join(dir, 'registry.db'),
    key_file: join(dir, 'registry.key'),
    communities: [{ name: 'default' }],
    ...raw,
    admin: { listen: '127.0.0.1:0', token_file: join(dir, 'admin.token'), ...(raw.admin as object) },
    mesh: { anti_entropy_ms: 200, push_delay_ms: 5, ...(raw.mesh as object) },
    log: { level: 'silent' },
  });
}

export interface Member {
  readonly id: string;
  readonly publicKey: string;
  readonly privateKey: ReturnType<typeof parsePrivateKey>;
  registration(over?: Partial<Registration>): Registration;
}

export function member(id: string, community = 'default'): Member {
  const kp = generateKeyPair();
  const privateKey = parsePrivateKey(kp.privateKeyPem);
  return {
    id,
    publicKey: kp.publicKey,
    privateKey,
    registration: (over = {}) => ({
      id,
      names: [id],
      control_url: `http://${id}:9181`,
      public_key: kp.publicKey,
      community,
      lease_ms: 30_000,
      willing: true,
      capacity: { uplink_bps: 12_500_000, cpu: 2, rps: 1000 },
      spare: { uplink_bps: 10_000_000, cpu: 1.5, rps: 500 },
      ...over,
    }),
  };
}

export { sleep } from '../wait.js';

/** Registry state settles fast: poll every 50 ms. */
export const until = <T>(fn: () => Promise<T> | T, ms: number, what: string): Promise<T> =>
  waitUntil(fn, ms, what, 50);
