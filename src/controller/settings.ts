// The controller's settings, resolved once from the config: defaults that depend on other keys
// (site names, front and public URLs, drain time) are filled in here, so the loop reads plain values.
import { effectiveRescueMode, type Config, type PeerConfig, type RescueMode } from '../config/schema.js';

export interface SiteSettings {
  readonly names: readonly string[];
  readonly frontUrl: string;
  readonly content: 'static' | 'dynamic';
  readonly sessionCookies: readonly string[];
  readonly redirectExclude: readonly string[];
  readonly microCache: { readonly paths: readonly string[]; readonly ttl_s: number } | null;
  /** Base of this member's virtual-host URLs: scheme and port are taken from it. */
  readonly publicUrl: string;
}

export interface RescueSettings {
  /** This member's id (its public host name). */
  readonly self: string;
  readonly mode: RescueMode;
  readonly site: SiteSettings;
  readonly peers: readonly PeerConfig[];
  readonly tickMs: number;
  readonly leaseMs: number;
  readonly acquireHoldMs: number;
  readonly releaseHoldMs: number;
  readonly prZeroHoldMs: number;
  readonly declineHoldMs: number;
  readonly maxSessions: number;
  readonly maxShare: number;
  readonly prStepMax: number;
  readonly drainMs: number;
  /** monitor.request_rate.capacity: requests/s the site is sized for (what a rescuer gives a share of). */
  readonly requestCapacity: number;
  /** monitor.request_rate.upper: the predictor's alarm level, as a fraction of requestCapacity. */
  readonly requestUpper: number;
  readonly predictor: {
    readonly enabled: boolean;
    readonly hurst: number;
    readonly subIntervals: number;
    readonly k: number;
    /** T = sub_intervals x monitor.interval_ms (one monitor sample per sub-interval). */
    readonly intervalMs: number;
  };
}

const listenHost = (listen: string): string =>
  listen.slice(0, listen.lastIndexOf(':')).replace(/^\[(.*)\]$/, '$1');
const listenPort = (listen: string): number => Number(listen.slice(listen.lastIndexOf(':') + 1));

/**
 * Where rescuers fetch from when site.front_url is unset: the front listener, but a wildcard
 * address (0.0.0.0, ::) means nothing to a peer, so then the member's name with the port.
 */
function defaultFrontUrl(listen: string, self: string): string {
  const host = listenHost(listen);
  if (host === '0.0.0.0' || host === '::' || host === '') return `http://${self}:${listenPort(listen)}`;
  return `http://${listen}`;
}

export function rescueSettings(config: Config): RescueSettings {
  const r = config.rescue;
  const self = config.name ?? listenHost(config.proxy.listen);
  return Object.freeze({
    self,
    mode: effectiveRescueMode(config),
    site: Object.freeze({
      names: Object.freeze([...(config.site.names ?? [self])]),
      frontUrl: config.site.front_url ?? defaultFrontUrl(config.proxy.listen, self),
      content: config.site.content,
      sessionCookies: Object.freeze([...config.site.session_cookies]),
      redirectExclude: Object.freeze([...config.site.redirect_exclude]),
      microCache: config.site.micro_cache ? Object.freeze({ ...config.site.micro_cache }) : null,
      publicUrl: config.site.public_url ?? `http://${self}:${listenPort(config.proxy.listen)}`,
    }),
    peers: Object.freeze(config.peers.map((p) => Object.freeze({ ...p }))),
    tickMs: r.tick_ms,
    leaseMs: r.lease_ms,
    acquireHoldMs: r.acquire_hold_ms,
    releaseHoldMs: r.release_hold_ms,
    prZeroHoldMs: r.pr_zero_hold_ms,
    declineHoldMs: r.decline_hold_ms,
    maxSessions: r.max_sessions,
    maxShare: r.max_share,
    prStepMax: r.pr_step_max,
    drainMs: r.drain_ms ?? 2 * r.dns_ttl_s * 1000,
    requestCapacity: config.monitor.request_rate.capacity,
    requestUpper: config.monitor.request_rate.upper,
    predictor: Object.freeze({
      enabled: r.predictor.enabled,
      hurst: r.predictor.hurst,
      subIntervals: r.predictor.sub_intervals,
      k: r.predictor.k,
      intervalMs: r.predictor.sub_intervals * config.monitor.interval_ms,
    }),
  });
}

/** "vh<n>.<self>" and its URL: scheme and port from site.public_url (slide 16, dynamic virtual hosting). */
export function virtualHost(settings: RescueSettings, n: number): { vhost: string; vhostUrl: string } {
  const vhost = `vh${n}.${settings.self}`.toLowerCase();
  const base = new URL(settings.site.publicUrl);
  return { vhost, vhostUrl: `${base.protocol}//${vhost}${base.port ? `:${base.port}` : ''}` };
}
