// The CacheStore contract, run against MemoryStore: byte bound with LRU eviction, entry cap,
// per-origin index, deletes by URL and by origin. Plus the byte bound seen through the cache.
import CachePolicy from 'http-cache-semantics';
import { afterEach, describe, expect, it } from 'vitest';
import { buildEntry } from '../../../proxy/cache/entry.js';
import { MemoryStore } from '../../../proxy/cache/memory-store.js';
import { cacheKey, type CacheEntry, type CacheStore } from '../../../proxy/cache/store.js';
import { get, reply, startOrigin, startRescuer, type Origin, type Rescuer } from './helpers.js';

function entry(originId: string, url: string, bodyBytes: number): CacheEntry {
  const headers = { 'cache-control': 'max-age=60' };
  const policy = new CachePolicy(
    { url, method: 'GET', headers: {} },
    { status: 200, headers },
    { shared: true },
  );
  return buildEntry({
    originId,
    key: cacheKey(originId, url),
    status: 200,
    headers,
    body: Buffer.alloc(bodyBytes, 'z'),
    policy,
    decision: { freshS: 60, staleOn5xxS: 0, staleOnDisconnectS: 0 },
    now: Date.now(),
  });
}

function contract(name: string, make: (maxBytes: number, maxEntryBytes?: number) => CacheStore): void {
  describe(`CacheStore contract: ${name}`, () => {
    it('charges body and header bytes, and evicts least recently used entries past the bound', () => {
      const s = make(10_000, 5000);
      const e1 = entry('o', '/1', 3000);
      expect(e1.size).toBeGreaterThan(3000);
      expect(e1.size).toBeLessThan(3100);
      s.set(e1);
      s.set(entry('o', '/2', 3000));
      s.set(entry('o', '/3', 3000));
      expect(s.get(cacheKey('o', '/1'))).toBeDefined(); // /1 is now the most recently used
      s.set(entry('o', '/4', 3000));
      expect(s.get(cacheKey('o', '/2'))).toBeUndefined();
      expect(s.get(cacheKey('o', '/1'))).toBeDefined();
      const st = s.stats();
      expect(st.bytes).toBeLessThanOrEqual(10_000);
      expect(st.entries).toBe(3);
      expect(st.evictions).toBe(1);
      expect(st.origins.o).toEqual({ entries: 3, bytes: st.bytes });
    });

    it('refuses entries above the entry cap', () => {
      const s = make(100_000, 5000);
      expect(s.set(entry('o', '/big', 6000))).toBe(false);
      expect(s.set(entry('o', '/small', 1000))).toBe(true);
      expect(s.stats().entries).toBe(1);
    });

    it('replaces an entry under the same key without double counting', () => {
      const s = make(100_000);
      s.set(entry('o', '/r', 1000));
      const again = entry('o', '/r', 2000);
      s.set(again);
      s.set(again);
      expect(s.stats()).toMatchObject({
        entries: 1,
        bytes: again.size,
        origins: { o: { entries: 1, bytes: again.size } },
      });
    });

    it('deletes by URL match and by origin, leaving other origins alone', () => {
      const s = make(100_000);
      for (const u of ['/a', '/a?x=1', '/b/1', '/b/2']) s.set(entry('o1', u, 100));
      s.set(entry('o2', '/a', 100));
      expect(s.deleteByUrl('o1', (u) => u.startsWith('/b/'))).toBe(2);
      expect(s.delete(cacheKey('o1', '/a'))).toBe(true);
      expect(s.stats().origins.o1!.entries).toBe(1);
      expect(s.deleteOrigin('o1')).toBe(1);
      expect(s.deleteOrigin('o1')).toBe(0);
      expect(s.stats().origins).toEqual({ o2: { entries: 1, bytes: expect.any(Number) } });
      s.clear();
      expect(s.stats()).toMatchObject({ entries: 0, bytes: 0, origins: {} });
    });
  });
}

contract('MemoryStore', (maxBytes, maxEntryBytes) => new MemoryStore({ maxBytes, maxEntryBytes }));

describe('byte bound through the cache', () => {
  let origin: Origin;
  let rescuer: Rescuer;
  afterEach(async () => {
    await rescuer?.close();
    await origin?.close();
  });

  it('keeps the cache under maxBytes and misses again on evicted URLs', async () => {
    origin = await startOrigin((req, res) =>
      reply(res, 200, { 'cache-control': 'max-age=60' }, Buffer.alloc(4096, 'q')),
    );
    rescuer = await startRescuer(origin.url, { maxBytes: 10_000, maxEntryBytes: 8000 });
    for (const p of ['/1', '/2', '/3']) await get(`${rescuer.url}${p}`);
    const st = rescuer.store.stats();
    expect(st.bytes).toBeLessThanOrEqual(10_000);
    expect(st.entries).toBe(2);
    expect(st.evictions).toBe(1);
    expect((await get(`${rescuer.url}/3`)).headers['x-cache']).toBe('HIT');
    expect((await get(`${rescuer.url}/1`)).headers['x-cache']).toBe('MISS');
    expect(origin.count('/1')).toBe(2);
  });
});
