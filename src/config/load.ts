// Loads a configuration: YAML with positions -> ${ENV} substitution -> zod schema -> deep-frozen
// Config. Every problem is reported with file:line:column and the key path (like `nginx -t`).
import { readFileSync } from 'node:fs';
import { LineCounter, isMap, isNode, isScalar, parseDocument } from 'yaml';
import type { Document, Node as YamlNode } from 'yaml';
import type { z } from 'zod';
import { ConfigError } from './errors.js';
import type { ConfigIssue } from './errors.js';
import { closestKey, keysAt } from './keys.js';
import { configSchema, registryServiceSchema } from './schema.js';
import type { Config, RegistryServiceConfig } from './schema.js';

export interface LoadOptions {
  /** Where ${VAR} references are looked up; process.env by default. */
  env?: NodeJS.ProcessEnv;
}

type Path = readonly (string | number)[];

/** Read, validate and freeze a config file. Throws ConfigError listing every problem found. */
export function loadConfigFile(file: string, opts: LoadOptions = {}): Config {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new ConfigError([
      { code: 'CFG_ERR_READ', file, line: 1, column: 1, path: '', message: `cannot read file (${reason})` },
    ]);
  }
  return parseConfig(text, file, opts);
}

/** Validate config text; `file` is only used to label positions. */
export function parseConfig(text: string, file = '<config>', opts: LoadOptions = {}): Config {
  return parseWithSchema(configSchema, text, file, opts);
}

/** Read, validate and freeze a registry service file (`dotslash registry -c FILE`). */
export function loadRegistryConfigFile(file: string, opts: LoadOptions = {}): RegistryServiceConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new ConfigError([
      { code: 'CFG_ERR_READ', file, line: 1, column: 1, path: '', message: `cannot read file (${reason})` },
    ]);
  }
  return parseWithSchema(registryServiceSchema, text, file, opts);
}

/** The YAML -> env -> schema pipeline for any of the config schemas (daemon or registry). */
export function parseWithSchema<S extends z.ZodType>(
  schema: S,
  text: string,
  file = '<config>',
  opts: LoadOptions = {},
): z.infer<S> {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const at = (offset: number | undefined): { line: number; column: number } => {
    if (offset === undefined) return { line: 1, column: 1 };
    const { line, col } = lineCounter.linePos(offset);
    return { line, column: col };
  };

  if (doc.errors.length > 0) {
    throw new ConfigError(
      doc.errors.map((e) => ({ code: 'CFG_ERR_YAML', file, ...at(e.pos[0]), path: '', message: e.message })),
    );
  }

  let raw: unknown;
  try {
    // toJS() refuses alias bombs ("billion laughs": maxAliasCount) by throwing.
    raw = doc.toJS() ?? {};
  } catch (err) {
    throw new ConfigError([
      { code: 'CFG_ERR_YAML', file, line: 1, column: 1, path: '', message: (err as Error).message },
    ]);
  }
  const env = opts.env ?? process.env;
  const envIssues: ConfigIssue[] = [];
  const data = substituteEnv(raw, [], env, (path, name) => {
    envIssues.push({
      code: 'CFG_ERR_ENV_MISSING',
      file,
      ...at(nearestNode(doc, path).range?.[0]),
      path: formatPath(path),
      message: `environment variable ${name} is not set`,
    });
  });
  if (envIssues.length > 0) throw new ConfigError(envIssues);

  const result = schema.safeParse(data);
  if (result.success) return deepFreeze(result.data);

  const issues = result.error.issues.flatMap((issue) => toConfigIssues(issue, doc, data, file, at, schema));
  issues.sort((a, b) => (a.line ?? 0) - (b.line ?? 0) || (a.column ?? 0) - (b.column ?? 0));
  throw new ConfigError(issues);
}

/** Flags of `dotslash proxy` (and `dotslash example`): the one-liner needs no config file. */
export interface ConfigFlags {
  listen?: string;
  upstreams: readonly string[];
  admin?: string;
  logLevel?: string;
}

/** Build a validated, frozen Config from command-line flags, everything else at its default. */
export function configFromFlags(flags: ConfigFlags): Config {
  const raw = {
    proxy: { upstreams: [...flags.upstreams], ...(flags.listen !== undefined && { listen: flags.listen }) },
    ...(flags.admin !== undefined && { admin: { listen: flags.admin } }),
    ...(flags.logLevel !== undefined && { log: { level: flags.logLevel } }),
  };
  const result = configSchema.safeParse(raw);
  if (result.success) return deepFreeze(result.data);
  const flagOf = (path: Path): string => {
    if (path[0] === 'proxy' && path[1] === 'listen') return '--listen';
    if (path[0] === 'proxy' && path[1] === 'upstreams') return '--upstream';
    if (path[0] === 'admin') return '--admin';
    if (path[0] === 'log') return '--log-level';
    return formatPath(path);
  };
  throw new ConfigError(
    result.error.issues.map((issue) => {
      const value = valueAt(raw, issue.path as Path);
      const shown = typeof value === 'string' ? ` "${value}"` : '';
      return {
        code: 'CFG_ERR_FLAG',
        path: `${flagOf(issue.path as Path)}${shown}`,
        message: cleanMessage(issue),
      };
    }),
  );
}

/** Recursively freeze a value so a loaded config cannot be changed by anyone holding it. */
export function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

/** `proxy.upstreams[0]` from ['proxy', 'upstreams', 0]. */
export function formatPath(path: Path): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out === '' ? p : `.${p}`;
  return out;
}

// ${NAME} or ${NAME:-default}; $${ is a literal "${".
const ENV_REF = /\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

/** Replace ${VAR} in every string value (not in keys). Secrets stay out of the file this way. */
function substituteEnv(
  value: unknown,
  path: (string | number)[],
  env: NodeJS.ProcessEnv,
  onMissing: (path: Path, name: string) => void,
): unknown {
  if (typeof value === 'string') {
    if (!value.includes('${')) return value;
    return value.replace(ENV_REF, (match, name: string | undefined, fallback: string | undefined) => {
      if (match === '$${') return '${';
      const v = env[name!];
      if (v !== undefined) return v;
      if (fallback !== undefined) return fallback;
      onMissing(path, name!);
      return '';
    });
  }
  if (Array.isArray(value)) return value.map((v, i) => substituteEnv(v, [...path, i], env, onMissing));
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = substituteEnv(v, [...path, k], env, onMissing);
    return out;
  }
  return value;
}

type At = (offset: number | undefined) => { line: number; column: number };

/** Map one zod issue to positioned ConfigIssues (one per unknown key). */
function toConfigIssues(
  issue: z.core.$ZodIssue,
  doc: Document,
  data: unknown,
  file: string,
  at: At,
  schema: z.ZodType,
): ConfigIssue[] {
  const path = issue.path as Path;
  if (issue.code === 'unrecognized_keys') {
    const known = keysAt(path, schema);
    return issue.keys.map((key) => {
      const hint = closestKey(key, known);
      return {
        code: 'CFG_ERR_UNKNOWN_KEY' as const,
        file,
        ...at((keyNode(doc, [...path, key]) ?? nearestNode(doc, path)).range?.[0]),
        path: formatPath([...path, key]),
        message: `unknown key "${key}"${hint !== undefined ? ` (did you mean "${hint}"?)` : ''}`,
      };
    });
  }

  const parentPath = path.slice(0, -1);
  const parent = valueAt(data, parentPath);
  const last = path[path.length - 1];
  const missing =
    issue.code === 'invalid_type' &&
    last !== undefined &&
    parent !== null &&
    typeof parent === 'object' &&
    !Array.isArray(parent) &&
    !Object.hasOwn(parent, last);
  if (missing) {
    // Point at the parent's key (`proxy:`), or at the top of the file for a top-level key.
    const node =
      parentPath.length === 0 ? undefined : (keyNode(doc, parentPath) ?? nearestNode(doc, parentPath));
    return [
      {
        code: 'CFG_ERR_MISSING_KEY',
        file,
        ...at(node?.range?.[0] ?? 0),
        path: formatPath(path),
        message: `required key "${String(last)}" is missing`,
      },
    ];
  }

  // A value problem: point at the value; if it was defaulted (absent), at its nearest present ancestor's key.
  const exact = doc.getIn(path, true);
  const node = isNode(exact) ? exact : (keyNode(doc, nearestPresent(doc, path)) ?? nearestNode(doc, path));
  return [
    {
      code: 'CFG_ERR_INVALID_VALUE',
      file,
      ...at(node.range?.[0] ?? 0),
      path: formatPath(path),
      message: cleanMessage(issue),
    },
  ];
}

/** zod 4's messages start with "Invalid input: "; the key path already says where. */
function cleanMessage(issue: z.core.$ZodIssue): string {
  return issue.message.replace(/^Invalid (input|option): /, '');
}

function valueAt(data: unknown, path: Path): unknown {
  let v = data;
  for (const p of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<string | number, unknown>)[p];
  }
  return v;
}

/** The longest prefix of `path` that exists in the document. */
function nearestPresent(doc: Document, path: Path): Path {
  for (let n = path.length; n > 0; n--) {
    if (isNode(doc.getIn(path.slice(0, n), true))) return path.slice(0, n);
  }
  return [];
}

/** The node at `path`, or at its nearest existing ancestor (the document root at worst). */
function nearestNode(doc: Document, path: Path): Partial<Pick<YamlNode, 'range'>> {
  const p = nearestPresent(doc, path);
  const node = p.length === 0 ? doc.contents : doc.getIn(p, true);
  return isNode(node) ? node : {};
}

/** The key scalar of the map entry at `path` (where `name:` is written), if present. */
function keyNode(doc: Document, path: Path): YamlNode | undefined {
  if (path.length === 0) return undefined;
  const parent = path.length === 1 ? doc.contents : doc.getIn(path.slice(0, -1), true);
  if (!isMap(parent)) return undefined;
  const last = path[path.length - 1];
  for (const pair of parent.items) {
    if (isScalar(pair.key) && pair.key.value === last) return pair.key;
  }
  return undefined;
}
