// The replicated unit of the registry mesh: one generic record per (kind, key). Members, admits
// and the token ledger's receipts and spends all travel as records, so the mesh never needs to
// know what a kind means; a kind's own module validates and applies its payloads.
import { z } from 'zod';

/** Version vector: registry id -> highest update counter of that registry this store holds in full. */
export type VersionVector = Record<string, number>;

export interface RegistryRecord {
  /** 'member' | 'admit' | the ledger's kinds ('receipt', 'spend', ...). */
  readonly kind: string;
  /** Unique within the kind, e.g. "<community>/<member id>". */
  readonly key: string;
  /** The registry that accepted this update (its id), and its per-registry update counter. */
  readonly origin: string;
  readonly counter: number;
  /** Wall clock (epoch ms) at the origin registry: last writer wins by (ts, origin, counter). */
  readonly ts: number;
  /** Absolute expiry (epoch ms; each registry expires on its own clock), or null = never. */
  readonly expires_at: number | null;
  /** A tombstone: the key was removed (deregister, revoke). */
  readonly deleted: boolean;
  readonly payload: unknown;
}

const registryId = z.string().min(1).max(253);
const epochMs = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);

export const recordSchema = z
  .object({
    kind: z.string().regex(/^[a-z][a-z0-9-]{0,31}$/),
    key: z.string().min(1).max(512),
    origin: registryId,
    counter: z.number().int().positive().max(Number.MAX_SAFE_INTEGER),
    ts: epochMs,
    expires_at: epochMs.nullable(),
    deleted: z.boolean(),
    payload: z.unknown(),
  })
  .strict();

export const vectorSchema = z.record(registryId, z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER));

/** True when `a` wins over `b` (last writer by timestamp, then registry id, then counter). */
export function newer(a: RegistryRecord, b: RegistryRecord): boolean {
  if (a.ts !== b.ts) return a.ts > b.ts;
  if (a.origin !== b.origin) return a.origin > b.origin;
  return a.counter > b.counter;
}

/** A kind's rules: how to check a payload arriving from a peer, and what to do when a record wins. */
export interface RecordKind {
  /** Throws (any Error) when the payload is not valid for this kind; the record is then dropped. */
  validate(rec: RegistryRecord): void;
  /** Called after the record is stored as the winner for its key (or removed, for a tombstone). */
  applied?(rec: RegistryRecord): void;
  /** Called when an expired record is purged. */
  expired?(rec: RegistryRecord): void;
}
