// The flood-insurance policy (the registry's community config embeds ledgerPolicySchema) and the
// price of a session's usage under it. Amounts are whole tokens.
import { z } from 'zod';

export const ledgerPolicySchema = z
  .object({
    /** Tokens every admitted member starts with (the only tokens that ever exist). */
    starting_balance: z.number().int().nonnegative().max(1e12).default(1000),
    /** Tokens per 10^9 response bytes a rescuer served. */
    price_per_gb: z.number().finite().nonnegative().max(1e9).default(10),
    /** Tokens per 1000 requests a rescuer served. */
    price_per_1k_requests: z.number().finite().nonnegative().max(1e9).default(1),
    /** Tokens an origin's spend reserves per SOS; rescuers refuse smaller spends. */
    spend_amount: z.number().int().positive().max(1e12).default(100),
    /** A spend no receipt settles stops reserving tokens this long after it was signed. */
    hold_ms: z
      .number()
      .int()
      .positive()
      .max(365 * 86_400_000)
      .default(86_400_000),
    /** A rescuer refuses a spend signed longer ago (or further ahead) than this. */
    spend_max_age_ms: z.number().int().positive().max(86_400_000).default(300_000),
  })
  .strict();

export type LedgerPolicy = z.infer<typeof ledgerPolicySchema>;

/** The defaults, for tests and for communities that name no policy. */
export const DEFAULT_LEDGER_POLICY: LedgerPolicy = ledgerPolicySchema.parse({});

export interface UsageTotals {
  readonly requests: number;
  readonly bytes: number;
}

/**
 * Tokens a session's usage costs: bytes and requests priced separately, rounded up to a whole
 * token (a rescue that served anything is never free). Computed once by the rescuer and signed
 * by both parties in the receipt, so later policy changes do not revalue old receipts.
 */
export function priceOf(usage: UsageTotals, policy: LedgerPolicy): number {
  const raw =
    (usage.bytes / 1e9) * policy.price_per_gb + (usage.requests / 1000) * policy.price_per_1k_requests;
  // Float noise (0.1 + 0.2) must not add a token: round to 1e-9 first.
  return Math.ceil(Math.round(raw * 1e9) / 1e9);
}
