// The token ledger of flood-insurance communities (issue 5 item 3): pure (no I/O besides crypto).
//
// RECORDS (replicated as plain JSON; self-verifying; id = sha256 of canonicalJson(body)):
//   spend   { type: 'spend', body: { v: 1, kind: 'spend', community, account, key, seq, amount,
//             payee, ts }, sigs: { account } }
//           Signed by the paying origin. It is the SOS `token` (its JSON text). `seq` is per account,
//           strictly increasing, gaps allowed (members use max(last + 1, wall ms), so nothing needs
//           storing); (account, seq) names one spend.
//   receipt { type: 'receipt', body: { v: 1, kind: 'receipt', community, session, origin: { id, key },
//             rescuer: { id, key }, usage: { requests, bytes, by_redirect, by_dns }, cost, started,
//             ended, seq, spend_seq? }, sigs: { origin, rescuer } }
//           Signed by both at SHUTDOWN. `cost` = priceOf(usage, policy) when signed (the origin
//           refuses to countersign another cost). `seq` is the rescuer's receipt seq.
//   release { type: 'release', body: { v: 1, kind: 'release', community, payee, key, account, seq,
//             ts }, sigs: { payee } }
//           Signed by a payee that admitted a spend and then declined the SOS: settles it at no cost.
//   Signatures: Ed25519 (the members' rescue-protocol keys) over canonicalJson(body).
//
// BALANCES (Ledger.balance; a pure function of the record set and the time):
//   balance   = policy.starting_balance + earned - charged
//   earned    = sum of cost over accepted receipts where the account is the rescuer
//               + amount of lapsed spends paid to it (payee)
//   charged   = sum of cost over accepted receipts where the account is the origin
//               + amount of its own lapsed spends
//   held      = sum of amount over the account's accepted spends that no accepted receipt from the
//               payee settles (receipt.spend_seq, or its release) and younger than policy.hold_ms
//   lapsed    = such an unsettled spend older than hold_ms: paid to the payee in full (so an origin
//               that never countersigns does not get rescue for free; a countersigned receipt
//               replaces it by the actual cost whenever it arrives)
//   available = balance - held; a spend is good only if available >= amount > 0.
//   No registry can mint: every credit (a receipt's cost, a lapsed spend) is a record signed by the
//   payer with its admitted key, debited from the payer as it is credited; total tokens = members x
//   starting_balance.
//
// CONFLICTS (order-independent): records collide under a key — "spend <account> <seq>",
//   "receipt <rescuer> <seq>", "session <rescuer> <session>". A record counts ("accepted") only if
//   it has the smallest id in every group it is in; all are kept as evidence; the member at fault
//   (the spend's account, the receipts' rescuer) is flagged and rescuers refuse its spends
//   (LGR_ERR_DOUBLE_SPEND). Same body again = same id = no-op (replays are idempotent).
//
// API for the registry (wip/registry):
//   new Ledger({ community, policy, keys })      keys.keyOf(member) -> admitted key text(s)
//   ledger.add(json)        -> { id, added }     throws LedgerError (LGR_ERR_*) for a bad record
//   ledger.add(json, { trusted: true })          reload from the registry's own store (no sig checks)
//   ledger.merge(jsons)     -> { added, duplicates, refused[] }   (an anti-entropy batch)
//   ledger.records() / get(id) / has(id) / size  (what to replicate: records are immutable)
//   ledger.balance(account, nowMs) -> Balance; ledger.conflicts() -> Conflict[]
//   ledger.admitSpend(json, nowMs, payee) -> SpendVerdict (check + record; the rescuer's question)
//   ledgerPolicySchema (zod; embed in the flood-insurance community config), priceOf
//   LGR_ERR_UNKNOWN_MEMBER is retryable: the member's admission may not have replicated yet.
// API for daemons (the controller): MemberLedger (token, checkToken, rescuerHalf, countersign,
//   completed, submit) with two interfaces the registry client implements: SpendChecker
//   (admitSpend over HTTP) and ReceiptSink (submit a record).
export { canonicalBytes, canonicalJson, digest } from './canonical.js';
export { LedgerError, LedgerErrors, type LedgerErrorCode } from './errors.js';
export {
  Ledger,
  type AddResult,
  type Balance,
  type Conflict,
  type LedgerOptions,
  type MergeResult,
  type SpendVerdict,
} from './ledger.js';
export {
  MemberLedger,
  spendSeqOf,
  type MemberLedgerOptions,
  type ReceiptFacts,
  type ReceiptSink,
  type ReportedUsage,
  type SpendChecker,
} from './member.js';
export {
  DEFAULT_LEDGER_POLICY,
  ledgerPolicySchema,
  priceOf,
  type LedgerPolicy,
  type UsageTotals,
} from './policy.js';
export {
  conflictKeys,
  LEDGER_VERSION,
  ledgerRecordSchema,
  parseRecord,
  receiptBodySchema,
  memberAtFault,
  receiptRecordSchema,
  recordId,
  releaseBodySchema,
  releaseRecordSchema,
  spendBodySchema,
  spendRecordSchema,
  type LedgerRecord,
  type ReceiptBody,
  type ReceiptRecord,
  type ReleaseBody,
  type ReleaseRecord,
  type SpendBody,
  type SpendRecord,
} from './records.js';
export {
  signReceipt,
  signRelease,
  signSpend,
  verifyReceiptHalf,
  verifyRecord,
  type MemberKeys,
} from './verify.js';
