// The immutable, prepared form of a ProxyConfig (STYLE.md 6): everything the hot path needs
// is decided here, once per config change, and swapped in atomically by FrontProxy.update().
import { BlockList, isIP } from 'node:net';
import type { ProxyConfig } from '../src/config/schema.js';
import type { HeaderPolicy } from './headers.js';
import { UpstreamSet, type Upstream } from './upstreams.js';

export interface Snapshot {
  readonly config: ProxyConfig;
  readonly upstreams: UpstreamSet;
  readonly policy: HeaderPolicy;
  /** Via value we append to responses. */
  readonly responseVia: string;
  /** 0 = no limit. */
  readonly maxBodyBytes: number;
  readonly headersTimeout: number;
  readonly bodyTimeout: number;
  readonly connectTimeout: number;
  /** proxy.upstream_client is "fast": bodiless requests use h1-upstream.ts. */
  readonly fastUpstream: boolean;
  /** proxy.front_parser is "fast": simple requests are read by h1-front.ts. */
  readonly fastFront: boolean;
}

/** Parse trusted_proxies entries ("10.0.0.1", "10.0.0.0/8", "::1", "fd00::/8") into a BlockList. */
export function trustedList(entries: readonly string[]): BlockList | null {
  if (entries.length === 0) return null;
  const list = new BlockList();
  for (const e of entries) {
    const slash = e.indexOf('/');
    const addr = slash < 0 ? e : e.slice(0, slash);
    const v = isIP(addr);
    if (v === 0) throw new Error(`trusted_proxies: "${e}" is not an IP address or CIDR range`);
    const family = v === 6 ? 'ipv6' : 'ipv4';
    if (slash < 0) list.addAddress(addr, family);
    else list.addSubnet(addr, Number(e.slice(slash + 1)), family);
    // Clients on a dual-stack socket show up as ::ffff:a.b.c.d.
    if (family === 'ipv4') {
      if (slash < 0) list.addAddress(`::ffff:${addr}`, 'ipv6');
      else list.addSubnet(`::ffff:${addr}`, 96 + Number(e.slice(slash + 1)), 'ipv6');
    }
  }
  return list;
}

/**
 * Prepare `config`, reusing the pools of `previous` for unchanged upstreams. Returns the
 * snapshot and the upstreams `previous` had that it no longer uses (close them gracefully).
 */
export function prepareSnapshot(
  config: ProxyConfig,
  previous: Snapshot | null,
): { snapshot: Snapshot; retired: Upstream[] } {
  const policy: HeaderPolicy = {
    via11: `1.1 ${config.via}`,
    via10: `1.0 ${config.via}`,
    hostMode: config.host_header === 'preserve' ? 0 : config.host_header === 'upstream' ? 1 : 2,
    fixedHost: config.host_header,
    trusted: trustedList(config.trusted_proxies),
  };
  const { set, retired } = UpstreamSet.prepare(config, previous?.upstreams ?? null);
  const t = config.timeouts;
  const snapshot: Snapshot = Object.freeze({
    config,
    upstreams: set,
    policy: Object.freeze(policy),
    responseVia: `1.1 ${config.via}`,
    maxBodyBytes: config.limits.max_body_bytes,
    headersTimeout: t.header_ms,
    bodyTimeout: t.body_idle_ms,
    connectTimeout: t.connect_ms,
    fastUpstream: config.upstream_client === 'fast',
    fastFront: config.front_parser === 'fast',
  });
  return { snapshot, retired };
}
