// Signing and verifying ledger records. Signatures are Ed25519 (the members' own keys, as in the
// rescue protocol) over the canonical JSON of the record's body. A record is valid when its body is
// consistent, every signature it needs is there and verifies, and each signer key is that member's
// admitted key in the community.
import type { KeyObject } from 'node:crypto';
import { parsePublicKey, signBytes, verifyBytes } from '../../../rescue-protocol/keys.js';
import { canonicalBytes } from './canonical.js';
import { LedgerError } from './errors.js';
import type {
  LedgerRecord,
  ReceiptBody,
  ReceiptRecord,
  ReleaseBody,
  ReleaseRecord,
  SpendBody,
  SpendRecord,
} from './records.js';

/** Admitted keys of a community's members (the registry's admissions; a member's peers config on a daemon). */
export interface MemberKeys {
  /** The member's admitted public key text(s) ("ed25519:..."), or undefined when not a member. */
  keyOf(member: string): string | readonly string[] | undefined;
}

export function signSpend(body: SpendBody, privateKey: KeyObject): SpendRecord {
  return { type: 'spend', body, sigs: { account: signBytes(canonicalBytes(body), privateKey) } };
}

export function signRelease(body: ReleaseBody, privateKey: KeyObject): ReleaseRecord {
  return { type: 'release', body, sigs: { payee: signBytes(canonicalBytes(body), privateKey) } };
}

/** Adds `role`'s signature to a receipt (a new record; the input is not changed). */
export function signReceipt(
  record: ReceiptRecord | ReceiptBody,
  role: 'origin' | 'rescuer',
  privateKey: KeyObject,
): ReceiptRecord {
  const base: ReceiptRecord = 'type' in record ? record : { type: 'receipt', body: record, sigs: {} };
  const sig = signBytes(canonicalBytes(base.body), privateKey);
  return { ...base, sigs: { ...base.sigs, [role]: sig } };
}

/** Parsed keys by text: a community has few keys and parsing one costs about a verify's worth. */
const parsedKeys = new Map<string, KeyObject | null>();
const MAX_PARSED_KEYS = 100_000;

function keyOfText(text: string): KeyObject | null {
  let key = parsedKeys.get(text);
  if (key !== undefined) return key;
  try {
    key = parsePublicKey(text);
  } catch {
    key = null; // a key text that names no Ed25519 key verifies nothing
  }
  if (parsedKeys.size >= MAX_PARSED_KEYS) parsedKeys.clear();
  parsedKeys.set(text, key);
  return key;
}

function sigOk(bytes: Buffer, sig: string, keyText: string): boolean {
  const key = keyOfText(keyText);
  return key !== null && verifyBytes(bytes, sig, key);
}

function checkConsistent(record: LedgerRecord): void {
  const b = record.body;
  if (b.kind === 'spend' || b.kind === 'release') {
    if (b.payee === b.account) throw new LedgerError('LGR_ERR_SELF_DEALING', `${b.account} pays itself`);
    return;
  }
  if (b.origin.id === b.rescuer.id)
    throw new LedgerError('LGR_ERR_SELF_DEALING', `${b.origin.id} rescued itself`);
  const u = b.usage;
  if (
    u.by_redirect.requests + u.by_dns.requests > u.requests ||
    u.by_redirect.bytes + u.by_dns.bytes > u.bytes
  )
    throw new LedgerError('LGR_ERR_BAD_USAGE', 'by_redirect + by_dns exceed the totals');
  if (b.ended < b.started)
    throw new LedgerError('LGR_ERR_BAD_USAGE', `ended ${b.ended} before started ${b.started}`);
}

/** The signatures a record needs: [role, signer id, key text, signature]. */
function needed(record: LedgerRecord): [string, string, string, string | undefined][] {
  const b = record.body;
  if (record.type === 'spend') {
    const s = record.body as SpendBody;
    return [['account', s.account, s.key, record.sigs.account]];
  }
  if (record.type === 'release') {
    const s = record.body as ReleaseBody;
    return [['payee', s.payee, s.key, record.sigs.payee]];
  }
  const r = b as ReceiptBody;
  return [
    ['origin', r.origin.id, r.origin.key, record.sigs.origin],
    ['rescuer', r.rescuer.id, r.rescuer.key, record.sigs.rescuer],
  ];
}

/**
 * Throws the LedgerError saying why `record` is not valid in `community`; returns when it is.
 * Order: community, consistency, signatures present (LGR_ERR_MISSING_SIGNATURE), signatures valid
 * (all failing on a two-signature record: LGR_ERR_TAMPERED, the body changed after signing; one
 * failing: LGR_ERR_BAD_SIGNATURE), then admission (LGR_ERR_UNKNOWN_MEMBER, LGR_ERR_WRONG_KEY).
 */
export function verifyRecord(record: LedgerRecord, community: string, keys: MemberKeys): void {
  if (record.body.community !== community)
    throw new LedgerError('LGR_ERR_WRONG_COMMUNITY', `${record.body.community}, not ${community}`);
  checkConsistent(record);
  const sigs = needed(record);
  for (const [role, id, , sig] of sigs)
    if (sig === undefined) throw new LedgerError('LGR_ERR_MISSING_SIGNATURE', `no ${role} signature (${id})`);
  const bytes = canonicalBytes(record.body);
  const bad = sigs.filter(([, , key, sig]) => !sigOk(bytes, sig!, key));
  if (bad.length > 0 && bad.length === sigs.length && sigs.length > 1)
    throw new LedgerError('LGR_ERR_TAMPERED', `none of ${sigs.map(([r]) => r).join(', ')} verifies`);
  if (bad.length > 0)
    throw new LedgerError('LGR_ERR_BAD_SIGNATURE', bad.map(([role, id]) => `${role} (${id})`).join(', '));
  for (const [role, id, key] of sigs) {
    const admitted = keys.keyOf(id);
    if (admitted === undefined) throw new LedgerError('LGR_ERR_UNKNOWN_MEMBER', `${role} ${id}`);
    const list = typeof admitted === 'string' ? [admitted] : admitted;
    if (!list.includes(key)) throw new LedgerError('LGR_ERR_WRONG_KEY', `${role} ${id} signed with ${key}`);
  }
}

/** Checks one half of a receipt (what a party verifies before countersigning). */
export function verifyReceiptHalf(record: ReceiptRecord, role: 'origin' | 'rescuer'): void {
  const sig = record.sigs[role];
  const party = record.body[role];
  if (sig === undefined)
    throw new LedgerError('LGR_ERR_MISSING_SIGNATURE', `no ${role} signature (${party.id})`);
  checkConsistent(record);
  if (!sigOk(canonicalBytes(record.body), sig, party.key))
    throw new LedgerError('LGR_ERR_BAD_SIGNATURE', `${role} (${party.id})`);
}
