// v1 message schemas and the asserts that check untrusted envelopes; the nonce cache's expiry and bounds.
import { describe, expect, it } from 'vitest';
import {
  assertRequestEnvelope,
  envelopeHead,
  NonceCache,
  okBodySchema,
  parseReplyBody,
  parseReplyEnvelope,
  parseRequestBody,
  parseRequestEnvelope,
  RescueError,
  RescueErrors,
  sosBodySchema,
  type RequestEnvelope,
} from '../../rescue-protocol/index.js';

const head = () => envelopeHead('origin.test', 'rescue-b.test');
function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(RescueError);
    return (err as RescueError).code;
  }
  return undefined;
}

describe('error table', () => {
  it('every code is RSC_ERR_*, with a message and an HTTP status; the refusal codes are distinct', () => {
    for (const [code, e] of Object.entries(RescueErrors)) {
      expect(code).toMatch(/^RSC_ERR_[A-Z_]+$/);
      expect(e.message.length).toBeGreaterThan(10);
      expect(e.status).toBeGreaterThanOrEqual(400);
    }
    const messages = Object.values(RescueErrors).map((e) => e.message);
    expect(new Set(messages).size).toBe(messages.length);
  });
});

describe('envelopes', () => {
  it('envelopeHead makes v 1, the current wall clock and a 16-byte base64url nonce', () => {
    const h = head();
    expect(h.v).toBe(1);
    expect(Math.abs(h.ts - Date.now())).toBeLessThan(1000);
    expect(Buffer.from(h.nonce, 'base64url')).toHaveLength(16);
    expect(head().nonce).not.toBe(h.nonce);
  });

  it('a valid request parses, unknown fields are dropped, and assertRequestEnvelope narrows the type', () => {
    const value: unknown = {
      ...head(),
      type: 'RATE',
      body: { session: 's-1', rate: 3, extra: 1 },
      extra: true,
    };
    assertRequestEnvelope(value);
    expect(value.type).toBe('RATE');
    const parsed = parseRequestEnvelope(value);
    expect(parsed).not.toHaveProperty('extra');
    expect(parsed.body).toEqual({ session: 's-1', rate: 3 });
  });

  it('version is checked before the schema, so newer peers hear "unsupported version"', () => {
    expect(codeOf(() => parseRequestEnvelope({ v: 2, whatever: true }))).toBe('RSC_ERR_UNSUPPORTED_VERSION');
    expect(codeOf(() => parseRequestEnvelope({ v: '1' }))).toBe('RSC_ERR_UNSUPPORTED_VERSION');
    expect(codeOf(() => parseRequestEnvelope({ type: 'RATE' }))).toBe('RSC_ERR_BAD_MESSAGE');
    expect(codeOf(() => parseRequestEnvelope(null))).toBe('RSC_ERR_BAD_MESSAGE');
    expect(codeOf(() => parseRequestEnvelope('text'))).toBe('RSC_ERR_BAD_MESSAGE');
  });

  it('schema messages name the field', () => {
    try {
      parseRequestEnvelope({ ...head(), type: 'RATE', body: { session: 's', rate: 'fast' } });
      expect.unreachable();
    } catch (err) {
      expect((err as Error).message).toContain('body.rate');
    }
  });

  it('replies need re; requests must not be reply types', () => {
    const ack = { ...head(), type: 'ACK', body: { ok: true } };
    expect(codeOf(() => parseReplyEnvelope(ack))).toBe('RSC_ERR_BAD_MESSAGE');
    expect(parseReplyEnvelope({ ...ack, re: head().nonce }).type).toBe('ACK');
    expect(codeOf(() => parseRequestEnvelope({ ...ack, re: head().nonce }))).toBe('RSC_ERR_BAD_MESSAGE');
    const error = {
      ...head(),
      re: head().nonce,
      type: 'ERROR',
      body: { error: { code: 'RSC_ERR_X', message: 'm' } },
    };
    expect(parseReplyEnvelope(error).type).toBe('ERROR');
  });
});

describe('bodies', () => {
  const sos = {
    origin: { id: 'origin.test', names: ['origin.test'], front_url: 'https://origin.test/' },
    content: 'static',
    want_rate: 10,
  };

  it('SOS: required fields, optional micro_cache and token; bad values refused', () => {
    expect(sosBodySchema.safeParse(sos).success).toBe(true);
    expect(
      sosBodySchema.safeParse({ ...sos, micro_cache: { paths: ['/a/'], ttl_s: 1 }, token: 't' }).success,
    ).toBe(true);
    for (const bad of [
      { ...sos, content: 'video' },
      { ...sos, want_rate: 0 },
      { ...sos, want_rate: Infinity },
      { ...sos, origin: { ...sos.origin, names: [] } },
      { ...sos, origin: { ...sos.origin, names: ['bad host'] } },
      { ...sos, origin: { ...sos.origin, front_url: 'ftp://x' } },
      { ...sos, micro_cache: { paths: ['no-slash'], ttl_s: 1 } },
      { ...sos, micro_cache: { paths: ['/a'], ttl_s: 0 } },
    ]) {
      expect(sosBodySchema.safeParse(bad).success, JSON.stringify(bad)).toBe(false);
    }
  });

  it('OK: accepted with session/vhost/rate/lease, or declined with reason and code; nothing in between', () => {
    expect(
      okBodySchema.safeParse({ accepted: true, session: 's', vhost: 'vh1.r.test', rate: 5, lease_ms: 1000 })
        .success,
    ).toBe(true);
    expect(
      okBodySchema.safeParse({ accepted: false, reason: 'busy', code: 'RSC_ERR_DECLINED' }).success,
    ).toBe(true);
    expect(okBodySchema.safeParse({ accepted: true, reason: 'busy', code: 'RSC_ERR_DECLINED' }).success).toBe(
      false,
    );
    expect(
      okBodySchema.safeParse({ accepted: true, session: 's', vhost: 'vh1', rate: 5, lease_ms: 1.5 }).success,
    ).toBe(false);
    expect(okBodySchema.safeParse({ accepted: false, reason: 'busy', code: 'lower case' }).success).toBe(
      false,
    );
  });

  it('SHUTDOWN usage, PURGE paths, KEEPALIVE ACK', () => {
    expect(
      parseRequestBody('SHUTDOWN', {
        session: 's',
        reason: 'done',
        usage: { requests: 1, bytes: 2, by_dns: { requests: 1, bytes: 2 } },
      }).usage?.by_dns,
    ).toEqual({
      requests: 1,
      bytes: 2,
    });
    expect(
      codeOf(() =>
        parseRequestBody('SHUTDOWN', { session: 's', reason: 'x', usage: { requests: -1, bytes: 0 } }),
      ),
    ).toBe('RSC_ERR_BAD_MESSAGE');
    expect(codeOf(() => parseRequestBody('PURGE', { session: 's', urls: [] }))).toBe('RSC_ERR_BAD_MESSAGE');
    expect(codeOf(() => parseRequestBody('PURGE', { session: 's', urls: ['/a#frag'] }))).toBe(
      'RSC_ERR_BAD_MESSAGE',
    );
    expect(codeOf(() => parseRequestBody('KEEPALIVE', { session: 'bad session id' }))).toBe(
      'RSC_ERR_BAD_MESSAGE',
    );
    expect(parseReplyBody('KEEPALIVE', { ok: true, session: 's', lease_ms: 10 })).toEqual({
      ok: true,
      session: 's',
      lease_ms: 10,
    });
    expect(codeOf(() => parseReplyBody('KEEPALIVE', { ok: true }))).toBe('RSC_ERR_BAD_MESSAGE');
    expect(parseReplyBody('PURGE', { ok: true })).toEqual({ ok: true });
    expect(codeOf(() => parseReplyBody('SOS', { ok: true }))).toBe('RSC_ERR_BAD_MESSAGE');
  });

  it('types line up with schemas (compile-time check)', () => {
    const env: RequestEnvelope = { ...head(), type: 'PURGE', body: { session: 's', urls: ['/'] } };
    if (env.type === 'PURGE') expect(env.body.urls).toEqual(['/']);
  });
});

describe('NonceCache', () => {
  it('refuses a repeat of the same (sender, nonce) but not the same nonce from another sender', () => {
    const c = new NonceCache();
    c.check('a', 'n1');
    expect(codeOf(() => c.check('a', 'n1'))).toBe('RSC_ERR_REPLAYED_NONCE');
    c.check('b', 'n1');
    expect(c.size).toBe(2);
  });

  it('forgets nonces after ttl (monotonic clock), and only then', () => {
    let now = 1000;
    const c = new NonceCache({ ttlMs: 60_000, now: () => now });
    c.check('a', 'n1');
    now += 59_999;
    expect(codeOf(() => c.check('a', 'n1'))).toBe('RSC_ERR_REPLAYED_NONCE');
    now += 1;
    c.check('a', 'n2'); // triggers expiry of n1
    expect(c.size).toBe(1);
  });

  it('is bounded: full of live nonces it refuses new ones (RSC_ERR_NONCE_FLOOD) instead of forgetting', () => {
    let now = 0;
    const c = new NonceCache({ ttlMs: 1000, maxEntries: 5, maxPerSender: 3, now: () => now });
    for (let i = 0; i < 3; i++) c.check('a', `a${i}`);
    expect(codeOf(() => c.check('a', 'a3'))).toBe('RSC_ERR_NONCE_FLOOD');
    c.check('b', 'b0');
    c.check('b', 'b1');
    expect(codeOf(() => c.check('c', 'c0'))).toBe('RSC_ERR_NONCE_FLOOD');
    // The replay answer wins over the flood answer for a nonce it remembers.
    expect(codeOf(() => c.check('a', 'a0'))).toBe('RSC_ERR_REPLAYED_NONCE');
    now = 1000;
    c.check('a', 'a3');
    c.check('c', 'c0');
    expect(c.size).toBe(2);
  });
});
