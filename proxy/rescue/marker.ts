// The rescuer-fetch marker (DESIGN.md "Request paths"): a signed header on a rescuer's fetch
// from an origin's front, so that front proxies it straight to its upstream (no redirect loops).
import type { KeyObject } from 'node:crypto';
import type { Dispatcher } from 'undici';
import { signBytes, verifyBytes, type MemberIdentity } from '../../rescue-protocol/keys.js';
import { DEFAULT_RESCUER_MARKER_HEADER } from '../redirect/index.js';

/** Header name (lower case), the one the redirector treats as "not redirectable". */
export const MARKER_HEADER = DEFAULT_RESCUER_MARKER_HEADER;
/** A marker is accepted this far either side of the receiver's wall clock (members run NTP). */
export const MARKER_SKEW_MS = 60_000;

/** The exact text signed: rescuer id, epoch ms, method and request target, newline-separated. */
function signedText(rescuerId: string, epochMs: number, method: string, path: string): Buffer {
  return Buffer.from(`${rescuerId}\n${epochMs}\n${method}\n${path}`, 'utf8');
}

/** Header value `<rescuerId> <epochMs> <base64url signature>` for one fetch. */
export function signMarker(self: MemberIdentity, method: string, path: string, epochMs = Date.now()): string {
  return `${self.id} ${epochMs} ${signBytes(signedText(self.id, epochMs, method, path), self.privateKey)}`;
}

export type MarkerCheck =
  | { readonly ok: true; readonly rescuer: string }
  | { readonly ok: false; readonly reason: 'malformed' | 'unknown signer' | 'expired' | 'bad signature' };

const EPOCH = /^\d{1,15}$/;

/** Check a marker header value against `method` and `path` (the request target as received). */
export function verifyMarker(
  value: string,
  method: string,
  path: string,
  peers: ReadonlyMap<string, KeyObject>,
  nowMs = Date.now(),
): MarkerCheck {
  const a = value.indexOf(' ');
  const b = a < 0 ? -1 : value.indexOf(' ', a + 1);
  if (a <= 0 || b < 0 || value.indexOf(' ', b + 1) >= 0) return { ok: false, reason: 'malformed' };
  const id = value.slice(0, a);
  const ts = value.slice(a + 1, b);
  if (!EPOCH.test(ts)) return { ok: false, reason: 'malformed' };
  const key = peers.get(id);
  if (key === undefined) return { ok: false, reason: 'unknown signer' };
  const epochMs = Number(ts);
  if (Math.abs(nowMs - epochMs) > MARKER_SKEW_MS) return { ok: false, reason: 'expired' };
  // verifyBytes refuses non-canonical signature text itself (and never throws).
  if (!verifyBytes(signedText(id, epochMs, method, path), value.slice(b + 1), key)) {
    return { ok: false, reason: 'bad signature' };
  }
  return { ok: true, rescuer: id };
}

/**
 * An undici interceptor for a rescuer's pool to one origin front: every request leaves with
 * Host = the origin's site name and a fresh marker signed over its method and path. Done at
 * dispatch time because the marker covers the path actually sent; it replaces any marker or
 * Host a client put in the request.
 */
export function markerInterceptor(
  self: () => MemberIdentity | null,
  siteHost: string,
): Dispatcher.DispatcherComposeInterceptor {
  return (dispatch) => (opts, handler) => {
    const id = self();
    const headers = withoutNames(opts.headers, 'host', MARKER_HEADER);
    headers.host = siteHost;
    if (id !== null) headers[MARKER_HEADER] = signMarker(id, opts.method, opts.path);
    return dispatch({ ...opts, headers }, handler);
  };
}

/** A copy of request headers (object, flat array or iterable of pairs) minus two names. */
function withoutNames(
  h: Dispatcher.DispatchOptions['headers'],
  n1: string,
  n2: string,
): Record<string, string> {
  const out: Record<string, string> = {};
  const put = (name: string, value: unknown): void => {
    const l = name.toLowerCase();
    if (l === n1 || l === n2 || value === undefined) return;
    const v = Array.isArray(value) ? value.join(', ') : String(value);
    out[l] = out[l] === undefined ? v : `${out[l]}, ${v}`;
  };
  if (h == null) return out;
  if (Array.isArray(h)) {
    if (h.length > 0 && Array.isArray(h[0]))
      for (const [k, v] of h as unknown as [string, string][]) put(k, v);
    else for (let i = 0; i + 1 < h.length; i += 2) put(String(h[i]), h[i + 1]);
  } else if (typeof (h as Iterable<unknown>)[Symbol.iterator] === 'function') {
    for (const [k, v] of h as Iterable<[string, string]>) put(k, v);
  } else {
    for (const k of Object.keys(h)) put(k, (h as Record<string, unknown>)[k]);
  }
  return out;
}
