// Stable REG_ERR_* codes of the registry service and its client (STYLE.md 4): message and HTTP
// status of each. Callers receive them as `{ error: { code, message } }`; codes are never reused.

export const RegistryErrors = {
  // Refusals of an HTTP request, before its content is looked at.
  REG_ERR_NOT_FOUND: { status: 404, message: 'no such registry endpoint' },
  REG_ERR_METHOD_NOT_ALLOWED: { status: 405, message: 'method not allowed on this registry endpoint' },
  REG_ERR_UNSUPPORTED_MEDIA_TYPE: { status: 415, message: 'registry requests must be application/json' },
  REG_ERR_TOO_LARGE: { status: 413, message: 'registry request body too large' },
  REG_ERR_UNAUTHORIZED: {
    status: 401,
    message: 'the admin API needs "Authorization: Bearer <token>" with the registry admin token',
  },
  // Authentication of signed requests (members and registries).
  REG_ERR_UNSIGNED: {
    status: 401,
    message: 'request not signed: send "DotSlash-Sender: <id>" and "DotSlash-Signature: ed25519 <base64url>"',
  },
  REG_ERR_BAD_SIGNATURE: { status: 401, message: "the signature does not match the sender's key and bytes" },
  REG_ERR_UNKNOWN_SENDER: {
    status: 403,
    message: 'the sender is not known here (not a registered member, or not a configured peer registry)',
  },
  REG_ERR_STALE_TIMESTAMP: {
    status: 401,
    message: "the request timestamp is too far from the registry's clock",
  },
  REG_ERR_REPLAYED_NONCE: { status: 409, message: 'this nonce was already seen from this sender (replay)' },
  REG_ERR_NONCE_FLOOD: {
    status: 503,
    message: 'too many recent requests to remember their nonces; retry later',
  },
  // Content.
  REG_ERR_BAD_JSON: { status: 400, message: 'the request body is not valid JSON' },
  REG_ERR_BAD_REQUEST: { status: 400, message: 'the request does not match the registry schema' },
  REG_ERR_BAD_LEASE: { status: 400, message: 'lease_ms is outside the bounds this registry allows' },
  REG_ERR_UNKNOWN_COMMUNITY: { status: 404, message: 'this registry serves no community of that name' },
  REG_ERR_NOT_ADMITTED: {
    status: 403,
    message:
      'closed community: the public key was not admitted by an administrator (dotslash registry admit)',
  },
  REG_ERR_KEY_MISMATCH: {
    status: 409,
    message: 'the member id is registered (lease live) with another public key',
  },
  REG_ERR_NOT_REGISTERED: { status: 404, message: 'no live registration for this member' },
  REG_ERR_LEDGER: { status: 409, message: 'the token ledger refused the record' },
  REG_ERR_INTERNAL: { status: 500, message: 'the registry failed to handle the request; see its log' },
  // Seen by clients (daemon, CLI, peer registries).
  REG_ERR_UNREACHABLE: { status: 502, message: 'no registry could be reached' },
  REG_ERR_BAD_REPLY: { status: 502, message: 'the registry reply failed verification or parsing' },
  REG_ERR_REMOTE: { status: 502, message: 'the registry answered with an error' },
  // Configuration and state.
  REG_ERR_CONFIG: { status: 500, message: 'bad registry configuration' },
  REG_ERR_STORE: { status: 500, message: 'the registry store could not be opened or written' },
} as const satisfies Record<string, { status: number; message: string }>;

export type RegistryErrorCode = keyof typeof RegistryErrors;

export function isRegistryErrorCode(code: unknown): code is RegistryErrorCode {
  return typeof code === 'string' && Object.hasOwn(RegistryErrors, code);
}

export class RegistryError extends Error {
  readonly code: RegistryErrorCode;
  readonly status: number;
  /** The code a remote registry answered with (client side). */
  readonly remote: string | undefined;
  constructor(
    code: RegistryErrorCode,
    detail?: string,
    options?: { cause?: unknown; status?: number; remote?: string },
  ) {
    const base = RegistryErrors[code].message;
    super(
      detail ? `${base}: ${detail}` : base,
      options?.cause === undefined ? undefined : { cause: options.cause },
    );
    this.name = 'RegistryError';
    this.code = code;
    this.status = options?.status ?? RegistryErrors[code].status;
    this.remote = options?.remote;
  }
}

/** The wire shape every registry error answer has. */
export function errorBody(code: RegistryErrorCode, message: string = RegistryErrors[code].message): string {
  return JSON.stringify({ error: { code, message } });
}
