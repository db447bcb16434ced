// Domain names: validation, normalisation (lower case, no trailing dot) and the wire form used as
// the lookup key (RFC 1035 3.1 labels, so names with odd bytes can never collide).

const LABEL = /^[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$/;

/** Lower-case, no trailing dot; '' is the root. Undefined when not a valid host/service name. */
export function normalizeName(name: string): string | undefined {
  let n = name.endsWith('.') ? name.slice(0, -1) : name;
  if (n === '') return name === '.' ? '' : undefined;
  n = n.toLowerCase();
  if (n.length > 253) return undefined;
  for (const label of n.split('.')) if (!LABEL.test(label)) return undefined;
  return n;
}

/** Whether `name` equals `zone` or lies below it (both normalised). */
export function inZone(name: string, zone: string): boolean {
  return zone === '' || name === zone || name.endsWith(`.${zone}`);
}

/** The wire form of a normalised name: length-prefixed labels and the root byte. */
export function nameToWire(name: string): Buffer {
  if (name === '') return Buffer.from([0]);
  const labels = name.split('.');
  const out = Buffer.allocUnsafe(name.length + 2);
  let pos = 0;
  for (const label of labels) {
    out[pos++] = label.length;
    pos += out.write(label, pos, 'latin1');
  }
  out[pos++] = 0;
  return out.subarray(0, pos);
}

/** The lookup key of a normalised name: its wire form as a latin1 string (what the query parser builds). */
export function wireKey(name: string): string {
  return nameToWire(name).toString('latin1');
}
