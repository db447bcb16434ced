// A running daemon's control port (a separate process) refuses forged, unknown-sender, replayed,
// stale, malformed and out-of-state messages, each with its own code, and none of them changes
// anything: the member stays normal with no sessions.
import { createPrivateKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Community, Member } from '../../src/demo/community.js';
import { memberStatus } from '../../src/demo/status.js';
import { envelopeHead, sealEnvelope } from '../../rescue-protocol/envelope.js';
import { hostsFrom, makeCommunity, stopAll } from './helpers.js';

let community: Community;
let target: Member;
let peer: Member;
let peerKey: KeyObject;

beforeAll(async () => {
  // Two members; only the first runs. The test speaks as the second, with its real key.
  community = await makeCommunity({ hosts: hostsFrom(40, 2), originRps: 50 });
  target = community.members[0]!;
  peer = community.members[1]!;
  peerKey = createPrivateKey(readFileSync(peer.keyFile));
  community.spawn(target);
  await community.waitReady(target, 30_000);
}, 60_000);
afterAll(stopAll);

interface Answer {
  status: number;
  code: string | undefined;
}

async function post(bytes: Buffer | string, headers: Record<string, string>): Promise<Answer> {
  const res = await fetch(`${target.controlUrl}/v1/rescue`, { method: 'POST', headers, body: bytes });
  const text = await res.text();
  let code: string | undefined;
  try {
    const j = JSON.parse(text) as { error?: { code?: string }; body?: { error?: { code?: string } } };
    code = j.error?.code ?? j.body?.error?.code;
  } catch {
    code = undefined;
  }
  return { status: res.status, code };
}

function keepalive(opts: { ts?: number; from?: string; session?: string } = {}) {
  const head = envelopeHead(opts.from ?? peer.name, target.name, opts.ts ?? Date.now());
  return { ...head, type: 'KEEPALIVE' as const, body: { session: opts.session ?? 's99.nowhere.test' } };
}

describe('control port of a running daemon', { timeout: 60_000 }, () => {
  it('a well-signed KEEPALIVE for an unknown session: RSC_ERR_UNKNOWN_SESSION (authentication passed)', async () => {
    const m = sealEnvelope(keepalive(), peerKey);
    expect(await post(m.bytes, m.headers)).toEqual({ status: 404, code: 'RSC_ERR_UNKNOWN_SESSION' });
  });

  it('forged: signed with another key -> RSC_ERR_BAD_SIGNATURE', async () => {
    const other = generateKeyPairSync('ed25519').privateKey;
    const m = sealEnvelope(keepalive(), other);
    expect(await post(m.bytes, m.headers)).toMatchObject({ code: 'RSC_ERR_BAD_SIGNATURE', status: 401 });
  });

  it('forged: bytes changed after signing -> RSC_ERR_BAD_SIGNATURE', async () => {
    const m = sealEnvelope(keepalive(), peerKey);
    const tampered = Buffer.from(m.bytes.toString().replace('s99.nowhere.test', 's98.nowhere.test'));
    expect((await post(tampered, m.headers)).code).toBe('RSC_ERR_BAD_SIGNATURE');
  });

  it('unknown sender -> RSC_ERR_UNKNOWN_SENDER; unsigned -> RSC_ERR_UNSIGNED', async () => {
    const stranger = generateKeyPairSync('ed25519').privateKey;
    const m = sealEnvelope(keepalive({ from: 'stranger.test' }), stranger);
    expect((await post(m.bytes, m.headers)).code).toBe('RSC_ERR_UNKNOWN_SENDER');
    const u = sealEnvelope(keepalive(), peerKey);
    expect((await post(u.bytes, { 'content-type': 'application/json' })).code).toBe('RSC_ERR_UNSIGNED');
  });

  it('replayed: the same signed bytes a second time -> RSC_ERR_REPLAYED_NONCE', async () => {
    const m = sealEnvelope(keepalive(), peerKey);
    expect((await post(m.bytes, m.headers)).code).toBe('RSC_ERR_UNKNOWN_SESSION');
    expect(await post(m.bytes, m.headers)).toMatchObject({ code: 'RSC_ERR_REPLAYED_NONCE', status: 409 });
  });

  it('stale: a timestamp 5 minutes old (or ahead) -> RSC_ERR_STALE_TIMESTAMP', async () => {
    for (const ts of [Date.now() - 300_000, Date.now() + 300_000]) {
      const m = sealEnvelope(keepalive({ ts }), peerKey);
      expect((await post(m.bytes, m.headers)).code).toBe('RSC_ERR_STALE_TIMESTAMP');
    }
  });

  it('malformed: signed non-JSON, wrong schema, wrong version, wrong recipient, wrong content type', async () => {
    const sign = (text: string) => sealEnvelope(JSON.parse(text) as never, peerKey);
    // Signed garbage: sealEnvelope signs JSON.stringify(envelope), so build the bytes by hand.
    const { signBytes } = await import('../../rescue-protocol/keys.js');
    const garbage = Buffer.from('{"v":1,"type":');
    const garbageHeaders = {
      'content-type': 'application/json',
      'dotslash-sender': peer.name,
      'dotslash-signature': `ed25519 ${signBytes(garbage, peerKey)}`,
    };
    expect((await post(garbage, garbageHeaders)).code).toBe('RSC_ERR_BAD_JSON');

    const badBody = sign(JSON.stringify({ ...keepalive(), body: { session: 42 } }));
    expect((await post(badBody.bytes, badBody.headers)).code).toBe('RSC_ERR_BAD_MESSAGE');
    const badVersion = sign(JSON.stringify({ ...keepalive(), v: 99 }));
    expect((await post(badVersion.bytes, badVersion.headers)).code).toBe('RSC_ERR_UNSUPPORTED_VERSION');
    const elsewhere = sign(JSON.stringify({ ...keepalive(), to: 'someone-else.test' }));
    expect((await post(elsewhere.bytes, elsewhere.headers)).code).toBe('RSC_ERR_WRONG_RECIPIENT');
    const ok = sealEnvelope(keepalive(), peerKey);
    expect((await post(ok.bytes, { ...ok.headers, 'content-type': 'text/plain' })).code).toBe(
      'RSC_ERR_UNSUPPORTED_MEDIA_TYPE',
    );
  });

  it('out of state: RATE, SHUTDOWN and PURGE for sessions it does not have are refused', async () => {
    for (const [type, body] of [
      ['RATE', { session: 's7.rescue-a.test', rate: 10 }],
      ['SHUTDOWN', { session: 's7.rescue-a.test', reason: 'test' }],
      ['PURGE', { session: 's7.rescue-a.test', urls: ['/'] }],
    ] as const) {
      const m = sealEnvelope({ ...envelopeHead(peer.name, target.name), type, body } as never, peerKey);
      const a = await post(m.bytes, m.headers);
      expect(['RSC_ERR_UNKNOWN_SESSION', 'RSC_ERR_NOT_A_PARTY', 'RSC_ERR_OUT_OF_STATE']).toContain(a.code);
    }
  });

  it('none of it changed anything: still normal, no sessions, still answering', async () => {
    const st = await memberStatus(target);
    expect(st.state).toBe('normal');
    expect(st.sessions).toEqual([]);
    expect(target.child?.exitCode).toBeNull();
  });
});
