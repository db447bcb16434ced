// What a rescuer served per rescue session (issue 3 item 5, "count usage per session"): requests
// and response bytes, split by how clients arrived: a vhN name (the origin's 302) or one of the
// origin's site names (DNS round robin). Read by the controller (SHUTDOWN usage, dashboard).

export interface UsageCounts {
  requests: number;
  /** Response bytes written to clients (head and body). */
  bytes: number;
}

export interface SessionUsage extends UsageCounts {
  /** Arrived at vhN.<rescuer>: sent by the origin's redirector. */
  readonly by_redirect: UsageCounts;
  /** Arrived under an origin site name: the rescuer's address was in the origin's DNS answer. */
  readonly by_dns: UsageCounts;
}

/** Ended sessions whose counts are kept for late readers; the oldest go first past this. */
const KEEP_ENDED = 1024;

export class UsageBook {
  private readonly live = new Map<string, SessionUsage>();
  private readonly ended = new Map<string, SessionUsage>();

  /** The live record of `session` (created on first use). */
  cell(session: string): SessionUsage {
    let u = this.live.get(session);
    if (u === undefined) {
      u = this.ended.get(session);
      if (u !== undefined) this.ended.delete(session);
      else
        u = {
          requests: 0,
          bytes: 0,
          by_redirect: { requests: 0, bytes: 0 },
          by_dns: { requests: 0, bytes: 0 },
        };
      this.live.set(session, u);
    }
    return u;
  }

  /** The session left the view: keep its final counts a while (bounded), then forget them. */
  end(session: string): void {
    const u = this.live.get(session);
    if (u === undefined) return;
    this.live.delete(session);
    this.ended.set(session, u);
    if (this.ended.size > KEEP_ENDED) this.ended.delete(this.ended.keys().next().value!);
  }

  /** A copy of every known session's counts (live and recently ended). */
  snapshot(): ReadonlyMap<string, SessionUsage> {
    const out = new Map<string, SessionUsage>();
    const copy = (u: SessionUsage): SessionUsage =>
      Object.freeze({
        requests: u.requests,
        bytes: u.bytes,
        by_redirect: Object.freeze({ ...u.by_redirect }),
        by_dns: Object.freeze({ ...u.by_dns }),
      });
    for (const [k, u] of this.ended) out.set(k, copy(u));
    for (const [k, u] of this.live) out.set(k, copy(u));
    return out;
  }
}

/** Count one finished response of `bytes` against `u`. */
export function countUsage(u: SessionUsage, byRedirect: boolean, bytes: number): void {
  u.requests++;
  u.bytes += bytes;
  const side = byRedirect ? u.by_redirect : u.by_dns;
  side.requests++;
  side.bytes += bytes;
}
