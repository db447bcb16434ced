// The one configuration schema (STYLE.md 5): the Config type is derived from it, every
// default lives here, and a loaded config is validated once, then frozen.
import { isIP } from 'node:net';
import { z } from 'zod';
import { ledgerPolicySchema } from '../registry/ledger/policy.js';
import { checkZones } from '../../dns/snapshot.js';
import type { ZoneConfig } from '../../dns/types.js';

/** "HOST:PORT" or "[v6]:PORT"; port 0 means "any free port" (tests). */
export const hostPort = z
  .string()
  .regex(/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, 'expected HOST:PORT, e.g. 127.0.0.1:8080')
  .refine((s) => Number(s.slice(s.lastIndexOf(':') + 1)) <= 65535, 'port must be 0-65535');

const httpUrl = z
  .string()
  .url('expected an absolute URL such as http://127.0.0.1:8081')
  .refine((s) => /^https?:\/\//.test(s), 'upstream URL must use http:// or https://');

/** A value written into HTTP heads as is (Via, a fixed Host): visible ASCII and spaces only, so no CR/LF can split a head. */
const headerValue = z
  .string()
  .min(1)
  .regex(
    /^[\x21-\x7e]([\x20-\x7e]*[\x21-\x7e])?$/,
    'must be printable ASCII without control characters (no CR/LF)',
  );

const fraction = z.number().min(0).max(1);
const positiveInt = z.number().int().positive();
const durationMs = z.number().int().min(0);

/**
 * One monitored resource: its capacity (in its own unit) and the thresholds, as fractions of
 * capacity, that split its utilisation into the light / desired / heavy regions.
 */
const resource = (capacity: number) =>
  z
    .object({
      /** Capacity in the resource's unit (bytes/s, requests/s, or 1.0 = all CPU). 0 disables. */
      capacity: z.number().min(0).default(capacity),
      /** Below this fraction of capacity the resource is light. */
      lower: fraction.default(0.5),
      /** Above this fraction of capacity the resource is heavy. */
      upper: fraction.default(0.8),
    })
    .strict()
    .refine((r) => r.lower < r.upper, { message: 'lower must be below upper', path: ['lower'] })
    .prefault({});

export const proxySchema = z
  .object({
    /** Front listener for site traffic. */
    listen: hostPort.default('127.0.0.1:8080'),
    /** The site's own web server(s); at least one. Requests are balanced over them. */
    upstreams: z.array(httpUrl).min(1, 'at least one upstream URL is required'),
    /** Host header sent upstream: "preserve" the client's, "upstream" = the upstream URL's host, or a fixed value. */
    host_header: headerValue.default('preserve'),
    /** Connections per upstream (each client's pool size). */
    connections: positiveInt.default(128),
    /**
     * Upstream HTTP client: "fast" = our raw-socket HTTP/1.1 client for requests without a body
     * (undici for the rest), "undici" = undici for everything.
     */
    upstream_client: z.enum(['fast', 'undici']).default('fast'),
    /**
     * Client request reader: "fast" = our own HTTP/1.1 reader for simple GET/HEAD requests
     * (node:http for everything else), "node" = node:http for every request.
     */
    front_parser: z.enum(['fast', 'node']).default('fast'),
    timeouts: z
      .object({
        /** TCP connect to an upstream. Exceeded -> 502. */
        connect_ms: durationMs.default(5_000),
        /** Upstream's response headers. Exceeded -> 504. */
        header_ms: durationMs.default(60_000),
        /** Longest silence while an upstream streams its body. */
        body_idle_ms: durationMs.default(60_000),
        /** A client must send its whole request head within this (slowloris guard). */
        client_header_ms: durationMs.default(10_000),
        /** A client must send its whole request (head and body) within this. 0 = no limit. */
        client_request_ms: durationMs.default(300_000),
        /**
         * Idle keep-alive connections from clients are closed after this. nginx's 75 s, not Node's
         * 5 s: the shorter it is, the more often a client sends on a connection just as it closes.
         */
        client_keepalive_ms: durationMs.default(75_000),
        /** Idle keep-alive connections to upstreams are closed after this (below the upstream's own). */
        upstream_keepalive_ms: durationMs.default(4_000),
        /** Graceful shutdown: how long in-flight requests may take to finish. */
        drain_ms: durationMs.default(10_000),
      })
      .strict()
      .prefault({}),
    limits: z
      .object({
        /** Largest request head (request line + headers) accepted; larger -> 431. */
        max_header_bytes: positiveInt.default(16_384),
        /** Largest request body accepted; larger -> 413. 0 = no limit. */
        max_body_bytes: z.number().int().min(0).default(0),
        /** Most concurrent client connections; 0 = no limit. */
        max_connections: z.number().int().min(0).default(0),
      })
      .strict()
      .prefault({}),
    /** Trust X-Forwarded-* from these client addresses (another proxy in front). */
    trusted_proxies: z.array(z.string()).default([]),
    /** Name put in the Via header. */
    via: headerValue.default('dotslash'),
    access_log: z
      .object({
        enabled: z.boolean().default(true),
        /** "stdout", "stderr" or a file path. */
        output: z.string().min(1).default('stdout'),
      })
      .strict()
      .prefault({}),
  })
  .strict();

export const adminSchema = z
  .object({
    /** Admin listener: /healthz, /readyz (open), /metrics, /status (bearer token). */
    listen: hostPort.default('127.0.0.1:9180'),
    /** Environment variable holding the admin token (checked first). */
    token_env: z.string().min(1).default('DOTSLASH_ADMIN_TOKEN'),
    /** File holding the admin token; created with mode 0600 (and a random token) if missing. */
    token_file: z.string().min(1).default('.dotslash/admin.token'),
  })
  .strict()
  .prefault({});

export const monitorSchema = z
  .object({
    /** Sampling period. */
    interval_ms: positiveInt.default(1_000),
    /** EWMA weight of a new sample (1 = no smoothing). */
    smoothing: z.number().gt(0).max(1).default(0.3),
    /** Samples in a row a new region must hold before the change is reported (hysteresis). */
    dwell_samples: positiveInt.default(3),
    /** Margin, as a fraction of capacity, a value must cross beyond a threshold to leave a region. */
    hysteresis: fraction.default(0.05),
    cpu: z
      .object({
        /** "host": whole machine from /proc/stat; "processes": this daemon plus `pids`. */
        source: z.enum(['host', 'processes']).default('host'),
        /** Upstream process ids counted when source is "processes". */
        pids: z.array(positiveInt).default([]),
        /** CPU capacity in cores' worth (1 = one full core); 0 = all cores of the host. */
        capacity: z.number().min(0).default(0),
        lower: fraction.default(0.5),
        upper: fraction.default(0.85),
      })
      .strict()
      .refine((r) => r.lower < r.upper, { message: 'lower must be below upper', path: ['lower'] })
      .prefault({}),
    /** Where byte rates come from: the proxy's own counters, or /proc/net/dev for `interface`. */
    net_source: z.enum(['proxy', 'netdev']).default('proxy'),
    interface: z.string().min(1).default('lo'),
    /** Outgoing bytes/s against the uplink capacity (default 12.5 MB/s = 100 Mbit/s). */
    bytes_out: resource(12_500_000),
    /** Incoming bytes/s against the downlink capacity. */
    bytes_in: resource(12_500_000),
    /** Requests/s the site is sized for. */
    request_rate: resource(1_000),
  })
  .strict()
  .prefault({});

export const logSchema = z
  .object({
    level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
  })
  .strict()
  .prefault({});

// ---- rescue (issue 3): identity, control listener, the site as rescuers see it, peers, controller ----

/** A host name as a member id or site name (RFC 1123 labels). */
const hostName = z
  .string()
  .regex(
    /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/,
    'expected a host name such as www.example.org',
  );

export const identitySchema = z
  .object({
    /** Ed25519 private key (PKCS8 PEM); created with mode 0600 on first start if missing. */
    key_file: z.string().min(1).default('.dotslash/member.key'),
  })
  .strict()
  .prefault({});

export const controlSchema = z
  .object({
    /** Control listener for rescue-protocol messages (its own port, not the site's). */
    listen: hostPort.default('127.0.0.1:9181'),
    /** The control URL peers reach this member at, when not http://<listen>. */
    public_url: httpUrl.optional(),
  })
  .strict()
  .prefault({});

export const siteSchema = z
  .object({
    /** The site's host names rescuers serve for clients arriving by DNS; unset = [name]. */
    names: z.array(hostName).min(1).optional(),
    /** The public front rescuers fetch from; unset = http://<proxy.listen>. */
    front_url: httpUrl.optional(),
    content: z.enum(['static', 'dynamic']).default('static'),
    /** Cookies that mark a personalised request: never redirected. "name", "prefix*" or "*". */
    session_cookies: z
      .array(z.string().min(1))
      .default(['PHPSESSID', 'JSESSIONID', 'sid', 'session', 'connect.sid']),
    /** Path prefixes never redirected (ACME http-01 challenges must reach the origin). */
    redirect_exclude: z.array(z.string().startsWith('/')).default(['/.well-known/acme-challenge/']),
    /** Paths rescuers may micro-cache for ttl_s even when uncacheable (sent in the SOS). */
    micro_cache: z
      .object({
        paths: z.array(z.string().startsWith('/')).max(256),
        ttl_s: z.number().positive().max(3600),
      })
      .strict()
      .optional(),
    /** This member's public front base for its virtual hosts; unset = http://<name>:<proxy port>. */
    public_url: httpUrl.optional(),
    /**
     * This member's public front addresses (what its names resolve to): sent to origins in the SOS
     * answer (DNS round robin) and its own A/AAAA set; unset = proxy.listen's host when it is one address.
     */
    addresses: z
      .array(z.string().refine((a) => isIP(a) !== 0, 'expected an IPv4 or IPv6 address'))
      .max(16)
      .optional(),
  })
  .strict()
  .prefault({});

export const peerSchema = z
  .object({
    id: hostName,
    control_url: httpUrl,
    public_key: z
      .string()
      .regex(/^ed25519:[A-Za-z0-9_-]{43}$/, 'expected "ed25519:" + 43 base64url characters'),
  })
  .strict();

export const rescueSchema = z
  .object({
    /** on | observe (decide and log, act on nothing) | off; unset = on when peers are configured. */
    mode: z.enum(['on', 'observe', 'off']).optional(),
    /** Controller period (slide 18 reconciliation loop). */
    tick_ms: positiveInt.default(1_000),
    /** Session lease: a session not heard of for this long ends on that side. KEEPALIVE every lease/3. */
    lease_ms: positiveInt.default(30_000),
    /** After acquiring rescue, no release for this long (anti-thrash, Oceano). */
    acquire_hold_ms: durationMs.default(10_000),
    /** After releasing rescue, no new SOS for this long; a rescuer's "still heavy" wait. */
    release_hold_ms: durationMs.default(10_000),
    /** Pr must stay 0 this long before a rescue is released. */
    pr_zero_hold_ms: durationMs.default(10_000),
    /** A peer that declined (or could not be reached) is not asked again for this long. */
    decline_hold_ms: durationMs.default(30_000),
    /** Most rescuer sessions at once. */
    max_sessions: positiveInt.default(4),
    /** Most share of its request capacity a rescuer gives away. */
    max_share: fraction.default(0.5),
    /** Largest change of Pr per tick. */
    pr_step_max: z.number().gt(0).max(1).default(0.2),
    /** TTL of rescue DNS answers; names drain for 2 x this after a session ends. */
    dns_ttl_s: positiveInt.default(20),
    /** How long an ended session's names drain (pass-through); unset = 2 x dns_ttl_s. */
    drain_ms: durationMs.optional(),
    /** The rescuer's pull-through cache for the sites it rescues (all sessions together). Read at start. */
    cache: z
      .object({
        /** Byte bound of the cache (LRU). */
        max_bytes: positiveInt.default(256 * 1024 * 1024),
        /** Largest response stored; unset = min(8 MiB, max_bytes / 4). */
        max_entry_bytes: positiveInt.optional(),
      })
      .strict()
      .refine((c) => c.max_entry_bytes === undefined || c.max_entry_bytes <= c.max_bytes, {
        message: 'max_entry_bytes must not exceed max_bytes',
        path: ['max_entry_bytes'],
      })
      .prefault({}),
    /** After its last rescue session, this member's vhN names keep answering 421 this long. */
    ended_linger_ms: durationMs.default(600_000),
    predictor: z
      .object({
        enabled: z.boolean().default(true),
        hurst: z.number().gt(0).lt(1).default(0.85),
        sub_intervals: z.number().int().min(3).default(10),
        k: z.number().min(0).default(3),
      })
      .strict()
      .prefault({}),
  })
  .strict()
  .prefault({});

// ---- registry (issue 5): the daemon's client section, and the registry service's own file ----

const publicKeyText = z
  .string()
  .regex(/^ed25519:[A-Za-z0-9_-]{43}$/, 'expected "ed25519:" + 43 base64url characters');
/** A community name: lower-case letters, digits, "." and "-" (it may be the community's domain). */
export const communityName = z
  .string()
  .regex(/^[a-z0-9](?:[a-z0-9.-]{0,62}[a-z0-9])?$/, 'expected lower-case letters, digits, "." or "-"');

export const registryClientSchema = z
  .object({
    /** Registry base URLs, tried in order (fail-over). */
    urls: z.array(httpUrl).default([]),
    /** Community domain: registries are found by DNS SRV _dotslash._tcp.<srv> (before urls). */
    srv: hostName.optional(),
    /** DNS servers for the SRV lookup (HOST:PORT); [] = the system resolver. */
    dns_servers: z.array(hostPort).default([]),
    /** The community this member registers in. */
    community: communityName.default('default'),
    /** Registration lease; renewed every lease_ms / 3. */
    lease_ms: positiveInt.default(30_000),
    /** Registry public keys whose signed answers are trusted; [] = answers are not verified. */
    public_keys: z.array(publicKeyText).default([]),
    /** Offer to rescue others (registered as willing). */
    willing: z.boolean().default(true),
    /** Spare capacity is re-published at most this often (and only when it changed by 10 %). */
    publish_interval_ms: positiveInt.default(5_000),
    /** Per-request timeout to one registry before failing over to the next. */
    timeout_ms: positiveInt.default(3_000),
    /**
     * RTT measurement for lookups: each known member's control URL is probed (GET /v1/health)
     * at most once per this interval; 0 = no measurement (members rank as unmeasured).
     */
    rtt_interval_ms: z.number().int().nonnegative().default(60_000),
    /** One RTT probe's timeout, connect included. */
    rtt_timeout_ms: positiveInt.default(2_000),
    /** A member not measured for this long is forgotten (ranks as unmeasured again). */
    rtt_max_age_ms: positiveInt.default(600_000),
    /** Flood-insurance communities: the token ledger policy (the registry's community policy). */
    ledger: ledgerPolicySchema.optional(),
  })
  .strict()
  .prefault({});

export const registryCommunitySchema = z
  .object({
    name: communityName,
    /** open: anyone registers; closed: admitted keys only; flood-insurance: closed + token ledger. */
    type: z.enum(['open', 'closed', 'flood-insurance']).default('open'),
    /** Token ledger policy (flood-insurance): starting balance, prices, spend amount, holds. */
    policy: ledgerPolicySchema.prefault({}),
  })
  .strict();

export const registryPeerSchema = z
  .object({
    id: hostName,
    url: httpUrl,
    public_key: publicKeyText,
  })
  .strict();

export const registryServiceSchema = z
  .object({
    /** This registry's id (a host name): the mesh names updates by it. */
    id: hostName,
    /** Registry API listener (members and peer registries). */
    listen: hostPort.default('127.0.0.1:7700'),
    /** SQLite store (WAL). */
    state_file: z.string().min(1).default('.dotslash/registry.db'),
    /** Ed25519 private key (PKCS8 PEM, `dotslash keygen` format); created 0600 if missing. */
    key_file: z.string().min(1).default('.dotslash/registry.key'),
    /** The other registries of the mesh. */
    peers: z.array(registryPeerSchema).default([]),
    communities: z.array(registryCommunitySchema).min(1, 'at least one community is required'),
    admin: z
      .object({
        /** Admin API (admit, revoke, status): bearer token, loopback by default. */
        listen: hostPort.default('127.0.0.1:7701'),
        token_env: z.string().min(1).default('DOTSLASH_REGISTRY_TOKEN'),
        token_file: z.string().min(1).default('.dotslash/registry-admin.token'),
      })
      .strict()
      .prefault({}),
    lease: z
      .object({
        min_ms: positiveInt.default(3_000),
        max_ms: positiveInt.default(600_000),
      })
      .strict()
      .refine((l) => l.min_ms <= l.max_ms, { message: 'min_ms must not exceed max_ms', path: ['min_ms'] })
      .prefault({}),
    mesh: z
      .object({
        /** Period of the version-vector exchange with each peer (anti-entropy). */
        anti_entropy_ms: positiveInt.default(2_000),
        /** New updates are batched this long before being forwarded to peers. */
        push_delay_ms: durationMs.default(20),
      })
      .strict()
      .prefault({}),
    /** Largest request body accepted. */
    max_body_bytes: positiveInt.default(16_384),
    log: logSchema,
  })
  .strict()
  .superRefine((c, ctx) => {
    const names = new Set<string>();
    c.communities.forEach((k, i) => {
      if (names.has(k.name))
        ctx.addIssue({ code: 'custom', path: ['communities', i, 'name'], message: `listed twice` });
      names.add(k.name);
    });
    c.peers.forEach((p, i) => {
      if (p.id === c.id)
        ctx.addIssue({ code: 'custom', path: ['peers', i, 'id'], message: 'a registry is not its own peer' });
    });
  });

export type RegistryServiceConfig = z.infer<typeof registryServiceSchema>;
export type RegistryClientConfig = z.infer<typeof registryClientSchema>;
export type CommunityConfig = RegistryServiceConfig['communities'][number];
// ---- DNS (issue 4): the embedded authoritative server; part B adds `dns.rfc2136` ----

const ttlSeconds = z.number().int().min(0).max(2_147_483_647);
const u32 = z.number().int().min(0).max(4_294_967_295);
const txtOrString = z.union([z.string(), z.array(z.string())]);

const dnsRecordSchema = z
  .object({
    /** Relative to the zone ("www"), "@" for the apex, or absolute (ends in the zone name or "."). */
    name: z.string().min(1),
    type: z.enum(['A', 'AAAA', 'CNAME', 'TXT', 'SRV', 'NS']),
    ttl: ttlSeconds.optional(),
    /** One value; TXT also takes an array (one record of several strings). */
    value: txtOrString.optional(),
    /** Several values: one record each. */
    values: z.array(txtOrString).min(1).optional(),
  })
  .strict()
  .refine((r) => (r.value === undefined) !== (r.values === undefined), {
    message: 'give exactly one of "value" or "values"',
    path: ['value'],
  });

const dnsZoneSchema = z
  .object({
    /** The zone apex, e.g. origin.example. */
    name: z.string().min(1),
    soa: z
      .object({
        mname: z.string().min(1),
        rname: z.string().min(1),
        /** Unset: seconds since the epoch at (re)load, so each reload raises it. */
        serial: u32.optional(),
        refresh: u32.default(3_600),
        retry: u32.default(600),
        expire: u32.default(604_800),
        /** Negative-caching TTL (NXDOMAIN / NODATA). */
        minimum: u32.default(60),
        ttl: ttlSeconds.optional(),
      })
      .strict(),
    ns: z.array(z.string().min(1)).min(1, 'a zone needs at least one NS name'),
    records: z.array(dnsRecordSchema).default([]),
  })
  .strict();

export const dnsSchema = z
  .object({
    /** off | embedded (this daemon answers for `zones`) | rfc2136 (updates an external server; part B). */
    mode: z.enum(['off', 'embedded', 'rfc2136']).default('off'),
    /** UDP and TCP listener of the embedded server (53 in production). */
    listen: hostPort.default('127.0.0.1:5353'),
    /** TTL of records that set none. */
    ttl: ttlSeconds.default(300),
    /** TTL of the site names' A/AAAA sets while rescued; unset = rescue.dns_ttl_s. */
    rescue_ttl: positiveInt.optional(),
    /** The names whose A/AAAA sets get rescuers' addresses; unset = site.names, else [name]. */
    site_names: z.array(hostName).optional(),
    /** Largest UDP answer whatever the client advertises (EDNS0); larger answers are truncated (TC). */
    max_udp_size: z.number().int().min(512).max(4096).default(1232),
    tcp: z
      .object({
        /** A TCP connection with no complete query for this long is closed. */
        idle_ms: positiveInt.default(10_000),
        /** Most concurrent TCP connections. */
        max_connections: positiveInt.default(256),
      })
      .strict()
      .prefault({}),
    zones: z.array(dnsZoneSchema).default([]),
    /** mode rfc2136: the external primary that takes TSIG-signed dynamic UPDATEs for `zone`. */
    rfc2136: z
      .object({
        /** The primary server's HOST:PORT (port 53 in production). */
        server: hostPort.optional(),
        /** The zone the site names live in (the UPDATE's zone section). */
        zone: hostName.optional(),
        /** The TSIG key's name as the server knows it (named.conf `key "<name>"`). */
        key_name: hostName.optional(),
        /** The TSIG secret, base64 as tsig-keygen prints it; usually ${ENV}. */
        key_secret: z
          .string()
          .regex(/^[A-Za-z0-9+/]+={0,2}$/, 'expected base64 (as tsig-keygen prints it)')
          .refine(
            (s) => s.length % 4 === 0 && Buffer.from(s, 'base64').length >= 16,
            'expected at least 16 bytes of base64',
          )
          .optional(),
        algorithm: z.enum(['hmac-sha256']).default('hmac-sha256'),
        /** Per attempt (UDP, then TCP when truncated); failures retry with backoff. */
        timeout_ms: positiveInt.default(3_000),
      })
      .strict()
      .prefault({}),
  })
  .strict()
  .superRefine((d, ctx) => {
    if (d.mode === 'embedded' && d.zones.length === 0)
      ctx.addIssue({ code: 'custom', path: ['zones'], message: 'dns.mode embedded needs at least one zone' });
    if (d.mode === 'rfc2136') {
      for (const k of ['server', 'zone', 'key_name', 'key_secret'] as const)
        if (d.rfc2136[k] === undefined)
          ctx.addIssue({
            code: 'custom',
            path: ['rfc2136', k],
            message: `dns.mode rfc2136 needs dns.rfc2136.${k}`,
          });
      const zone = d.rfc2136.zone?.toLowerCase();
      d.site_names?.forEach((n, i) => {
        const name = n.toLowerCase();
        if (zone !== undefined && name !== zone && !name.endsWith(`.${zone}`))
          ctx.addIssue({
            code: 'custom',
            path: ['site_names', i],
            message: `${n} is not in dns.rfc2136.zone ${zone}`,
          });
      });
    }
    for (const issue of checkZones(dnsZonesOf(d), { defaultTtl: d.ttl, now: () => 0 })) {
      // Point at `value` when the record was written with one value rather than `values`.
      const path = [...issue.path];
      if (path[2] === 'records' && path[4] === 'values') {
        const rec = d.zones[path[1] as number]?.records[path[3] as number];
        if (rec?.value !== undefined) path.splice(4, 2, 'value');
      }
      ctx.addIssue({ code: 'custom', path, message: `${issue.message} (${issue.code})` });
    }
  })
  .prefault({});

/** The zones of a parsed `dns` section in the shape dns/ builds snapshots from. */
export function dnsZonesOf(d: { zones: readonly z.infer<typeof dnsZoneSchema>[] }): ZoneConfig[] {
  return d.zones.map((z) => ({
    name: z.name,
    soa: z.soa,
    ns: z.ns,
    records: z.records.map((r) => ({
      name: r.name,
      type: r.type,
      ttl: r.ttl,
      values: r.values ?? (r.value !== undefined ? [r.value] : []),
    })),
  }));
}

export const configSchema = z
  .object({
    /** This member's name (its public host name); defaults to the front listener's host. */
    name: z.string().min(1).optional(),
    proxy: proxySchema,
    admin: adminSchema,
    monitor: monitorSchema,
    log: logSchema,
    identity: identitySchema,
    control: controlSchema,
    site: siteSchema,
    /** Known members: candidates to ask for rescue, and whose messages are accepted. */
    peers: z.array(peerSchema).default([]),
    rescue: rescueSchema,
    /** Registry client: register, renew, publish spare capacity, discover rescuers (issue 5). */
    registry: registryClientSchema,
    dns: dnsSchema,
    /** SQLite state (sessions, their history, the never-reused vhost counter). */
    state_file: z.string().min(1).default('.dotslash/state.db'),
  })
  .strict()
  .superRefine((c, ctx) => {
    if (effectiveRescueMode(c) !== 'off' && c.name === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['name'],
        message: "name (this member's public host name) is required when rescue is on or observe",
      });
    }
    if (c.dns.mode === 'rfc2136' && c.site.addresses === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['site', 'addresses'],
        message:
          "dns.mode rfc2136 needs site.addresses: the site names' own A/AAAA set, which each UPDATE rewrites",
      });
    }
    const ids = new Set<string>();
    c.peers.forEach((p, i) => {
      if (ids.has(p.id))
        ctx.addIssue({ code: 'custom', path: ['peers', i, 'id'], message: `peer ${p.id} is listed twice` });
      ids.add(p.id);
    });
  });

/** rescue.mode, or its documented default: on when peers or a registry are configured, else off. */
export function effectiveRescueMode(c: {
  rescue: { mode?: 'on' | 'observe' | 'off' | undefined };
  peers: readonly unknown[];
  registry?: { urls: readonly unknown[]; srv?: string | undefined };
}): 'on' | 'observe' | 'off' {
  return c.rescue.mode ?? (c.peers.length > 0 || registryConfigured(c.registry) ? 'on' : 'off');
}

/** A registry is in use when URLs or an SRV domain are configured. */
export function registryConfigured(
  r: { urls: readonly unknown[]; srv?: string | undefined } | undefined,
): boolean {
  return r !== undefined && (r.urls.length > 0 || r.srv !== undefined);
}

/** dns.rescue_ttl, or rescue.dns_ttl_s (so a rescuer's drain, 2 x that TTL, outlasts cached answers). */
export function effectiveDnsRescueTtl(c: {
  dns: { rescue_ttl?: number | undefined };
  rescue: { dns_ttl_s: number };
}): number {
  return c.dns.rescue_ttl ?? c.rescue.dns_ttl_s;
}

/** dns.site_names, or site.names, or [name]: the names whose A/AAAA sets get rescuers during a rescue. */
export function effectiveDnsSiteNames(c: {
  name?: string | undefined;
  dns: { site_names?: readonly string[] | undefined };
  site: { names?: readonly string[] | undefined };
}): readonly string[] {
  return c.dns.site_names ?? c.site.names ?? (c.name !== undefined ? [c.name] : []);
}

export type Config = z.infer<typeof configSchema>;
export type ProxyConfig = Config['proxy'];
export type AdminConfig = Config['admin'];
export type MonitorConfig = Config['monitor'];
export type SiteConfig = Config['site'];
export type PeerConfig = Config['peers'][number];
export type RescueConfig = Config['rescue'];
export type RescueMode = 'on' | 'observe' | 'off';
export type DnsConfig = Config['dns'];
