// The registry's durable store: SQLite (WAL) for the records and the version vector, and the
// whole record set in memory (reads never touch SQLite). Every update is one transaction:
// the record and the vector entry that counts it are written together or not at all.
import { chmodSync, existsSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { RegistryError } from './errors.js';
import { newer, type RecordKind, type RegistryRecord, type VersionVector } from './records.js';

/** "DSRG": marks the file as a registry store, so a daemon state file is refused. */
const APPLICATION_ID = 0x44535247;

const MIGRATIONS: readonly string[] = [
  `CREATE TABLE records (
     kind       TEXT NOT NULL,
     key        TEXT NOT NULL,
     origin     TEXT NOT NULL,
     counter    INTEGER NOT NULL,
     ts         INTEGER NOT NULL,
     expires_at INTEGER,
     deleted    INTEGER NOT NULL,
     payload    TEXT NOT NULL,
     PRIMARY KEY (kind, key)
   );
   CREATE INDEX records_origin ON records (origin, counter);
   CREATE TABLE vector (origin TEXT PRIMARY KEY, counter INTEGER NOT NULL);`,
];

type Row = Omit<RegistryRecord, 'deleted' | 'payload'> & { deleted: number; payload: string };

export interface StoreOptions {
  /** This registry's id: the origin of local updates. */
  readonly self: string;
  /** Wall clock, epoch ms (tests). */
  readonly now?: () => number;
}

export class RegistryStore {
  readonly self: string;
  private readonly db: Database.Database;
  private readonly now: () => number;
  /** kind -> key -> winning record (tombstones included, so an old update cannot resurrect a key). */
  private readonly records = new Map<string, Map<string, RegistryRecord>>();
  private readonly vec = new Map<string, number>();
  private readonly kinds = new Map<string, RecordKind>();
  private lastTs = 0;
  private readonly upsert: Database.Statement;
  private readonly remove: Database.Statement;
  private readonly setVec: Database.Statement;

  private constructor(db: Database.Database, opts: StoreOptions) {
    this.db = db;
    this.self = opts.self;
    this.now = opts.now ?? Date.now;
    this.upsert = db.prepare(
      `INSERT INTO records (kind, key, origin, counter, ts, expires_at, deleted, payload)
       VALUES (@kind, @key, @origin, @counter, @ts, @expires_at, @deleted, @payload)
       ON CONFLICT (kind, key) DO UPDATE SET origin = excluded.origin, counter = excluded.counter,
         ts = excluded.ts, expires_at = excluded.expires_at, deleted = excluded.deleted, payload = excluded.payload`,
    );
    this.remove = db.prepare('DELETE FROM records WHERE kind = ? AND key = ? AND origin = ? AND counter = ?');
    this.setVec = db.prepare(
      'INSERT INTO vector (origin, counter) VALUES (?, ?) ON CONFLICT (origin) DO UPDATE SET counter = excluded.counter',
    );
    for (const r of db.prepare('SELECT * FROM records').all() as Row[]) {
      const rec: RegistryRecord = {
        ...r,
        deleted: r.deleted === 1,
        payload: JSON.parse(r.payload) as unknown,
      };
      this.mapOf(rec.kind).set(rec.key, rec);
      if (rec.origin === this.self) this.lastTs = Math.max(this.lastTs, rec.ts);
    }
    for (const v of db.prepare('SELECT origin, counter FROM vector').all() as {
      origin: string;
      counter: number;
    }[])
      this.vec.set(v.origin, v.counter);
  }

  /**
   * Opens (or creates: parent 0700, file 0600) the store. ":memory:" gives a throwaway one.
   * REG_ERR_STORE when the file is not SQLite, is another program's database, or is newer.
   */
  static open(file: string, opts: StoreOptions): RegistryStore {
    const memory = file === ':memory:';
    const created = !memory && !existsSync(file);
    let db: Database.Database;
    try {
      if (!memory) mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
      db = new Database(file);
    } catch (err) {
      throw new RegistryError('REG_ERR_STORE', `${file}: ${(err as Error).message}`, { cause: err });
    }
    try {
      if (created) chmodSync(file, 0o600);
      if (!memory) db.pragma('journal_mode = WAL');
      // NORMAL in WAL mode: a committed transaction survives a process crash (kill -9); only an
      // OS crash may lose the last ones, which the mesh then restores from peers.
      db.pragma('synchronous = NORMAL');
      migrate(db, file);
      return new RegistryStore(db, opts);
    } catch (err) {
      db.close();
      if (err instanceof RegistryError) throw err;
      throw new RegistryError('REG_ERR_STORE', `${file}: ${(err as Error).message}`, { cause: err });
    }
  }

  /** Registers a kind's validation and apply hooks (member, admit, the ledger's kinds). */
  defineKind(kind: string, rules: RecordKind): void {
    this.kinds.set(kind, rules);
  }

  /** Replays the applied() hook for every stored record of `kind` (building indexes at start). */
  replay(kind: string): void {
    const rules = this.kinds.get(kind);
    for (const rec of this.records.get(kind)?.values() ?? []) rules?.applied?.(rec);
  }

  /** The version vector, keys sorted (equal vectors serialise equally). */
  vector(): VersionVector {
    return Object.fromEntries([...this.vec].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  }

  get(kind: string, key: string): RegistryRecord | undefined {
    return this.records.get(kind)?.get(key);
  }

  all(kind: string): IterableIterator<RegistryRecord> {
    return this.mapOf(kind).values();
  }

  count(kind: string): number {
    return this.records.get(kind)?.size ?? 0;
  }

  /** A new update accepted by this registry: counted, stored durably, applied. */
  local(
    kind: string,
    key: string,
    payload: unknown,
    opts: { expiresAt?: number | null; deleted?: boolean } = {},
  ): RegistryRecord {
    // Strictly increasing local timestamps, so our own later write always wins over our earlier one.
    const ts = Math.max(this.now(), this.lastTs + 1);
    this.lastTs = ts;
    const rec: RegistryRecord = {
      kind,
      key,
      origin: this.self,
      counter: (this.vec.get(this.self) ?? 0) + 1,
      ts,
      expires_at: opts.expiresAt ?? null,
      deleted: opts.deleted ?? false,
      payload,
    };
    this.kinds.get(kind)?.validate(rec);
    this.db.transaction(() => {
      this.write(rec);
      this.setVec.run(this.self, rec.counter);
    })();
    this.vec.set(this.self, rec.counter);
    this.install(rec);
    return rec;
  }

  /**
   * Updates from a peer (push or sync). Each is validated by its kind (unknown kinds are kept:
   * a newer registry may know them) and stored if it wins. The vector advances for a contiguous
   * counter only; `upTo` (a sync answer's vector, which covers all it sent) advances it further.
   * Returns the records that won (to forward on).
   */
  merge(recs: readonly RegistryRecord[], upTo?: VersionVector): { won: RegistryRecord[]; dropped: number } {
    const won: RegistryRecord[] = [];
    let dropped = 0;
    const now = this.now();
    this.db.transaction(() => {
      for (const rec of recs) {
        try {
          this.kinds.get(rec.kind)?.validate(rec);
        } catch {
          dropped++;
          continue;
        }
        const cur = this.get(rec.kind, rec.key);
        const live = rec.expires_at === null || rec.expires_at > now;
        if ((cur === undefined || newer(rec, cur)) && live) {
          this.write(rec);
          won.push(rec);
        }
        const v = this.vec.get(rec.origin) ?? 0;
        if (rec.counter === v + 1) {
          this.vec.set(rec.origin, rec.counter);
          this.setVec.run(rec.origin, rec.counter);
        }
      }
      for (const [origin, counter] of Object.entries(upTo ?? {})) {
        if (origin === this.self) continue; // we are the authority on our own counter
        if (counter > (this.vec.get(origin) ?? 0)) {
          this.vec.set(origin, counter);
          this.setVec.run(origin, counter);
        }
      }
    })();
    for (const rec of won) this.install(rec);
    return { won, dropped };
  }

  /** Every stored record a peer with vector `theirs` lacks (the pull of anti-entropy). */
  missing(theirs: VersionVector): RegistryRecord[] {
    const out: RegistryRecord[] = [];
    for (const m of this.records.values())
      for (const rec of m.values()) if (rec.counter > (theirs[rec.origin] ?? 0)) out.push(rec);
    return out.sort((a, b) => (a.origin < b.origin ? -1 : a.origin > b.origin ? 1 : a.counter - b.counter));
  }

  /** True when we hold updates a peer with vector `theirs` has not seen (or the other way round). */
  static differs(a: VersionVector, b: VersionVector): boolean {
    for (const k of new Set([...Object.keys(a), ...Object.keys(b)]))
      if ((a[k] ?? 0) !== (b[k] ?? 0)) return true;
    return false;
  }

  /** Drops records whose lease lapsed on this registry's clock (not replicated: every registry does it). */
  purgeExpired(): RegistryRecord[] {
    const now = this.now();
    const gone: RegistryRecord[] = [];
    for (const m of this.records.values())
      for (const rec of m.values()) if (rec.expires_at !== null && rec.expires_at <= now) gone.push(rec);
    if (gone.length === 0) return gone;
    this.db.transaction(() => {
      for (const rec of gone) this.remove.run(rec.kind, rec.key, rec.origin, rec.counter);
    })();
    for (const rec of gone) {
      this.records.get(rec.kind)?.delete(rec.key);
      this.kinds.get(rec.kind)?.expired?.(rec);
    }
    return gone;
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  private write(rec: RegistryRecord): void {
    this.upsert.run({ ...rec, deleted: rec.deleted ? 1 : 0, payload: JSON.stringify(rec.payload) });
  }

  private install(rec: RegistryRecord): void {
    this.mapOf(rec.kind).set(rec.key, rec);
    this.kinds.get(rec.kind)?.applied?.(rec);
  }

  private mapOf(kind: string): Map<string, RegistryRecord> {
    let m = this.records.get(kind);
    if (!m) this.records.set(kind, (m = new Map()));
    return m;
  }
}

function migrate(db: Database.Database, file: string): void {
  const appId = db.pragma('application_id', { simple: true }) as number;
  const version = db.pragma('user_version', { simple: true }) as number;
  const empty =
    (db.prepare("SELECT count(*) AS n FROM sqlite_master WHERE type = 'table'").get() as { n: number }).n ===
    0;
  if (appId !== APPLICATION_ID && !(appId === 0 && empty))
    throw new RegistryError('REG_ERR_STORE', `${file} is not a DotSlash registry store`);
  if (version > MIGRATIONS.length)
    throw new RegistryError('REG_ERR_STORE', `${file} was written by a newer DotSlash (schema ${version})`);
  db.transaction(() => {
    for (let v = version; v < MIGRATIONS.length; v++) db.exec(MIGRATIONS[v]!);
    db.pragma(`application_id = ${APPLICATION_ID}`);
    db.pragma(`user_version = ${MIGRATIONS.length}`);
  })();
}
