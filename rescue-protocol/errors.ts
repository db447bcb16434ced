// Stable RSC_ERR_* codes of the rescue protocol (STYLE.md 4): message and HTTP status of each.
// A peer receives them as `{ error: { code, message } }`; codes are never reused or renumbered.

export const RescueErrors = {
  // Refusals of an incoming message, in the order the control listener checks them.
  RSC_ERR_NOT_FOUND: {
    status: 404,
    message: 'no such control endpoint (there are POST /v1/rescue and GET /v1/health)',
  },
  RSC_ERR_METHOD_NOT_ALLOWED: { status: 405, message: 'method not allowed on this control endpoint' },
  RSC_ERR_UNSUPPORTED_MEDIA_TYPE: {
    status: 415,
    message: 'rescue messages must be sent as application/json',
  },
  RSC_ERR_TOO_LARGE: { status: 413, message: 'rescue message body too large' },
  RSC_ERR_UNSIGNED: {
    status: 401,
    message: 'message not signed: send "DotSlash-Sender: <id>" and "DotSlash-Signature: ed25519 <base64url>"',
  },
  RSC_ERR_UNKNOWN_SENDER: { status: 403, message: 'the sender is not a known member (no public key for it)' },
  RSC_ERR_BAD_SIGNATURE: {
    status: 401,
    message: "the signature does not match the sender's key and the bytes sent",
  },
  RSC_ERR_BAD_JSON: { status: 400, message: 'the message body is not valid JSON' },
  RSC_ERR_UNSUPPORTED_VERSION: {
    status: 400,
    message: 'unsupported protocol version (this member speaks v 1)',
  },
  RSC_ERR_BAD_MESSAGE: { status: 400, message: 'the message does not match the protocol schema' },
  RSC_ERR_SENDER_MISMATCH: {
    status: 401,
    message: 'the envelope "from" differs from the DotSlash-Sender that signed it',
  },
  RSC_ERR_WRONG_RECIPIENT: { status: 421, message: 'the message is addressed to another member' },
  RSC_ERR_STALE_TIMESTAMP: {
    status: 401,
    message: "the message timestamp is too far from this member's clock (members need NTP)",
  },
  RSC_ERR_REPLAYED_NONCE: { status: 409, message: 'this nonce was already seen from this sender (replay)' },
  RSC_ERR_NONCE_FLOOD: {
    status: 503,
    message: 'too many recent messages to remember their nonces; retry later',
  },
  // Refusals by the session layer (thrown from the onMessage handler).
  RSC_ERR_UNKNOWN_SESSION: { status: 404, message: 'no such session' },
  RSC_ERR_NOT_A_PARTY: {
    status: 403,
    message: 'the sender is not a party to this session, or not in that role',
  },
  RSC_ERR_OUT_OF_STATE: { status: 409, message: 'the message is not allowed in the current state' },
  RSC_ERR_DECLINED: { status: 503, message: 'the rescue request was declined' },
  RSC_ERR_INTERNAL: {
    status: 500,
    message: 'the control listener failed to handle the message; see its log',
  },
  // Failures seen by the sending side (ControlClient).
  RSC_ERR_PEER_UNREACHABLE: { status: 502, message: "could not reach the peer's control listener" },
  RSC_ERR_PEER_TIMEOUT: { status: 504, message: 'the peer did not answer in time' },
  RSC_ERR_BAD_REPLY: {
    status: 502,
    message: 'the reply failed verification (signature, sender, recipient, timestamp or request binding)',
  },
  RSC_ERR_PEER_ERROR: { status: 502, message: 'the peer answered with an error this member does not know' },
  RSC_ERR_CLOSED: { status: 503, message: 'the control client or server is closed' },
  // Keys and key files.
  RSC_ERR_BAD_PUBLIC_KEY: {
    status: 500,
    message: 'bad public key text (expected "ed25519:" + base64url of the raw 32-byte key)',
  },
  RSC_ERR_BAD_PRIVATE_KEY: { status: 500, message: 'bad private key (expected an Ed25519 key in PKCS8 PEM)' },
  RSC_ERR_KEY_FILE_UNREADABLE: { status: 500, message: 'the private key file could not be read or written' },
  RSC_ERR_KEY_FILE_INSECURE: {
    status: 500,
    message: 'the private key file is accessible by group or others; run chmod 600 on it',
  },
  RSC_ERR_KEY_FILE_EXISTS: { status: 500, message: 'the private key file already exists (not overwritten)' },
} as const satisfies Record<string, { status: number; message: string }>;

export type RescueErrorCode = keyof typeof RescueErrors;

export function isRescueErrorCode(code: unknown): code is RescueErrorCode {
  return typeof code === 'string' && Object.hasOwn(RescueErrors, code);
}

/** Where an error came from, when a peer reported it (ControlClient). */
export interface RemoteErrorInfo {
  /** HTTP status of the peer's answer. */
  readonly status: number;
  /** True when the error reply was a signed envelope from the peer; false for an unsigned body. */
  readonly authenticated: boolean;
  /** The code exactly as the peer sent it (may be unknown to this version). */
  readonly code: string;
}

/** An error carrying a stable RSC_ERR_* code; `remote` is set when a peer sent it. */
export class RescueError extends Error {
  readonly code: RescueErrorCode;
  readonly status: number;
  readonly remote: RemoteErrorInfo | undefined;
  constructor(
    code: RescueErrorCode,
    detail?: string,
    options?: { cause?: unknown; remote?: RemoteErrorInfo; message?: string },
  ) {
    const base = options?.message ?? RescueErrors[code].message;
    super(
      detail ? `${base}: ${detail}` : base,
      options?.cause === undefined ? undefined : { cause: options.cause },
    );
    this.name = 'RescueError';
    this.code = code;
    this.status = RescueErrors[code].status;
    this.remote = options?.remote;
  }
}

/** The wire shape every boundary answers with (STYLE.md 4). */
export function errorBody(code: RescueErrorCode, message: string = RescueErrors[code].message): string {
  return JSON.stringify({ error: { code, message } });
}
