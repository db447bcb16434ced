// Reads the key structure out of the zod config schema: for "did you mean" hints on unknown
// keys, and so a test can check that the README documents every key the schema has.
import type { z } from 'zod';
import { configSchema } from './schema.js';

interface ZodDefLike {
  type: string;
  shape?: Record<string, z.ZodType>;
  innerType?: z.ZodType;
  element?: z.ZodType;
  in?: z.ZodType;
}

const defOf = (s: z.ZodType): ZodDefLike => (s as unknown as { _zod: { def: ZodDefLike } })._zod.def;

/** Strip default/prefault/optional/nullable/pipe wrappers down to the schema that shapes the value. */
function unwrap(schema: z.ZodType): z.ZodType {
  let s = schema;
  for (;;) {
    const def = defOf(s);
    if (def.innerType !== undefined) s = def.innerType;
    else if (def.type === 'pipe' && def.in !== undefined) s = def.in;
    else return s;
  }
}

/** The object keys the schema allows at `path` (array indexes skipped), or [] if not an object there. */
export function keysAt(path: readonly (string | number)[], root: z.ZodType = configSchema): string[] {
  let s = unwrap(root);
  for (const part of path) {
    const def = defOf(s);
    if (def.type === 'array' && def.element !== undefined && typeof part === 'number')
      s = unwrap(def.element);
    else if (
      def.type === 'object' &&
      def.shape !== undefined &&
      typeof part === 'string' &&
      part in def.shape
    )
      s = unwrap(def.shape[part]!);
    else return [];
  }
  const def = defOf(s);
  return def.type === 'object' && def.shape !== undefined ? Object.keys(def.shape) : [];
}

/** Every key path of the schema, depth first: `proxy`, `proxy.listen`, …, `monitor.cpu.source`. */
export function allKeyPaths(root: z.ZodType = configSchema): string[] {
  const out: string[] = [];
  const walk = (s: z.ZodType, prefix: string): void => {
    const def = defOf(unwrap(s));
    if (def.type !== 'object' || def.shape === undefined) return;
    for (const [key, child] of Object.entries(def.shape)) {
      const path = prefix === '' ? key : `${prefix}.${key}`;
      out.push(path);
      walk(child, path);
    }
  };
  walk(root, '');
  return out;
}

/** The closest known key to `key` by edit distance, if close enough to be a likely typo. */
export function closestKey(key: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDist = Math.max(2, Math.floor(key.length / 3)) + 1;
  for (const c of candidates) {
    const d = editDistance(key.toLowerCase(), c.toLowerCase());
    if (d < bestDist) {
      best = c;
      bestDist = d;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length]!;
}
