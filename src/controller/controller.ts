// The rescue controller: the reconciliation loop of slide 18. Every tick it takes the latest
// measurement, computes the desired Pr, session set and rates, and acts on the difference, so
// repeated ticks are idempotent. One member is never being rescued and rescuing at once.
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import type { RedirectSnapshot } from '../../proxy/redirect/index.js';
import type { RescueServingView } from '../../proxy/rescue/view.js';
import {
  RescueError,
  type OkBody,
  type Peer,
  type ReplyBodies,
  type ReplyBody,
  type RequestBodies,
  type RequestType,
  type SosBody,
  type VerifiedMessage,
} from '../../rescue-protocol/index.js';
import type { RescueMode } from '../config/schema.js';
import type { MonitorSample } from '../monitor/types.js';
import type { Session } from '../sessions/session.js';
import type { SessionTable } from '../sessions/table.js';
import { ControllerErrors, type ControllerErrorCode } from './errors.js';
import { handleMessage, type PurgeRequest } from './inbox.js';
import { grantRate, lowerRate, measureOf, spareRate, stepPr, targetPr, type Measure } from './policy.js';
import { TrafficPredictor } from './predictor.js';
import { virtualHost, type RescueSettings } from './settings.js';
import { buildRedirectSnapshot, buildServingView, servingKey } from './views.js';

/** How the controller talks to peers; ControlClient fits. */
export interface RescueTransport {
  send<T extends RequestType>(
    peer: Peer,
    type: T,
    body: RequestBodies[T],
  ): Promise<{ readonly body: ReplyBodies[T] }>;
}

export type MemberState = 'normal' | 'sos' | 'rescue';

export interface ControllerOptions {
  readonly settings: RescueSettings;
  readonly table: SessionTable;
  readonly transport: RescueTransport;
  readonly logger: Logger;
  /** The origin's redirector takes it (Redirector.update). Called every tick and on session changes. */
  readonly publishRedirect?: (snapshot: RedirectSnapshot) => void;
  /** The rescuer's data path takes it. Called when the set of served hosts changes. */
  readonly publishServing?: (view: RescueServingView) => void;
  /** An origin asked its rescuer (us) to drop cached URLs. */
  readonly onPurge?: (req: PurgeRequest) => void;
}

export interface SessionStatus {
  readonly id: string | null;
  readonly role: 'origin' | 'rescuer';
  readonly peer: string;
  readonly state: string;
  readonly vhost: string | null;
  readonly vhost_url: string | null;
  readonly rate: number;
  readonly want: number;
  readonly lease_ms: number;
  readonly lease_left_ms: number;
  readonly drain_left_ms: number | null;
}

export interface ControllerStatus {
  readonly mode: RescueMode;
  readonly state: MemberState;
  /** Pr the controller steers; `pr_published` is what the redirector got (0 unless mode on). */
  readonly pr: number;
  readonly pr_published: number;
  readonly measure: Measure | null;
  readonly predicted_rate: number | null;
  readonly sessions: readonly SessionStatus[];
}

/** Answers from a peer meaning "I no longer have this session": end it on our side too. */
const GONE = new Set(['RSC_ERR_UNKNOWN_SESSION', 'RSC_ERR_OUT_OF_STATE', 'RSC_ERR_NOT_A_PARTY']);
const sum = (ss: readonly Session[]): number => ss.reduce((a, s) => a + s.rate, 0);

/**
 * Events: 'state' (MemberState) when normal/sos/rescue changes; 'decision' ({ action, acted })
 * for every action taken or, in observe mode, that would have been taken.
 */
export class RescueController extends EventEmitter {
  readonly table: SessionTable;
  private settings: RescueSettings;
  private readonly transport: RescueTransport;
  private readonly log: Logger;
  private readonly opts: ControllerOptions;
  private modeNow: RescueMode;
  private measure: Measure | null = null;
  private predictor: TrafficPredictor | null = null;
  private prNow = 0;
  private prZeroSinceMs: number | null = null;
  private lastAcquireMs = -Infinity;
  private lastReleaseMs = -Infinity;
  /** Peer id -> when it declined or failed us (monotonic ms). */
  private readonly declined = new Map<string, number>();
  /** Rescuer: when Rr was lowered in the current heavy episode (null when not heavy). */
  private heavyActedMs: number | null = null;
  /** Rescuer: last Rr change per session key. */
  private readonly rateChangedMs = new Map<number, number>();
  private readonly pending = new Set<Promise<unknown>>();
  private timer: NodeJS.Timeout | null = null;
  private closed = false;
  private servingVersion = 0;
  private lastServingKey: string | null = null;
  private lastState: MemberState = 'normal';
  /** Observe mode: the "would ..." lines said on the previous tick, to log each only when it starts. */
  private wouldBefore = new Set<string>();
  private wouldNow = new Set<string>();

  constructor(opts: ControllerOptions) {
    super();
    this.opts = opts;
    this.settings = opts.settings;
    this.table = opts.table;
    this.transport = opts.transport;
    this.log = opts.logger;
    this.modeNow = opts.settings.mode;
    this.table.setDrainMs(this.settings.drainMs);
    this.makePredictor();
    this.table.on('change', () => this.publish());
    this.table.on('rate', () => this.publish());
  }

  get mode(): RescueMode {
    return this.modeNow;
  }

  get pr(): number {
    return this.prNow;
  }

  /** normal, sos (being rescued: origin sessions) or rescue (rescuing others: active rescuer sessions). */
  get state(): MemberState {
    if (this.table.list('origin').length > 0) return 'sos';
    if (this.table.list('rescuer', ['active']).length > 0) return 'rescue';
    return 'normal';
  }

  /** The monitor's 'sample' handler: the measurement the next tick acts on; feeds the predictor. */
  observe(sample: MonitorSample): void {
    this.measure = measureOf(sample);
    this.predictor?.push((sample.rates.requests * sample.elapsedMs) / 1000, this.table.clock.now());
  }

  /** The ControlServer's onMessage. */
  readonly onMessage = (msg: VerifiedMessage): ReplyBody => {
    if (this.closed) throw new RescueError('RSC_ERR_CLOSED', 'the rescue controller is shutting down');
    return handleMessage(
      {
        table: this.table,
        answerSos: (from, body) => this.answerSos(from, body),
        purge: (req) => {
          this.log.info(
            { session: req.session, origin: req.origin, urls: req.urls.length },
            'PURGE from origin',
          );
          this.opts.onPurge?.(req);
        },
      },
      msg,
    );
  };

  start(): void {
    if (this.timer !== null || this.closed) return;
    this.publish();
    this.timer = setInterval(() => {
      this.tick().catch((err: unknown) => this.log.error({ err }, 'rescue controller tick failed'));
    }, this.settings.tickMs);
    this.timer.unref();
  }

  /** New settings on reload; mode is changed with setMode (the admin kill switch), not here. */
  update(settings: RescueSettings): void {
    const predictorChanged = JSON.stringify(settings.predictor) !== JSON.stringify(this.settings.predictor);
    this.settings = settings;
    this.table.setDrainMs(settings.drainMs);
    if (predictorChanged) this.makePredictor();
    if (this.timer !== null) {
      clearInterval(this.timer);
      this.timer = null;
      this.start();
    }
  }

  /**
   * The kill switch (issue 3: switchable at run time). observe: Pr published 0 at once, nothing
   * sent from now on (sessions stay until their leases lapse or the mode returns to on).
   * off: every session is shut down (SHUTDOWN sent), SOS declined from now on.
   */
  setMode(mode: RescueMode): void {
    if (mode === this.modeNow) return;
    this.log.info({ from: this.modeNow, to: mode }, `rescue mode ${this.modeNow} -> ${mode}`);
    this.modeNow = mode;
    if (mode === 'off') {
      for (const s of this.table.list(undefined, ['active'])) this.shutdown(s, 'rescue switched off');
      this.prNow = 0;
    }
    this.publish();
  }

  /**
   * One reconciliation step. Decisions are synchronous; the returned promise settles when the
   * messages this tick sent have been answered (tests await it; the timer does not need to).
   */
  async tick(): Promise<void> {
    if (this.closed) return;
    const started: Promise<unknown>[] = [];
    const before = new Set(this.pending);
    this.wouldNow = new Set();
    this.table.expire();
    if (this.modeNow !== 'off') {
      const m = this.measure;
      if (m !== null) {
        this.originStep(m);
        this.rescuerStep(m);
      }
      if (this.modeNow === 'on') this.keepalives();
    }
    this.wouldBefore = this.wouldNow;
    this.publish();
    for (const p of this.pending) if (!before.has(p)) started.push(p);
    await Promise.allSettled(started);
  }

  /**
   * Stops the loop. `shutdown` (default true): SHUTDOWN every active session first (a clean stop);
   * false leaves peers to notice by lease (what a crash looks like). Idempotent.
   */
  async close(opts: { shutdown?: boolean } = {}): Promise<void> {
    if (this.closed) return;
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    if (opts.shutdown !== false && this.modeNow === 'on') {
      for (const s of this.table.list(undefined, ['active'])) this.shutdown(s, 'member shutting down');
    }
    this.closed = true;
    await Promise.allSettled([...this.pending]);
  }

  status(): ControllerStatus {
    const now = this.table.clock.now();
    return {
      mode: this.modeNow,
      state: this.state,
      pr: this.prNow,
      pr_published: this.publishedPr(),
      measure: this.measure,
      predicted_rate: this.predictor?.boundRateForNext() ?? null,
      sessions: this.table.list().map((s) => ({
        id: s.id,
        role: s.role,
        peer: s.peer,
        state: s.state,
        vhost: s.vhost,
        vhost_url: s.vhostUrl,
        rate: s.rate,
        want: s.want,
        lease_ms: s.leaseMs,
        lease_left_ms: Math.round(s.leaseLeftMs(now)),
        drain_left_ms: s.drainUntilMs === null ? null : Math.max(0, Math.round(s.drainUntilMs - now)),
      })),
    };
  }

  redirectSnapshot(): RedirectSnapshot {
    return buildRedirectSnapshot(
      this.publishedPr(),
      this.table.list('origin', ['active']),
      this.settings.site,
    );
  }

  servingView(): RescueServingView {
    return buildServingView(this.table.list('rescuer'), this.servingVersion);
  }

  // ---- origin side (slide 18, SOS state) ---------------------------------------------------------

  private originStep(m: Measure): void {
    const s = this.settings;
    const now = this.table.clock.now();
    const mine = this.table.list('origin');
    const active = mine.filter((x) => x.state === 'active');
    const heavy = m.region === 'heavy';
    const early = !heavy && this.predictedHeavy();
    const granted = sum(active);
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

    // Get (more) rescue: heavy, or predicted to be; only with no rescue of our own to give back first.
    if ((heavy || early) && this.table.list('rescuer', ['active']).length === 0) {
      const need = heavy ? targetPr(this.prNow, m) * m.rate - granted : this.predictedExcess() - granted;
      const atCap = this.prNow >= cap - 0.01;
      const pending = mine.some((x) => x.state === 'requested');
      if (
        !pending &&
        (active.length === 0 || (atCap && need > 0)) &&
        now - this.lastReleaseMs >= s.releaseHoldMs
      ) {
        const peer = this.candidate(now);
        const want = Math.max(1, Math.ceil(need));
        if (peer !== undefined)
          this.act(`send SOS to ${peer.id} for ${want} req/s (${heavy ? 'heavy' : 'predicted heavy'})`, () =>
            this.sendSos(peer, want, heavy ? 'heavy' : 'predicted heavy'),
          );
      }
    }

    // Release: Pr 0 for the hold, and the acquire hold passed (anti-thrash): one session at a time.
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
      this.act(`release rescue ${victim.id} (${victim.peer})`, () => {
        this.shutdown(victim, `light: Pr 0 for ${Math.round(now - this.prZeroSinceMs!)} ms`);
        this.prZeroSinceMs = now; // the next release waits a whole hold again
      });
    }
  }

  /** First configured peer not rescuing us already and not a recent decliner. */
  private candidate(now: number): Peer | undefined {
    const busy = new Set(this.table.list('origin').map((x) => x.peer));
    return this.settings.peers.find((p) => {
      if (busy.has(p.id)) return false;
      const at = this.declined.get(p.id);
      return at === undefined || now - at >= this.settings.declineHoldMs;
    });
  }

  private sendSos(peer: Peer, want: number, why: string): void {
    const s = this.settings;
    const session = this.table.openOrigin(
      peer.id,
      s.leaseMs,
      want,
      `${why}: SOS to ${peer.id} for ${want} req/s`,
    );
    const body: SosBody = {
      origin: { id: s.self, names: [...s.site.names], front_url: s.site.frontUrl },
      content: s.site.content,
      want_rate: want,
      ...(s.site.microCache
        ? { micro_cache: { paths: [...s.site.microCache.paths], ttl_s: s.site.microCache.ttl_s } }
        : {}),
    };
    this.track(
      this.transport.send(peer, 'SOS', body).then(
        (r) => this.onSosAnswer(session, peer, r.body),
        (err: unknown) => {
          this.declined.set(peer.id, this.table.clock.now());
          if (session.state === 'requested')
            this.table.transition(session, 'closed', `SOS to ${peer.id} failed: ${describe(err)}`);
        },
      ),
    );
  }

  private onSosAnswer(session: Session, peer: Peer, ok: OkBody): void {
    if (session.state !== 'requested') return;
    if (!ok.accepted) {
      this.declined.set(peer.id, this.table.clock.now());
      this.table.transition(session, 'closed', `declined by ${peer.id}: ${ok.code}: ${ok.reason}`);
      return;
    }
    this.table.accept(
      session,
      {
        id: ok.session,
        vhost: ok.vhost,
        vhostUrl: ok.vhost_url ?? null,
        rate: ok.rate,
        leaseMs: ok.lease_ms,
      },
      `accepted by ${peer.id}: ${ok.vhost}, Rr ${ok.rate} req/s, lease ${ok.lease_ms} ms`,
    );
    this.table.renew(session);
    session.lastKeepaliveSentMs = this.table.clock.now();
    this.lastAcquireMs = this.table.clock.now();
    // Switched off or closing while the SOS was in flight: give it straight back.
    if (this.modeNow === 'off' || this.closed)
      this.shutdown(session, 'rescue switched off while SOS was in flight');
  }

  // ---- rescuer side (slide 18, rescue state) -----------------------------------------------------

  private answerSos(from: string, body: SosBody): OkBody {
    const s = this.settings;
    const decline = (code: ControllerErrorCode, detail?: string): OkBody => {
      const reason = `${ControllerErrors[code].message}${detail ? `: ${detail}` : ''}`.slice(0, 500);
      this.log.info({ origin: from, code, want: body.want_rate }, `SOS from ${from} declined: ${reason}`);
      return { accepted: false, code, reason };
    };
    if (this.modeNow === 'off') return decline('CTL_ERR_MODE_OFF');
    if (this.table.list('origin').length > 0) return decline('CTL_ERR_IN_SOS');
    const active = this.table.list('rescuer', ['active']);
    if (active.some((x) => x.peer === from)) return decline('CTL_ERR_ALREADY_RESCUING');
    if (active.length >= s.maxSessions)
      return decline('CTL_ERR_MAX_SESSIONS', `${active.length} of ${s.maxSessions}`);
    const m = this.measure;
    if (m?.region === 'heavy') return decline('CTL_ERR_HEAVY');
    const spare = spareRate(m, s.requestCapacity, s.maxShare, sum(active));
    const rate = grantRate(body.want_rate, spare);
    if (rate < 1) return decline('CTL_ERR_NO_SPARE', `${spare} req/s spare`);
    if (this.modeNow === 'observe') {
      this.would(`accept SOS from ${from} with Rr ${rate} req/s`);
      return decline('CTL_ERR_MODE_OBSERVE', `would grant ${rate} req/s`);
    }
    const n = this.table.allocateVhostN();
    const { vhost, vhostUrl } = virtualHost(s, n);
    const id = `s${n}.${s.self}`;
    const session = this.table.openRescuer({
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
    this.rateChangedMs.set(session.key, this.table.clock.now());
    this.emit('decision', { action: `accept SOS from ${from}`, acted: true });
    return { accepted: true, session: id, vhost, vhost_url: vhostUrl, rate, lease_ms: s.leaseMs };
  }

  private rescuerStep(m: Measure): void {
    const s = this.settings;
    const now = this.table.clock.now();
    const active = this.table.list('rescuer', ['active']);
    if (active.length === 0 || m.region !== 'heavy') this.heavyActedMs = null;
    if (active.length === 0) return;
    if (m.region === 'heavy') {
      if (this.heavyActedMs === null) {
        // Heavy: first lower Rr (RATE) ...
        for (const x of active) {
          const rate = lowerRate(x.rate, m);
          if (rate !== x.rate)
            this.act(`lower Rr of ${x.id} to ${rate} req/s (heavy)`, () => this.sendRate(x, rate));
        }
        this.heavyActedMs = now;
      } else if (now - this.heavyActedMs >= s.releaseHoldMs) {
        // ... still heavy after the hold: shut down some rescue, the newest first.
        const victim = [...active].sort((a, b) => b.key - a.key)[0]!;
        this.act(`shut down rescue ${victim.id} for ${victim.peer} (still heavy)`, () =>
          this.shutdown(victim, 'heavy: this member needs its capacity back'),
        );
        this.heavyActedMs = now;
      }
      return;
    }
    if (m.region !== 'light') return;
    // Light: raise Rr towards what each origin wanted, within the spare capacity, at most once per lease/3.
    let spare = spareRate(m, s.requestCapacity, s.maxShare, sum(active));
    for (const x of [...active].sort((a, b) => a.key - b.key)) {
      if (x.rate >= x.want || spare < 1) continue;
      if (now - (this.rateChangedMs.get(x.key) ?? -Infinity) < s.leaseMs / 3) continue;
      const inc = Math.floor(Math.min(x.want - x.rate, spare));
      if (inc < Math.max(1, 0.1 * x.rate)) continue;
      spare -= inc;
      this.act(`raise Rr of ${x.id} to ${x.rate + inc} req/s (light)`, () => this.sendRate(x, x.rate + inc));
    }
  }

  private sendRate(session: Session, rate: number): void {
    this.table.setRate(session, rate);
    this.rateChangedMs.set(session.key, this.table.clock.now());
    this.send(session, 'RATE', { session: session.id!, rate });
  }

  // ---- both sides --------------------------------------------------------------------------------

  /** KEEPALIVE every lease/3 on every active session; the answer renews our lease too. */
  private keepalives(): void {
    const now = this.table.clock.now();
    for (const x of this.table.list(undefined, ['active'])) {
      if (!x.keepaliveDue(now)) continue;
      x.lastKeepaliveSentMs = now;
      this.send(x, 'KEEPALIVE', { session: x.id! }, () => this.table.renew(x));
    }
  }

  /** Ends a session on our side and tells the peer: an origin's goes ending -> closed, a rescuer's drains. */
  private shutdown(session: Session, reason: string): void {
    if (session.state !== 'active') return;
    const body = { session: session.id!, reason };
    if (session.role === 'origin') {
      this.lastReleaseMs = this.table.clock.now();
      this.table.end(session, reason, { sending: true });
      const done = (how: string) => () => {
        if (session.state === 'ending') this.table.transition(session, 'closed', how);
      };
      const peer = this.peerOf(session);
      if (peer === undefined) return done('peer no longer configured')();
      this.track(
        this.transport
          .send(peer, 'SHUTDOWN', body)
          .then(done('SHUTDOWN acknowledged'), (err: unknown) =>
            done(`SHUTDOWN not acknowledged: ${describe(err)}`)(),
          ),
      );
    } else {
      this.table.end(session, reason);
      this.send(session, 'SHUTDOWN', body);
    }
  }

  private send<T extends RequestType>(
    session: Session,
    type: T,
    body: RequestBodies[T],
    onOk?: () => void,
  ): void {
    const peer = this.peerOf(session);
    if (peer === undefined) {
      this.table.end(session, `peer ${session.peer} is no longer configured`);
      return;
    }
    this.track(
      this.transport.send(peer, type, body).then(
        () => onOk?.(),
        (err: unknown) => {
          const code = err instanceof RescueError && err.remote ? err.code : null;
          if (code !== null && GONE.has(code) && session.state === 'active') {
            this.table.end(
              session,
              `${session.peer} answered ${type} with ${code}: it no longer has the session`,
            );
          } else {
            this.log.debug(
              { session: session.id, peer: session.peer, type, err: describe(err) },
              `${type} not delivered`,
            );
          }
        },
      ),
    );
  }

  private peerOf(session: Session): Peer | undefined {
    return this.settings.peers.find((p) => p.id === session.peer);
  }

  /** Acts when mode is on; in observe mode says what it would do (once, when it starts wanting to). */
  private act(action: string, fn: () => void): void {
    if (this.modeNow === 'on') {
      this.log.info({ action }, action);
      this.emit('decision', { action, acted: true });
      fn();
    } else if (this.modeNow === 'observe') this.would(action);
  }

  private would(action: string): void {
    this.wouldNow.add(action);
    if (!this.wouldBefore.has(action)) {
      this.log.info({ action, mode: 'observe' }, `would ${action}`);
      this.emit('decision', { action, acted: false });
    }
  }

  private track(p: Promise<unknown>): void {
    const q = p.catch((err: unknown) => this.log.error({ err }, 'rescue controller action failed'));
    this.pending.add(q);
    void q.finally(() => this.pending.delete(q));
  }

  private publishedPr(): number {
    return this.modeNow === 'on' ? this.prNow : 0;
  }

  private publish(): void {
    try {
      this.opts.publishRedirect?.(this.redirectSnapshot());
    } catch (err) {
      this.log.error({ err }, 'redirect snapshot refused');
    }
    const key = servingKey(this.table.list('rescuer'));
    if (key !== this.lastServingKey) {
      this.lastServingKey = key;
      this.servingVersion++;
      try {
        this.opts.publishServing?.(this.servingView());
      } catch (err) {
        this.log.error({ err }, 'rescue serving view refused');
      }
    }
    const state = this.state;
    if (state !== this.lastState) {
      this.log.info({ from: this.lastState, to: state }, `member state ${this.lastState} -> ${state}`);
      this.lastState = state;
      this.emit('state', state);
    }
  }

  // ---- predictor (WWW'03, RESEARCH.md): early SOS ----------------------------------------------

  private makePredictor(): void {
    const p = this.settings.predictor;
    this.predictor = p.enabled
      ? new TrafficPredictor({
          intervalMs: p.intervalMs,
          subIntervals: p.subIntervals,
          hurst: p.hurst,
          k: p.k,
        })
      : null;
  }

  private predictedHeavy(): boolean {
    const bound = this.predictor?.boundRateForNext() ?? null;
    const c = this.settings.requestCapacity;
    return bound !== null && c > 0 && bound > this.settings.requestUpper * c;
  }

  /** Requests/s the predicted bound exceeds the middle of the desired band by. */
  private predictedExcess(): number {
    const bound = this.predictor?.boundRateForNext() ?? 0;
    const m = this.measure;
    const mid = m ? (m.lower + m.upper) / 2 : this.settings.requestUpper;
    return bound - mid * this.settings.requestCapacity;
  }
}

function describe(err: unknown): string {
  if (err instanceof RescueError) return `${err.code}: ${err.message}`;
  return err instanceof Error ? err.message : String(err);
}
