// Stable ADM_ERR_* codes of the admin listener (STYLE.md 4), with message and HTTP status.

export const AdminErrors = {
  ADM_ERR_UNAUTHORIZED: {
    status: 401,
    message: 'this endpoint needs the admin token: send "Authorization: Bearer <token>"',
  },
  ADM_ERR_NOT_FOUND: {
    status: 404,
    message: 'no such admin endpoint (there are /healthz, /readyz, /metrics and /status)',
  },
  ADM_ERR_METHOD_NOT_ALLOWED: {
    status: 405,
    message: 'admin endpoints answer GET and HEAD only',
  },
  ADM_ERR_INTERNAL: {
    status: 500,
    message: 'the admin listener failed to answer; see the daemon log',
  },
  ADM_ERR_TOKEN_FILE_EMPTY: {
    status: 500,
    message: 'the admin token file exists but is empty',
  },
  ADM_ERR_TOKEN_FILE_UNREADABLE: {
    status: 500,
    message: 'the admin token file could not be read or created',
  },
} as const;

export type AdminErrorCode = keyof typeof AdminErrors;

export class AdminError extends Error {
  readonly code: AdminErrorCode;
  readonly status: number;
  constructor(code: AdminErrorCode, detail?: string, options?: { cause?: unknown }) {
    super(detail ? `${AdminErrors[code].message}: ${detail}` : AdminErrors[code].message, options);
    this.name = 'AdminError';
    this.code = code;
    this.status = AdminErrors[code].status;
  }
}

/** The wire shape every boundary answers with (STYLE.md 4). */
export function errorBody(code: AdminErrorCode, message: string = AdminErrors[code].message): string {
  return JSON.stringify({ error: { code, message } });
}
