// The origin's redirector (issue 3 item 4, slide 18 "increase Pr"): decides per request, in a
// few comparisons, whether to answer with a 302 to a rescue session instead of proxying.
import type { IncomingMessage } from 'node:http';
import { hasCookie } from './cookies.js';
import { prepare, redirectSnapshot, type PreparedRedirect, type RedirectSnapshot } from './snapshot.js';
import { pickSession } from './wrr.js';

export interface RedirectorOptions {
  /** Monotonic clock in ms for the token buckets (default performance.now); tests inject one. */
  now?: () => number;
  /** Uniform [0, 1) source for the Pr draw (default Math.random); tests inject one. */
  random?: () => number;
}

export interface RedirectStats {
  /** Redirects issued since the redirector was made. */
  readonly redirects: number;
  /** Eligible requests drawn for a redirect that were served locally: every bucket was empty. */
  readonly noTokens: number;
  /** Per current session: redirects issued to it (kept across swaps that keep the session). */
  readonly sessions: Readonly<Record<string, { readonly redirects: number; readonly rate: number }>>;
}

/**
 * Holds the prepared snapshot and answers decide(). The controller calls swap() when Pr or the
 * session set changes; decide() reads the current prepared snapshot once, so a request is
 * decided entirely under one snapshot.
 */
export class Redirector {
  private p: PreparedRedirect;
  private readonly now: () => number;
  private readonly random: () => number;
  private redirects = 0;
  private noTokens = 0;

  constructor(snapshot: RedirectSnapshot = redirectSnapshot(), opts: RedirectorOptions = {}) {
    this.now = opts.now ?? (() => performance.now());
    this.random = opts.random ?? Math.random;
    this.p = prepare(snapshot, null, this.now());
  }

  /** The snapshot in force. */
  get snapshot(): RedirectSnapshot {
    return this.p.snapshot;
  }

  /**
   * Replace the snapshot: all of it or nothing. Validation runs first and throws TypeError on
   * bad input, leaving the current snapshot in force; sessions that stay keep their token
   * bucket and counters.
   */
  swap(snapshot: RedirectSnapshot): void {
    this.p = prepare(snapshot, this.p, this.now());
  }

  /**
   * The Location to redirect `req` to, or null to proxy it as usual. Cost when Pr = 0: one
   * check. Otherwise: method and target checks, one random draw, a scan of the raw header
   * names (no req.headers object is built), and one pass over the sessions.
   * Call it from the 'request' handler only: upgrade requests (WebSocket) arrive on 'upgrade'
   * and are never redirected. The caller counts and logs the 302 it writes.
   */
  decide(req: IncomingMessage): string | null {
    return this.decideRaw(req.method!, req.url!, req.rawHeaders);
  }

  /** decide() on the parts of a request (method, origin-form target, raw header list). */
  decideRaw(method: string, url: string, rawHeaders: readonly string[]): string | null {
    const p = this.p;
    if (!p.active) return null;
    if (method !== 'GET' && method !== 'HEAD') return null;
    if (p.pr < 1 && this.random() >= p.pr) return null;
    // Origin-form only; anything else is the front's to refuse.
    if (url.charCodeAt(0) !== 0x2f) return null;
    if (isExcluded(url, p)) return null;
    if (!headersAllow(rawHeaders, p)) return null;
    const s = pickSession(p.sessions, this.now());
    if (s === null) {
      this.noTokens++;
      return null;
    }
    this.redirects++;
    return s.prefix + url;
  }

  /** Counters as plain data (built on demand, not per request). */
  get stats(): RedirectStats {
    const sessions: Record<string, { redirects: number; rate: number }> = {};
    for (const s of this.p.sessions) sessions[s.id] = { redirects: s.state.redirects, rate: s.weight };
    return { redirects: this.redirects, noTokens: this.noTokens, sessions };
  }
}

function isExcluded(url: string, p: PreparedRedirect): boolean {
  const ex = p.excluded;
  for (let i = 0; i < ex.length; i++) {
    const e = ex[i]!;
    if (!url.startsWith(e.prefix)) continue;
    if (!e.segment || url.length === e.prefix.length) return true;
    const c = url.charCodeAt(e.prefix.length);
    if (c === 0x2f || c === 0x3f) return true; // '/' or '?'
  }
  return false;
}

/**
 * False when a header makes the request ineligible: Authorization, a session cookie, or the
 * rescuer marker. Header names are compared by length first, so most names cost one integer
 * comparison; the usual spellings are matched before falling back to toLowerCase(), which
 * allocates for a name with capitals.
 */
function headersAllow(raw: readonly string[], p: PreparedRedirect): boolean {
  const needles = p.cookieNeedles;
  const markerLength = p.markerLength;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const len = name.length;
    if (len === 13 && named(name, 'Authorization', 'authorization')) return false;
    if (len === 6 && needles !== null && named(name, 'Cookie', 'cookie') && hasCookie(raw[i + 1]!, needles)) {
      return false;
    }
    if (len === markerLength && named(name, p.marker, p.marker)) return false;
  }
  return true;
}

function named(name: string, usual: string, lower: string): boolean {
  return name === usual || name === lower || name.toLowerCase() === lower;
}
