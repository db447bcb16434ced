// The controller's two outputs, built as immutable objects: the origin's RedirectSnapshot (Pr and
// the sessions to redirect to, slide 16) and the rescuer's RescueServingView (which host names map
// to which origin, slide 16 "dynamic virtual hosting").
import type { RescueServingEntry, RescueServingView } from '../../proxy/rescue/view.js';
import { redirectSnapshot, type RedirectSession, type RedirectSnapshot } from '../../proxy/redirect/index.js';
import type { Session } from '../sessions/session.js';
import type { SiteSettings } from './settings.js';

/** Redirect targets: active origin-side sessions; a vhost_url gives scheme and port. */
export function buildRedirectSnapshot(
  pr: number,
  sessions: readonly Session[],
  site: SiteSettings,
): RedirectSnapshot {
  const targets: RedirectSession[] = [];
  for (const s of sessions) {
    if (s.role !== 'origin' || s.state !== 'active' || s.id === null || s.vhost === null) continue;
    let scheme: 'http' | 'https' = 'http';
    let port: number | undefined;
    if (s.vhostUrl !== null) {
      const u = new URL(s.vhostUrl);
      scheme = u.protocol === 'https:' ? 'https' : 'http';
      port = u.port ? Number(u.port) : undefined;
    }
    targets.push(
      port === undefined
        ? { id: s.id, vhost: s.vhost, scheme, rate: s.rate }
        : { id: s.id, vhost: s.vhost, scheme, port, rate: s.rate },
    );
  }
  return redirectSnapshot({
    pr: targets.length > 0 ? pr : 0,
    sessions: targets,
    sessionCookies: site.sessionCookies,
    excludedPaths: site.redirectExclude,
  });
}

/**
 * Host -> session for the rescuer's active and draining sessions. A name two sessions claim
 * (two origins listing the same site name) goes to the older one: first come, first served.
 */
export function buildServingView(sessions: readonly Session[], version: number): RescueServingView {
  const hosts = new Map<string, RescueServingEntry>();
  const byId = new Map<string, RescueServingEntry>();
  const ordered = [...sessions]
    .filter((s) => s.role === 'rescuer' && (s.state === 'active' || s.state === 'draining'))
    .sort((a, b) => a.key - b.key);
  for (const s of ordered) {
    if (s.id === null || s.vhost === null || s.origin === null) continue;
    const names = [...new Set([s.vhost, ...s.origin.names].map((n) => n.toLowerCase()))];
    const entry: RescueServingEntry = Object.freeze({
      session: s.id,
      origin: s.origin.id,
      front_url: s.origin.front_url,
      names: Object.freeze(names),
      micro_cache: s.origin.micro_cache,
      state: s.state === 'active' ? 'serve' : 'drain',
      drain_until: s.state === 'draining' ? s.drainUntilMs : null,
    });
    byId.set(s.id, entry);
    for (const n of names) if (!hosts.has(n)) hosts.set(n, entry);
  }
  return Object.freeze({ version, hosts, sessions: byId });
}

/** A cheap fingerprint, so the view is republished only when it changed. */
export function servingKey(sessions: readonly Session[]): string {
  return sessions
    .filter((s) => s.role === 'rescuer' && (s.state === 'active' || s.state === 'draining'))
    .map((s) => `${s.key}:${s.state}`)
    .sort()
    .join(',');
}
