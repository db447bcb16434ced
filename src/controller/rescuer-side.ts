// The rescuer's half of the controller (slide 18, rescue state): answer SOS (accept when not in
// SOS, under max_sessions, not heavy, with spare capacity within max_share); light: raise Rr;
// heavy: lower Rr, and if still heavy after the hold, shut down some rescue.
import type { OkBody, SosBody } from '../../rescue-protocol/index.js';
import type { Session } from '../sessions/session.js';
import { sumRates, type ControlContext } from './context.js';
import { ControllerErrors, type ControllerErrorCode } from './errors.js';
import { grantRate, lowerRate, spareRate, type Measure } from './policy.js';
import { virtualHost } from './settings.js';
import { checkSosClaims } from './sos-claims.js';

export class RescuerSide {
  private readonly ctx: ControlContext;
  /** When Rr was lowered (or a rescue shut down) in the current heavy episode; null when not heavy. */
  private heavyActedMs: number | null = null;
  /** Last Rr change per session key. */
  private readonly rateChangedMs = new Map<number, number>();

  constructor(ctx: ControlContext) {
    this.ctx = ctx;
  }

  /** The 200 OK to an SOS. */
  answerSos(from: string, body: SosBody): OkBody {
    const verdict = this.decide(from, body);
    return 'grant' in verdict ? this.accept(from, body, verdict.grant) : verdict;
  }

  /** The decline the policy would answer this SOS with now, or null when it would accept. */
  precheck(from: string, body: SosBody): OkBody | null {
    const verdict = this.decide(from, body);
    return 'grant' in verdict ? null : verdict;
  }

  /** Accept (with the rate to grant) or the decline. */
  private decide(from: string, body: SosBody): OkBody | { grant: number } {
    const { table, log } = this.ctx;
    const s = this.ctx.settings();
    const mode = this.ctx.mode();
    const decline = (code: ControllerErrorCode, detail?: string): OkBody => {
      const reason = `${ControllerErrors[code].message}${detail ? `: ${detail}` : ''}`.slice(0, 500);
      log.info({ origin: from, code, want: body.want_rate }, `SOS from ${from} declined: ${reason}`);
      return { accepted: false, code, reason };
    };
    if (mode === 'off') return decline('CTL_ERR_MODE_OFF');
    if (table.list('origin').length > 0) return decline('CTL_ERR_IN_SOS');
    const active = table.list('rescuer', ['active']);
    if (active.some((x) => x.peer === from)) return decline('CTL_ERR_ALREADY_RESCUING');
    if (active.length >= s.maxSessions)
      return decline('CTL_ERR_MAX_SESSIONS', `${active.length} of ${s.maxSessions}`);
    const refusal = checkSosClaims(
      s,
      from,
      body,
      s.peers.find((p) => p.id === from)?.control_url ?? this.ctx.discovery?.peer(from)?.control_url,
      table.list('rescuer', ['active', 'draining']),
    );
    if (refusal !== null) return decline(refusal.code, refusal.detail);
    const m = this.ctx.measure();
    if (m?.region === 'heavy') return decline('CTL_ERR_HEAVY');
    const spare = spareRate(m, s.requestCapacity, s.maxShare, sumRates(active));
    const rate = grantRate(body.want_rate, spare);
    if (rate < 1) return decline('CTL_ERR_NO_SPARE', `${spare} req/s spare`);
    if (mode === 'observe') {
      this.ctx.would(`accept SOS from ${from} with Rr ${rate} req/s`);
      return decline('CTL_ERR_MODE_OBSERVE', `would grant ${rate} req/s`);
    }
    return { grant: rate };
  }

  private accept(from: string, body: SosBody, rate: number): OkBody {
    const { table } = this.ctx;
    const s = this.ctx.settings();
    // Dynamic virtual hosting (slide 16): vhN.<own name>, N from the persisted, never-reused counter.
    const n = table.allocateVhostN();
    const { vhost, vhostUrl } = virtualHost(s, n);
    const id = `s${n}.${s.self}`;
    const session = table.openRescuer({
      peer: from,
      id,
      vhost,
      vhostUrl,
      rate,
      want: body.want_rate,
      leaseMs: s.leaseMs,
      origin: {
        id: body.origin.id,
        names: body.origin.names,
        front_url: body.origin.front_url,
        content: body.content,
        micro_cache: body.micro_cache ?? null,
      },
      reason: `SOS from ${from} accepted: ${vhost}, Rr ${rate} of ${body.want_rate} req/s wanted`,
    });
    // Flood insurance: the spend that pays for it (its seq goes in the receipt).
    if (body.token !== undefined) table.setToken(session, body.token);
    this.rateChangedMs.set(session.key, table.clock.now());
    this.ctx.decided(`accept SOS from ${from}`);
    const ok: OkBody = { accepted: true, session: id, vhost, vhost_url: vhostUrl, rate, lease_ms: s.leaseMs };
    // Our front's addresses, so the origin can put us in its DNS answers (omitted when unknown).
    return s.site.addresses.length > 0 ? { ...ok, addresses: [...s.site.addresses] } : ok;
  }

  step(m: Measure): void {
    const { table } = this.ctx;
    const s = this.ctx.settings();
    const now = table.clock.now();
    const active = table.list('rescuer', ['active']);
    if (active.length === 0 || m.region !== 'heavy') this.heavyActedMs = null;
    if (active.length === 0) return;
    if (m.region === 'heavy') {
      if (this.heavyActedMs === null) {
        // Heavy: first lower Rr (RATE) ...
        for (const x of active) {
          const rate = lowerRate(x.rate, m);
          if (rate !== x.rate)
            this.ctx.act(`lower Rr of ${x.id} to ${rate} req/s (heavy)`, () => this.sendRate(x, rate));
        }
        this.heavyActedMs = now;
      } else if (now - this.heavyActedMs >= s.releaseHoldMs) {
        // ... still heavy after the hold: shut down some rescue, the newest first.
        const victim = [...active].sort((a, b) => b.key - a.key)[0]!;
        this.ctx.act(`shut down rescue ${victim.id} for ${victim.peer} (still heavy)`, () =>
          this.ctx.shutdown(victim, 'heavy: this member needs its capacity back'),
        );
        this.heavyActedMs = now;
      }
      return;
    }
    if (m.region !== 'light') return;
    // Light: raise Rr towards what each origin wanted, within the spare capacity, at most once per lease/3.
    let spare = spareRate(m, s.requestCapacity, s.maxShare, sumRates(active));
    for (const x of [...active].sort((a, b) => a.key - b.key)) {
      if (x.rate >= x.want || spare < 1) continue;
      if (now - (this.rateChangedMs.get(x.key) ?? -Infinity) < s.leaseMs / 3) continue;
      const inc = Math.floor(Math.min(x.want - x.rate, spare));
      if (inc < Math.max(1, 0.1 * x.rate)) continue;
      spare -= inc;
      const to = x.rate + inc;
      this.ctx.act(`raise Rr of ${x.id} to ${to} req/s (light)`, () => this.sendRate(x, to));
    }
  }

  private sendRate(session: Session, rate: number): void {
    this.ctx.table.setRate(session, rate);
    this.rateChangedMs.set(session.key, this.ctx.table.clock.now());
    this.ctx.send(session, 'RATE', { session: session.id!, rate });
  }
}
