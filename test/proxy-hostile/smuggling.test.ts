// Request smuggling and malformed framing: each attempt is refused with 400, the connection is
// closed (so nothing after it on the wire is read as a second request), and the upstream
// never sees the request nor the request hidden in it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bodyOf, rawExchange, startProxy, startUpstream, waitFor } from './helpers.js';
import type { StartedProxy, Upstream } from './helpers.js';

let upstream: Upstream;
let evil: Upstream;
let front: StartedProxy;

beforeAll(async () => {
  upstream = await startUpstream();
  evil = await startUpstream({}, '127.0.0.2');
  front = await startProxy([upstream.url]);
});
afterAll(async () => {
  await front?.close();
  await upstream?.close();
  await evil?.close();
});

/** A request that a desynchronised parser behind us would read as a second request. */
const SMUGGLED = 'GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n';

/**
 * Attempts that RFC 9112 says a server must reject (or that Node's strict parser rejects and
 * we keep rejected). Duplicate Content-Length with *equal* values may be collapsed per
 * RFC 9112 §6.3 step 5, but we refuse it too: the strict choice costs nothing legitimate
 * clients send, and it is what llhttp does, so no lenient parser ever sees it.
 */
const refused: Record<string, string> = {
  // RFC 9112 §6.1: CL with TE "ought to be handled as an error"; a proxy MUST NOT forward both.
  'Content-Length and Transfer-Encoding together':
    'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 40\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n' +
    SMUGGLED,
  'Transfer-Encoding before Content-Length':
    'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n' +
    SMUGGLED,
  'duplicate Content-Length, different values':
    'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nContent-Length: 36\r\n\r\n' + SMUGGLED,
  'duplicate Content-Length, equal values':
    'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello' + SMUGGLED,
  'Content-Length list "5, 5"': 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\nhello' + SMUGGLED,
  'Content-Length with sign': 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\nhello' + SMUGGLED,
  'Content-Length not a number': 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5x\r\n\r\nhello' + SMUGGLED,
  'Transfer-Encoding: chunked, identity':
    'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n' + SMUGGLED,
  'Transfer-Encoding: identity':
    'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n' + SMUGGLED,
  'Transfer-Encoding: xchunked':
    'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n' + SMUGGLED,
  'Transfer-Encoding: chunked with trailing tab':
    'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\t\r\n\r\n0\r\n\r\n' + SMUGGLED,
  'Transfer-Encoding with vertical tab':
    'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\x0bchunked\r\n\r\n0\r\n\r\n' + SMUGGLED,
  'space before the colon (RFC 9112 §5.1 MUST 400)':
    'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n' + SMUGGLED,
  'Transfer-Encoding folded onto the next line (obs-fold)':
    'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n' + SMUGGLED,
  'header hidden in a folded continuation line':
    'POST / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n' +
    SMUGGLED,
  'Transfer-Encoding twice':
    'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
  'NUL in a header value': 'GET / HTTP/1.1\r\nHost: a\r\nX-A: b\x00c\r\n\r\n',
  'NUL in a header name': 'GET / HTTP/1.1\r\nHost: a\r\nX\x00A: b\r\n\r\n',
  'bare CR in a header value':
    'GET / HTTP/1.1\r\nHost: a\r\nX-A: b\rTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
  'bare LF ending a header line':
    'GET / HTTP/1.1\r\nHost: a\r\nX-A: b\nContent-Length: 36\r\n\r\n' + SMUGGLED,
  'bare LF line endings throughout': 'GET / HTTP/1.1\nHost: a\n\n',
  'space inside a header name': 'GET / HTTP/1.1\r\nHost: a\r\nContent Length: 5\r\n\r\n',
  'bad characters in the method': 'G{T / HTTP/1.1\r\nHost: a\r\n\r\n',
  'unknown method token': 'FOO / HTTP/1.1\r\nHost: a\r\n\r\n',
  'space inside the request target': 'GET /a b HTTP/1.1\r\nHost: a\r\n\r\n',
  'unsupported HTTP version 1.2': 'GET / HTTP/1.2\r\nHost: a\r\n\r\n',
  // RFC 9112 §3.2: a server MUST respond 400 to an HTTP/1.1 request without Host, with more
  // than one Host, or with an invalid Host value.
  'HTTP/1.1 without Host': 'GET / HTTP/1.1\r\n\r\n',
  'two Host headers': 'GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n',
  'Host with a space': 'GET / HTTP/1.1\r\nHost: a b\r\n\r\n',
  'Host with a slash': 'GET / HTTP/1.1\r\nHost: a/b\r\n\r\n',
};

/**
 * Bad chunked framing inside the body. The head before it is valid, so a streaming proxy may
 * already have forwarded the head when the parser reaches the bad bytes: the upstream request
 * must then be aborted (never complete) rather than see a body the client did not frame.
 */
const refusedInBody: Record<string, string> = {
  'chunk size not hex':
    'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n',
  'negative chunk size':
    'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n',
  'chunk size overflowing 64 bits':
    'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffff1\r\nhello\r\n0\r\n\r\n',
  'chunk size with 0x prefix':
    'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n',
  'chunk size followed by space':
    'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5 \r\nhello\r\n0\r\n\r\n',
  'chunk size ended by bare LF':
    'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n',
  'chunk data longer than its size':
    'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX\r\n0\r\n\r\n',
  // CVE-2024-22019: unbounded chunk extensions made Node read without limit; must be refused.
  'a 100 KB chunk extension': `POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;${'x'.repeat(100_000)}\r\nhello\r\n0\r\n\r\n`,
  'NUL in a chunk extension':
    'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;a\x00=b\r\nhello\r\n0\r\n\r\n',
};

describe('request smuggling and malformed framing', () => {
  it('control: a well-formed chunked request with the same shape is forwarded', async () => {
    const before = upstream.seen.length;
    const res = await rawExchange(
      front.port,
      'POST /ok HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n',
    );
    expect(res.status).toBe(200);
    expect(upstream.seen.length).toBe(before + 1);
    expect(upstream.seen.at(-1)).toMatchObject({ method: 'POST', url: '/ok', bodyBytes: 5, complete: true });
  });

  for (const [name, payload] of Object.entries(refused)) {
    it(`refuses ${name} with 400 and closes the connection`, async () => {
      const before = upstream.seen.length;
      const res = await rawExchange(front.port, payload);
      expect(res.statuses, res.text).toEqual([400]);
      expect(bodyOf(res.text)).toContain('PRX_ERR_BAD_REQUEST');
      expect(res.closed).toBe(true);
      expect(upstream.seen.length).toBe(before);
      expect(upstream.seen.some((s) => s.url === '/smuggled')).toBe(false);
    });
  }

  for (const [name, payload] of Object.entries(refusedInBody)) {
    it(`refuses ${name} with 400, closes, and aborts any forwarded upstream request`, async () => {
      const before = upstream.seen.length;
      const res = await rawExchange(front.port, payload);
      expect(res.statuses, res.text).toEqual([400]);
      expect(bodyOf(res.text)).toContain('PRX_ERR_BAD_REQUEST');
      expect(res.closed).toBe(true);
      const mine = upstream.seen.slice(before);
      expect(await waitFor(() => mine.every((s) => s.closed), 3_000)).toBe(true);
      expect(mine.filter((s) => s.complete)).toEqual([]);
      expect(mine.every((s) => s.bodyBytes <= 5)).toBe(true);
    });
  }

  it('bad chunk framing after the head was surely forwarded: upstream request aborted, client gets 400', async () => {
    const before = upstream.seen.length;
    const res = await rawExchange(
      front.port,
      [
        'POST /late-bad-chunk HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n',
        'zz\r\nworld\r\n0\r\n\r\n' + SMUGGLED,
      ],
      { gapMs: 300 },
    );
    expect(res.statuses, res.text).toEqual([400]);
    expect(res.closed).toBe(true);
    const mine = upstream.seen.slice(before);
    expect(mine.map((s) => s.url)).toEqual(['/late-bad-chunk']);
    expect(await waitFor(() => mine[0]!.closed, 3_000)).toBe(true);
    expect(mine[0]!.complete).toBe(false);
    expect(upstream.seen.some((s) => s.url === '/smuggled')).toBe(false);
  });

  it('refuses absolute-form to another host with 400 and is no open proxy', async () => {
    const before = upstream.seen.length;
    const res = await rawExchange(
      front.port,
      `GET http://127.0.0.2:${evil.port}/steal HTTP/1.1\r\nHost: 127.0.0.1:${front.port}\r\n\r\n`,
    );
    expect(res.status, res.text).toBe(400);
    expect(bodyOf(res.text)).toContain('PRX_ERR_BAD_REQUEST');
    expect(res.closed).toBe(true);
    expect(evil.accepted).toBe(0);
    expect(upstream.seen.length).toBe(before);
  });

  it('refuses CONNECT: no tunnel is opened anywhere', async () => {
    const res = await rawExchange(
      front.port,
      `CONNECT 127.0.0.2:${evil.port} HTTP/1.1\r\nHost: 127.0.0.2:${evil.port}\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n`,
    );
    expect(res.closed).toBe(true);
    expect(res.status === null || (res.status >= 400 && res.status < 500), res.text).toBe(true);
    expect(evil.accepted).toBe(0);
  });

  it('the proxy still serves normal requests after all of the above', async () => {
    const res = await rawExchange(front.port, 'GET /after HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
    expect(res.status).toBe(200);
    expect(front.proxy.ready).toBe(true);
  });
});
