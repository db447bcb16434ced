// Members with real Ed25519 keys, and records signed by them, for the ledger tests.
import type { KeyObject } from 'node:crypto';
import { generateKeyPair, parsePrivateKey, parsePublicKey } from '../../rescue-protocol/keys.js';
import {
  DEFAULT_LEDGER_POLICY,
  Ledger,
  LEDGER_VERSION,
  priceOf,
  signReceipt,
  signRelease,
  signSpend,
  type LedgerPolicy,
  type MemberKeys,
  type ReceiptRecord,
  type ReleaseRecord,
  type SpendRecord,
} from '../../src/registry/ledger/index.js';

export const COMMUNITY = 'flood.example';
export const NOW = 1_800_000_000_000;

export interface Member {
  readonly id: string;
  readonly publicKey: string;
  readonly privateKey: KeyObject;
  readonly keyObject: KeyObject;
}

export function newMember(id: string): Member {
  const kp = generateKeyPair();
  return {
    id,
    publicKey: kp.publicKey,
    privateKey: parsePrivateKey(kp.privateKeyPem),
    keyObject: parsePublicKey(kp.publicKey),
  };
}

export function keysOf(...members: Member[]): MemberKeys {
  const m = new Map(members.map((x) => [x.id, x.publicKey]));
  return { keyOf: (id) => m.get(id) };
}

export function newLedger(members: Member[], policy: Partial<LedgerPolicy> = {}): Ledger {
  return new Ledger({
    community: COMMUNITY,
    policy: { ...DEFAULT_LEDGER_POLICY, ...policy },
    keys: keysOf(...members),
  });
}

export function spend(
  from: Member,
  payee: Member,
  seq: number,
  over: Partial<SpendRecord['body']> = {},
  signer: KeyObject = from.privateKey,
): SpendRecord {
  return signSpend(
    {
      v: LEDGER_VERSION,
      kind: 'spend',
      community: COMMUNITY,
      account: from.id,
      key: from.publicKey,
      seq,
      amount: DEFAULT_LEDGER_POLICY.spend_amount,
      payee: payee.id,
      ts: NOW,
      ...over,
    },
    signer,
  );
}

/** `payee` gives back the spend `account` `seq`. */
export function release(payee: Member, account: Member, seq: number): ReleaseRecord {
  return signRelease(
    {
      v: LEDGER_VERSION,
      kind: 'release',
      community: COMMUNITY,
      payee: payee.id,
      key: payee.publicKey,
      account: account.id,
      seq,
      ts: NOW,
    },
    payee.privateKey,
  );
}

/** A receipt for `requests` requests of 1 KB each, signed by both (or only `only`). */
export function receipt(
  origin: Member,
  rescuer: Member,
  seq: number,
  requests: number,
  over: Partial<ReceiptRecord['body']> = {},
  only?: 'origin' | 'rescuer',
): ReceiptRecord {
  const usage = {
    requests,
    bytes: requests * 1000,
    by_redirect: { requests, bytes: requests * 1000 },
    by_dns: { requests: 0, bytes: 0 },
  };
  const body: ReceiptRecord['body'] = {
    v: LEDGER_VERSION,
    kind: 'receipt',
    community: COMMUNITY,
    session: `s${seq}.${rescuer.id}`,
    origin: { id: origin.id, key: origin.publicKey },
    rescuer: { id: rescuer.id, key: rescuer.publicKey },
    usage,
    cost: priceOf(usage, DEFAULT_LEDGER_POLICY),
    started: NOW - 60_000,
    ended: NOW,
    seq,
    ...over,
  };
  let r: ReceiptRecord = { type: 'receipt', body, sigs: {} };
  if (only !== 'origin') r = signReceipt(r, 'rescuer', rescuer.privateKey);
  if (only !== 'rescuer') r = signReceipt(r, 'origin', origin.privateKey);
  return r;
}
