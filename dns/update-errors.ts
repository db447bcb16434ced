// Stable DNS_ERR_UPDATE_* codes of the RFC 2136 updater (dns/rfc2136.ts): what went wrong when the
// daemon pushed its rescue record sets to an external DNS server. Codes are never reused.

export const DnsUpdateErrors = {
  DNS_ERR_UPDATE_CONFIG: {
    message: 'dns.rfc2136 is incomplete or invalid (server HOST:PORT, zone, key_name, base64 key_secret)',
  },
  DNS_ERR_UPDATE_NAME: { message: 'a record name is not inside dns.rfc2136.zone or is not a valid DNS name' },
  DNS_ERR_UPDATE_TIMEOUT: { message: 'the DNS server did not answer the UPDATE in time (UDP and TCP tried)' },
  DNS_ERR_UPDATE_NETWORK: { message: 'the UPDATE could not be sent to the DNS server (socket error)' },
  DNS_ERR_UPDATE_BAD_REPLY: { message: 'the DNS server answered with a malformed or mismatched message' },
  DNS_ERR_UPDATE_UNSIGNED_REPLY: {
    message: 'the DNS server answered without a TSIG record (or one for another key): answer not trusted',
  },
  DNS_ERR_UPDATE_REPLY_BADSIG: {
    message: "the DNS server's answer carries a TSIG that does not verify with our key: answer not trusted",
  },
  DNS_ERR_UPDATE_BADSIG: {
    message: 'the DNS server rejected our TSIG signature (BADSIG): key_secret differs from the server key',
  },
  DNS_ERR_UPDATE_BADKEY: {
    message: 'the DNS server does not know our TSIG key (BADKEY): check key_name and algorithm',
  },
  DNS_ERR_UPDATE_BADTIME: {
    message: 'the DNS server rejected our TSIG time (BADTIME): the clocks differ by more than the fudge',
  },
  DNS_ERR_UPDATE_NOTAUTH: {
    message: 'the DNS server is not authoritative for the zone or refused the key (NOTAUTH)',
  },
  DNS_ERR_UPDATE_REFUSED: {
    message:
      'the DNS server refused the UPDATE (REFUSED): allow-update / update-policy does not let this key',
  },
  DNS_ERR_UPDATE_NOTZONE: { message: 'a record name is outside the zone the server has (NOTZONE)' },
  DNS_ERR_UPDATE_RCODE: { message: 'the DNS server answered the UPDATE with an error rcode' },
} as const satisfies Record<string, { message: string }>;

export type DnsUpdateErrorCode = keyof typeof DnsUpdateErrors;

/** An updater failure with a stable code; `retryable` says whether trying again may help. */
export class DnsUpdateError extends Error {
  readonly code: DnsUpdateErrorCode;
  readonly retryable: boolean;
  constructor(code: DnsUpdateErrorCode, detail?: string, options?: { cause?: unknown; retryable?: boolean }) {
    const base = DnsUpdateErrors[code].message;
    super(
      detail ? `${base}: ${detail}` : base,
      options?.cause === undefined ? undefined : { cause: options.cause },
    );
    this.name = 'DnsUpdateError';
    this.code = code;
    this.retryable = options?.retryable ?? RETRYABLE.has(code);
  }
}

/** Failures that a later attempt can outlive (a busy or restarting server); the rest need an operator. */
const RETRYABLE = new Set<DnsUpdateErrorCode>([
  'DNS_ERR_UPDATE_TIMEOUT',
  'DNS_ERR_UPDATE_NETWORK',
  'DNS_ERR_UPDATE_BAD_REPLY',
  'DNS_ERR_UPDATE_BADTIME',
  'DNS_ERR_UPDATE_RCODE',
]);
