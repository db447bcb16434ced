// The mesh in-process: pushes reach every peer, anti-entropy repairs a registry that was down,
// last writer wins the same way everywhere, and mesh messages from strangers are refused.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { RegistryService } from '../../src/registry/service.js';
import { memberKey } from '../../src/registry/directory.js';
import { MESH_PUSH_PATH, REGISTER_PATH } from '../../src/registry/messages.js';
import { sealRequest } from '../../src/registry/signed.js';
import { freePort, member, registryConfig, registryKey, tempDir, until, type Member } from './helpers.js';

const services = new Set<RegistryService>();
afterEach(async () => {
  await Promise.all([...services].map((s) => s.close()));
  services.clear();
});

interface Node {
  readonly id: string;
  readonly dir: string;
  readonly port: number;
  svc: RegistryService | null;
}

async function mesh(n: number): Promise<{ nodes: Node[]; start(i: number): Promise<RegistryService> }> {
  const keys = Array.from({ length: n }, (_, i) => registryKey(`r${i}.test`));
  const nodes: Node[] = [];
  for (const k of keys) {
    const dir = tempDir();
    writeFileSync(join(dir, 'registry.key'), k.pem, { mode: 0o600 });
    nodes.push({ id: k.id, dir, port: await freePort(), svc: null });
  }
  const start = async (i: number): Promise<RegistryService> => {
    const node = nodes[i]!;
    const cfg = registryConfig(node.dir, {
      id: node.id,
      listen: `127.0.0.1:${node.port}`,
      peers: nodes
        .filter((o) => o !== node)
        .map((o) => ({
          id: o.id,
          url: `http://127.0.0.1:${o.port}`,
          public_key: keys[nodes.indexOf(o)]!.publicKey,
        })),
    });
    const svc = new RegistryService(cfg, { adminToken: 't' });
    services.add(svc);
    await svc.start();
    node.svc = svc;
    return svc;
  };
  return { nodes, start };
}

async function register(svc: RegistryService, m: Member, spare = 1_000_000): Promise<void> {
  const sealed = sealRequest(
    m.id,
    'default',
    'register',
    m.registration({ spare: { uplink_bps: spare, cpu: 1, rps: 0 } }),
    m.privateKey,
  );
  const res = await fetch(svc.url + REGISTER_PATH, {
    method: 'POST',
    headers: sealed.headers,
    body: sealed.bytes,
  });
  expect(res.status, await res.clone().text()).toBe(200);
}

describe('registry mesh', () => {
  it('replicates to all peers, repairs a restarted one, and resolves conflicts the same everywhere', async () => {
    const { nodes, start } = await mesh(3);
    const [a, b, c] = [await start(0), await start(1), await start(2)];
    const members = Array.from({ length: 20 }, (_, i) => member(`m${i}.test`));
    for (const m of members.slice(0, 10)) await register(a, m);
    await until(
      () => b.directory.size('default') === 10 && c.directory.size('default') === 10,
      10_000,
      'push to b and c',
    );

    // c goes away; updates land on a and b meanwhile; c comes back with its old store.
    await c.close();
    services.delete(c);
    for (const m of members.slice(10, 15)) await register(a, m);
    for (const m of members.slice(15)) await register(b, m);
    const c2 = await start(2);
    await until(() => c2.directory.size('default') === 20, 10_000, 'anti-entropy to the restarted registry');
    await until(
      () => [a, b, c2].every((s) => JSON.stringify(s.store.vector()) === JSON.stringify(a.store.vector())),
      10_000,
      'equal version vectors',
    );

    // The same member updated on two registries at once: everyone keeps the same winner.
    const m0 = members[0]!;
    await Promise.all([register(a, m0, 111), register(b, m0, 222)]);
    await until(
      () => {
        const w = [a, b, c2].map(
          (s) =>
            (s.store.get('member', memberKey('default', m0.id))!.payload as { spare: { uplink_bps: number } })
              .spare.uplink_bps,
        );
        return w.every((x) => x === w[0]) && w[0] !== 1_000_000;
      },
      10_000,
      'one winner everywhere',
    );
    expect(nodes).toHaveLength(3);
  });

  it('refuses mesh messages from a registry that is not a configured peer', async () => {
    const { start } = await mesh(2);
    const a = await start(0);
    const stranger = member('evil.test');
    const sealed = sealRequest('evil.test', 'r0.test', 'push', { records: [] }, stranger.privateKey);
    const res = await fetch(a.url + MESH_PUSH_PATH, {
      method: 'POST',
      headers: sealed.headers,
      body: sealed.bytes,
    });
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('REG_ERR_UNKNOWN_SENDER');
  });
});
