// Stable CFG_ERR_* codes for configuration problems, and the ConfigError that carries them.
// docs/errors.md is kept equal to this table by test/config/errors-doc.test.ts.

/** Every configuration error code with its meaning. Codes are never reused. */
export const CFG_ERRORS = {
  CFG_ERR_READ: { message: 'the configuration file cannot be read' },
  CFG_ERR_YAML: { message: 'the configuration file is not valid YAML' },
  CFG_ERR_UNKNOWN_KEY: { message: 'a key the schema does not know (a typo, or a key in the wrong section)' },
  CFG_ERR_MISSING_KEY: { message: 'a required key is missing' },
  CFG_ERR_INVALID_VALUE: { message: 'a value has the wrong type or is out of range' },
  CFG_ERR_ENV_MISSING: { message: 'a ${VAR} reference names an environment variable that is not set' },
  CFG_ERR_FLAG: { message: 'a command-line flag has an invalid value' },
} as const;

export type ConfigErrorCode = keyof typeof CFG_ERRORS;

/** One problem found in a configuration, with the position of the offending YAML node. */
export interface ConfigIssue {
  readonly code: ConfigErrorCode;
  /** The file the problem is in; undefined for command-line flags. */
  readonly file?: string;
  /** 1-based line and column of the offending node (the key for unknown keys, the parent for missing ones). */
  readonly line?: number;
  readonly column?: number;
  /** Dotted key path, e.g. `proxy.upstreams[0]`; '' for the document root; `--upstream` for flags. */
  readonly path: string;
  readonly message: string;
}

/** `file:line:column: path: message`, the form `dotslash validate` prints (like `nginx -t`). */
export function formatIssue(issue: ConfigIssue): string {
  const where = issue.file !== undefined ? `${issue.file}:${issue.line ?? 1}:${issue.column ?? 1}: ` : '';
  const key = issue.path === '' ? '' : `${issue.path}: `;
  return `${where}${key}${issue.message}`;
}

/** Thrown by the loaders; carries every issue found, not just the first. */
export class ConfigError extends Error {
  readonly code: ConfigErrorCode;
  readonly issues: readonly ConfigIssue[];

  constructor(issues: readonly ConfigIssue[]) {
    super(issues.map(formatIssue).join('\n'));
    this.name = 'ConfigError';
    this.issues = issues;
    this.code = issues[0]?.code ?? 'CFG_ERR_INVALID_VALUE';
  }
}
