// Session state machines with leases (issue 3 item 2): allowed transitions only, each logged with
// its reason and stored with its history; leases lapse on a monotonic clock; drains end.
import { describe, expect, it } from 'vitest';
import pino from 'pino';
import { Writable } from 'node:stream';
import { SessionTable, TransitionError } from '../../src/sessions/table.js';
import { StateDb } from '../../src/storage/state-db.js';
import { ManualClock } from '../controller/control-helpers.js';

function setup() {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
      cb();
    },
  });
  const clock = new ManualClock();
  const db = StateDb.open(':memory:');
  const table = new SessionTable({ db, logger: pino({ level: 'info' }, sink), clock, drainMs: 500 });
  const changes: string[] = [];
  table.on('change', (c: { from: string | null; to: string; reason: string }) =>
    changes.push(`${c.from}->${c.to}`),
  );
  return { clock, db, table, lines, changes };
}

const origin = {
  id: 'o.example',
  names: ['o.example'],
  front_url: 'http://o.example',
  content: 'static' as const,
  micro_cache: null,
};

describe('SessionTable', () => {
  it('origin: requested -> active -> ending -> closed, each change stored, logged with its reason, and emitted', () => {
    const { table, db, lines, changes } = setup();
    const s = table.openOrigin('r.example', 900, 100, 'heavy');
    table.accept(s, { id: 's1', vhost: 'vh1.r.example', vhostUrl: null, rate: 80, leaseMs: 900 }, 'accepted');
    table.end(s, 'light', { sending: true });
    expect(s.state).toBe('ending');
    table.transition(s, 'closed', 'SHUTDOWN acknowledged');
    expect(changes).toEqual(['null->requested', 'requested->active', 'active->ending', 'ending->closed']);
    expect(db.history(s.key).map((e) => e.reason)).toEqual([
      'heavy',
      'accepted',
      'light',
      'SHUTDOWN acknowledged',
    ]);
    expect(lines.filter((l) => l.to !== undefined).map((l) => [l.from ?? null, l.to, l.reason])).toEqual([
      [null, 'requested', 'heavy'],
      ['requested', 'active', 'accepted'],
      ['active', 'ending', 'light'],
      ['ending', 'closed', 'SHUTDOWN acknowledged'],
    ]);
    expect(table.size).toBe(0); // closed sessions leave the table, not the state file
  });

  it('refuses transitions the state machine does not have', () => {
    const { table, db } = setup();
    const s = table.openRescuer({
      peer: 'o.example',
      id: 's1',
      vhost: 'vh1.r.example',
      vhostUrl: 'http://vh1.r.example',
      rate: 10,
      want: 10,
      leaseMs: 900,
      origin,
      reason: 'SOS',
    });
    expect(() => table.transition(s, 'ending', 'x')).toThrow(TransitionError);
    expect(() => table.transition(s, 'requested', 'x')).toThrow(TransitionError);
    expect(db.history(s.key)).toHaveLength(1);
    expect(s.state).toBe('active');
  });

  it('an active session whose lease lapses ends on that side: the origin closes, the rescuer drains, then closes', () => {
    const { table, clock } = setup();
    const o = table.openOrigin('r.example', 900, 100, 'heavy');
    table.accept(o, { id: 's1', vhost: 'vh1.r.example', vhostUrl: null, rate: 80, leaseMs: 900 }, 'accepted');
    const r = table.openRescuer({
      peer: 'o.example',
      id: 's2',
      vhost: 'vh2.r.example',
      vhostUrl: 'http://vh2.r.example',
      rate: 10,
      want: 10,
      leaseMs: 900,
      origin,
      reason: 'SOS',
    });
    clock.advance(600);
    table.renew(o); // heard from r.example
    clock.advance(400); // r's lease: 1000 > 900; o's: 400
    expect(table.expire()).toEqual([r]);
    expect(r.state).toBe('draining');
    expect(o.state).toBe('active');
    expect(r.drainUntilMs).toBe(clock.t + 500);
    clock.advance(499);
    expect(table.expire()).toEqual([]);
    clock.advance(1);
    expect(table.expire()).toEqual([r]);
    expect(r.state).toBe('closed');
    clock.advance(600);
    expect(table.expire()).toEqual([o]);
    expect(o.state).toBe('closed');
  });

  it('KEEPALIVE is due every lease/3', () => {
    const { table, clock } = setup();
    const r = table.openRescuer({
      peer: 'o.example',
      id: 's2',
      vhost: 'vh2.r.example',
      vhostUrl: 'http://vh2.r.example',
      rate: 10,
      want: 10,
      leaseMs: 900,
      origin,
      reason: 'SOS',
    });
    clock.advance(299);
    expect(r.keepaliveDue(clock.t)).toBe(false);
    clock.advance(1);
    expect(r.keepaliveDue(clock.t)).toBe(true);
  });

  it('finds sessions by protocol id and role, and allocates vhost numbers from the persisted counter', () => {
    const { table } = setup();
    table.openRescuer({
      peer: 'o.example',
      id: 's9',
      vhost: 'vh9.r.example',
      vhostUrl: 'http://vh9.r.example',
      rate: 10,
      want: 10,
      leaseMs: 900,
      origin,
      reason: 'SOS',
    });
    expect(table.find('s9')?.role).toBe('rescuer');
    expect(table.find('s9', 'origin')).toBeUndefined();
    expect([table.allocateVhostN(), table.allocateVhostN()]).toEqual([1, 2]);
  });
});
