// The daemon's SQLite state file (better-sqlite3, WAL): rescue sessions, their transition history,
// and the virtual-host counter whose numbers are never reused (issue 3, DESIGN.md "Rescue protocol").
import { chmodSync, existsSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { StorageError } from './errors.js';

/** "DSLH": marks the file as ours, so a foreign SQLite file is refused instead of being migrated. */
export const APPLICATION_ID = 0x44534c48;

/** Migrations by PRAGMA user_version: entry i takes the schema from version i to i + 1. Append only. */
const MIGRATIONS: readonly string[] = [
  `CREATE TABLE sessions (
     key        INTEGER PRIMARY KEY AUTOINCREMENT,
     id         TEXT,
     role       TEXT NOT NULL CHECK (role IN ('origin', 'rescuer')),
     peer       TEXT NOT NULL,
     vhost      TEXT,
     vhost_url  TEXT,
     rate       REAL NOT NULL DEFAULT 0,
     lease_ms   INTEGER NOT NULL,
     state      TEXT NOT NULL,
     opened_at  INTEGER NOT NULL,
     closed_at  INTEGER,
     reason     TEXT,
     usage      TEXT,
     token      TEXT
   );
   CREATE INDEX sessions_open ON sessions (closed_at);
   CREATE TABLE session_events (
     seq        INTEGER PRIMARY KEY AUTOINCREMENT,
     key        INTEGER NOT NULL REFERENCES sessions (key),
     at         INTEGER NOT NULL,
     from_state TEXT,
     to_state   TEXT NOT NULL,
     reason     TEXT NOT NULL
   );
   CREATE INDEX session_events_key ON session_events (key);
   CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
   INSERT INTO counters (name, value) VALUES ('next_vhost_n', 1);`,
];
export const SCHEMA_VERSION = MIGRATIONS.length;

export type SessionRole = 'origin' | 'rescuer';

export interface SessionRow {
  /** Local row key (the protocol id is known only once the rescuer accepts). */
  readonly key: number;
  /** Protocol session id (the rescuer's), null while an SOS is pending. */
  readonly id: string | null;
  readonly role: SessionRole;
  /** The other party's member id. */
  readonly peer: string;
  readonly vhost: string | null;
  readonly vhost_url: string | null;
  readonly rate: number;
  readonly lease_ms: number;
  readonly state: string;
  /** Wall-clock epoch ms. */
  readonly opened_at: number;
  readonly closed_at: number | null;
  readonly reason: string | null;
  readonly usage: unknown;
  readonly token: string | null;
}

export interface SessionEvent {
  readonly key: number;
  readonly at: number;
  readonly from_state: string | null;
  readonly to_state: string;
  readonly reason: string;
}

export interface NewSession {
  readonly id?: string | null;
  readonly role: SessionRole;
  readonly peer: string;
  readonly vhost?: string | null;
  readonly vhost_url?: string | null;
  readonly rate?: number;
  readonly lease_ms: number;
  readonly state: string;
  readonly reason: string;
  /** Wall-clock epoch ms. */
  readonly at: number;
}

export type SessionPatch = Partial<{
  id: string | null;
  vhost: string | null;
  vhost_url: string | null;
  rate: number;
  lease_ms: number;
  usage: unknown;
  token: string | null;
}>;

type RawRow = Omit<SessionRow, 'usage'> & { usage: string | null };
const PATCHABLE = new Set(['id', 'vhost', 'vhost_url', 'rate', 'lease_ms', 'usage', 'token']);

/**
 * One open state file. Synchronous (better-sqlite3): every call is a short local transaction, so
 * the controller's tick never interleaves with a half-written session.
 */
export class StateDb {
  readonly file: string;
  private readonly db: Database.Database;

  private constructor(file: string, db: Database.Database) {
    this.file = file;
    this.db = db;
  }

  /**
   * Opens (or creates: parent directories 0700, file 0600) the state file and migrates it.
   * ":memory:" gives a throwaway database (tests). Throws StorageError STO_ERR_NOT_A_DOTSLASH_DB
   * for a file that is not SQLite or is another program's database, STO_ERR_NEWER_SCHEMA, STO_ERR_OPEN.
   */
  static open(file: string): StateDb {
    const memory = file === ':memory:';
    const created = !memory && !existsSync(file);
    let db: Database.Database;
    try {
      if (!memory) mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
      db = new Database(file);
    } catch (err) {
      throw new StorageError('STO_ERR_OPEN', `${file}: ${(err as Error).message}`, { cause: err });
    }
    try {
      if (created) chmodSync(file, 0o600);
      migrate(db, file);
      if (!memory) db.pragma('journal_mode = WAL');
      db.pragma('synchronous = NORMAL');
      db.pragma('foreign_keys = ON');
    } catch (err) {
      db.close();
      if (err instanceof StorageError) throw err;
      const code = (err as { code?: string }).code;
      if (code === 'SQLITE_NOTADB' || code === 'SQLITE_CORRUPT')
        throw new StorageError('STO_ERR_NOT_A_DOTSLASH_DB', `${file}: not an SQLite database`, {
          cause: err,
        });
      throw new StorageError('STO_ERR_OPEN', `${file}: ${(err as Error).message}`, { cause: err });
    }
    return new StateDb(file, db);
  }

  /** Takes the next virtual host number; persisted before it is returned, so never handed out twice. */
  nextVhostN(): number {
    const row = this.db
      .prepare("UPDATE counters SET value = value + 1 WHERE name = 'next_vhost_n' RETURNING value - 1 AS n")
      .get() as { n: number };
    return row.n;
  }

  /** The number nextVhostN() would return (no side effect). */
  peekVhostN(): number {
    return (
      this.db.prepare("SELECT value FROM counters WHERE name = 'next_vhost_n'").get() as { value: number }
    ).value;
  }

  /** Inserts a session and its first history event (null -> state); returns its row key. */
  insertSession(s: NewSession): number {
    return this.db.transaction(() => {
      const info = this.db
        .prepare(
          `INSERT INTO sessions (id, role, peer, vhost, vhost_url, rate, lease_ms, state, opened_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        )
        .run(
          s.id ?? null,
          s.role,
          s.peer,
          s.vhost ?? null,
          s.vhost_url ?? null,
          s.rate ?? 0,
          s.lease_ms,
          s.state,
          s.at,
        );
      const key = Number(info.lastInsertRowid);
      this.db
        .prepare(
          'INSERT INTO session_events (key, at, from_state, to_state, reason) VALUES (?, ?, NULL, ?, ?)',
        )
        .run(key, s.at, s.state, s.reason);
      return key;
    })();
  }

  /** Records a state change and its reason; a change to `closed` also sets closed_at and reason. */
  transition(key: number, from: string, to: string, reason: string, at: number): void {
    this.db.transaction(() => {
      const info =
        to === 'closed'
          ? this.db
              .prepare('UPDATE sessions SET state = ?, closed_at = ?, reason = ? WHERE key = ?')
              .run(to, at, reason, key)
          : this.db.prepare('UPDATE sessions SET state = ? WHERE key = ?').run(to, key);
      if (info.changes === 0) throw new StorageError('STO_ERR_UNKNOWN_SESSION', `key ${key}`);
      this.db
        .prepare('INSERT INTO session_events (key, at, from_state, to_state, reason) VALUES (?, ?, ?, ?, ?)')
        .run(key, at, from, to, reason);
    })();
  }

  updateSession(key: number, patch: SessionPatch): void {
    const cols = Object.keys(patch).filter((k) => PATCHABLE.has(k));
    if (cols.length === 0) return;
    const values = cols.map((c) => {
      const v = (patch as Record<string, unknown>)[c];
      return c === 'usage' ? (v === undefined || v === null ? null : JSON.stringify(v)) : (v ?? null);
    });
    const info = this.db
      .prepare(`UPDATE sessions SET ${cols.map((c) => `${c} = ?`).join(', ')} WHERE key = ?`)
      .run(...values, key);
    if (info.changes === 0) throw new StorageError('STO_ERR_UNKNOWN_SESSION', `key ${key}`);
  }

  session(key: number): SessionRow | undefined {
    const row = this.db.prepare('SELECT * FROM sessions WHERE key = ?').get(key) as RawRow | undefined;
    return row && decode(row);
  }

  /** Sessions, oldest first; `open` = not closed. */
  sessions(opts: { open?: boolean; role?: SessionRole } = {}): SessionRow[] {
    const where: string[] = [];
    const args: unknown[] = [];
    if (opts.open === true) where.push('closed_at IS NULL');
    if (opts.open === false) where.push('closed_at IS NOT NULL');
    if (opts.role) {
      where.push('role = ?');
      args.push(opts.role);
    }
    const sql = `SELECT * FROM sessions ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY key`;
    return (this.db.prepare(sql).all(...args) as RawRow[]).map(decode);
  }

  /** A session's transitions, oldest first. */
  history(key: number): SessionEvent[] {
    return this.db
      .prepare('SELECT key, at, from_state, to_state, reason FROM session_events WHERE key = ? ORDER BY seq')
      .all(key) as SessionEvent[];
  }

  /**
   * At start-up: sessions a previous run left open cannot be trusted (their leases ran on a
   * clock that stopped), so they are closed with `reason`. Returns how many.
   */
  closeOpenSessions(reason: string, at: number): number {
    const open = this.sessions({ open: true });
    for (const s of open) this.transition(s.key, s.state, 'closed', reason, at);
    return open.length;
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}

function decode(row: RawRow): SessionRow {
  return { ...row, usage: row.usage === null ? null : (JSON.parse(row.usage) as unknown) };
}

function migrate(db: Database.Database, file: string): void {
  const appId = db.pragma('application_id', { simple: true }) as number;
  const version = db.pragma('user_version', { simple: true }) as number;
  if (appId !== APPLICATION_ID) {
    const tables = (
      db.prepare("SELECT count(*) AS n FROM sqlite_master WHERE type = 'table'").get() as { n: number }
    ).n;
    // An empty file (or one SQLite just created) is ours to initialise; anything else is not.
    if (appId !== 0 || tables > 0 || version !== 0) {
      throw new StorageError(
        'STO_ERR_NOT_A_DOTSLASH_DB',
        `${file}: application_id ${appId.toString(16)}, ${tables} table(s), user_version ${version}`,
      );
    }
  }
  if (version > SCHEMA_VERSION) {
    throw new StorageError(
      'STO_ERR_NEWER_SCHEMA',
      `${file}: version ${version}, this build knows ${SCHEMA_VERSION}`,
    );
  }
  for (let v = version; v < SCHEMA_VERSION; v++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[v]!);
      db.pragma(`application_id = ${APPLICATION_ID}`);
      db.pragma(`user_version = ${v + 1}`);
    })();
  }
}
