// The redirect state the controller hands the proxy (STYLE.md 1, 6): an immutable
// RedirectSnapshot, and its prepared form, in which everything a per-request decision needs
// (Location prefixes, cookie needles, excluded prefixes, weights, token buckets) is decided once.
import { cookieNeedles } from './cookies.js';
import { TokenBucket } from './token-bucket.js';

/** One rescue session as the origin's redirector sees it. */
export interface RedirectSession {
  /** Session id from the rescuer's 200 OK. */
  readonly id: string;
  /** The rescuer's virtual host for this session, e.g. "vh3.rescue-b.example". */
  readonly vhost: string;
  readonly scheme: 'http' | 'https';
  /** Omitted, or the scheme's default port, gives a Location without a port. */
  readonly port?: number;
  /** Rr: redirects per second this rescuer allows us (0 = none for now). */
  readonly rate: number;
}

export interface RedirectSnapshot {
  /** Pr: probability that an eligible request is redirected, 0..1. */
  readonly pr: number;
  readonly sessions: readonly RedirectSession[];
  /** Cookie names that mark a personalised request ("name", "prefix*", or "*" = any cookie). */
  readonly sessionCookies: readonly string[];
  /**
   * Path prefixes never redirected. An entry ending in "/" matches every path starting with
   * it; any other entry matches that path and what lies below it ("/admin" matches "/admin",
   * "/admin/x", "/admin?y", not "/administrator").
   */
  readonly excludedPaths: readonly string[];
  /** Header a rescuer's fetch carries (its signature is checked elsewhere; here only presence). */
  readonly rescuerMarkerHeader: string;
}

/** ACME http-01 challenges must be answered by the origin itself. */
export const DEFAULT_EXCLUDED_PATHS: readonly string[] = Object.freeze(['/.well-known/acme-challenge/']);
export const DEFAULT_RESCUER_MARKER_HEADER = 'x-dotslash-rescuer';

/**
 * A complete, frozen snapshot from partial input: omitted fields take their defaults (Pr 0, no
 * sessions, no session cookies, DEFAULT_EXCLUDED_PATHS, DEFAULT_RESCUER_MARKER_HEADER).
 * Validation happens in prepare().
 */
export function redirectSnapshot(input: Partial<RedirectSnapshot> = {}): RedirectSnapshot {
  return Object.freeze({
    pr: input.pr ?? 0,
    sessions: Object.freeze((input.sessions ?? []).map((s) => Object.freeze({ ...s }))),
    sessionCookies: Object.freeze([...(input.sessionCookies ?? [])]),
    excludedPaths: Object.freeze([...(input.excludedPaths ?? DEFAULT_EXCLUDED_PATHS)]),
    rescuerMarkerHeader: input.rescuerMarkerHeader ?? DEFAULT_RESCUER_MARKER_HEADER,
  });
}

/** Runtime state of one session; survives swaps that keep the session id (Caddy hosts.go). */
export class SessionState {
  /** Smooth weighted round robin's current weight (nginx ngx_http_upstream_get_peer). */
  current = 0;
  /** Redirects issued to this session since it first appeared. */
  redirects = 0;
  readonly bucket: TokenBucket;
  constructor(rate: number, nowMs: number) {
    this.bucket = new TokenBucket(rate, nowMs);
  }
}

export interface PreparedSession {
  readonly id: string;
  /** "http://vh3.rescue-b.example:8080": the Location is this plus the request target. */
  readonly prefix: string;
  /** WRR weight: the session's Rr. */
  readonly weight: number;
  readonly state: SessionState;
}

export interface ExcludedPath {
  readonly prefix: string;
  /** False for entries ending in "/"; true when the next character must end a path segment. */
  readonly segment: boolean;
}

export interface PreparedRedirect {
  readonly snapshot: RedirectSnapshot;
  /** False when no request can be redirected (Pr 0 or no session with a rate): one check per request. */
  readonly active: boolean;
  readonly pr: number;
  readonly sessions: readonly PreparedSession[];
  /** Needles for hasCookie(); null when no session cookie is configured. */
  readonly cookieNeedles: readonly string[] | null;
  readonly excluded: readonly ExcludedPath[];
  /** Lower-case marker header name and its length (rawHeaders are compared by length first). */
  readonly marker: string;
  readonly markerLength: number;
}

const HOST =
  /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]+\])$/;
const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const DEFAULT_PORT = { http: 80, https: 443 } as const;

/**
 * Validate and prepare `snapshot`. Sessions whose id `previous` also had keep their runtime
 * state (token bucket, WRR weight, counters), so swapping a snapshot every controller tick
 * neither refills buckets nor resets counters. Throws TypeError on invalid input, before
 * anything is shared with `previous`'s users: a failed swap leaves the old snapshot in force.
 */
export function prepare(
  snapshot: RedirectSnapshot,
  previous: PreparedRedirect | null = null,
  nowMs: number = performance.now(),
): PreparedRedirect {
  const { pr } = snapshot;
  if (typeof pr !== 'number' || !(pr >= 0 && pr <= 1))
    throw new TypeError(`pr must be within 0..1, got ${pr}`);
  const marker = snapshot.rescuerMarkerHeader.toLowerCase();
  if (!HEADER_NAME.test(marker)) throw new TypeError(`rescuerMarkerHeader "${marker}" is not a header name`);
  const needles = cookieNeedles(snapshot.sessionCookies);
  const excluded = snapshot.excludedPaths.map((p): ExcludedPath => {
    if (typeof p !== 'string' || p.charCodeAt(0) !== 0x2f) {
      throw new TypeError(`excludedPaths: "${p}" must start with "/"`);
    }
    return Object.freeze({ prefix: p, segment: !p.endsWith('/') });
  });

  const seen = new Set<string>();
  const specs = snapshot.sessions.map((s) => {
    if (typeof s.id !== 'string' || s.id === '') throw new TypeError('session id must be a non-empty string');
    if (seen.has(s.id)) throw new TypeError(`session id "${s.id}" appears twice`);
    seen.add(s.id);
    if (s.scheme !== 'http' && s.scheme !== 'https') {
      throw new TypeError(`session ${s.id}: scheme must be http or https`);
    }
    if (typeof s.vhost !== 'string' || !HOST.test(s.vhost)) {
      throw new TypeError(`session ${s.id}: vhost "${s.vhost}" is not a host name`);
    }
    if (s.port !== undefined && !(Number.isInteger(s.port) && s.port > 0 && s.port < 65536)) {
      throw new TypeError(`session ${s.id}: port ${s.port} is not a TCP port`);
    }
    if (typeof s.rate !== 'number' || !(s.rate >= 0) || !Number.isFinite(s.rate)) {
      throw new TypeError(`session ${s.id}: rate must be a finite number >= 0`);
    }
    const port = s.port === undefined || s.port === DEFAULT_PORT[s.scheme] ? '' : `:${s.port}`;
    return { id: s.id, prefix: `${s.scheme}://${s.vhost.toLowerCase()}${port}`, weight: s.rate };
  });

  // Validation is over; from here on runtime state is shared with `previous`.
  const old = new Map<string, SessionState>();
  for (const s of previous?.sessions ?? []) old.set(s.id, s.state);
  const sessions = specs.map((spec): PreparedSession => {
    let state = old.get(spec.id);
    if (state === undefined) state = new SessionState(spec.weight, nowMs);
    else state.bucket.reconfigure(spec.weight, nowMs);
    return Object.freeze({ ...spec, state });
  });

  return Object.freeze({
    snapshot,
    active: pr > 0 && sessions.some((s) => s.weight > 0),
    pr,
    sessions: Object.freeze(sessions),
    cookieNeedles: needles.length > 0 ? Object.freeze(needles) : null,
    excluded: Object.freeze(excluded),
    marker,
    markerLength: marker.length,
  });
}
