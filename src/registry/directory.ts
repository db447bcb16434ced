// The in-memory index the registry answers from: live members per community, admitted keys, and
// the lookup ranking. Fed by the store's record hooks, so local and replicated updates are alike.
import type { CommunityConfig } from '../config/schema.js';
import type { RecordKind, RegistryRecord } from './records.js';
import {
  registrationSchema,
  type Candidate,
  type DirectoryEntry,
  type LookupQuery,
  type Registration,
} from './messages.js';
import { describeIssues } from './signed.js';
import { z } from 'zod';

export type CommunityType = CommunityConfig['type'];

/** RTT assumed for a member the origin has not measured: ranks it as if 100 ms away. */
export const DEFAULT_RTT_MS = 100;
/** How stale the spare-capacity order may get under a stream of updates (large communities only). */
const RESORT_MS = 100;
/** Below this size the order is rebuilt on every change (cheap, and tests see updates at once). */
const ALWAYS_RESORT_BELOW = 1_000;

/** Mutable so a renewal with an unchanged spare figure updates in place (the order stays valid). */
interface Member {
  reg: Registration;
  expiresAt: number;
}

class Community {
  readonly byId = new Map<string, Member>();
  readonly admitted = new Set<string>();
  sorted: Member[] = [];
  dirty = true;
  sortedAt = -Infinity;
  constructor(readonly type: CommunityType) {}
}

const admitPayload = z
  .object({ community: z.string(), public_key: z.string(), admitted: z.boolean() })
  .strict();
const tombstonePayload = z.object({ id: z.string(), community: z.string() }).strict();

export const memberKey = (community: string, id: string): string => `${community}/${id}`;
export const admitKey = (community: string, publicKey: string): string => `${community}/${publicKey}`;

export class Directory {
  private readonly communities = new Map<string, Community>();
  private readonly now: () => number;

  constructor(communities: readonly CommunityConfig[], now: () => number = Date.now) {
    for (const c of communities) this.communities.set(c.name, new Community(c.type));
    this.now = now;
  }

  has(community: string): boolean {
    return this.communities.has(community);
  }

  typeOf(community: string): CommunityType | undefined {
    return this.communities.get(community)?.type;
  }

  names(): string[] {
    return [...this.communities.keys()];
  }

  /** Closed and flood-insurance communities take only keys an administrator admitted. */
  isAdmitted(community: string, publicKey: string): boolean {
    const c = this.communities.get(community);
    return c !== undefined && (c.type === 'open' || c.admitted.has(publicKey));
  }

  /** The live registration of `id`, if its lease has not lapsed on this registry's clock. */
  live(community: string, id: string): Registration | undefined {
    const m = this.communities.get(community)?.byId.get(id);
    return m && m.expiresAt > this.now() ? m.reg : undefined;
  }

  size(community: string): number {
    return this.communities.get(community)?.byId.size ?? 0;
  }

  /** Record rules of kind 'member': payload is a registration, or {id, community} for a tombstone. */
  readonly memberKind: RecordKind = {
    validate: (rec) => {
      const r = (rec.deleted ? tombstonePayload : registrationSchema).safeParse(rec.payload);
      if (!r.success) throw new Error(describeIssues(r.error.issues));
      const p = r.data as { id: string; community: string };
      if (rec.key !== memberKey(p.community, p.id)) throw new Error('key does not match the payload');
      if (!rec.deleted && rec.expires_at === null) throw new Error('a registration needs an expiry');
    },
    applied: (rec) => this.applyMember(rec),
    expired: (rec) => this.dropMember(rec),
  };

  readonly admitKind: RecordKind = {
    validate: (rec) => {
      const r = admitPayload.safeParse(rec.payload);
      if (!r.success) throw new Error(describeIssues(r.error.issues));
      if (rec.key !== admitKey(r.data.community, r.data.public_key))
        throw new Error('key does not match the payload');
    },
    applied: (rec) => {
      const p = rec.payload as z.infer<typeof admitPayload>;
      const c = this.communities.get(p.community);
      if (!c) return; // a community this registry does not serve: kept in the store, not indexed
      if (p.admitted && !rec.deleted) c.admitted.add(p.public_key);
      else c.admitted.delete(p.public_key);
      c.dirty = true;
    },
  };

  /**
   * Candidates for an origin: willing members of its community with spare uplink or request
   * rate, not itself, not excluded, admitted (closed communities), lease live. The best
   * 4 x limit by spare (uplink, then requests/s) are scored spare x 1 / (1 + rtt / 100 ms) with
   * the origin's measured RTT (DEFAULT_RTT_MS where unmeasured) and the best `limit` returned.
   */
  lookup(q: LookupQuery): Candidate[] {
    const c = this.communities.get(q.community);
    if (!c) return [];
    const now = this.now();
    this.resort(c, now);
    const exclude = new Set(q.exclude);
    exclude.add(q.origin);
    const picked: Member[] = [];
    for (const m of c.sorted) {
      if (picked.length >= q.limit * 4) break;
      const id = m.reg.id;
      if (c.byId.get(id) !== m || m.expiresAt <= now || exclude.has(id)) continue;
      if (!m.reg.willing || (m.reg.spare.uplink_bps <= 0 && m.reg.spare.rps <= 0)) continue;
      if (c.type !== 'open' && !c.admitted.has(m.reg.public_key)) continue;
      picked.push(m);
    }
    const latency = (m: Member): number => 1 / (1 + (q.rtt_ms[m.reg.id] ?? DEFAULT_RTT_MS) / 100);
    return picked
      .map((m) => ({ m, s: m.reg.spare.uplink_bps * latency(m), r: m.reg.spare.rps * latency(m) }))
      .sort((a, b) => b.s - a.s || b.r - a.r || (a.m.reg.id < b.m.reg.id ? -1 : 1))
      .slice(0, q.limit)
      .map(({ m }) => {
        const rtt = q.rtt_ms[m.reg.id];
        const { id, names, control_url, public_key, capacity, spare } = m.reg;
        return rtt === undefined
          ? { id, names, control_url, public_key, capacity, spare }
          : { id, names, control_url, public_key, capacity, spare, rtt_ms: rtt };
      });
  }

  /** Every live member's id, control URL and key (what a rescuer needs to verify an SOS). */
  directory(community: string): DirectoryEntry[] {
    const c = this.communities.get(community);
    if (!c) return [];
    const now = this.now();
    const out: DirectoryEntry[] = [];
    for (const m of c.byId.values())
      if (m.expiresAt > now && (c.type === 'open' || c.admitted.has(m.reg.public_key)))
        out.push({ id: m.reg.id, control_url: m.reg.control_url, public_key: m.reg.public_key });
    return out;
  }

  private resort(c: Community, now: number): void {
    if (!c.dirty) return;
    if (c.byId.size >= ALWAYS_RESORT_BELOW && now - c.sortedAt < RESORT_MS) return;
    c.sorted = [...c.byId.values()].sort(
      (a, b) =>
        b.reg.spare.uplink_bps - a.reg.spare.uplink_bps ||
        b.reg.spare.rps - a.reg.spare.rps ||
        (a.reg.id < b.reg.id ? -1 : 1),
    );
    c.dirty = false;
    c.sortedAt = now;
  }

  private applyMember(rec: RegistryRecord): void {
    if (rec.deleted) return this.dropMember(rec);
    const reg = rec.payload as Registration;
    const c = this.communities.get(reg.community);
    if (!c) return;
    const expiresAt = rec.expires_at ?? 0;
    const before = c.byId.get(reg.id);
    // An unchanged spare figure keeps the order valid: renewals do not force a re-sort.
    if (
      before !== undefined &&
      before.reg.spare.uplink_bps === reg.spare.uplink_bps &&
      before.reg.spare.rps === reg.spare.rps
    ) {
      before.reg = reg;
      before.expiresAt = expiresAt;
      return;
    }
    c.byId.set(reg.id, { reg, expiresAt });
    c.dirty = true;
  }

  private dropMember(rec: RegistryRecord): void {
    const p = rec.payload as { id: string; community: string };
    const c = this.communities.get(p.community);
    if (c?.byId.get(p.id) === undefined) return;
    const cur = c.byId.get(p.id)!;
    // An expiry of an older registration must not remove a newer one.
    if (!rec.deleted && cur.expiresAt !== rec.expires_at) return;
    c.byId.delete(p.id);
    c.dirty = true;
  }
}
