// Header rewriting on the hot path: hop-by-hop removal (RFC 9110 §7.6.1), X-Forwarded-*,
// Via (RFC 9110 §7.6.3) and Host, on flat raw header arrays (no per-request objects).
import type { BlockList } from 'node:net';

/** What the prepared snapshot decides once per config change (not per request). */
export interface HeaderPolicy {
  /** `Via` value for HTTP/1.1 and HTTP/1.0 clients, e.g. "1.1 dotslash". */
  readonly via11: string;
  readonly via10: string;
  /** 0 = preserve the client's Host, 1 = the upstream URL's host, 2 = `fixedHost`. */
  readonly hostMode: 0 | 1 | 2;
  readonly fixedHost: string;
  /** Clients whose X-Forwarded-* we extend instead of replace; null = trust nobody. */
  readonly trusted: BlockList | null;
}

/**
 * Told to the upstream on a rescuer's fetch whose signed marker the front verified: the rescuer's
 * member id. The site may let such fetches (one per URL, they fill a rescuer's cache for many
 * clients) skip its own queue. The front drops any copy a client sends.
 */
export const VERIFIED_RESCUER_HEADER = 'x-dotslash-verified-rescuer';

// Request header classes. A switch on the name's length first keeps the common case (an
// ordinary header) to one integer compare and no lower-casing.
const KEEP = 0;
const DROP = 1;
const HOST = 2;
const XFF = 3;
const XFP = 4;
const XFH = 5;
const VIA = 6;
const TE = 7;
const CONNECTION = 8;
const CONTENT_LENGTH = 9;
const TRAILER = 10;
const TRANSFER_ENCODING = 11;

function classify(name: string): number {
  switch (name.length) {
    case 2:
      return name.toLowerCase() === 'te' ? TE : KEEP;
    case 3:
      return name.toLowerCase() === 'via' ? VIA : KEEP;
    case 4:
      return name.toLowerCase() === 'host' ? HOST : KEEP;
    case 5:
      // httpoxy (CVE-2016-5385): a "Proxy" request header becomes HTTP_PROXY in CGI upstreams.
      return name.toLowerCase() === 'proxy' ? DROP : KEEP;
    case 6:
      // Expect is answered by us (100-continue); undici refuses to send it anyway.
      return name.toLowerCase() === 'expect' ? DROP : KEEP;
    case 7: {
      const l = name.toLowerCase();
      return l === 'upgrade' ? DROP : l === 'trailer' ? TRAILER : KEEP;
    }
    case 10: {
      const l = name.toLowerCase();
      return l === 'connection' ? CONNECTION : l === 'keep-alive' ? DROP : KEEP;
    }
    case 14: {
      const l = name.toLowerCase();
      return l === 'content-length' ? CONTENT_LENGTH : l === 'http2-settings' ? DROP : isProxyHeader(l);
    }
    case 15:
      return name.toLowerCase() === 'x-forwarded-for' ? XFF : isProxyHeader(name.toLowerCase());
    case 16:
      return name.toLowerCase() === 'x-forwarded-host' ? XFH : isProxyHeader(name.toLowerCase());
    case 17: {
      const l = name.toLowerCase();
      return l === 'x-forwarded-proto'
        ? XFP
        : l === 'transfer-encoding'
          ? TRANSFER_ENCODING
          : isProxyHeader(l);
    }
    case 18: {
      // The signed rescuer-fetch marker is for our front alone (proxy/rescue/marker.ts): it was
      // verified there, or rescue is off and nobody checked it. Either way the upstream must not
      // see a claim it cannot verify.
      const l = name.toLowerCase();
      return l === 'x-dotslash-rescuer' ? DROP : isProxyHeader(l);
    }
    case 27: {
      // Ours to write (after checking a marker); a client's copy never passes.
      const l = name.toLowerCase();
      return l === VERIFIED_RESCUER_HEADER ? DROP : isProxyHeader(l);
    }
    default:
      return name.length > 6 ? isProxyHeader(name.toLowerCase()) : KEEP;
  }
}

/** Proxy-Authorization, Proxy-Connection, ...: meant for this hop only. */
function isProxyHeader(lower: string): number {
  return lower.startsWith('proxy-') ? DROP : KEEP;
}

/** Tokens of a Connection header that name further hop-by-hop headers (RFC 9110 §7.6.1). */
function connectionTokens(value: string, into: string[]): void {
  // Fast path for the values nearly every message carries (profiled: the split/trim below
  // was the costliest line of this module under bench/proxy's 4 KiB load).
  if (value.length <= 10) {
    const l = value.toLowerCase();
    if (l === 'keep-alive' || l === 'close' || l === 'upgrade') return;
  }
  for (const t of value.split(',')) {
    const tok = t.trim().toLowerCase();
    if (tok && tok !== 'close' && tok !== 'keep-alive' && tok !== 'upgrade') into.push(tok);
  }
}

function removeNamed(out: string[], from: number, names: string[]): void {
  let w = from;
  for (let r = from; r < out.length; r += 2) {
    if (names.includes(out[r]!.toLowerCase())) continue;
    out[w++] = out[r]!;
    out[w++] = out[r + 1]!;
  }
  out.length = w;
}

/** uri-host [ ":" port ] (RFC 3986 §3.2.2): reg-name characters or an IP literal. */
const HOST_RE = /^(?:[A-Za-z0-9\-._~!$&'()*+,;=%]+|\[[0-9A-Fa-f:.]+\])(?::\d{0,5})?$/;

/**
 * Facts about the last request `buildRequestHeaders` saw, so the caller need not build
 * `req.headers` (a lazily built object) just to read them. Overwritten on every call; read it
 * right after the call (single-threaded, no await in between).
 */
export const requestInfo = { contentLength: -1, chunked: false, host: '' };

/**
 * Build the upstream request headers from the client's raw headers. Index 0/1 always hold
 * `host` and its value (the caller overwrites [1] in "upstream" host mode, per chosen
 * upstream). Returns null for a missing (HTTP/1.1), duplicate or invalid Host, or a duplicate
 * Content-Length (RFC 9112 §3.2, §6.3: refuse with 400).
 * Cost: one pass over the raw array, lower-casing only names whose length matches a special one.
 */
export function buildRequestHeaders(
  raw: string[],
  policy: HeaderPolicy,
  remoteAddress: string,
  proto: string,
  httpVersion11: boolean,
  upgrade: boolean,
): string[] | null {
  const out: string[] = ['host', ''];
  let host: string | undefined;
  let xff: string | undefined;
  let xfp: string | undefined;
  let xfh: string | undefined;
  let via: string | undefined;
  let named: string[] | null = null;
  let sawLength = false;
  requestInfo.contentLength = -1;
  requestInfo.chunked = false;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const value = raw[i + 1]!;
    switch (classify(name)) {
      case KEEP:
        out.push(name, value);
        break;
      case HOST:
        // RFC 9112 §3.2: more than one Host, or an invalid one, is a 400.
        if (host !== undefined || !HOST_RE.test(value)) return null;
        host = value;
        break;
      case CONTENT_LENGTH:
        if (sawLength) return null;
        sawLength = true;
        requestInfo.contentLength = Number(value);
        out.push(name, value);
        break;
      case TRANSFER_ENCODING:
        // llhttp already refused CL+TE and a non-final "chunked" (RFC 9112 §6.3). Other
        // transfer-codings ("gzip, chunked") we could not re-frame faithfully: refuse them, as
        // nginx does (RFC 9112 §6.1 lets a server reject codings it does not understand).
        if (requestInfo.chunked || value.length !== 7 || value.toLowerCase() !== 'chunked') return null;
        requestInfo.chunked = true;
        break;
      case XFF:
        xff = xff === undefined ? value : `${xff}, ${value}`;
        break;
      case XFP:
        if (xfp === undefined) xfp = value;
        break;
      case XFH:
        if (xfh === undefined) xfh = value;
        break;
      case VIA:
        via = via === undefined ? value : `${via}, ${value}`;
        break;
      case TE:
        // Only "trailers" may travel past this hop (RFC 9110 §10.1.4).
        if (/(?:^|,)\s*trailers\s*(?:;|,|$)/i.test(value)) out.push('te', 'trailers');
        break;
      case CONNECTION:
        connectionTokens(value, (named ??= []));
        if (upgrade) out.push('connection', 'upgrade');
        break;
      case DROP:
        if (upgrade && name.length === 7) out.push(name, value); // Upgrade: websocket, for tunnels
        break;
      default: // TRAILER: we cannot forward request trailers through undici
        break;
    }
  }
  if (named !== null && named.length > 0) removeNamed(out, 2, named);
  if (host === undefined && httpVersion11) return null; // RFC 9112 §3.2: Host is required in 1.1

  const trusted = policy.trusted !== null && policy.trusted.check(remoteAddress, remoteFamily(remoteAddress));
  if (!trusted) {
    xfp = undefined;
    xfh = undefined;
  }
  out.push(
    'x-forwarded-for',
    trusted && xff !== undefined ? `${xff}, ${remoteAddress}` : remoteAddress,
    'x-forwarded-proto',
    xfp ?? proto,
  );
  if (host !== undefined || xfh !== undefined) out.push('x-forwarded-host', (xfh ?? host)!);
  const ourVia = httpVersion11 ? policy.via11 : policy.via10;
  out.push('via', via === undefined ? ourVia : `${via}, ${ourVia}`);

  requestInfo.host = host ?? '';
  out[1] = policy.hostMode === 2 ? policy.fixedHost : (host ?? '');
  return out;
}

function remoteFamily(addr: string): 'ipv4' | 'ipv6' {
  return addr.includes(':') ? 'ipv6' : 'ipv4';
}

/** A raw header from either upstream client: undici gives Buffers, h1-upstream.ts strings. */
export function latin1(v: Buffer | string): string {
  return typeof v === 'string' ? v : v.toString('latin1');
}

/**
 * Filter the upstream's raw response headers (Buffers from undici, latin1 strings from h1-upstream.ts) into a flat string array
 * for `res.writeHead`, dropping hop-by-hop fields and appending our Via. `chunkable` says
 * whether the client response may be chunked (HTTP/1.1 client, a body allowed), so a Trailer
 * field can stay; it is dropped anyway if the upstream sent Content-Length.
 * latin1 round-trips the exact bytes (Node writes header strings as latin1).
 */
export function filterResponseHeaders(raw: Buffer[] | string[], via: string, chunkable: boolean): string[] {
  const out: string[] = [];
  let upstreamVia: string | undefined;
  let named: string[] | null = null;
  let trailerAt = -1;
  let hasLength = false;
  for (let i = 0; i < raw.length; i += 2) {
    const name = latin1(raw[i]!);
    const value = latin1(raw[i + 1]!);
    switch (classify(name)) {
      case KEEP:
      case HOST:
      case XFF:
      case XFP:
      case XFH:
        out.push(name, value);
        break;
      case CONTENT_LENGTH:
        hasLength = true;
        out.push(name, value);
        break;
      case VIA:
        upstreamVia = upstreamVia === undefined ? value : `${upstreamVia}, ${value}`;
        break;
      case TRAILER:
        // Node refuses a Trailer field unless the response is chunked (ERR_HTTP_TRAILER_INVALID).
        if (chunkable) {
          trailerAt = out.length;
          out.push(name, value);
        }
        break;
      case CONNECTION:
        connectionTokens(value, (named ??= []));
        break;
      default: // DROP, TE
        break;
    }
  }
  if (trailerAt >= 0 && hasLength) out.splice(trailerAt, 2);
  if (named !== null && named.length > 0) removeNamed(out, 0, named);
  out.push('via', upstreamVia === undefined ? via : `${upstreamVia}, ${via}`);
  return out;
}

/** Trailer fields from undici (Buffers) to the object `res.addTrailers` wants. */
export function trailersObject(raw: Buffer[] | string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i < raw.length; i += 2) out[latin1(raw[i]!)] = latin1(raw[i + 1]!);
  return out;
}
