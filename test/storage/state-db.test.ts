// The SQLite state file: created on first start (0700 dir, 0600 file, WAL), sessions with history,
// a vhost counter never reused across restarts, foreign files refused with a clear code.
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { StorageError } from '../../src/storage/errors.js';
import { SCHEMA_VERSION, StateDb } from '../../src/storage/state-db.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'dotslash-state-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('StateDb', () => {
  it('creates the file and its directories on first open, private, in WAL mode', () => {
    const file = join(dir, 'a', 'b', 'state.db');
    const db = StateDb.open(file);
    expect(statSync(join(dir, 'a')).mode & 0o777).toBe(0o700);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    db.close();
    const raw = new Database(file, { readonly: true });
    expect(raw.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(raw.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
    raw.close();
  });

  it('never reuses a vhost number, across restarts', () => {
    const file = join(dir, 'state.db');
    let db = StateDb.open(file);
    expect([db.nextVhostN(), db.nextVhostN(), db.nextVhostN()]).toEqual([1, 2, 3]);
    db.close();
    db = StateDb.open(file);
    expect(db.peekVhostN()).toBe(4);
    expect(db.nextVhostN()).toBe(4);
    db.close();
  });

  it('stores sessions with their history of transitions and reasons', () => {
    const db = StateDb.open(join(dir, 'state.db'));
    const key = db.insertSession({
      role: 'origin',
      peer: 'rescue-b.example',
      lease_ms: 3000,
      state: 'requested',
      reason: 'heavy',
      at: 1000,
    });
    db.updateSession(key, {
      id: 's1',
      vhost: 'vh1.rescue-b.example',
      vhost_url: 'http://vh1.rescue-b.example:8082',
      rate: 120,
    });
    db.transition(key, 'requested', 'active', 'accepted', 1010);
    db.updateSession(key, { usage: { requests: 5, bytes: 100 } });
    db.transition(key, 'active', 'closed', 'lease lapsed', 2000);
    const row = db.session(key)!;
    expect(row).toMatchObject({
      id: 's1',
      role: 'origin',
      peer: 'rescue-b.example',
      rate: 120,
      state: 'closed',
      closed_at: 2000,
      reason: 'lease lapsed',
      usage: { requests: 5, bytes: 100 },
    });
    expect(db.history(key).map((e) => [e.from_state, e.to_state, e.reason])).toEqual([
      [null, 'requested', 'heavy'],
      ['requested', 'active', 'accepted'],
      ['active', 'closed', 'lease lapsed'],
    ]);
    expect(db.sessions({ open: true })).toEqual([]);
    expect(db.sessions({ open: false, role: 'origin' })).toHaveLength(1);
    expect(() => db.transition(999, 'a', 'b', 'x', 1)).toThrow(
      expect.objectContaining({ code: 'STO_ERR_UNKNOWN_SESSION' }),
    );
    db.close();
  });

  it('closes the sessions a previous run left open, with a reason', () => {
    const file = join(dir, 'state.db');
    let db = StateDb.open(file);
    const key = db.insertSession({
      role: 'rescuer',
      peer: 'o.example',
      lease_ms: 3000,
      state: 'active',
      reason: 'SOS accepted',
      at: 1,
    });
    db.close();
    db = StateDb.open(file);
    expect(db.closeOpenSessions('daemon restarted', 5)).toBe(1);
    expect(db.session(key)).toMatchObject({ state: 'closed', reason: 'daemon restarted' });
    expect(db.history(key).at(-1)).toMatchObject({ from_state: 'active', to_state: 'closed' });
    db.close();
  });

  it('refuses a file that is not SQLite', () => {
    const file = join(dir, 'state.db');
    writeFileSync(file, 'this is not a database, it is a shopping list\n'.repeat(100));
    expect(() => StateDb.open(file)).toThrow(expect.objectContaining({ code: 'STO_ERR_NOT_A_DOTSLASH_DB' }));
    // Left untouched.
    expect(readFileSync(file, 'utf8')).toMatch(/^this is not a database/);
  });

  it("refuses another program's SQLite database instead of migrating it", () => {
    const file = join(dir, 'other.db');
    const other = new Database(file);
    other.exec('CREATE TABLE recipes (name TEXT)');
    other.close();
    let err: unknown;
    try {
      StateDb.open(file);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(StorageError);
    expect((err as StorageError).code).toBe('STO_ERR_NOT_A_DOTSLASH_DB');
    expect((err as Error).message).toContain(file);
  });

  it('refuses a state file from a newer schema', () => {
    const file = join(dir, 'state.db');
    StateDb.open(file).close();
    const raw = new Database(file);
    raw.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
    raw.close();
    expect(() => StateDb.open(file)).toThrow(expect.objectContaining({ code: 'STO_ERR_NEWER_SCHEMA' }));
  });

  it('reports an uncreatable path as STO_ERR_OPEN', () => {
    const blocker = join(dir, 'file');
    writeFileSync(blocker, 'x');
    expect(() => StateDb.open(join(blocker, 'state.db'))).toThrow(
      expect.objectContaining({ code: 'STO_ERR_OPEN' }),
    );
  });
});
