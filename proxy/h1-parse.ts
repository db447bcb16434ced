// Strict HTTP/1.1 response framing for the raw-socket upstream client (h1-upstream.ts): the
// response head (status line, header fields) and a streaming chunked-body decoder. Anything
// outside RFC 9112's grammar is refused (the caller answers 502 or cuts the response): obs-fold,
// bare LF, control bytes, duplicate Content-Length, Content-Length with Transfer-Encoding, and
// transfer-codings other than plain "chunked".

/** status-line = HTTP-version SP status-code SP [ reason-phrase ] (RFC 9112 §4). */
const STATUS_LINE = /^HTTP\/1\.([01]) ([1-9]\d\d)(?: ([\t\x20-\x7e\x80-\xff]*))?$/;
/**
 * Header block: field-name ":" field-value lines joined by CRLF. A line starting with SP/HTAB
 * (obs-fold), a bare CR or LF, or a control byte fails the match. Unambiguous, so linear.
 */
const FIELD_LINES = /^(?:[!#$%&'*+\-.^_`|~0-9A-Za-z]+:[\t\x20-\x7e\x80-\xff]*(?:\r\n|$))*$/;
const CONTENT_LENGTH = /^\d{1,15}$/;
/** A Connection field value naming `close` among its tokens (any case). */
export const CLOSE_TOKEN = /(?:^|,)[ \t]*close[ \t]*(?:,|$)/i;

/**
 * What `parseResponseHead` found, besides the header array it returns. One reused object (the
 * pattern of headers.ts requestInfo): read it right after the call.
 */
export const responseInfo = {
  status: 0,
  reason: '',
  /** HTTP/1.<minor> */
  minor: 0,
  /** -1 = no Content-Length. */
  contentLength: -1,
  chunked: false,
  /** The upstream asked to close after this response (Connection: close, or HTTP/1.0). */
  close: false,
  /** Why the head was refused (when parseResponseHead returned null). */
  error: '',
};

/** SP / HTAB trimmed from both ends (String#trim would also eat latin1 NBSP and others). */
function trimOws(s: string): string {
  let a = 0;
  let b = s.length;
  while (a < b && (s.charCodeAt(a) === 32 || s.charCodeAt(a) === 9)) a++;
  while (b > a && (s.charCodeAt(b - 1) === 32 || s.charCodeAt(b - 1) === 9)) b--;
  return a === 0 && b === s.length ? s : s.slice(a, b);
}

/**
 * Split a validated header block ("name: value\r\n..." without the final CRLF) into a flat
 * [name, value, ...] array; null if it is not valid field lines.
 */
export function parseFieldLines(block: string): string[] | null {
  const out: string[] = [];
  if (block.length === 0) return out;
  if (!FIELD_LINES.test(block)) return null;
  let pos = 0;
  const end = block.length;
  while (pos < end) {
    let eol = block.indexOf('\r\n', pos);
    if (eol < 0) eol = end;
    const colon = block.indexOf(':', pos);
    out.push(block.slice(pos, colon), trimOws(block.slice(colon + 1, eol)));
    pos = eol + 2;
  }
  return out;
}

/**
 * Parse a response head (latin1 text up to, not including, the blank line's CRLF CRLF). Returns
 * the raw header array and fills `responseInfo`; null with `responseInfo.error` if invalid.
 * Framing rules (RFC 9112 §6.1, §6.3): Content-Length twice (even if equal), Content-Length with
 * Transfer-Encoding, or any transfer-coding but a single "chunked" is refused.
 */
export function parseResponseHead(text: string): string[] | null {
  const info = responseInfo;
  let eol = text.indexOf('\r\n');
  if (eol < 0) eol = text.length;
  const m = STATUS_LINE.exec(text.slice(0, eol));
  if (m === null) return refuse('invalid status line');
  info.minor = m[1] === '1' ? 1 : 0;
  info.status = Number(m[2]);
  info.reason = m[3] ?? '';
  const headers = parseFieldLines(eol + 2 < text.length ? text.slice(eol + 2) : '');
  if (headers === null) return refuse('invalid header field line (obs-fold, bare CR/LF or bad bytes)');
  let contentLength = -1;
  let te: string | null = null;
  let close = info.minor === 0;
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i]!;
    const len = name.length;
    if (len === 14 && name.toLowerCase() === 'content-length') {
      if (contentLength !== -1) return refuse('duplicate Content-Length');
      const v = headers[i + 1]!;
      if (!CONTENT_LENGTH.test(v)) return refuse('invalid Content-Length');
      contentLength = Number(v);
    } else if (len === 17 && name.toLowerCase() === 'transfer-encoding') {
      if (te !== null) return refuse('duplicate Transfer-Encoding');
      te = headers[i + 1]!;
    } else if (len === 10 && name.toLowerCase() === 'connection') {
      if (CLOSE_TOKEN.test(headers[i + 1]!)) close = true;
    }
  }
  info.chunked = false;
  if (te !== null) {
    if (contentLength !== -1) return refuse('Content-Length with Transfer-Encoding');
    if (te.length !== 7 || te.toLowerCase() !== 'chunked')
      return refuse(`unsupported Transfer-Encoding "${te}"`);
    info.chunked = true;
  }
  info.contentLength = contentLength;
  info.close = close;
  info.error = '';
  return headers;
}

function refuse(why: string): null {
  responseInfo.error = why;
  return null;
}

// ---- chunked body (RFC 9112 §7.1) ------------------------------------------------------------

const SIZE_FIRST = 0;
const SIZE = 1;
const EXT = 2;
const SIZE_LF = 3;
const DATA = 4;
const DATA_CR = 5;
const DATA_LF = 6;
const TRAILERS = 7;
const DONE = 8;

/** Longest chunk-size in hex digits (2^48 bytes: more than any body, far below 2^53). */
const MAX_SIZE_DIGITS = 12;
/** Longest chunk extension kept scanning before we call it abuse. */
const MAX_EXT = 4096;

/** Receives the decoded body. `data` is a view of the read buffer, valid during the call only. */
export interface ChunkSink {
  chunkData(data: Buffer): void;
}

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  const l = c | 0x20;
  if (l >= 97 && l <= 102) return l - 87;
  return -1;
}

/**
 * A streaming, strict chunked-body decoder. `feed` consumes bytes, hands data to the sink and
 * returns how many bytes it used: less than given means the body ended there (`done`), -1 means
 * bad framing (`error` says why). Trailer fields are kept (at most `maxTrailerBytes`).
 */
export class ChunkedDecoder {
  private state = SIZE_FIRST;
  private size = 0;
  private digits = 0;
  private ext = 0;
  private trailerText = '';
  trailers: string[] | null = null;
  error = '';

  constructor(private readonly maxTrailerBytes: number) {}

  get done(): boolean {
    return this.state === DONE;
  }

  reset(): void {
    this.state = SIZE_FIRST;
    this.size = 0;
    this.digits = 0;
    this.ext = 0;
    this.trailerText = '';
    this.trailers = null;
    this.error = '';
  }

  feed(src: Buffer, off: number, end: number, sink: ChunkSink): number {
    const start = off;
    while (off < end) {
      switch (this.state) {
        case DATA: {
          const take = Math.min(this.size, end - off);
          sink.chunkData(src.subarray(off, off + take));
          off += take;
          this.size -= take;
          if (this.size === 0) this.state = DATA_CR;
          break;
        }
        case SIZE_FIRST:
        case SIZE: {
          const c = src[off]!;
          const v = hexValue(c);
          if (v >= 0) {
            if (++this.digits > MAX_SIZE_DIGITS) return this.fail('chunk size too large');
            this.size = this.size * 16 + v;
            this.state = SIZE;
          } else if (this.state === SIZE_FIRST) {
            return this.fail('chunk size expected');
          } else if (c === 0x3b /* ; */) {
            this.state = EXT;
          } else if (c === 0x0d) {
            this.state = SIZE_LF;
          } else {
            return this.fail('invalid byte in chunk size');
          }
          off++;
          break;
        }
        case EXT: {
          const c = src[off]!;
          if (c === 0x0d) this.state = SIZE_LF;
          else if ((c < 0x20 && c !== 0x09) || c === 0x7f)
            return this.fail('invalid byte in chunk extension');
          else if (++this.ext > MAX_EXT) return this.fail('chunk extension too long');
          off++;
          break;
        }
        case SIZE_LF:
          if (src[off] !== 0x0a) return this.fail('bare CR after chunk size');
          off++;
          this.ext = 0;
          this.digits = 0;
          this.state = this.size === 0 ? TRAILERS : DATA;
          break;
        case DATA_CR:
          if (src[off] !== 0x0d) return this.fail('chunk data longer than its size');
          off++;
          this.state = DATA_LF;
          break;
        case DATA_LF:
          if (src[off] !== 0x0a) return this.fail('bare CR after chunk data');
          off++;
          this.state = SIZE_FIRST;
          break;
        case TRAILERS: {
          // Nearly always just CRLF: keep the latin1 text until the blank line.
          const room = this.maxTrailerBytes - this.trailerText.length;
          const take = Math.min(end - off, room + 4);
          const text = this.trailerText + src.toString('latin1', off, off + take);
          const blank = text === '\r\n' || text.startsWith('\r\n') ? 0 : text.indexOf('\r\n\r\n');
          if (blank < 0) {
            if (text.length > this.maxTrailerBytes) return this.fail('trailer section too large');
            this.trailerText = text;
            off += take;
            break;
          }
          const used = blank === 0 ? 2 : blank + 4;
          off += used - this.trailerText.length;
          if (blank > 0) {
            const fields = parseFieldLines(text.slice(0, blank));
            if (fields === null) return this.fail('invalid trailer field line');
            this.trailers = fields;
          }
          this.trailerText = '';
          this.state = DONE;
          return off - start;
        }
        default: // DONE
          return off - start;
      }
    }
    return off - start;
  }

  private fail(why: string): number {
    this.error = why;
    return -1;
  }
}
