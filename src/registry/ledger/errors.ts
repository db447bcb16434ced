// Stable LGR_ERR_* codes of the token ledger (STYLE.md 4): why a spend or receipt record is refused,
// or why a spend cannot pay for a rescue. The registry answers its HTTP callers with these; the
// controller puts them in the reason of a declined SOS. Never reused or renumbered.

export const LedgerErrors = {
  LGR_ERR_MALFORMED: { status: 400, message: 'the ledger record does not match the record schema' },
  LGR_ERR_NOT_CANONICAL: {
    status: 400,
    message:
      'the record holds a value canonical JSON cannot carry (only strings, safe integers, booleans, objects, arrays)',
  },
  LGR_ERR_WRONG_COMMUNITY: { status: 400, message: "the record belongs to another community's ledger" },
  LGR_ERR_MISSING_SIGNATURE: {
    status: 400,
    message: 'a signature the record needs is missing (a receipt needs both the origin and the rescuer)',
  },
  LGR_ERR_BAD_SIGNATURE: {
    status: 401,
    message: "a signature does not verify over the record's canonical bytes with the key it names",
  },
  LGR_ERR_TAMPERED: {
    status: 401,
    message: 'no signature verifies: the record was changed after it was signed (usage, cost or parties)',
  },
  LGR_ERR_UNKNOWN_MEMBER: {
    status: 403,
    message:
      'a party of the record is not an admitted member of the community (yet: retry after admissions replicate)',
  },
  LGR_ERR_WRONG_KEY: {
    status: 403,
    message: 'the record is signed with a key that is not the admitted key of that member',
  },
  LGR_ERR_BAD_USAGE: {
    status: 400,
    message:
      'the usage is inconsistent (redirect and DNS parts exceed the totals, or the session ended before it started)',
  },
  LGR_ERR_BAD_COST: {
    status: 400,
    message: "the receipt's cost is not the community's price of its usage",
  },
  LGR_ERR_SELF_DEALING: {
    status: 400,
    message: 'a member cannot pay itself (origin equals rescuer, or payee equals account)',
  },
  // Spend checks (a rescuer, through the registry, before it accepts an SOS).
  LGR_ERR_NO_TOKEN: {
    status: 402,
    message: 'this flood-insurance community needs a token (a signed spend) with the SOS',
  },
  LGR_ERR_WRONG_PAYEE: { status: 400, message: 'the spend pays another member' },
  LGR_ERR_WRONG_ACCOUNT: { status: 400, message: 'the spend is not from the member asking for rescue' },
  LGR_ERR_STALE_SPEND: {
    status: 400,
    message: 'the spend was signed too long ago (or in the future) to open a rescue',
  },
  LGR_ERR_SPEND_TOO_SMALL: { status: 402, message: "the spend is smaller than the community's spend_amount" },
  LGR_ERR_SPEND_REUSED: { status: 409, message: 'this spend (account and seq) was already used' },
  LGR_ERR_DOUBLE_SPEND: {
    status: 409,
    message: 'another spend with the same account and seq exists: the account double spent and is flagged',
  },
  LGR_ERR_INSUFFICIENT_TOKENS: {
    status: 402,
    message: "the account's available balance does not cover the spend",
  },
  LGR_ERR_UNAVAILABLE: {
    status: 503,
    message: 'the ledger (registry) could not be asked; the rescue is declined',
  },
} as const satisfies Record<string, { status: number; message: string }>;

export type LedgerErrorCode = keyof typeof LedgerErrors;

export class LedgerError extends Error {
  readonly code: LedgerErrorCode;
  readonly status: number;
  constructor(code: LedgerErrorCode, detail?: string, options?: { cause?: unknown }) {
    const base = LedgerErrors[code].message;
    super(
      detail ? `${base}: ${detail}` : base,
      options?.cause === undefined ? undefined : { cause: options.cause },
    );
    this.name = 'LedgerError';
    this.code = code;
    this.status = LedgerErrors[code].status;
  }
}
