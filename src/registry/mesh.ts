// The registry mesh (mSLP, RFC 3528): new local updates are pushed to every peer at once
// (batched for push_delay_ms), and every anti_entropy_ms each peer is asked for what our version
// vector lacks, so a peer that was down or partitioned catches up. Messages are signed both ways.
import type { KeyObject } from 'node:crypto';
import type { Logger } from 'pino';
import { SENDER_HEADER } from '../../rescue-protocol/envelope.js';
import { parsePublicKey } from '../../rescue-protocol/keys.js';
import { RegistryError } from './errors.js';
import { MESH_PUSH_PATH, MESH_SYNC_PATH, meshSyncReplySchema, WANT_SIGNED_HEADER } from './messages.js';
import type { RegistryRecord } from './records.js';
import { sealRequest, signedBy, parseJson, describeIssues } from './signed.js';
import type { RegistryStore } from './store.js';

export interface MeshPeer {
  readonly id: string;
  readonly url: string;
  readonly key: KeyObject;
}

export interface MeshOptions {
  readonly self: { id: string; privateKey: KeyObject };
  readonly peers: readonly { id: string; url: string; public_key: string }[];
  readonly store: RegistryStore;
  readonly antiEntropyMs: number;
  readonly pushDelayMs: number;
  readonly logger?: Logger;
  /** Per-request timeout to a peer. */
  readonly timeoutMs?: number;
}

/** Largest push batch; a backlog is sent as several. */
const PUSH_BATCH = 1_000;
/** Sync answers carry a whole store's worth of records at worst. */
const MAX_REPLY_BYTES = 256 * 1024 * 1024;

export class Mesh {
  readonly peers: ReadonlyMap<string, MeshPeer>;
  private readonly opts: MeshOptions;
  private queue: RegistryRecord[] = [];
  private pushTimer: NodeJS.Timeout | null = null;
  private syncTimer: NodeJS.Timeout | null = null;
  private closed = false;
  /** Peer id -> last successful exchange (wall ms) and last error, for /v1/admin/status. */
  readonly health = new Map<string, { ok_at: number | null; error: string | null }>();
  private readonly inflight = new Set<Promise<unknown>>();
  private syncing = false;
  private readonly chains = new Map<string, Promise<void>>();

  constructor(opts: MeshOptions) {
    this.opts = opts;
    const peers = new Map<string, MeshPeer>();
    for (const p of opts.peers) {
      peers.set(p.id, { id: p.id, url: p.url.replace(/\/+$/, ''), key: parsePublicKey(p.public_key) });
      this.health.set(p.id, { ok_at: null, error: null });
    }
    this.peers = peers;
  }

  start(): void {
    if (this.peers.size === 0 || this.syncTimer) return;
    this.syncTimer = setInterval(() => void this.syncAll(), this.opts.antiEntropyMs);
    this.syncTimer.unref();
    void this.syncAll(); // catch up at once after a restart
  }

  /** A local update: forward it to every peer soon. */
  forward(rec: RegistryRecord): void {
    if (this.peers.size === 0 || this.closed) return;
    this.queue.push(rec);
    this.pushTimer ??= setTimeout(() => this.flush(), this.opts.pushDelayMs);
  }

  /** One anti-entropy round with every peer (also what tests and the bench call). */
  async syncAll(): Promise<void> {
    if (this.syncing || this.closed) return;
    this.syncing = true;
    try {
      await Promise.all([...this.peers.values()].map((p) => this.track(this.syncWith(p))));
    } finally {
      this.syncing = false;
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.syncTimer) clearInterval(this.syncTimer);
    if (this.pushTimer) clearTimeout(this.pushTimer);
    this.flush(); // hand over what is queued; anti-entropy covers a peer that misses it
    await Promise.allSettled([...this.inflight]);
  }

  private flush(): void {
    this.pushTimer = null;
    const batch = this.queue;
    this.queue = [];
    for (let i = 0; i < batch.length; i += PUSH_BATCH) {
      const records = batch.slice(i, i + PUSH_BATCH);
      for (const peer of this.peers.values()) {
        // One push at a time per peer, in counter order, so its vector advances without gaps.
        const next = (this.chains.get(peer.id) ?? Promise.resolve()).then(() =>
          this.post(peer, MESH_PUSH_PATH, 'push', { records }).then(
            () => this.ok(peer),
            (err: unknown) => this.failed(peer, 'push', err),
          ),
        );
        this.chains.set(peer.id, next);
        void this.track(next);
      }
    }
  }

  private async syncWith(peer: MeshPeer): Promise<void> {
    try {
      const reply = await this.post(peer, MESH_SYNC_PATH, 'sync', { vector: this.opts.store.vector() });
      const parsed = meshSyncReplySchema.safeParse(reply);
      if (!parsed.success) throw new RegistryError('REG_ERR_BAD_REPLY', describeIssues(parsed.error.issues));
      const { won, dropped } = this.opts.store.merge(
        parsed.data.records as RegistryRecord[],
        parsed.data.vector,
      );
      if (won.length > 0 || dropped > 0)
        this.opts.logger?.debug({ peer: peer.id, won: won.length, dropped }, 'anti-entropy pulled updates');
      this.ok(peer);
    } catch (err) {
      this.failed(peer, 'sync', err);
    }
  }

  /** Signed POST; the answer must be signed by the same peer. Returns the parsed JSON body. */
  private async post(peer: MeshPeer, path: string, type: 'push' | 'sync', body: unknown): Promise<unknown> {
    const { id, privateKey } = this.opts.self;
    const sealed = sealRequest(id, peer.id, type, body, privateKey);
    let res: Response;
    try {
      res = await fetch(peer.url + path, {
        method: 'POST',
        headers: { ...sealed.headers, [WANT_SIGNED_HEADER]: '1' },
        body: sealed.bytes,
        signal: AbortSignal.timeout(this.opts.timeoutMs ?? 10_000),
      });
    } catch (err) {
      throw new RegistryError('REG_ERR_UNREACHABLE', `${peer.id} (${peer.url}): ${(err as Error).message}`, {
        cause: err,
      });
    }
    const bytes = Buffer.from(await res.arrayBuffer());
    if (bytes.length > MAX_REPLY_BYTES)
      throw new RegistryError('REG_ERR_BAD_REPLY', `${peer.id}: reply too large`);
    const headers = Object.fromEntries(res.headers);
    if (!res.ok) {
      const e = (parseJsonQuiet(bytes) as { error?: { code?: string; message?: string } } | null)?.error;
      throw new RegistryError(
        'REG_ERR_REMOTE',
        `${peer.id}: ${res.status} ${e?.code ?? ''} ${e?.message ?? ''}`,
      );
    }
    if (headers[SENDER_HEADER] !== peer.id || !signedBy(bytes, headers, peer.key))
      throw new RegistryError('REG_ERR_BAD_REPLY', `${peer.id}: reply not signed by the peer`);
    const answer = parseJson(bytes) as { re?: unknown } | null;
    if (answer?.re !== sealed.nonce)
      throw new RegistryError('REG_ERR_BAD_REPLY', `${peer.id}: reply not bound to the request`);
    return answer;
  }

  private ok(peer: MeshPeer): void {
    this.health.set(peer.id, { ok_at: Date.now(), error: null });
  }

  private failed(peer: MeshPeer, what: string, err: unknown): void {
    const msg = err instanceof Error ? err.message : String(err);
    const prev = this.health.get(peer.id);
    if (prev?.error !== msg) this.opts.logger?.warn({ peer: peer.id, err: msg }, `mesh ${what} failed`);
    this.health.set(peer.id, { ok_at: prev?.ok_at ?? null, error: msg });
  }

  private track<T>(p: Promise<T>): Promise<T> {
    this.inflight.add(p);
    void p.finally(() => this.inflight.delete(p)).catch(() => undefined);
    return p;
  }
}

function parseJsonQuiet(bytes: Buffer): unknown {
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch {
    return null;
  }
}
