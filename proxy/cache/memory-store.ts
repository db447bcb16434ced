// The in-process cache store: a byte-bounded LRU (lru-cache) plus a per-origin key index so
// a session's entries can be counted and dropped without scanning the whole cache.
import { LRUCache } from 'lru-cache';
import { keyUrl, type CacheEntry, type CacheStore, type CacheStoreStats } from './store.js';

export interface MemoryStoreOptions {
  /** Upper bound on the sum of entry sizes (body + header bytes). */
  maxBytes: number;
  /** Largest single entry; bigger responses are streamed through, not stored. Default: min(8 MiB, maxBytes / 4). */
  maxEntryBytes?: number;
}

interface OriginIndex {
  keys: Set<string>;
  bytes: number;
}

export class MemoryStore implements CacheStore {
  readonly maxBytes: number;
  readonly maxEntryBytes: number;
  private readonly lru: LRUCache<string, CacheEntry>;
  private readonly byOrigin = new Map<string, OriginIndex>();
  private evictions = 0;

  constructor(opts: MemoryStoreOptions) {
    if (!(opts.maxBytes > 0)) throw new RangeError('MemoryStore: maxBytes must be > 0');
    this.maxBytes = opts.maxBytes;
    this.maxEntryBytes = Math.min(opts.maxEntryBytes ?? Math.min(8 << 20, opts.maxBytes / 4), opts.maxBytes);
    this.lru = new LRUCache<string, CacheEntry>({
      maxSize: this.maxBytes,
      maxEntrySize: this.maxEntryBytes,
      sizeCalculation: (e) => e.size,
      // Called synchronously for evictions, deletes and replacements: keep the index exact.
      dispose: (e, key, reason) => {
        const idx = this.byOrigin.get(e.originId);
        if (idx !== undefined && idx.keys.delete(key)) {
          idx.bytes -= e.size;
          if (idx.keys.size === 0) this.byOrigin.delete(e.originId);
        }
        if (reason === 'evict') this.evictions++;
      },
    });
  }

  get(key: string): CacheEntry | undefined {
    return this.lru.get(key);
  }

  set(entry: CacheEntry): boolean {
    if (entry.size > this.maxEntryBytes) return false;
    // lru-cache does not dispose a value set again under its own key: nothing to re-index.
    if (this.lru.peek(entry.key) === entry) return true;
    this.lru.set(entry.key, entry);
    let idx = this.byOrigin.get(entry.originId);
    if (idx === undefined) {
      idx = { keys: new Set(), bytes: 0 };
      this.byOrigin.set(entry.originId, idx);
    }
    idx.keys.add(entry.key);
    idx.bytes += entry.size;
    return true;
  }

  delete(key: string): boolean {
    return this.lru.delete(key);
  }

  deleteByUrl(originId: string, match: (url: string) => boolean): number {
    const idx = this.byOrigin.get(originId);
    if (idx === undefined) return 0;
    let n = 0;
    for (const key of [...idx.keys]) {
      if (match(keyUrl(key)) && this.lru.delete(key)) n++;
    }
    return n;
  }

  deleteOrigin(originId: string): number {
    const idx = this.byOrigin.get(originId);
    if (idx === undefined) return 0;
    let n = 0;
    for (const key of [...idx.keys]) if (this.lru.delete(key)) n++;
    this.byOrigin.delete(originId);
    return n;
  }

  clear(): void {
    this.lru.clear();
    this.byOrigin.clear();
  }

  stats(): CacheStoreStats {
    const origins: CacheStoreStats['origins'] = {};
    for (const [id, idx] of this.byOrigin) origins[id] = { entries: idx.keys.size, bytes: idx.bytes };
    return {
      entries: this.lru.size,
      bytes: this.lru.calculatedSize,
      maxBytes: this.maxBytes,
      maxEntryBytes: this.maxEntryBytes,
      evictions: this.evictions,
      origins,
    };
  }
}
