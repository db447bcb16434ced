// Versioned (v: 1) zod schemas of the registry API: member requests (register, deregister,
// lookup, directory), mesh messages (push, sync) and the signed envelope around each.
import { z } from 'zod';
import { memberIdSchema } from '../../rescue-protocol/messages.js';
import { recordSchema, vectorSchema } from './records.js';

export const REGISTRY_API_VERSION = 1;

export const REGISTER_PATH = '/v1/register';
export const DEREGISTER_PATH = '/v1/deregister';
export const LOOKUP_PATH = '/v1/lookup';
export const DIRECTORY_PATH = '/v1/directory';
export const MESH_PUSH_PATH = '/v1/mesh/push';
export const MESH_SYNC_PATH = '/v1/mesh/sync';
export const HEALTH_PATH = '/v1/health';
/** A request header asking for a signed answer ("1"): registries and clients with registry keys send it. */
export const WANT_SIGNED_HEADER = 'dotslash-want-signed';
export const ADMIT_PATH = '/v1/admin/admit';
export const REVOKE_PATH = '/v1/admin/revoke';
export const STATUS_PATH = '/v1/admin/status';
export const LEDGER_SUBMIT_PATH = '/v1/ledger/submit';
export const LEDGER_SPEND_PATH = '/v1/ledger/admit-spend';
export const LEDGER_BALANCE_PATH = '/v1/ledger/balance';

const community = z.string().regex(/^[a-z0-9](?:[a-z0-9.-]{0,62}[a-z0-9])?$/, 'not a community name');
const publicKey = z
  .string()
  .regex(/^ed25519:[A-Za-z0-9_-]{43}$/, 'expected "ed25519:" + 43 base64url characters');
const httpUrl = z
  .string()
  .max(2048)
  .refine((s) => URL.canParse(s) && /^https?:$/.test(new URL(s).protocol), 'must be an http(s) URL');
/** Bytes/s up to 1 Tbit/s; cores up to 4096; requests/s up to 10^9. 0 = not measured. */
const resources = z
  .object({
    uplink_bps: z.number().finite().nonnegative().max(1.25e11),
    cpu: z.number().finite().nonnegative().max(4096),
    rps: z.number().finite().nonnegative().max(1e9),
  })
  .strict();

/** What a member says about itself; stored as the member record's payload. */
export const registrationSchema = z
  .object({
    id: memberIdSchema,
    names: z.array(memberIdSchema).min(1).max(64),
    control_url: httpUrl,
    public_key: publicKey,
    community,
    /** Requested lease; the registry refuses one outside its [min, max] bounds (REG_ERR_BAD_LEASE). */
    lease_ms: z.number().int().positive().max(Number.MAX_SAFE_INTEGER),
    willing: z.boolean(),
    capacity: resources,
    spare: resources,
  })
  .strict();
export type Registration = z.infer<typeof registrationSchema>;

export const deregisterSchema = z.object({ id: memberIdSchema, community }).strict();

export const lookupSchema = z
  .object({
    community,
    /** The asking origin (never returned to itself). */
    origin: memberIdSchema,
    /** Its current rescuers, and any member it does not want (recent decliners). */
    exclude: z.array(memberIdSchema).max(256).default([]),
    /** Round-trip times the origin measured to members, ms. */
    rtt_ms: z.record(memberIdSchema, z.number().finite().nonnegative().max(60_000)).default({}),
    limit: z.number().int().min(1).max(32).default(4),
  })
  .strict()
  .refine((l) => Object.keys(l.rtt_ms).length <= 256, 'rtt_ms: at most 256 entries');
export type LookupQuery = z.infer<typeof lookupSchema>;

export const directorySchema = z.object({ community }).strict();

/** One candidate in a lookup answer: enough to send it an SOS and verify its replies. */
export interface Candidate {
  readonly id: string;
  readonly names: readonly string[];
  readonly control_url: string;
  readonly public_key: string;
  readonly capacity: Registration['capacity'];
  readonly spare: Registration['spare'];
  readonly rtt_ms?: number;
}

export interface DirectoryEntry {
  readonly id: string;
  readonly control_url: string;
  readonly public_key: string;
}

export const meshPushSchema = z.object({ records: z.array(recordSchema).max(10_000) }).strict();
export const meshSyncSchema = z.object({ vector: vectorSchema }).strict();
export const meshSyncReplySchema = z
  .object({
    v: z.literal(REGISTRY_API_VERSION),
    re: z.string(),
    from: z.string(),
    records: z.array(recordSchema),
    vector: vectorSchema,
  })
  .strict();

export const admitSchema = z.object({ community, public_key: publicKey }).strict();

/** The signed envelope every member and mesh request travels in. */
export const envelopeSchema = z
  .object({
    v: z.literal(REGISTRY_API_VERSION),
    /** Member id (member requests) or registry id (mesh). */
    from: z.string().min(1).max(253),
    /** The community (member requests) or the receiving registry's id (mesh). */
    to: z.string().min(1).max(253),
    ts: z.number().int().positive().max(Number.MAX_SAFE_INTEGER),
    nonce: z.string().regex(/^[A-Za-z0-9_-]{22}$/, 'must be base64url of 16 bytes'),
    type: z.enum([
      'register',
      'deregister',
      'lookup',
      'directory',
      'push',
      'sync',
      'ledger-submit',
      'ledger-spend',
      'ledger-balance',
    ]),
    body: z.unknown(),
  })
  .strict();
export type RegistryEnvelope = z.infer<typeof envelopeSchema>;
export type RequestType = RegistryEnvelope['type'];
