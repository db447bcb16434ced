// The rescue controller: the reconciliation loop of slide 18. Every tick it takes the latest
// measurement, computes the desired Pr, session set and rates (origin-side.ts, rescuer-side.ts),
// and acts on the difference, so repeated ticks are idempotent. One member is never being rescued
// and rescuing at once.
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { recordSetsKey, type DnsRecordSets } from '../../dns/record-sets.js';
import type { RedirectSnapshot } from '../../proxy/redirect/index.js';
import type { RescueServingView } from '../../proxy/rescue/view.js';
import {
  RescueError,
  type Peer,
  type ReplyBody,
  type RequestBodies,
  type ReplyBodies,
  type RequestType,
  type ShutdownBody,
  type SosBody,
  type VerifiedMessage,
} from '../../rescue-protocol/index.js';
import type { RescueMode } from '../config/schema.js';
import type { MonitorSample } from '../monitor/types.js';
import type { MemberLedger } from '../registry/ledger/index.js';
import type { Session } from '../sessions/session.js';
import type { SessionTable } from '../sessions/table.js';
import type { ControlContext, PeerDiscovery, RescueTransport } from './context.js';
import { handleMessage, type PurgeRequest } from './inbox.js';
import { LedgerFlow } from './ledger-flow.js';
import { describe, OriginSide } from './origin-side.js';
import { EarlyWarning } from './early-sos.js';
import { measureOf, type Measure } from './policy.js';
import { RescuerSide } from './rescuer-side.js';
import type { RescueSettings } from './settings.js';
import { sessionStatus, type ControllerStatus, type MemberState } from './status.js';
import { buildDnsSets } from './dns-sets.js';
import { buildRedirectSnapshot, buildServingView, servingKey } from './views.js';

export type { RescueTransport } from './context.js';
export type { ControllerStatus, MemberState, SessionStatus } from './status.js';

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
  /**
   * The record sets of the DNS answers (embedded server or RFC 2136 updater): called when they
   * change, with an immutable snapshot whose version grows. Unset, or settings.dns null: no DNS.
   */
  readonly publishDns?: (sets: DnsRecordSets) => void;
  /** Rescuer side: what a session served (proxy/rescue/usage.ts UsageBook); sent in SHUTDOWN and stored. */
  readonly usage?: (session: string) => ShutdownBody['usage'] | undefined;
  /** Rescue candidates from the registry (asked first; the static peers list is the fallback). */
  readonly discovery?: PeerDiscovery;
  /**
   * Flood-insurance communities: this member's side of the token ledger (the registry client builds
   * it). SOS carry a signed spend, accepted only when it pays; SHUTDOWN exchanges signed receipts.
   */
  readonly ledger?: MemberLedger;
}

/** Answers from a peer meaning "I no longer have this session": end it on our side too. */
const GONE = new Set(['RSC_ERR_UNKNOWN_SESSION', 'RSC_ERR_OUT_OF_STATE', 'RSC_ERR_NOT_A_PARTY']);

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
  private readonly origin: OriginSide;
  private readonly rescuer: RescuerSide;
  private readonly ledger: LedgerFlow | undefined;
  private modeNow: RescueMode;
  private measure: Measure | null = null;
  private early: EarlyWarning;
  private readonly pending = new Set<Promise<unknown>>();
  private timer: NodeJS.Timeout | null = null;
  private closed = false;
  private servingVersion = 0;
  private lastServingKey: string | null = null;
  private lastState: MemberState = 'normal';
  private dnsVersion = 0;
  private lastDnsKey: string | null = null;
  private lastDns: DnsRecordSets | null = null;
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
    this.early = new EarlyWarning(this.settings);
    this.ledger = opts.ledger ? new LedgerFlow(opts.ledger, this.table.clock, this.log) : undefined;
    const ctx: ControlContext = {
      table: this.table,
      transport: this.transport,
      log: this.log,
      ...(this.ledger ? { ledger: this.ledger } : {}),
      settings: () => this.settings,
      discovery: opts.discovery,
      mode: () => this.modeNow,
      measure: () => this.measure,
      closed: () => this.closed,
      act: (action, fn) => this.act(action, fn),
      would: (action) => this.would(action),
      decided: (action) => this.emit('decision', { action, acted: true }),
      shutdown: (s, reason) => this.shutdown(s, reason),
      send: (s, type, body, onOk) => this.send(s, type, body, onOk),
      track: (p) => this.track(p),
    };
    this.origin = new OriginSide(ctx);
    this.rescuer = new RescuerSide(ctx);
    this.table.on('change', (c: { session: Session; to: string }) => {
      // A rescuer session's final usage goes into the state file with its history.
      if (c.session.role === 'rescuer' && c.to === 'closed') this.storeUsage(c.session);
      this.publish();
    });
    this.table.on('rate', () => this.publish());
  }

  get mode(): RescueMode {
    return this.modeNow;
  }

  /** The Pr the controller steers (published only in mode on). */
  get pr(): number {
    return this.origin.pr;
  }

  /** normal, sos (being rescued: origin sessions) or rescue (rescuing others: active rescuer sessions). */
  get state(): MemberState {
    if (this.table.list('origin').length > 0) return 'sos';
    if (this.table.list('rescuer', ['active']).length > 0) return 'rescue';
    return 'normal';
  }

  /** The monitor's 'sample' handler: the measurement the next tick acts on; feeds the predictor. */
  /** In-flight requests at the previous sample: their growth counts as arrivals (see observe). */
  private prevActive: number | null = null;
  observe(sample: MonitorSample): void {
    // Measure.rate is the rate requests ARRIVE at the front. The monitor counts finished ones; behind
    // an upstream that queues (a saturated uplink) those stay at its capacity however many arrive,
    // so the SOS would ask for far too little. Arrivals = finished + growth of in-flight requests.
    const m = measureOf(sample);
    const grew = this.prevActive === null ? 0 : ((sample.active - this.prevActive) * 1000) / sample.elapsedMs;
    this.prevActive = sample.active;
    this.measure = { ...m, rate: Math.max(0, m.rate + grew) };
    this.early.push((sample.rates.requests * sample.elapsedMs) / 1000, this.table.clock.now());
  }

  /** The ControlServer's onMessage. */
  readonly onMessage = (msg: VerifiedMessage): ReplyBody | Promise<ReplyBody> => {
    if (this.closed) throw new RescueError('RSC_ERR_CLOSED', 'the rescue controller is shutting down');
    return handleMessage(
      {
        table: this.table,
        answerSos: (from, body) => this.rescuer.answerSos(from, body),
        purge: (req) => {
          this.log.info(
            { session: req.session, origin: req.origin, urls: req.urls.length },
            'PURGE from origin',
          );
          this.opts.onPurge?.(req);
        },
        ...(this.ledger ? this.ledgerHooks(this.ledger) : {}),
      },
      msg,
    );
  };

  /** Flood insurance: the token check before accepting an SOS, and receipts at SHUTDOWN. */
  private ledgerHooks(flow: LedgerFlow) {
    return {
      tokens: {
        precheck: (from: string, body: SosBody) => this.rescuer.precheck(from, body),
        check: (from: string, token: string | undefined) => flow.check(from, token),
        release: (from: string, token: string | undefined) => flow.release(from, token),
      },
      settle: (s: Session, receipt: unknown): unknown =>
        s.role === 'rescuer'
          ? flow.rescuerHalf(s, this.storeUsage(s)) // the origin shut down: our half, for it to countersign
          : receipt === undefined
            ? undefined
            : flow.countersign(s, receipt),
    };
  }

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
    const key = (x: RescueSettings): string =>
      JSON.stringify([x.predictor, x.requestCapacity, x.requestUpper]);
    const predictorChanged = key(settings) !== key(this.settings);
    this.settings = settings;
    this.table.setDrainMs(settings.drainMs);
    if (predictorChanged) this.early = new EarlyWarning(settings);
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
      this.origin.resetPr();
    }
    this.publish();
  }

  /**
   * One reconciliation step. Decisions are synchronous; the returned promise settles when the
   * messages this tick sent have been answered (tests await it; the timer does not need to).
   */
  async tick(): Promise<void> {
    if (this.closed) return;
    const before = new Set(this.pending);
    this.wouldNow = new Set();
    this.table.expire(); // leases and drains first: decisions see only live sessions
    if (this.modeNow !== 'off') {
      const m = this.measure;
      if (m !== null) {
        const early = m.region !== 'heavy' && this.early.heavy();
        this.origin.step(m, early, this.early.excess(m));
        this.rescuer.step(m);
      }
      if (this.modeNow === 'on') this.keepalives();
    }
    this.wouldBefore = this.wouldNow;
    this.publish();
    await Promise.allSettled([...this.pending].filter((p) => !before.has(p)));
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

  /** For /status: state, Pr, the measurement, and both roles' sessions with rates and lease times. */
  status(): ControllerStatus {
    const now = this.table.clock.now();
    return {
      mode: this.modeNow,
      state: this.state,
      pr: this.origin.pr,
      pr_published: this.publishedPr(),
      measure: this.measure,
      predicted_rate: this.early.boundRate(),
      sessions: this.table.list().map((s) => sessionStatus(s, now)),
    };
  }

  /**
   * Origin side (PURGE, DESIGN.md extension): asks every rescuer serving us to drop these cached
   * URLs (paths). Resolves with how many acknowledged. Sends nothing unless mode is on.
   */
  async purge(urls: readonly string[]): Promise<number> {
    if (this.modeNow !== 'on' || urls.length === 0) return 0;
    const sends = this.table.list('origin', ['active']).map(async (s) => {
      const peer = this.peerOf(s);
      if (peer === undefined) return false;
      await this.transport.send(peer, 'PURGE', { session: s.id!, urls: [...urls] });
      return true;
    });
    const results = await Promise.allSettled(sends);
    return results.filter((r) => r.status === 'fulfilled' && r.value).length;
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

  /** The DNS record sets last published (null before the first, or with no DNS settings). */
  dnsSets(): DnsRecordSets | null {
    return this.lastDns;
  }

  // ---- acting on peers (both roles) --------------------------------------------------------------

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
    if (session.role === 'rescuer') {
      const usage = this.storeUsage(session);
      const receipt = this.ledger?.rescuerHalf(session, usage);
      this.table.end(session, reason);
      const msg: ShutdownBody = { ...body, ...(usage ? { usage } : {}), ...(receipt ? { receipt } : {}) };
      this.send(session, 'SHUTDOWN', msg, (ack) => {
        if (receipt !== undefined && ack.receipt !== undefined)
          this.ledger?.completed(session, receipt, ack.receipt);
      });
      return;
    }
    this.origin.released();
    this.table.end(session, reason, { sending: true });
    const done = (how: string): void => {
      if (session.state === 'ending') this.table.transition(session, 'closed', how);
    };
    const peer = this.peerOf(session);
    if (peer === undefined) return done('peer no longer configured');
    this.track(
      this.transport.send(peer, 'SHUTDOWN', body).then(
        (ack) => {
          // Flood insurance: the rescuer's receipt half came back in the ACK; countersign and submit it.
          if (ack.body.receipt !== undefined) this.ledger?.countersign(session, ack.body.receipt);
          done('SHUTDOWN acknowledged');
        },
        (err: unknown) => done(`SHUTDOWN not acknowledged: ${describe(err)}`),
      ),
    );
  }

  private send<T extends RequestType>(
    session: Session,
    type: T,
    body: RequestBodies[T],
    onOk?: (reply: ReplyBodies[T]) => void,
  ): void {
    const peer = this.peerOf(session);
    if (peer === undefined) {
      this.table.end(session, `peer ${session.peer} is no longer configured`);
      return;
    }
    this.track(
      this.transport.send(peer, type, body).then(
        (reply) => onOk?.(reply.body),
        (err: unknown) => {
          const code = err instanceof RescueError && err.remote ? err.code : null;
          if (code !== null && GONE.has(code) && session.state === 'active') {
            this.table.end(
              session,
              `${session.peer} answered ${type} with ${code}: it no longer has the session`,
            );
          } else {
            const detail = { session: session.id, peer: session.peer, type, err: describe(err) };
            this.log.debug(detail, `${type} not delivered`);
          }
        },
      ),
    );
  }

  private storeUsage(session: Session): ShutdownBody['usage'] | undefined {
    const usage = session.id === null ? undefined : this.opts.usage?.(session.id);
    if (usage !== undefined) this.table.setUsage(session, usage);
    return usage;
  }

  private peerOf(session: Session): Peer | undefined {
    return this.settings.peers.find((p) => p.id === session.peer) ?? this.opts.discovery?.peer(session.peer);
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

  // ---- outputs -------------------------------------------------------------------------------------

  /**
   * Rescuers are in our DNS answers while their sessions are active and mode is on (like Pr, which
   * observe publishes as 0: observe acts on nothing); our vhN names answer while their sessions live.
   */
  private publishDnsSets(): void {
    const dns = this.settings.dns;
    if (dns === null || this.opts.publishDns === undefined) return;
    const sessions = this.table.list().filter((s) => s.role === 'rescuer' || this.modeNow === 'on');
    const next = buildDnsSets(sessions, dns, this.dnsVersion + 1);
    const key = recordSetsKey(next);
    if (key === this.lastDnsKey) return;
    this.lastDnsKey = key;
    this.dnsVersion = next.version;
    this.lastDns = next;
    try {
      this.opts.publishDns(next);
    } catch (err) {
      this.log.error({ err }, 'DNS record sets refused');
    }
  }

  private publishedPr(): number {
    return this.modeNow === 'on' ? this.origin.pr : 0;
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
    this.publishDnsSets();
    const state = this.state;
    if (state !== this.lastState) {
      this.log.info({ from: this.lastState, to: state }, `member state ${this.lastState} -> ${state}`);
      this.lastState = state;
      this.emit('state', state);
    }
  }
}
