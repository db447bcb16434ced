// Stable ADM_ERR_* codes of the admin listener (STYLE.md 4), with message and HTTP status.

export const AdminErrors = {
  ADM_ERR_UNAUTHORIZED: {
    status: 401,
    message: 'this endpoint needs the admin token: send "Authorization: Bearer <token>"',
  },
  ADM_ERR_NOT_FOUND: {
    status: 404,
    message: 'no such admin endpoint (there are /healthz, /readyz, /metrics, /status and /rescue/mode)',
  },
  ADM_ERR_METHOD_NOT_ALLOWED: {
    status: 405,
    message: 'this admin endpoint does not answer that method (GET and HEAD; POST on /rescue/mode)',
  },
  ADM_ERR_RESCUE_OFF: {
    status: 409,
    message:
      'rescue is off in the configuration (rescue.mode or no peers), so there is no controller to switch',
  },
  ADM_ERR_BAD_BODY: {
    status: 400,
    message: 'the request body is not what this endpoint takes',
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
