// Canonical JSON: the exact bytes ledger signatures cover. Object keys sorted (UTF-16 order), no
// whitespace, only strings, safe integers, booleans, null, arrays and objects — no floats, whose
// text form differs between serialisers — so every registry and member re-derives the same bytes
// from a parsed record, whatever key order or spacing it arrived in.
import { createHash } from 'node:crypto';
import { LedgerError } from './errors.js';

export function canonicalJson(value: unknown): string {
  if (value === null || typeof value === 'boolean') return JSON.stringify(value);
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) throw new LedgerError('LGR_ERR_NOT_CANONICAL', `number ${value}`);
    return String(value);
  }
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  throw new LedgerError('LGR_ERR_NOT_CANONICAL', typeof value);
}

export function canonicalBytes(value: unknown): Buffer {
  return Buffer.from(canonicalJson(value), 'utf8');
}

/** Hex SHA-256 of the canonical bytes: a record's id. */
export function digest(value: unknown): string {
  return createHash('sha256').update(canonicalBytes(value)).digest('hex');
}
