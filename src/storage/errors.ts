// Stable STO_ERR_* codes of the daemon's SQLite state file (STYLE.md 4); never reused or renumbered.

export const StorageErrors = {
  STO_ERR_NOT_A_DOTSLASH_DB: {
    message:
      'the state file is not a DotSlash state database (point state_file at another path, or move it away)',
  },
  STO_ERR_NEWER_SCHEMA: {
    message:
      'the state file was written by a newer DotSlash (its schema version is higher than this one knows)',
  },
  STO_ERR_OPEN: { message: 'the state file could not be opened or created' },
  STO_ERR_UNKNOWN_SESSION: { message: 'no such session row in the state file' },
} as const satisfies Record<string, { message: string }>;

export type StorageErrorCode = keyof typeof StorageErrors;

export class StorageError extends Error {
  readonly code: StorageErrorCode;
  constructor(code: StorageErrorCode, detail?: string, options?: { cause?: unknown }) {
    const base = StorageErrors[code].message;
    super(detail ? `${base}: ${detail}` : base, options);
    this.name = 'StorageError';
    this.code = code;
  }
}
