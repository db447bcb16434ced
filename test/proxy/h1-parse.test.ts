// Unit tests of the fast upstream client's parsers (proxy/h1-parse.ts): every split point of a
// chunked body, strict refusals, and the response head's framing facts.
import { describe, expect, it } from 'vitest';
import { ChunkedDecoder, parseResponseHead, responseInfo } from '../../proxy/h1-parse.js';

/** Feed `wire` split at `cuts`; returns the decoded body, trailers, bytes used, or the error. */
function decode(
  wire: string,
  cuts: number[] = [],
): { body: string; trailers: string[] | null; used: number; error: string } {
  const dec = new ChunkedDecoder(1024);
  const src = Buffer.from(wire, 'latin1');
  let body = '';
  const sink = { chunkData: (d: Buffer) => (body += d.toString('latin1')) };
  let used = 0;
  const points = [0, ...cuts, src.length];
  for (let i = 0; i + 1 < points.length && !dec.done; i++) {
    const n = dec.feed(src, points[i]!, points[i + 1]!, sink);
    if (n < 0) return { body, trailers: null, used, error: dec.error };
    used += n;
  }
  return { body, trailers: dec.trailers, used: dec.done ? used : -1, error: '' };
}

describe('ChunkedDecoder', () => {
  const wire = '4;name="v"\r\nwiki\r\n5\r\npedia\r\nA\r\n0123456789\r\n0\r\nX-Sum: 7\r\nX-B:  b \r\n\r\n';

  it('decodes the same at every split point, and stops at the end of the message', () => {
    for (let a = 0; a <= wire.length; a++) {
      const r = decode(wire + 'NEXT', [a]);
      expect(r.error).toBe('');
      expect(r.body).toBe('wikipedia0123456789');
      expect(r.trailers).toEqual(['X-Sum', '7', 'X-B', 'b']);
      expect(r.used).toBe(wire.length);
    }
  });

  it('decodes byte by byte', () => {
    const r = decode(
      wire,
      Array.from({ length: wire.length }, (_, i) => i),
    );
    expect(r.body).toBe('wikipedia0123456789');
    expect(r.used).toBe(wire.length);
  });

  it('ends after "0\\r\\n\\r\\n" with no trailers', () => {
    const r = decode('3\r\nabc\r\n0\r\n\r\n');
    expect(r).toEqual({ body: 'abc', trailers: null, used: 13, error: '' });
  });

  const bad: [string, string][] = [
    ['no size', '\r\n'],
    ['a non-hex size', 'g\r\n'],
    ['a space after the size', '3 \r\nabc\r\n'],
    ['a bare LF after the size', '3\nabc\r\n'],
    ['data longer than the size', '3\r\nabcd\r\n'],
    ['a bare LF after the data', '3\r\nabc\n0\r\n\r\n'],
    ['a size over 12 hex digits', '1000000000000\r\n'],
    ['a control byte in an extension', '3;a\x01\r\nabc\r\n'],
    ['an obs-folded trailer', '0\r\nX-A: 1\r\n 2\r\n\r\n'],
  ];
  for (const [what, w] of bad) {
    it(`refuses ${what}`, () => {
      expect(decode(w).error).not.toBe('');
    });
  }

  it('refuses a trailer section past its limit', () => {
    expect(decode(`0\r\nX-A: ${'a'.repeat(2000)}`).error).toMatch(/too large/);
  });
});

describe('parseResponseHead', () => {
  it('reads the status, reason, framing and connection facts', () => {
    const h = parseResponseHead(
      'HTTP/1.1 200 OK\r\nContent-Length: 12\r\nX-A:  spaced value \t\r\nConnection: keep-alive, close',
    );
    expect(h).toEqual(['Content-Length', '12', 'X-A', 'spaced value', 'Connection', 'keep-alive, close']);
    expect(responseInfo).toMatchObject({
      status: 200,
      reason: 'OK',
      minor: 1,
      contentLength: 12,
      chunked: false,
      close: true,
    });
  });

  it('HTTP/1.0 closes; an empty reason and no headers are fine; chunked is recognised', () => {
    expect(parseResponseHead('HTTP/1.0 404 ')).toEqual([]);
    expect(responseInfo).toMatchObject({ status: 404, reason: '', close: true, contentLength: -1 });
    expect(parseResponseHead('HTTP/1.1 204')).toEqual([]);
    expect(parseResponseHead('HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked')).not.toBeNull();
    expect(responseInfo.chunked).toBe(true);
  });

  it('keeps latin1 obs-text bytes in values as they are', () => {
    expect(parseResponseHead('HTTP/1.1 200 OK\r\nX-N: caf\xe9\xa0')).toEqual(['X-N', 'caf\xe9\xa0']);
  });

  const bad = [
    'HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1',
    'HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked',
    'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked',
    'HTTP/1.1 200 OK\r\nTransfer-Encoding: identity',
    'HTTP/1.1 200 OK\r\nContent-Length: -1',
    'HTTP/1.1 200 OK\r\nContent-Length: 1 2',
    'HTTP/1.1 200 OK\r\nX-A: 1\r\n\tfolded',
    'HTTP/1.1 200 OK\r\nX-A: 1\rX-B: 2',
    'HTTP/1.1 200 OK\r\nX A: 1',
    'HTTP/1.1 200 OK\r\n: empty-name',
    'HTTP/1.1 200 OK\r\nX-A: nul\x00',
    'HTTP/1.1 99 Low',
    'HTTP/1.2 200 OK',
    'http/1.1 200 OK',
    'HTTP/1.1  200 OK',
    'HTTP/1.1 200 OK\n',
  ];
  for (const head of bad) {
    it(`refuses ${JSON.stringify(head)}`, () => {
      expect(parseResponseHead(head)).toBeNull();
      expect(responseInfo.error).not.toBe('');
    });
  }
});
