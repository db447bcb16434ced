// Stable DNS_ERR_* codes for the dns/ folder: zone data that cannot be served, listeners, and the
// SRV discovery helper. docs/errors.md is generated from this table (npm run docs:errors).

export const DnsErrors = {
  DNS_ERR_BAD_NAME: {
    message: 'not a valid domain name (labels of 1-63 letters, digits, "-" or "_"; at most 253 characters)',
  },
  DNS_ERR_BAD_ADDRESS: { message: 'an A record needs an IPv4 address and an AAAA record an IPv6 address' },
  DNS_ERR_BAD_RDATA: {
    message:
      'a record value is malformed for its type (SRV "priority weight port target", TXT too long, ...)',
  },
  DNS_ERR_OUTSIDE_ZONE: {
    message: 'a record or dynamic record set names a host outside every configured zone',
  },
  DNS_ERR_CNAME_CONFLICT: { message: 'a CNAME must be the only record at its name (RFC 1034 3.6.2)' },
  DNS_ERR_ZONE_OVERLAP: { message: 'two configured zones are the same or one contains the other' },
  DNS_ERR_ANSWER_TOO_LARGE: {
    message: 'an answer would exceed 65535 bytes, the most DNS over TCP can carry',
  },
  DNS_ERR_BAD_WEIGHT: { message: 'a weight in a dynamic record set must be a finite number above 0' },
  DNS_ERR_LISTEN: { message: 'the DNS server cannot listen on its UDP or TCP address' },
  DNS_ERR_SRV_LOOKUP: { message: 'SRV discovery failed: no answer, or the servers could not be reached' },
} as const satisfies Record<string, { message: string }>;

export type DnsErrorCode = keyof typeof DnsErrors;

/** An error carrying a stable DNS_ERR_* code; `path` locates bad zone data (e.g. `zones[0].records[2]`). */
export class DnsError extends Error {
  readonly code: DnsErrorCode;
  readonly path: readonly (string | number)[];
  constructor(
    code: DnsErrorCode,
    detail?: string,
    path: readonly (string | number)[] = [],
    options?: { cause?: unknown },
  ) {
    super(detail ? `${code}: ${detail}` : `${code}: ${DnsErrors[code].message}`, options);
    this.name = 'DnsError';
    this.code = code;
    this.path = path;
  }
}
