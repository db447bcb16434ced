// Per-request rescue decisions for the front (DESIGN.md "Request paths"), consulted only while a
// rescue is active: a rescuer's signed fetch goes straight upstream (or is refused if forged),
// a rescued host name is served from the session's cache and origin, and the origin's
// redirector may answer with a 302 to a rescuer.
import type { KeyObject } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type pino from 'pino';
import type { MemberIdentity } from '../../rescue-protocol/keys.js';
import type { FrontContext, ProxyResponse } from '../exchange.js';
import { Redirector, writeRedirect, type RedirectSnapshot, type RedirectStats } from '../redirect/index.js';
import type { Snapshot } from '../snapshot.js';
import { MARKER_HEADER, verifyMarker } from './marker.js';
import { OwnResponse } from './own-response.js';
import { RescueServing, type RescueServingOptions } from './serving.js';
import type { SessionUsage } from './usage.js';
import type { RescueServingView } from './view.js';

export interface RescueMembers {
  /** This member (signs its fetches as a rescuer), or null before the identity is loaded. */
  readonly self: MemberIdentity | null;
  /** Peer id -> public key: whose rescuer-fetch markers are accepted. */
  readonly peers: ReadonlyMap<string, KeyObject>;
}

const MARKER_LENGTH = MARKER_HEADER.length;

/** Set on a request whose rescuer-fetch marker verified: the rescuer's id (the front tells the upstream). */
export const kVerifiedRescuer = Symbol('dotslash.verifiedRescuer');
export type VerifiedRequest = IncomingMessage & { [kVerifiedRescuer]?: string };
const NO_PEERS: ReadonlyMap<string, KeyObject> = new Map();

export class RescueRouter {
  private redirector: Redirector | null = null;
  private redirecting = false;
  private peers: ReadonlyMap<string, KeyObject> = NO_PEERS;
  readonly serving: RescueServing;

  constructor(
    private readonly ctx: FrontContext,
    private readonly snapshot: () => Snapshot,
    private readonly logger: pino.Logger,
    opts: RescueServingOptions,
    /** Told whenever `active` may have changed, so the front keeps its one-check fast path. */
    private readonly onChange: () => void,
  ) {
    this.serving = new RescueServing(opts, snapshot, logger, onChange);
  }

  /** True when the front must consult intercept(): redirecting, or serving some rescued name. */
  get active(): boolean {
    return this.redirecting || this.serving.active;
  }

  setRedirect(snapshot: RedirectSnapshot): void {
    if (this.redirector === null) this.redirector = new Redirector(snapshot);
    else this.redirector.swap(snapshot); // throws on invalid input, leaving the old one in force
    this.redirecting = snapshot.pr > 0 && snapshot.sessions.some((s) => s.rate > 0);
    this.onChange();
  }

  redirectStats(): RedirectStats {
    return this.redirector?.stats ?? { redirects: 0, noTokens: 0, sessions: {} };
  }

  setRescueView(view: RescueServingView): void {
    this.serving.setView(view);
    this.onChange();
  }

  setMembers(m: RescueMembers): void {
    this.peers = m.peers;
    this.serving.setSelf(m.self);
  }

  sessionUsage(): ReadonlyMap<string, SessionUsage> {
    return this.serving.usage.snapshot();
  }

  purge(session: string, paths: readonly string[]): number {
    return this.serving.purge(session, paths);
  }

  close(): Promise<void> {
    this.redirecting = false;
    return this.serving.close();
  }

  /**
   * Handle `req` if a rescue rule applies and return true; false = proxy it as usual. Requests
   * the front will refuse anyway (absolute-form target, duplicate Host) are left to it.
   */
  intercept(req: IncomingMessage, res: ProxyResponse): boolean {
    const url = req.url!;
    if (url.charCodeAt(0) !== 0x2f) return false;
    const raw = req.rawHeaders;
    let host: string | undefined;
    let hosts = 0;
    let marker: string | undefined;
    let markers = 0;
    for (let i = 0; i < raw.length; i += 2) {
      const n = raw[i]!;
      const len = n.length;
      if (len === 4 && (n === 'Host' || n.toLowerCase() === 'host')) {
        hosts++;
        host = raw[i + 1];
      } else if (len === MARKER_LENGTH && n.toLowerCase() === MARKER_HEADER) {
        markers++;
        marker = raw[i + 1];
      }
    }
    if (hosts > 1) return false;
    // Rescued names first: a marker a client sends to a rescued name is replaced on our fetch.
    if (host !== undefined && this.serving.active) {
      const via = this.snapshot().responseVia;
      if (this.serving.handle(hostName(host), req, res, () => new OwnResponse(this.ctx, req, res), via))
        return true;
    }
    if (marker !== undefined) return this.checkMarker(req, res, markers > 1 ? '' : marker);
    if (this.redirecting) {
      const location = this.redirector!.decide(req);
      if (location !== null) {
        new OwnResponse(this.ctx, req, res);
        this.ctx.stats.redirects++;
        writeRedirect(res, location);
        return true;
      }
    }
    return false;
  }

  /** True when an upgrade request names a rescued site (or one of our vhN names): not ours to tunnel. */
  claimsUpgrade(req: IncomingMessage): boolean {
    const host = req.headers.host;
    return host !== undefined && this.serving.claims(hostName(host));
  }

  /** A rescuer's fetch: valid -> proxy straight to the upstream (never redirected); else 403. */
  private checkMarker(req: IncomingMessage, res: ProxyResponse, value: string): boolean {
    const check = verifyMarker(value, req.method!, req.url!, this.peers);
    if (check.ok) {
      (req as VerifiedRequest)[kVerifiedRescuer] = check.rescuer;
      return false;
    }
    this.logger.debug(
      { reason: check.reason, remote: req.socket.remoteAddress, url: req.url },
      'rescuer-fetch marker refused',
    );
    new OwnResponse(this.ctx, req, res).error('PRX_ERR_BAD_RESCUER_MARKER', this.snapshot().responseVia);
    return true;
  }
}

/** Host header value -> lower-case name without port ("[::1]:80" -> "[::1]"). */
export function hostName(value: string): string {
  let end = value.length;
  const colon = value.lastIndexOf(':');
  if (colon >= 0 && value.indexOf(']', colon) < 0) end = colon;
  let name = value.slice(0, end).toLowerCase();
  // A fully qualified name may end in a dot ("www.example.org.").
  if (name.endsWith('.')) name = name.slice(0, -1);
  return name;
}
