// The two replicated ledger records, as plain JSON: a SPEND (signed by the paying account) and a
// RECEIPT (signed by both origin and rescuer). Each carries its signer keys and signatures, so any
// registry can verify it alone. A record's id is the SHA-256 of its body's canonical JSON.
import { z } from 'zod';
import { digest } from './canonical.js';
import { LedgerError } from './errors.js';

const HOST =
  /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$/;
const memberId = z.string().regex(HOST, 'must be a host name');
/** Community names: the registry's (a DNS-ish name or a short slug). */
const community = z
  .string()
  .min(1)
  .max(253)
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'letters, digits, ".", "_" or "-"');
const publicKey = z
  .string()
  .regex(/^ed25519:[A-Za-z0-9_-]{43}$/, 'must be "ed25519:" + 43 base64url characters');
const signature = z.string().regex(/^[A-Za-z0-9_-]{86}$/, 'must be base64url of a 64-byte Ed25519 signature');
const count = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);
const positive = z.number().int().positive().max(Number.MAX_SAFE_INTEGER);
const sessionId = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[A-Za-z0-9._:-]+$/);
const counts = z.object({ requests: count, bytes: count }).strict();

export const LEDGER_VERSION = 1;

export const spendBodySchema = z
  .object({
    v: z.literal(LEDGER_VERSION),
    kind: z.literal('spend'),
    community,
    /** The paying member (the origin asking for rescue). */
    account: memberId,
    /** The key the account signs with; must be its admitted key. */
    key: publicKey,
    /** Per account, strictly increasing in the order the account signs; gaps allowed. */
    seq: positive,
    /** Tokens reserved until a receipt settles the rescue (or hold_ms passes). */
    amount: positive,
    /** The rescuer this spend asks (only it may use it). */
    payee: memberId,
    /** Account's wall clock, epoch ms. */
    ts: positive,
  })
  .strict();

/**
 * The payee gives up a spend it will not serve (it accepted the token, then declined the SOS):
 * settles the spend at no cost. Signed by the payee, so it can only lower the payee's own claim.
 */
export const releaseBodySchema = z
  .object({
    v: z.literal(LEDGER_VERSION),
    kind: z.literal('release'),
    community,
    payee: memberId,
    key: publicKey,
    /** The released spend: its account and seq. */
    account: memberId,
    seq: positive,
    ts: positive,
  })
  .strict();

export const receiptBodySchema = z
  .object({
    v: z.literal(LEDGER_VERSION),
    kind: z.literal('receipt'),
    community,
    session: sessionId,
    origin: z.object({ id: memberId, key: publicKey }).strict(),
    rescuer: z.object({ id: memberId, key: publicKey }).strict(),
    /** As the rescuer counted it: all requests and response bytes, and split by how clients came. */
    usage: z.object({ requests: count, bytes: count, by_redirect: counts, by_dns: counts }).strict(),
    /** Tokens moved from origin to rescuer: priceOf(usage) under the policy when it was signed. */
    cost: count,
    /** Wall clock, epoch ms (the rescuer's). */
    started: positive,
    ended: positive,
    /** The rescuer's receipt sequence number (strictly increasing per rescuer). */
    seq: positive,
    /** The origin's spend (its seq) this receipt settles, releasing its reservation. */
    spend_seq: positive.optional(),
  })
  .strict();

export const spendRecordSchema = z
  .object({
    type: z.literal('spend'),
    body: spendBodySchema,
    sigs: z.object({ account: signature }).strict(),
  })
  .strict();

/** Signatures are optional in the schema so a half-signed receipt parses; verifyRecord requires both. */
export const receiptRecordSchema = z
  .object({
    type: z.literal('receipt'),
    body: receiptBodySchema,
    sigs: z.object({ origin: signature.optional(), rescuer: signature.optional() }).strict(),
  })
  .strict();

export const releaseRecordSchema = z
  .object({
    type: z.literal('release'),
    body: releaseBodySchema,
    sigs: z.object({ payee: signature }).strict(),
  })
  .strict();

export const ledgerRecordSchema = z.discriminatedUnion('type', [
  spendRecordSchema,
  receiptRecordSchema,
  releaseRecordSchema,
]);

export type SpendBody = z.infer<typeof spendBodySchema>;
export type ReceiptBody = z.infer<typeof receiptBodySchema>;
export type SpendRecord = z.infer<typeof spendRecordSchema>;
export type ReceiptRecord = z.infer<typeof receiptRecordSchema>;
export type ReleaseBody = z.infer<typeof releaseBodySchema>;
export type ReleaseRecord = z.infer<typeof releaseRecordSchema>;
export type LedgerRecord = z.infer<typeof ledgerRecordSchema>;

/** Parses untrusted JSON (already parsed to a value) into a record, or throws LGR_ERR_MALFORMED naming the field. */
export function parseRecord(value: unknown): LedgerRecord {
  const r = ledgerRecordSchema.safeParse(value);
  if (!r.success) {
    const what = r.error.issues
      .slice(0, 5)
      .map((i) => `${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`)
      .join('; ');
    throw new LedgerError('LGR_ERR_MALFORMED', what);
  }
  return r.data;
}

/** The member a conflict of this record blames: the spender, or the rescuer that issued receipts. */
export function memberAtFault(record: LedgerRecord): string {
  const b = record.body;
  return b.kind === 'receipt' ? b.rescuer.id : b.kind === 'spend' ? b.account : b.payee;
}

/** The record's id: hex SHA-256 of its body's canonical JSON (equal bodies are the same record). */
export function recordId(record: LedgerRecord): string {
  return digest(record.body);
}

/**
 * The keys under which conflicting records collide: two different spends of one account with one
 * seq (a double spend), or two different receipts with one rescuer seq or for one session.
 */
export function conflictKeys(record: LedgerRecord): string[] {
  const b = record.body;
  if (b.kind === 'spend') return [`spend ${b.account} ${b.seq}`];
  if (b.kind === 'release') return []; // releasing twice releases once: nothing to conflict
  return [`receipt ${b.rescuer.id} ${b.seq}`, `session ${b.rescuer.id} ${b.session}`];
}
