// Assembles a registry from its config: key, store, directory index, mesh and listeners, and the
// routes that tie them together (what `dotslash registry -c FILE` runs).
import { randomBytes, type KeyObject } from 'node:crypto';
import { existsSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import {
  generateKeyPair,
  loadPrivateKey,
  parsePublicKey,
  writePrivateKey,
} from '../../rescue-protocol/keys.js';
import { resolveAdminToken } from '../admin/token.js';
import type { RegistryServiceConfig } from '../config/schema.js';
import { admitKey, Directory, memberKey } from './directory.js';
import { RegistryError } from './errors.js';
import { RegistryLedgers } from './ledger-routes.js';
import { Mesh } from './mesh.js';
import {
  admitSchema,
  DEREGISTER_PATH,
  deregisterSchema,
  DIRECTORY_PATH,
  directorySchema,
  LOOKUP_PATH,
  lookupSchema,
  MESH_PUSH_PATH,
  MESH_SYNC_PATH,
  meshPushSchema,
  meshSyncSchema,
  REGISTER_PATH,
  registrationSchema,
  ADMIT_PATH,
  REVOKE_PATH,
  STATUS_PATH,
  type RegistryEnvelope,
  type Registration,
} from './messages.js';
import type { RegistryRecord } from './records.js';
import { RegistryServer, type AdminRoute, type SignedRoute } from './server.js';
import { describeIssues } from './signed.js';
import { RegistryStore } from './store.js';

export interface RegistryServiceOptions {
  readonly logger?: Logger;
  /** Admin token (else env/file/generated as for the daemon). */
  readonly adminToken?: string;
  readonly env?: NodeJS.ProcessEnv;
  /** Wall clock (tests). */
  readonly now?: () => number;
  /** Extra signed routes and admin routes (the token ledger plugs in here). */
  readonly extraRoutes?: (svc: RegistryService) => Record<string, SignedRoute>;
  readonly extraAdminRoutes?: (
    svc: RegistryService,
  ) => Record<string, { method: 'GET' | 'POST'; run: AdminRoute }>;
}

/** Expired registrations are purged this often. */
const PURGE_MS = 1_000;
const MESH_MAX_BYTES = 64 * 1024 * 1024;

export class RegistryService {
  readonly config: RegistryServiceConfig;
  readonly store: RegistryStore;
  readonly directory: Directory;
  readonly mesh: Mesh;
  /** Token ledgers of the flood-insurance communities. */
  readonly ledgers: RegistryLedgers;
  readonly publicKey: string;
  readonly adminToken: string;
  readonly adminTokenGenerated: boolean;
  private readonly server: RegistryServer;
  private readonly privateKey: KeyObject;
  private readonly log: Logger | undefined;
  private readonly now: () => number;
  private purgeTimer: NodeJS.Timeout | null = null;
  private addrs: { api: AddressInfo; admin: AddressInfo } | null = null;
  private closing: Promise<void> | null = null;

  constructor(config: RegistryServiceConfig, opts: RegistryServiceOptions = {}) {
    this.config = config;
    this.log = opts.logger;
    this.now = opts.now ?? Date.now;
    if (!existsSync(config.key_file)) {
      writePrivateKey(config.key_file, generateKeyPair().privateKeyPem);
      this.log?.info({ key_file: config.key_file }, "created this registry's Ed25519 key");
    }
    const loaded = loadPrivateKey(config.key_file);
    this.privateKey = loaded.privateKey;
    this.publicKey = loaded.publicKey;
    const token = resolveAdminToken(
      { listen: config.admin.listen, token_env: config.admin.token_env, token_file: config.admin.token_file },
      { ...(opts.adminToken !== undefined && { explicit: opts.adminToken }), env: opts.env ?? process.env },
    );
    this.adminToken = token.token;
    this.adminTokenGenerated = token.source === 'generated';

    this.directory = new Directory(config.communities, this.now);
    this.store = RegistryStore.open(config.state_file, { self: config.id, now: this.now });
    this.store.defineKind('member', this.directory.memberKind);
    this.store.defineKind('admit', this.directory.admitKind);
    this.ledgers = new RegistryLedgers(config.communities, this.store, this.directory, this.log);
    this.store.defineKind('ledger', this.ledgers.kind);
    this.store.replay('admit');
    this.store.replay('member');
    this.store.replay('ledger');
    this.mesh = new Mesh({
      self: { id: config.id, privateKey: this.privateKey },
      peers: config.peers,
      store: this.store,
      antiEntropyMs: config.mesh.anti_entropy_ms,
      pushDelayMs: config.mesh.push_delay_ms,
      ...(this.log && { logger: this.log }),
    });
    this.server = new RegistryServer({
      id: config.id,
      privateKey: this.privateKey,
      listen: config.listen,
      adminListen: config.admin.listen,
      adminToken: this.adminToken,
      maxBodyBytes: config.max_body_bytes,
      routes: { ...this.routes(), ...this.ledgers.routes(this), ...opts.extraRoutes?.(this) },
      adminRoutes: { ...this.adminRoutes(), ...opts.extraAdminRoutes?.(this) },
      health: () => ({
        ok: true,
        id: config.id,
        public_key: this.publicKey,
        communities: this.directory.names(),
        v: 1,
      }),
      ...(this.log && { logger: this.log }),
    });
  }

  get addresses(): { api: AddressInfo; admin: AddressInfo } | null {
    return this.addrs;
  }

  get url(): string {
    if (!this.addrs) throw new Error('registry not listening');
    return `http://${this.addrs.api.address}:${this.addrs.api.port}`;
  }

  get adminUrl(): string {
    if (!this.addrs) throw new Error('registry not listening');
    return `http://${this.addrs.admin.address}:${this.addrs.admin.port}`;
  }

  async start(): Promise<{ api: AddressInfo; admin: AddressInfo }> {
    this.addrs = await this.server.listen();
    this.mesh.start();
    this.purgeTimer = setInterval(() => this.purge(), PURGE_MS);
    this.purgeTimer.unref();
    this.log?.info(
      {
        id: this.config.id,
        api: `${this.addrs.api.address}:${this.addrs.api.port}`,
        admin: `${this.addrs.admin.address}:${this.addrs.admin.port}`,
        peers: this.config.peers.map((p) => p.id),
        communities: this.directory.names(),
        members: this.store.count('member'),
      },
      'registry started',
    );
    return this.addrs;
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      if (this.purgeTimer) clearInterval(this.purgeTimer);
      await this.mesh.close();
      await this.server.close();
      this.store.close();
    })();
    return this.closing;
  }

  /** A local update: stored durably, then forwarded to the mesh. */
  update(
    kind: string,
    key: string,
    payload: unknown,
    opts: { expiresAt?: number | null; deleted?: boolean } = {},
  ): RegistryRecord {
    const rec = this.store.local(kind, key, payload, opts);
    this.mesh.forward(rec);
    return rec;
  }

  /** The live member signing a request in `community`, or REG_ERR_UNKNOWN_SENDER. */
  memberKey(community: string, id: string): KeyObject {
    const reg = this.directory.live(community, id);
    if (!reg)
      throw new RegistryError('REG_ERR_UNKNOWN_SENDER', `${id} has no live registration in ${community}`);
    return this.keyObject(reg.public_key);
  }

  /** Member (community/id) -> the session key this registry gave it, and the key it registered with. */
  private readonly sessionKeys = new Map<string, { key: Buffer; publicKey: string }>();

  /** The live member's session key (a lapsed or re-keyed registration has none). */
  sessionKey(community: string, id: string): Buffer | undefined {
    const reg = this.directory.live(community, id);
    const s = this.sessionKeys.get(memberKey(community, id));
    return reg && s && s.publicKey === reg.public_key ? s.key : undefined;
  }

  /** Parsed keys by text: parsing costs more than the lookup it authenticates. */
  private readonly keys = new Map<string, KeyObject>();
  private keyObject(text: string): KeyObject {
    let key = this.keys.get(text);
    if (!key) {
      key = parsePublicKey(text);
      if (this.keys.size >= 100_000) this.keys.clear(); // bounded; refilled on demand
      this.keys.set(text, key);
    }
    return key;
  }

  private purge(): void {
    try {
      const gone = this.store.purgeExpired();
      if (gone.length > 0) this.log?.debug({ count: gone.length }, 'expired registrations purged');
    } catch (err) {
      this.log?.error({ err }, 'purging expired registrations failed');
    }
  }

  private routes(): Record<string, SignedRoute> {
    const communityTo = (t: string): boolean => this.directory.has(t);
    const meshKey = (env: RegistryEnvelope): KeyObject => {
      const peer = this.mesh.peers.get(env.from);
      if (!peer) throw new RegistryError('REG_ERR_UNKNOWN_SENDER', `${env.from} is not a peer registry`);
      return peer.key;
    };
    const parse = <T>(
      schema: {
        safeParse(
          v: unknown,
        ):
          | { success: true; data: T }
          | { success: false; error: { issues: { path: PropertyKey[]; message: string }[] } };
      },
      v: unknown,
    ): T => {
      const r = schema.safeParse(v);
      if (!r.success) throw new RegistryError('REG_ERR_BAD_REQUEST', describeIssues(r.error.issues));
      return r.data;
    };
    return {
      [REGISTER_PATH]: {
        type: 'register',
        to: communityTo,
        // Registration carries its own key: the signature proves the sender holds it.
        keyOf: (env) => {
          const reg = parse(registrationSchema, env.body);
          if (reg.id !== env.from)
            throw new RegistryError(
              'REG_ERR_BAD_REQUEST',
              `id ${reg.id} differs from the sender ${env.from}`,
            );
          if (reg.community !== env.to)
            throw new RegistryError(
              'REG_ERR_BAD_REQUEST',
              `community ${reg.community} differs from "to" ${env.to}`,
            );
          return this.keyObject(reg.public_key);
        },
        handle: (env) => this.register(env.body as Registration),
      },
      [DEREGISTER_PATH]: {
        type: 'deregister',
        to: communityTo,
        keyOf: (env) => this.memberKey(env.to, env.from),
        handle: (env) => {
          const d = parse(deregisterSchema, env.body);
          if (d.id !== env.from || d.community !== env.to)
            throw new RegistryError(
              'REG_ERR_BAD_REQUEST',
              'a member deregisters only itself, in the community it signs for',
            );
          this.update('member', memberKey(d.community, d.id), d, {
            deleted: true,
            // The tombstone outlives any registration it overrides, then goes.
            expiresAt: this.now() + this.config.lease.max_ms,
          });
          return { deregistered: true };
        },
      },
      [LOOKUP_PATH]: {
        type: 'lookup',
        to: communityTo,
        keyOf: (env) => this.memberKey(env.to, env.from),
        macKeyOf: (env) => this.sessionKey(env.to, env.from),
        handle: (env) => {
          const q = parse(lookupSchema, env.body);
          if (q.community !== env.to || q.origin !== env.from)
            throw new RegistryError(
              'REG_ERR_BAD_REQUEST',
              'a member looks up for itself, in the community it signs for',
            );
          return { candidates: this.directory.lookup(q) };
        },
      },
      [DIRECTORY_PATH]: {
        type: 'directory',
        to: communityTo,
        keyOf: (env) => this.memberKey(env.to, env.from),
        macKeyOf: (env) => this.sessionKey(env.to, env.from),
        handle: (env) => {
          const d = parse(directorySchema, env.body);
          if (d.community !== env.to)
            throw new RegistryError('REG_ERR_BAD_REQUEST', 'community differs from "to"');
          return { members: this.directory.directory(d.community) };
        },
      },
      [MESH_PUSH_PATH]: {
        type: 'push',
        maxBytes: MESH_MAX_BYTES,
        to: (t) => t === this.config.id,
        keyOf: meshKey,
        handle: (env) => {
          const { records } = parse(meshPushSchema, env.body);
          const { won, dropped } = this.store.merge(records as RegistryRecord[]);
          if (dropped > 0) this.log?.warn({ peer: env.from, dropped }, 'mesh push: invalid records dropped');
          return { accepted: won.length, dropped };
        },
      },
      [MESH_SYNC_PATH]: {
        type: 'sync',
        maxBytes: MESH_MAX_BYTES,
        to: (t) => t === this.config.id,
        keyOf: meshKey,
        handle: (env) => {
          const { vector } = parse(meshSyncSchema, env.body);
          return { records: this.store.missing(vector), vector: this.store.vector() };
        },
      },
    };
  }

  private register(reg: Registration): unknown {
    const { min_ms, max_ms } = this.config.lease;
    if (reg.lease_ms < min_ms || reg.lease_ms > max_ms)
      throw new RegistryError('REG_ERR_BAD_LEASE', `${reg.lease_ms} ms (allowed ${min_ms}-${max_ms} ms)`);
    if (!this.directory.isAdmitted(reg.community, reg.public_key))
      throw new RegistryError('REG_ERR_NOT_ADMITTED', `${reg.id} (${reg.public_key}) in ${reg.community}`);
    const live = this.directory.live(reg.community, reg.id);
    if (live && live.public_key !== reg.public_key)
      throw new RegistryError('REG_ERR_KEY_MISMATCH', `${reg.id} until its lease lapses`);
    const expiresAt = this.now() + reg.lease_ms;
    const key = memberKey(reg.community, reg.id);
    this.update('member', key, reg, { expiresAt });
    // This registry's session key for the member's lookups (kept in memory only: a restarted
    // registry answers REG_ERR_UNKNOWN_SENDER and the member registers again for a new one).
    let session = this.sessionKeys.get(key);
    if (!session || session.publicKey !== reg.public_key) {
      session = { key: randomBytes(32), publicKey: reg.public_key };
      this.sessionKeys.set(key, session);
    }
    return {
      registered: true,
      registry: this.config.id,
      lease_ms: reg.lease_ms,
      expires_at: expiresAt,
      session_key: session.key.toString('base64url'),
    };
  }

  private adminRoutes(): Record<string, { method: 'GET' | 'POST'; run: AdminRoute }> {
    const admit = (admitted: boolean) => (body: unknown) => {
      const r = admitSchema.safeParse(body);
      if (!r.success) throw new RegistryError('REG_ERR_BAD_REQUEST', describeIssues(r.error.issues));
      const { community, public_key } = r.data;
      const type = this.directory.typeOf(community);
      if (type === undefined) throw new RegistryError('REG_ERR_UNKNOWN_COMMUNITY', JSON.stringify(community));
      if (type === 'open')
        throw new RegistryError('REG_ERR_BAD_REQUEST', `community ${community} is open: anyone may register`);
      parsePublicKey(public_key);
      this.update('admit', admitKey(community, public_key), { community, public_key, admitted });
      this.log?.info({ community, public_key, admitted }, admitted ? 'key admitted' : 'key revoked');
      return { community, public_key, admitted };
    };
    return {
      [ADMIT_PATH]: { method: 'POST', run: admit(true) },
      [REVOKE_PATH]: { method: 'POST', run: admit(false) },
      [STATUS_PATH]: {
        method: 'GET',
        run: () => ({
          id: this.config.id,
          public_key: this.publicKey,
          vector: this.store.vector(),
          communities: this.directory.names().map((name) => ({
            name,
            type: this.directory.typeOf(name),
            members: this.directory.directory(name).length,
          })),
          records: { member: this.store.count('member'), admit: this.store.count('admit') },
          peers: Object.fromEntries(this.mesh.health),
        }),
      },
    };
  }
}
