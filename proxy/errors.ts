// The single registry of data-path error codes (STYLE.md 4): every response the proxy itself
// generates names one of these codes, its message and its HTTP status. Codes are never reused.

export const ProxyErrors = {
  PRX_ERR_UPSTREAM_CONNECT: { status: 502, message: 'could not connect to the upstream server' },
  PRX_ERR_UPSTREAM_CONNECT_TIMEOUT: { status: 502, message: 'timed out connecting to the upstream server' },
  PRX_ERR_UPSTREAM_RESET: { status: 502, message: 'the upstream server closed the connection unexpectedly' },
  PRX_ERR_UPSTREAM_BAD_RESPONSE: { status: 502, message: 'the upstream server sent an invalid response' },
  PRX_ERR_UPSTREAM_HEADERS_TIMEOUT: {
    status: 504,
    message: 'the upstream server did not send response headers in time',
  },
  PRX_ERR_UPSTREAM_BODY_TIMEOUT: {
    status: 504,
    message: 'the upstream server stopped sending the response body',
  },
  PRX_ERR_NO_UPSTREAM: { status: 503, message: 'no upstream server is configured or available' },
  PRX_ERR_SHUTTING_DOWN: { status: 503, message: 'the proxy is shutting down' },
  PRX_ERR_TOO_MANY_CONNECTIONS: { status: 503, message: 'too many client connections' },
  PRX_ERR_BAD_REQUEST: { status: 400, message: 'malformed HTTP request' },
  PRX_ERR_HEADERS_TOO_LARGE: { status: 431, message: 'request header fields too large' },
  PRX_ERR_BODY_TOO_LARGE: { status: 413, message: 'request body too large' },
  PRX_ERR_CLIENT_TIMEOUT: { status: 408, message: 'the client did not send the request in time' },
  PRX_ERR_METHOD_NOT_ALLOWED: { status: 405, message: 'method not supported by this proxy' },
  PRX_ERR_INTERNAL: { status: 500, message: 'internal proxy error' },
  PRX_ERR_BAD_RESCUER_MARKER: {
    status: 403,
    message: 'invalid rescuer-fetch marker: unknown signer, bad signature or timestamp more than 60 s off',
  },
  PRX_ERR_RESCUE_ENDED: {
    status: 421,
    message: 'this rescue server no longer serves this host name: the rescue session has ended',
  },
  PRX_ERR_RESCUE_NO_UPGRADE: {
    status: 421,
    message: 'a rescue server does not relay protocol upgrades (WebSocket) for a rescued site',
  },
} as const satisfies Record<string, { status: number; message: string }>;

export type ProxyErrorCode = keyof typeof ProxyErrors;

/** An error carrying a stable PRX_ERR_* code. */
export class ProxyError extends Error {
  readonly code: ProxyErrorCode;
  readonly status: number;
  constructor(code: ProxyErrorCode, detail?: string, options?: { cause?: unknown }) {
    const entry = ProxyErrors[code];
    super(detail ? `${entry.message}: ${detail}` : entry.message, options);
    this.name = 'ProxyError';
    this.code = code;
    this.status = entry.status;
  }
}

/**
 * The JSON body of a response the proxy generates: `{ error: { code, message } }` as every
 * boundary does (STYLE.md 4). Precomputed per code since the messages are constant.
 */
export const errorBodies: Readonly<Record<ProxyErrorCode, Buffer>> = Object.freeze(
  Object.fromEntries(
    Object.entries(ProxyErrors).map(([code, e]) => [
      code,
      Buffer.from(JSON.stringify({ error: { code, message: e.message } }) + '\n'),
    ]),
  ) as Record<ProxyErrorCode, Buffer>,
);

const reasons: Record<number, string> = {
  400: 'Bad Request',
  403: 'Forbidden',
  405: 'Method Not Allowed',
  408: 'Request Timeout',
  413: 'Payload Too Large',
  421: 'Misdirected Request',
  431: 'Request Header Fields Too Large',
  500: 'Internal Server Error',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
};

/**
 * A complete raw HTTP/1.1 response (with `Connection: close`) for sockets that have no
 * ServerResponse: client parse errors, refused connections, failed upgrades.
 */
export const rawErrorResponses: Readonly<Record<ProxyErrorCode, Buffer>> = Object.freeze(
  Object.fromEntries(
    Object.entries(ProxyErrors).map(([code, e]) => {
      const body = errorBodies[code as ProxyErrorCode];
      const head =
        `HTTP/1.1 ${e.status} ${reasons[e.status] ?? 'Error'}\r\n` +
        'Content-Type: application/json\r\n' +
        `Content-Length: ${body.length}\r\n` +
        'Connection: close\r\n\r\n';
      return [code, Buffer.concat([Buffer.from(head, 'latin1'), body])];
    }),
  ) as Record<ProxyErrorCode, Buffer>,
);

/**
 * A reused keep-alive upstream socket closed or reset before any byte of the response: the
 * upstream timed it out as we reused it, so an idempotent request may go again (RFC 9112 §9.3.1).
 */
export class StaleSocketError extends ProxyError {
  constructor(detail: string) {
    super('PRX_ERR_UPSTREAM_RESET', detail);
    this.name = 'StaleSocketError';
  }
}
