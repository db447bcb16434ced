// Request headers for the cache's fetches from an origin: hop-by-hop removed (RFC 9110
// §7.6.1), Host set to the origin's, the caller's marker headers added, and for shared
// (cacheable) fetches everything that would make the answer one client's own removed.
import type { IncomingMessage } from 'node:http';

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'host',
  'expect',
  'http2-settings',
]);

/**
 * Left out of a shared fetch: credentials (the answer is stored for everyone: an anonymous
 * answer is the only safe one; requests with Authorization or a session cookie never get
 * here), ranges and client validators (we want the whole representation), and the client's
 * own cache directives (a reload during a flash crowd must not reach the origin; RFC 9111
 * §5.2.1 lets a cache ignore them, as nginx does by default).
 */
export const STRIPPED_FOR_SHARED = new Set([
  'cookie',
  'authorization',
  'range',
  'if-range',
  'if-match',
  'if-none-match',
  'if-modified-since',
  'if-unmodified-since',
  'cache-control',
  'pragma',
  'content-length',
]);

export function fetchHeaders(
  req: IncomingMessage,
  host: string,
  marker: Readonly<Record<string, string>> | undefined,
  shared: boolean,
): Record<string, string> {
  const raw = req.rawHeaders;
  const out: Record<string, string> = {};
  let connection: string[] | null = null;
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i]!.length === 10 && raw[i]!.toLowerCase() === 'connection') {
      connection ??= [];
      connection.push(...raw[i + 1]!.toLowerCase().split(/\s*,\s*/));
    }
  }
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    if (HOP_BY_HOP.has(name) || name.startsWith('proxy-')) continue;
    if (shared && STRIPPED_FOR_SHARED.has(name)) continue;
    if (connection !== null && connection.includes(name)) continue;
    const v = raw[i + 1]!;
    const prev = out[name];
    out[name] = prev === undefined ? v : prev + (name === 'cookie' ? '; ' : ', ') + v;
  }
  if (!shared) {
    const addr = req.socket.remoteAddress;
    if (addr !== undefined)
      out['x-forwarded-for'] = out['x-forwarded-for'] ? `${out['x-forwarded-for']}, ${addr}` : addr;
  }
  out.host = host;
  // Last, so a client cannot forge or override the marker.
  if (marker !== undefined) for (const k in marker) out[k.toLowerCase()] = marker[k]!;
  return out;
}

/** Does the Cookie header carry one of `names`? */
export function hasCookie(cookie: string, names: readonly string[]): boolean {
  for (const part of cookie.split(';')) {
    const eq = part.indexOf('=');
    const name = (eq < 0 ? part : part.slice(0, eq)).trim();
    if (names.includes(name)) return true;
  }
  return false;
}
