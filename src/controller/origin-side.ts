// The origin's half of the controller (slide 18, SOS state): Pr up while heavy and "get more
// rescue" when Pr needs more than the rescuers granted; Pr down while light and, after Pr = 0
// for a hold time, release one rescue at a time. Anti-thrash holds after acquiring and releasing (Oceano).
import { RescueError, type OkBody, type Peer, type SosBody } from '../../rescue-protocol/index.js';
import type { Session } from '../sessions/session.js';
import { sumRates, type ControlContext } from './context.js';
import { stepPr, targetPr, type Measure } from './policy.js';

export class OriginSide {
  private readonly ctx: ControlContext;
  private prNow = 0;
  private prZeroSinceMs: number | null = null;
  private lastAcquireMs = -Infinity;
  private lastReleaseMs = -Infinity;
  /** Peer id -> when it declined or failed us (monotonic ms). */
  private readonly declined = new Map<string, number>();

  constructor(ctx: ControlContext) {
    this.ctx = ctx;
  }

  get pr(): number {
    return this.prNow;
  }

  resetPr(): void {
    this.prNow = 0;
  }

  /** A release started (our SHUTDOWN): no new SOS for release_hold_ms. */
  released(): void {
    this.lastReleaseMs = this.ctx.table.clock.now();
  }

  /**
   * One tick. `early`: the predictor's bound is above the upper threshold (early SOS).
   * `excess`: requests/s the predicted bound exceeds the desired band by.
   */
  step(m: Measure, early: boolean, excess: number): void {
    const { table } = this.ctx;
    const s = this.ctx.settings();
    const now = table.clock.now();
    const mine = table.list('origin');
    const active = mine.filter((x) => x.state === 'active');
    const heavy = m.region === 'heavy';
    const granted = sumRates(active);
    // Pr: up while heavy, down while light, held in the desired region; never beyond what the
    // rescuers granted (the redirector's token buckets would cap it anyway, and a Pr that
    // redirects nothing would make the next step's arithmetic wrong).
    const cap = m.rate > 0 ? Math.min(1, granted / m.rate) : 1;
    if (active.length === 0) this.prNow = 0;
    else if (heavy || m.region === 'light') {
      const t = targetPr(this.prNow, m);
      const next = stepPr(this.prNow, heavy ? Math.max(t, this.prNow) : Math.min(t, this.prNow), s.prStepMax);
      this.prNow = Math.min(next, cap);
    }
    this.prZeroSinceMs = this.prNow > 0 || active.length === 0 ? null : (this.prZeroSinceMs ?? now);

    // Get (more) rescue: heavy, or predicted to be; only with no rescue of our own to give back
    // first (a member is never rescuing and rescued at once).
    if ((heavy || early) && table.list('rescuer', ['active']).length === 0) {
      const need = heavy ? targetPr(this.prNow, m) * m.rate - granted : excess - granted;
      const atCap = this.prNow >= cap - 0.01;
      const pending = mine.some((x) => x.state === 'requested');
      if (
        !pending &&
        (active.length === 0 || (atCap && need > 0)) &&
        now - this.lastReleaseMs >= s.releaseHoldMs
      ) {
        const peer = this.candidate(now);
        const want = Math.max(1, Math.ceil(need));
        const why = heavy ? 'heavy' : 'predicted heavy';
        if (peer !== undefined)
          this.ctx.act(`send SOS to ${peer.id} for ${want} req/s (${why})`, () =>
            this.sendSos(peer, want, why),
          );
      }
    }

    // Release: Pr 0 for the hold, and the acquire hold passed: one session at a time.
    if (
      !heavy &&
      !early &&
      active.length > 0 &&
      this.prZeroSinceMs !== null &&
      now - this.prZeroSinceMs >= s.prZeroHoldMs &&
      now - this.lastAcquireMs >= s.acquireHoldMs &&
      !mine.some((x) => x.state === 'ending')
    ) {
      const victim = [...active].sort((a, b) => a.rate - b.rate || b.key - a.key)[0]!;
      const zeroFor = Math.round(now - this.prZeroSinceMs);
      this.ctx.act(`release rescue ${victim.id} (${victim.peer})`, () => {
        this.ctx.shutdown(victim, `light: Pr 0 for ${zeroFor} ms`);
        this.prZeroSinceMs = now; // the next release waits a whole hold again
      });
    }
  }

  /**
   * The registry's best candidate, else the first configured peer, that is not rescuing us
   * already and did not decline recently. Each call also asks the registry for fresh candidates
   * (throttled), so the next tick sees them.
   */
  private candidate(now: number): Peer | undefined {
    const s = this.ctx.settings();
    const busy = new Set(this.ctx.table.list('origin').map((x) => x.peer));
    const usable = (p: Peer): boolean => {
      if (busy.has(p.id)) return false;
      const at = this.declined.get(p.id);
      return at === undefined || now - at >= s.declineHoldMs;
    };
    const discovery = this.ctx.discovery;
    if (discovery) {
      const declined = [...this.declined].filter(([, at]) => now - at < s.declineHoldMs).map(([id]) => id);
      discovery.refresh([...busy, ...declined]);
      const found = discovery.candidates().find(usable);
      if (found) return found;
    }
    return s.peers.find(usable);
  }

  private sendSos(peer: Peer, want: number, why: string): void {
    const { table } = this.ctx;
    const s = this.ctx.settings();
    const session = table.openOrigin(peer.id, s.leaseMs, want, `${why}: SOS to ${peer.id} for ${want} req/s`);
    const micro = s.site.microCache;
    const body: SosBody = {
      origin: { id: s.self, names: [...s.site.names], front_url: s.site.frontUrl },
      content: s.site.content,
      want_rate: want,
      ...(micro ? { micro_cache: { paths: [...micro.paths], ttl_s: micro.ttl_s } } : {}),
    };
    // Flood insurance: a signed spend to this rescuer pays for the rescue.
    const token = this.ctx.ledger?.token(peer.id);
    if (token !== undefined) {
      body.token = token;
      table.setToken(session, token);
    }
    this.ctx.track(
      this.ctx.transport.send(peer, 'SOS', body).then(
        (r) => this.onAnswer(session, peer, r.body),
        (err: unknown) => {
          this.declined.set(peer.id, table.clock.now());
          if (session.state === 'requested')
            table.transition(session, 'closed', `SOS to ${peer.id} failed: ${describe(err)}`);
        },
      ),
    );
  }

  private onAnswer(session: Session, peer: Peer, ok: OkBody): void {
    const { table } = this.ctx;
    if (session.state !== 'requested') return;
    if (!ok.accepted) {
      this.declined.set(peer.id, table.clock.now());
      table.transition(session, 'closed', `declined by ${peer.id}: ${ok.code}: ${ok.reason}`);
      return;
    }
    const accepted = { id: ok.session, vhost: ok.vhost, vhostUrl: ok.vhost_url ?? null, rate: ok.rate };
    table.accept(
      session,
      { ...accepted, leaseMs: ok.lease_ms, addresses: ok.addresses ?? [] },
      `accepted by ${peer.id}: ${ok.vhost}, Rr ${ok.rate} req/s, lease ${ok.lease_ms} ms`,
    );
    table.renew(session);
    session.lastKeepaliveSentMs = table.clock.now();
    this.lastAcquireMs = table.clock.now();
    // Switched off or closing while the SOS was in flight: give it straight back.
    if (this.ctx.mode() === 'off' || this.ctx.closed())
      this.ctx.shutdown(session, 'rescue switched off while SOS was in flight');
  }
}

export function describe(err: unknown): string {
  if (err instanceof RescueError) return `${err.code}: ${err.message}`;
  return err instanceof Error ? err.message : String(err);
}
