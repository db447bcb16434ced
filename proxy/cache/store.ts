// The cache store contract: what the pull-through cache keeps per URL and the narrow interface
// every store (memory now, maybe Redis later) implements. Keys are built only by cacheKey().
import type CachePolicy from 'http-cache-semantics';

/**
 * One stored response. `headers` are lower-cased, hop-by-hop and Age/X-Cache removed, with a
 * Content-Length equal to the body; `head` is the same as a flat [name, value, ...] array with
 * `age` and `x-cache: HIT` slots at the end, prepared once so a hit does no header work.
 */
export interface CacheEntry {
  readonly originId: string;
  readonly key: string;
  readonly status: number;
  readonly headers: Readonly<Record<string, string | string[]>>;
  readonly body: Buffer;
  readonly policy: CachePolicy;
  /** Epoch ms when the response arrived (or was last revalidated). */
  readonly storedAt: number;
  /** Age in seconds the response already had when stored (Age header, clock skew). */
  readonly ageAtStore: number;
  /** Epoch ms until which the entry is served without asking the origin. */
  readonly freshUntil: number;
  /** Epoch ms until which a stale entry may stand in for a failed origin (transport error). */
  readonly staleOnDisconnectUntil: number;
  /** Epoch ms until which a stale entry may stand in for an origin 5xx (RFC 5861 stale-if-error). */
  readonly staleOn5xxUntil: number;
  readonly etag: string | undefined;
  readonly lastModified: string | undefined;
  /** Lower-cased request header names of the response's Vary, or null. */
  readonly vary: readonly string[] | null;
  /** Bytes charged against the store: body + header names and values. */
  readonly size: number;
  /** Prepared response head for hits (see above); the age slot is rewritten in place. */
  readonly head: string[];
  /** Last age written into `head`, so the string is only rebuilt once a second. */
  ageShown: number;
}

export interface CacheStoreStats {
  entries: number;
  bytes: number;
  maxBytes: number;
  maxEntryBytes: number;
  /** Entries dropped to make room (not deletes or replacements). */
  evictions: number;
  /** Entries and bytes per origin (session) id. */
  origins: Record<string, { entries: number; bytes: number }>;
}

/**
 * A byte-bounded store. Speed contract: get() and set() are called on the request path and
 * must be O(1) and synchronous; the delete-many calls are for purges and session ends.
 */
export interface CacheStore {
  readonly maxEntryBytes: number;
  /** The entry (counts as a use for eviction order), or undefined. */
  get(key: string): CacheEntry | undefined;
  /** Store (replacing any entry under `key`). False if the entry is larger than maxEntryBytes. */
  set(entry: CacheEntry): boolean;
  delete(key: string): boolean;
  /** Delete every entry of `originId` whose URL (request target) `match` accepts. Returns how many. */
  deleteByUrl(originId: string, match: (url: string) => boolean): number;
  /** Delete every entry of `originId` (session end). Returns how many. */
  deleteOrigin(originId: string): number;
  clear(): void;
  stats(): CacheStoreStats;
}

/**
 * The key of a URL's entry: origin (session) id, then the request target. GET and HEAD share
 * it (only GET responses are stored). Origin ids are host names, so never contain "\n".
 */
export function cacheKey(originId: string, url: string): string {
  return originId + '\n' + url;
}

/** The key of one Vary variant: the URL key, then the nominated request header values. */
export function variantKey(baseKey: string, values: readonly string[]): string {
  return baseKey + '\0' + values.join('\x01');
}

/** The URL part of a key made by cacheKey()/variantKey(). */
export function keyUrl(key: string): string {
  const start = key.indexOf('\n') + 1;
  const end = key.indexOf('\0', start);
  return end < 0 ? key.slice(start) : key.slice(start, end);
}
