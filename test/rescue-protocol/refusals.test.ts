// Hostile input to the control listener: each bad message gets its own RSC_ERR_* code and HTTP status, changes nothing, and the server keeps working.
import { connect } from 'node:net';
import { Readable } from 'node:stream';
import { request } from 'undici';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  authenticateReply,
  ControlServer,
  envelopeHead,
  generateKeyPair,
  parsePrivateKey,
  parsePublicKey,
  RescueErrors,
  sealEnvelope,
  signBytes,
  type RequestEnvelope,
} from '../../rescue-protocol/index.js';
import {
  echoHandler,
  errorCodeOf,
  rawPost,
  startMembers,
  type RawAnswer,
  type TestMember,
} from './helpers.js';

const ORIGIN = 'origin.test';
const RESCUER = 'rescue-b.test';

let ctx: Awaited<ReturnType<typeof startMembers>>;
let origin: TestMember;
let rescuer: TestMember;

beforeEach(async () => {
  ctx = await startMembers([ORIGIN, RESCUER]);
  origin = ctx.members[ORIGIN]!;
  rescuer = ctx.members[RESCUER]!;
});
afterEach(() => ctx.close());

/** A valid KEEPALIVE from the origin to the rescuer, with overrides. */
function keepalive(over: Partial<RequestEnvelope> & Record<string, unknown> = {}): RequestEnvelope {
  return {
    ...envelopeHead(ORIGIN, RESCUER),
    type: 'KEEPALIVE',
    body: { session: 's-1' },
    ...over,
  } as RequestEnvelope;
}

function post(bytes: Buffer | string, headers: Record<string, string>): Promise<RawAnswer> {
  return rawPost(rescuer.server.url, bytes, headers);
}

/** Sends a sealed envelope exactly as built. */
function postSealed(env: unknown, key = origin.privateKey): Promise<RawAnswer> {
  const sealed = sealEnvelope(env as RequestEnvelope, key);
  return post(sealed.bytes, sealed.headers);
}

/** Signs arbitrary bytes as the origin. */
function signedAs(bytes: string, sender = ORIGIN, key = origin.privateKey): [string, Record<string, string>] {
  return [
    bytes,
    {
      'content-type': 'application/json',
      'dotslash-sender': sender,
      'dotslash-signature': `ed25519 ${signBytes(Buffer.from(bytes), key)}`,
    },
  ];
}

/** The server still answers a good message, and the bad one reached no handler. */
async function expectStillWorking(handled = 0): Promise<void> {
  expect(rescuer.received).toHaveLength(handled);
  const ok = await origin.client.send(rescuer.peer(), 'KEEPALIVE', { session: 'after' });
  expect(ok.body).toEqual({ ok: true, session: 'after', lease_ms: 30_000 });
}

function expectRefusal(answer: RawAnswer, code: keyof typeof RescueErrors, signed: boolean): void {
  expect({ status: answer.status, code: errorCodeOf(answer) }).toEqual({
    status: RescueErrors[code].status,
    code,
  });
  expect(answer.headers['dotslash-signature'] !== undefined).toBe(signed);
  if (signed) {
    // A signed refusal is a real ERROR envelope from the rescuer, addressed to the sender.
    const env = authenticateReply(
      Buffer.from(answer.text),
      answer.headers,
      RESCUER,
      parsePublicKey(rescuer.publicKey),
    );
    expect(env).toMatchObject({ type: 'ERROR', from: RESCUER, to: ORIGIN });
  } else {
    expect(answer.json).toEqual({ error: { code, message: expect.any(String) } });
  }
}

describe('authentication', () => {
  it('no signature headers -> RSC_ERR_UNSIGNED (401)', async () => {
    const a = await post(JSON.stringify(keepalive()), { 'content-type': 'application/json' });
    expectRefusal(a, 'RSC_ERR_UNSIGNED', false);
    const [bytes, headers] = signedAs(JSON.stringify(keepalive()));
    const b = await post(bytes, { ...headers, 'dotslash-signature': 'rsa abc' });
    expectRefusal(b, 'RSC_ERR_UNSIGNED', false);
    await expectStillWorking();
  });

  it('forged signature (another key, claiming to be the origin) -> RSC_ERR_BAD_SIGNATURE (401)', async () => {
    const mallory = parsePrivateKey(generateKeyPair().privateKeyPem);
    expectRefusal(await postSealed(keepalive(), mallory), 'RSC_ERR_BAD_SIGNATURE', false);
    await expectStillWorking();
  });

  it('bytes changed after signing -> RSC_ERR_BAD_SIGNATURE, even when the change is only whitespace', async () => {
    const sealed = sealEnvelope(keepalive(), origin.privateKey);
    const tampered = sealed.bytes.toString().replace('"s-1"', '"s-2"');
    expectRefusal(await post(tampered, sealed.headers), 'RSC_ERR_BAD_SIGNATURE', false);
    expectRefusal(await post(sealed.bytes.toString() + ' ', sealed.headers), 'RSC_ERR_BAD_SIGNATURE', false);
    await expectStillWorking();
  });

  it('unknown sender -> RSC_ERR_UNKNOWN_SENDER (403)', async () => {
    const mallory = parsePrivateKey(generateKeyPair().privateKeyPem);
    const env = keepalive({ from: 'mallory.test' });
    expectRefusal(await postSealed(env, mallory), 'RSC_ERR_UNKNOWN_SENDER', false);
    await expectStillWorking();
  });

  it('envelope "from" differs from the signing sender -> RSC_ERR_SENDER_MISMATCH (401)', async () => {
    const [bytes, headers] = signedAs(JSON.stringify(keepalive({ from: RESCUER })));
    expectRefusal(await post(bytes, headers), 'RSC_ERR_SENDER_MISMATCH', false);
    await expectStillWorking();
  });
});

describe('parsing (only after the signature verified)', () => {
  it('malformed JSON -> RSC_ERR_BAD_JSON (400)', async () => {
    for (const text of ['{"v":1,', 'not json', '']) {
      const [bytes, headers] = signedAs(text);
      expectRefusal(await post(bytes, headers), 'RSC_ERR_BAD_JSON', false);
    }
    await expectStillWorking();
  });

  it('unsupported version -> RSC_ERR_UNSUPPORTED_VERSION (400)', async () => {
    expectRefusal(await postSealed(keepalive({ v: 2 } as never)), 'RSC_ERR_UNSUPPORTED_VERSION', false);
    await expectStillWorking();
  });

  it.each([
    ['not an object', [1, 2]],
    [
      'no v',
      (() => {
        const { v: _v, ...rest } = keepalive();
        return rest;
      })(),
    ],
    ['unknown type', keepalive({ type: 'HELLO' } as never)],
    [
      'a reply type posted as a request',
      { ...keepalive(), type: 'ACK', re: 'AAAAAAAAAAAAAAAAAAAAAA', body: { ok: true } },
    ],
    ['missing body field', keepalive({ body: {} } as never)],
    ['bad nonce', keepalive({ nonce: 'short' })],
    ['ts not an integer', keepalive({ ts: 'yesterday' } as never)],
    ['recipient not a host name', keepalive({ to: 'not a host!' })],
    [
      'SOS with want_rate 0',
      {
        ...keepalive(),
        type: 'SOS',
        body: {
          origin: { id: ORIGIN, names: [ORIGIN], front_url: 'http://o' },
          content: 'static',
          want_rate: 0,
        },
      },
    ],
    [
      'SOS with a non-http front_url',
      {
        ...keepalive(),
        type: 'SOS',
        body: {
          origin: { id: ORIGIN, names: [ORIGIN], front_url: 'file:///etc/passwd' },
          content: 'static',
          want_rate: 5,
        },
      },
    ],
    [
      'PURGE with a full URL instead of a path',
      { ...keepalive(), type: 'PURGE', body: { session: 's', urls: ['http://evil/x'] } },
    ],
    ['RATE with a negative rate', { ...keepalive(), type: 'RATE', body: { session: 's', rate: -3 } }],
  ])('schema violation (%s) -> RSC_ERR_BAD_MESSAGE (400)', async (_name, env) => {
    const [bytes, headers] = signedAs(JSON.stringify(env));
    const a = await post(bytes, headers);
    expectRefusal(a, 'RSC_ERR_BAD_MESSAGE', false);
    await expectStillWorking();
  });
});

describe('freshness (signed refusals: the sender is authenticated by now)', () => {
  it('wrong recipient -> RSC_ERR_WRONG_RECIPIENT (421)', async () => {
    expectRefusal(await postSealed(keepalive({ to: 'rescue-c.test' })), 'RSC_ERR_WRONG_RECIPIENT', true);
    await expectStillWorking();
  });

  it('timestamp more than 30 s in the past or the future -> RSC_ERR_STALE_TIMESTAMP (401); 25 s either way is fine', async () => {
    const now = Date.now();
    expectRefusal(await postSealed(keepalive({ ts: now - 31_000 })), 'RSC_ERR_STALE_TIMESTAMP', true);
    expectRefusal(await postSealed(keepalive({ ts: now + 31_000 })), 'RSC_ERR_STALE_TIMESTAMP', true);
    expect(rescuer.received).toHaveLength(0);
    expect((await postSealed(keepalive({ ts: now - 25_000 }))).status).toBe(200);
    expect((await postSealed(keepalive({ ts: now + 25_000 }))).status).toBe(200);
    await expectStillWorking(2);
  });

  it('the skew is configurable', async () => {
    const { members, close } = await startMembers(['o.test', 'r.test'], { skewMs: 5_000 });
    try {
      const env = {
        ...envelopeHead('o.test', 'r.test', Date.now() - 6_000),
        type: 'KEEPALIVE',
        body: { session: 's' },
      };
      const sealed = sealEnvelope(env as RequestEnvelope, members['o.test']!.privateKey);
      const a = await rawPost(members['r.test']!.server.url, sealed.bytes, sealed.headers);
      expect(errorCodeOf(a)).toBe('RSC_ERR_STALE_TIMESTAMP');
    } finally {
      await close();
    }
  });

  it('exact resend of captured bytes -> RSC_ERR_REPLAYED_NONCE (409), handled once', async () => {
    const sealed = sealEnvelope(keepalive(), origin.privateKey);
    const first = await post(sealed.bytes, sealed.headers);
    expect(first.status).toBe(200);
    for (let i = 0; i < 3; i++)
      expectRefusal(await post(sealed.bytes, sealed.headers), 'RSC_ERR_REPLAYED_NONCE', true);
    await expectStillWorking(1);
  });

  it('a replay refused for another reason first does not burn the nonce of the real message', async () => {
    const env = keepalive();
    expectRefusal(await postSealed({ ...env, to: 'other.test' }), 'RSC_ERR_WRONG_RECIPIENT', true);
    expect((await postSealed(env)).status).toBe(200);
  });

  it('a sender that floods the nonce cache -> RSC_ERR_NONCE_FLOOD (503), others unaffected', async () => {
    const keys = ctx.keys;
    const server = new ControlServer({
      listen: '127.0.0.1:0',
      self: { id: RESCUER, privateKey: rescuer.privateKey },
      peers: keys,
      onMessage: echoHandler,
      nonceCache: { maxPerSender: 3 },
    });
    await server.listen();
    try {
      const send = (from: string, key = origin.privateKey) => {
        const sealed = sealEnvelope(
          { ...keepalive(), ...envelopeHead(from, RESCUER) } as RequestEnvelope,
          key,
        );
        return rawPost(server.url, sealed.bytes, sealed.headers);
      };
      for (let i = 0; i < 3; i++) expect((await send(ORIGIN)).status).toBe(200);
      const a = await send(ORIGIN);
      expect({ status: a.status, code: errorCodeOf(a) }).toEqual({
        status: 503,
        code: 'RSC_ERR_NONCE_FLOOD',
      });
      // Another member (a third one known to the server) still gets through.
      const third = generateKeyPair();
      keys.set('third.test', parsePublicKey(third.publicKey));
      expect((await send('third.test', parsePrivateKey(third.privateKeyPem))).status).toBe(200);
    } finally {
      await server.close();
    }
  });
});

describe('HTTP-level refusals', () => {
  it('body over the cap -> RSC_ERR_TOO_LARGE (413), with Content-Length or chunked', async () => {
    const big = JSON.stringify(keepalive({ body: { session: 's', pad: 'x'.repeat(70_000) } } as never));
    const [bytes, headers] = signedAs(big);
    expectRefusal(await post(bytes, headers), 'RSC_ERR_TOO_LARGE', false);
    const res = await request(`${rescuer.server.url}/v1/rescue`, {
      method: 'POST',
      headers,
      body: Readable.from([Buffer.from(bytes.slice(0, 40_000)), Buffer.from(bytes.slice(40_000))]),
    });
    expect(res.statusCode).toBe(413);
    expect(((await res.body.json()) as { error: { code: string } }).error.code).toBe('RSC_ERR_TOO_LARGE');
    await expectStillWorking();
  });

  it('a 20 MB body, declared or chunked, still gets its 413 answer (not a reset)', async () => {
    const big = Buffer.alloc(20_000_000, 0x20);
    for (const body of [big, Readable.from([big.subarray(0, 1000), big.subarray(1000)])]) {
      const res = await request(`${rescuer.server.url}/v1/rescue`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
      });
      expect(res.statusCode).toBe(413);
      const json = (await res.body.json()) as { error: { code: string; message: string } };
      expect(json.error.code).toBe('RSC_ERR_TOO_LARGE');
      expect(json.error.message).toContain('65536');
    }
    await expectStillWorking();
  });

  it('a body just under the cap is read and checked normally', async () => {
    const env = keepalive({ body: { session: 's', pad: 'x'.repeat(60_000) } } as never);
    expect((await postSealed(env)).status).toBe(200); // unknown keys are dropped by the schema
    expect(rescuer.received[0]!.body).toEqual({ session: 's' });
  });

  it('wrong content type -> RSC_ERR_UNSUPPORTED_MEDIA_TYPE (415)', async () => {
    const sealed = sealEnvelope(keepalive(), origin.privateKey);
    for (const ct of ['text/plain', 'application/jsonx', 'application/x-www-form-urlencoded']) {
      expectRefusal(
        await post(sealed.bytes, { ...sealed.headers, 'content-type': ct }),
        'RSC_ERR_UNSUPPORTED_MEDIA_TYPE',
        false,
      );
    }
    // Parameters such as charset are fine.
    expect(
      (await post(sealed.bytes, { ...sealed.headers, 'content-type': 'application/json; charset=utf-8' }))
        .status,
    ).toBe(200);
  });

  it('wrong method -> RSC_ERR_METHOD_NOT_ALLOWED (405); unknown path -> RSC_ERR_NOT_FOUND (404)', async () => {
    const get = await rawPost(rescuer.server.url, '', {}, 'GET');
    expectRefusal(get, 'RSC_ERR_METHOD_NOT_ALLOWED', false);
    expect(get.headers.allow).toBe('POST');
    expectRefusal(
      await rawPost(rescuer.server.url, '{}', { 'content-type': 'application/json' }, 'PUT'),
      'RSC_ERR_METHOD_NOT_ALLOWED',
      false,
    );
    expectRefusal(
      await rawPost(rescuer.server.url, '{}', { 'content-type': 'application/json' }, 'POST', '/v1/other'),
      'RSC_ERR_NOT_FOUND',
      false,
    );
    expectRefusal(
      await rawPost(rescuer.server.url, '', {}, 'POST', '/v1/health'),
      'RSC_ERR_METHOD_NOT_ALLOWED',
      false,
    );
    await expectStillWorking();
  });

  it('garbage on the socket gets a 400 and the listener carries on', async () => {
    const { port } = new URL(rescuer.server.url);
    const answer = await new Promise<string>((resolve, reject) => {
      const sock = connect(Number(port), '127.0.0.1', () => sock.write('\x00\x01 NOT HTTP\r\n\r\n'));
      let data = '';
      sock.on('data', (d) => (data += d.toString()));
      sock.on('end', () => resolve(data));
      sock.on('error', reject);
    });
    expect(answer).toMatch(/^HTTP\/1\.1 400/);
    await expectStillWorking();
  });

  it('a client that disconnects mid-body leaves the server working', async () => {
    const { port } = new URL(rescuer.server.url);
    await new Promise<void>((resolve) => {
      const sock = connect(Number(port), '127.0.0.1', () => {
        sock.write(
          'POST /v1/rescue HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"v":1',
        );
        setTimeout(() => {
          sock.destroy();
          resolve();
        }, 50);
      });
    });
    await expectStillWorking();
  });
});
