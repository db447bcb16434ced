// Control-message handling (issue 3 item 4, "Bad input"): each message acts only for the session's
// party in the right role and state; anything else is refused with its code and changes nothing.
import { describe, expect, it } from 'vitest';
import type { RequestBodies, RequestType, VerifiedMessage } from '../../rescue-protocol/index.js';
import { LoopNet, ManualClock, member, memberConfig, run, sample } from './control-helpers.js';

const O = 'origin.example';
const A = 'a.example';
const C = 'c.example';

async function rescued() {
  const net = new LoopNet();
  const clock = new ManualClock();
  const o = member(net, clock, memberConfig(O, [A]));
  const a = member(net, clock, memberConfig(A, [O, C]));
  a.controller.observe(sample('light', 0.1));
  o.controller.observe(sample('desired', 0.6, 500));
  // One session, opened by hand through the SOS path.
  o.controller.observe(sample('heavy', 1.2, 1000));
  await run([o, a], clock, 1);
  o.controller.observe(sample('desired', 0.65, 1000));
  const originSide = o.table.list('origin', ['active'])[0]!;
  const rescuerSide = a.table.list('rescuer', ['active'])[0]!;
  const id = rescuerSide.id!;
  const msg = <T extends RequestType>(
    type: T,
    from: string,
    to: string,
    body: RequestBodies[T],
  ): VerifiedMessage =>
    ({ v: 1, type, from, to, ts: Date.now(), nonce: 'x'.repeat(22), body }) as unknown as VerifiedMessage;
  /** Snapshot of everything a refused message must not change. */
  const fingerprint = () =>
    JSON.stringify([
      o.db.sessions(),
      a.db.sessions(),
      o.db.history(originSide.key),
      a.db.history(rescuerSide.key),
      originSide.lastHeardMs,
      rescuerSide.lastHeardMs,
    ]);
  return { net, clock, o, a, originSide, rescuerSide, id, msg, fingerprint };
}

describe('control messages', () => {
  it('KEEPALIVE from the party renews the lease and answers with it', async () => {
    const { o, a, clock, originSide, rescuerSide, id, msg } = await rescued();
    clock.advance(2000);
    expect(a.controller.onMessage(msg('KEEPALIVE', O, A, { session: id }))).toEqual({
      ok: true,
      session: id,
      lease_ms: 3000,
    });
    expect(rescuerSide.lastHeardMs).toBe(clock.t);
    expect(o.controller.onMessage(msg('KEEPALIVE', A, O, { session: id }))).toMatchObject({ ok: true });
    expect(originSide.lastHeardMs).toBe(clock.t);
  });

  it('KEEPALIVE for an unknown session: RSC_ERR_UNKNOWN_SESSION; from a non-party: RSC_ERR_NOT_A_PARTY; nothing changes', async () => {
    const { a, id, msg, fingerprint } = await rescued();
    const before = fingerprint();
    expect(() => a.controller.onMessage(msg('KEEPALIVE', O, A, { session: 'no-such-session' }))).toThrow(
      expect.objectContaining({ code: 'RSC_ERR_UNKNOWN_SESSION' }),
    );
    expect(() => a.controller.onMessage(msg('KEEPALIVE', C, A, { session: id }))).toThrow(
      expect.objectContaining({ code: 'RSC_ERR_NOT_A_PARTY' }),
    );
    expect(fingerprint()).toBe(before);
  });

  it('RATE from the rescuer updates Rr and the redirect snapshot; RATE from a non-rescuer is refused and changes nothing', async () => {
    const { o, a, originSide, id, msg, fingerprint } = await rescued();
    const before = fingerprint();
    // The origin sending RATE to its rescuer: wrong role.
    expect(() => a.controller.onMessage(msg('RATE', O, A, { session: id, rate: 1 }))).toThrow(
      expect.objectContaining({ code: 'RSC_ERR_NOT_A_PARTY' }),
    );
    // A stranger sending RATE for someone else's session.
    expect(() => o.controller.onMessage(msg('RATE', C, O, { session: id, rate: 1 }))).toThrow(
      expect.objectContaining({ code: 'RSC_ERR_NOT_A_PARTY' }),
    );
    expect(fingerprint()).toBe(before);
    expect(o.controller.onMessage(msg('RATE', A, O, { session: id, rate: 42 }))).toEqual({
      ok: true,
      session: id,
    });
    expect(originSide.rate).toBe(42);
    expect(o.redirects.at(-1)!.sessions[0]!.rate).toBe(42);
    expect(o.db.session(originSide.key)!.rate).toBe(42);
  });

  it('TOKEN from the origin is stored; from the rescuer it is refused', async () => {
    const { o, a, rescuerSide, id, msg } = await rescued();
    expect(a.controller.onMessage(msg('TOKEN', O, A, { session: id, token: 'tok-1' }))).toEqual({
      ok: true,
      session: id,
    });
    expect(a.db.session(rescuerSide.key)!.token).toBe('tok-1');
    expect(() => o.controller.onMessage(msg('TOKEN', A, O, { session: id, token: 'tok-2' }))).toThrow(
      expect.objectContaining({ code: 'RSC_ERR_NOT_A_PARTY' }),
    );
  });

  it('PURGE from the origin reaches the purge callback; from anyone else it is refused', async () => {
    const { o, a, id, msg } = await rescued();
    expect(a.controller.onMessage(msg('PURGE', O, A, { session: id, urls: ['/a.html', '/b?x=1'] }))).toEqual({
      ok: true,
      session: id,
    });
    expect(a.purges).toEqual([{ session: id, origin: O, urls: ['/a.html', '/b?x=1'] }]);
    expect(() => a.controller.onMessage(msg('PURGE', C, A, { session: id, urls: ['/a.html'] }))).toThrow(
      expect.objectContaining({ code: 'RSC_ERR_NOT_A_PARTY' }),
    );
    expect(() => o.controller.onMessage(msg('PURGE', A, O, { session: id, urls: ['/a.html'] }))).toThrow(
      expect.objectContaining({ code: 'RSC_ERR_NOT_A_PARTY' }),
    );
    expect(a.purges).toHaveLength(1);
  });

  it('SHUTDOWN from the origin drains the rescuer side; then KEEPALIVE and SHUTDOWN are out of state and change nothing', async () => {
    const { a, rescuerSide, id, msg, fingerprint } = await rescued();
    const usage = { requests: 10, bytes: 4096 };
    expect(a.controller.onMessage(msg('SHUTDOWN', O, A, { session: id, reason: 'light', usage }))).toEqual({
      ok: true,
      session: id,
    });
    expect(rescuerSide.state).toBe('draining');
    expect(a.db.session(rescuerSide.key)!.usage).toEqual(usage);
    const before = fingerprint();
    expect(() => a.controller.onMessage(msg('KEEPALIVE', O, A, { session: id }))).toThrow(
      expect.objectContaining({ code: 'RSC_ERR_OUT_OF_STATE' }),
    );
    expect(() => a.controller.onMessage(msg('SHUTDOWN', O, A, { session: id, reason: 'again' }))).toThrow(
      expect.objectContaining({ code: 'RSC_ERR_OUT_OF_STATE' }),
    );
    expect(() => a.controller.onMessage(msg('TOKEN', O, A, { session: id, token: 't' }))).toThrow(
      expect.objectContaining({ code: 'RSC_ERR_OUT_OF_STATE' }),
    );
    expect(fingerprint()).toBe(before);
  });

  it('SHUTDOWN from the rescuer closes the origin side at once and takes it out of the redirect snapshot', async () => {
    const { o, originSide, id, msg } = await rescued();
    expect(
      o.controller.onMessage(msg('SHUTDOWN', A, O, { session: id, reason: 'need my capacity' })),
    ).toEqual({ ok: true, session: id });
    expect(originSide.state).toBe('closed');
    expect(o.db.session(originSide.key)!.reason).toBe('SHUTDOWN from a.example: need my capacity');
    expect(o.redirects.at(-1)!.sessions).toEqual([]);
    expect(o.redirects.at(-1)!.pr).toBe(0);
    expect(() => o.controller.onMessage(msg('KEEPALIVE', A, O, { session: id }))).toThrow(
      expect.objectContaining({ code: 'RSC_ERR_UNKNOWN_SESSION' }),
    );
  });

  it('SOS to a member that is being rescued is declined with CTL_ERR_IN_SOS; an SOS for another member is refused', async () => {
    const { o, msg } = await rescued();
    const body = {
      origin: { id: C, names: [C], front_url: 'http://c.example' },
      content: 'static' as const,
      want_rate: 5,
    };
    expect(o.controller.onMessage(msg('SOS', C, O, body))).toMatchObject({
      accepted: false,
      code: 'CTL_ERR_IN_SOS',
    });
    expect(() => o.controller.onMessage(msg('SOS', A, O, body))).toThrow(
      expect.objectContaining({ code: 'RSC_ERR_NOT_A_PARTY' }),
    );
    expect(o.table.list('rescuer')).toEqual([]);
  });

  it('a second SOS from an origin already rescued is declined (CTL_ERR_ALREADY_RESCUING)', async () => {
    const { a, msg } = await rescued();
    const body = {
      origin: { id: O, names: [O], front_url: 'http://origin.example' },
      content: 'static' as const,
      want_rate: 5,
    };
    expect(a.controller.onMessage(msg('SOS', O, A, body))).toMatchObject({
      accepted: false,
      code: 'CTL_ERR_ALREADY_RESCUING',
    });
    expect(a.table.list('rescuer')).toHaveLength(1);
  });

  it('the serving view maps vhN.<own name> and the origin site names to the session', async () => {
    const { a, id } = await rescued();
    const view = a.views.at(-1)!;
    expect([...view.hosts.keys()].sort()).toEqual(['origin.example', 'vh1.a.example']);
    expect(view.hosts.get('vh1.a.example')).toEqual({
      session: id,
      origin: O,
      front_url: 'http://origin.example:8080',
      names: ['vh1.a.example', 'origin.example'],
      micro_cache: null,
      state: 'serve',
      drain_until: null,
    });
    expect(Object.isFrozen(view.hosts.get('vh1.a.example'))).toBe(true);
  });

  it('the origin purges URLs at every rescuer serving it (PURGE)', async () => {
    const { o, a, id } = await rescued();
    expect(await o.controller.purge(['/news.html'])).toBe(1);
    expect(a.purges).toEqual([{ session: id, origin: O, urls: ['/news.html'] }]);
  });
});

describe('usage', () => {
  it("a rescuer's SHUTDOWN carries the session's usage; both state files keep it", async () => {
    const net = new LoopNet();
    const clock = new ManualClock();
    const usage = {
      requests: 7,
      bytes: 7000,
      by_redirect: { requests: 5, bytes: 5000 },
      by_dns: { requests: 2, bytes: 2000 },
    };
    const o = member(net, clock, memberConfig(O, [A]));
    const a = member(net, clock, memberConfig(A, [O]), undefined, () => usage);
    a.controller.observe(sample('light', 0.1));
    o.controller.observe(sample('heavy', 1.2, 1000));
    await run([o, a], clock, 1);
    a.controller.setMode('off'); // shuts its rescue down
    await run([o, a], clock, 1);
    expect(net.sent.find((x) => x.type === 'SHUTDOWN')!.body).toMatchObject({ usage });
    expect(o.db.sessions()[0]!.usage).toEqual(usage);
    expect(a.db.sessions()[0]!.usage).toEqual(usage);
  });
});
