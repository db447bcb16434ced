// Fixtures for the rescue data-path tests: an origin front with its upstream and a rescuer front
// with its own site, both real FrontProxy instances on 127.0.0.1, with real Ed25519 member keys.
import type { KeyObject } from 'node:crypto';
import type * as http from 'node:http';
import { Writable } from 'node:stream';
import pino from 'pino';
import {
  generateKeyPair,
  parsePrivateKey,
  parsePublicKey,
  type MemberIdentity,
} from '../../../rescue-protocol/keys.js';
import { redirectSnapshot, type RedirectSnapshot } from '../../../proxy/redirect/index.js';
import type { RescueServingEntry, RescueServingView } from '../../../proxy/rescue/view.js';
import { request, startProxy, startUpstream, type RunningProxy, type Upstream } from '../helpers.js';

export const ORIGIN_ID = 'origin.example';
export const RESCUER_ID = 'rescue-b.example';
export const SITE = 'www.origin.example';

export interface Member {
  identity: MemberIdentity;
  publicKey: KeyObject;
}

export function member(id: string): Member {
  const kp = generateKeyPair();
  return {
    identity: { id, privateKey: parsePrivateKey(kp.privateKeyPem) },
    publicKey: parsePublicKey(kp.publicKey),
  };
}

export interface Seen {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
}

export interface Site extends Upstream {
  seen: Seen[];
  count(path: string): number;
}

/** An upstream that answers every path with `body` (cacheable for a minute) and records requests. */
export async function startSite(
  body: string,
  extra: (req: http.IncomingMessage, res: http.ServerResponse) => boolean = () => false,
): Promise<Site> {
  const seen: Seen[] = [];
  const up = await startUpstream((req, res) => {
    seen.push({ method: req.method!, url: req.url!, headers: req.headers });
    req.resume();
    if (extra(req, res)) return;
    res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'public, max-age=60' });
    res.end(`${body} ${req.url}`);
  });
  return Object.assign(up, { seen, count: (p: string) => seen.filter((s) => s.url === p).length });
}

/** Access-log lines a FrontProxy wrote (JSON objects). */
export function captureLog(): { logger: pino.Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n'))
        if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  return { logger: pino({ level: 'info' }, stream), lines };
}

export interface Pair {
  origin: RunningProxy;
  rescuer: RunningProxy;
  originSite: Site;
  rescuerSite: Site;
  originMember: Member;
  rescuerMember: Member;
  originLog: Record<string, unknown>[];
  rescuerLog: Record<string, unknown>[];
  close(): Promise<void>;
}

/** Origin front + upstream, rescuer front + its own site; members know each other. */
export async function startPair(): Promise<Pair> {
  const originSite = await startSite('origin page');
  const rescuerSite = await startSite('rescuer own site');
  const originMember = member(ORIGIN_ID);
  const rescuerMember = member(RESCUER_ID);
  const ol = captureLog();
  const rl = captureLog();
  const origin = await startProxy({ upstreams: [originSite.url] }, { accessLog: ol.logger });
  const rescuer = await startProxy({ upstreams: [rescuerSite.url] }, { accessLog: rl.logger });
  origin.proxy.setMembers({
    self: originMember.identity,
    peers: new Map([[RESCUER_ID, rescuerMember.publicKey]]),
  });
  rescuer.proxy.setMembers({
    self: rescuerMember.identity,
    peers: new Map([[ORIGIN_ID, originMember.publicKey]]),
  });
  return {
    origin,
    rescuer,
    originSite,
    rescuerSite,
    originMember,
    rescuerMember,
    originLog: ol.lines,
    rescuerLog: rl.lines,
    close: async () => {
      await Promise.all([origin.proxy.close(200), rescuer.proxy.close(200)]);
      await Promise.all([originSite.close(), rescuerSite.close()]);
    },
  };
}

/** A serving view with one entry per session. */
export function view(version: number, entries: RescueServingEntry[]): RescueServingView {
  const hosts = new Map<string, RescueServingEntry>();
  const sessions = new Map<string, RescueServingEntry>();
  for (const e of entries) {
    sessions.set(e.session, e);
    for (const n of e.names) if (!hosts.has(n)) hosts.set(n, e);
  }
  return { version, hosts, sessions };
}

export function entry(
  session: string,
  vh: string,
  frontUrl: string,
  over: Partial<RescueServingEntry> = {},
): RescueServingEntry {
  return {
    session,
    origin: ORIGIN_ID,
    front_url: frontUrl,
    names: [vh, SITE],
    micro_cache: null,
    state: 'serve',
    drain_until: null,
    ...over,
  };
}

export function redirectTo(session: string, vh: string, port: number, over: Partial<RedirectSnapshot> = {}) {
  return redirectSnapshot({
    pr: 1,
    sessions: [{ id: session, vhost: vh, scheme: 'http', port, rate: 1e6 }],
    sessionCookies: ['sid'],
    ...over,
  });
}

/** GET `path` on a front at `port` with Host `host` (and extra headers). */
export function get(port: number, host: string, path: string, headers: http.OutgoingHttpHeaders = {}) {
  return request(`http://127.0.0.1:${port}${path}`, { headers: { host, ...headers } });
}

/** Follow a Location on loopback: connect to `port`, send the Location's host as Host. */
export function follow(location: string, port: number) {
  const u = new URL(location);
  return get(port, u.host, u.pathname + u.search);
}

export function errorCode(body: Buffer): string | undefined {
  try {
    return (JSON.parse(body.toString()) as { error?: { code?: string } }).error?.code;
  } catch {
    return undefined;
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
