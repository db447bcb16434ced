// Byte counters of one network interface from /proc/net/dev (the whole host's traffic on it).
import { MonitorError } from './errors.js';
import { readProc } from './proc.js';

export interface InterfaceBytes {
  /** Received bytes (into this host): the "in" direction. */
  readonly rx: number;
  /** Transmitted bytes (out of this host): the "out" direction. */
  readonly tx: number;
}

/**
 * Parses /proc/net/dev (proc(5)): two header lines, then `name: rx_bytes rx_packets ... tx_bytes ...`
 * with 8 receive and 8 transmit columns. Names may be glued to the first number ("eth0:123").
 */
export function parseNetDev(text: string): Map<string, InterfaceBytes> {
  const out = new Map<string, InterfaceBytes>();
  for (const line of text.split('\n')) {
    const colon = line.indexOf(':');
    if (colon < 0 || line.includes('|')) continue;
    const name = line.slice(0, colon).trim();
    const cols = line
      .slice(colon + 1)
      .trim()
      .split(/\s+/)
      .map(Number);
    if (!name || cols.length < 16 || cols.some((n) => !Number.isFinite(n))) {
      throw new MonitorError(
        'MON_ERR_PROC_MALFORMED',
        `/proc/net/dev line for "${name}" has too few columns`,
      );
    }
    out.set(name, { rx: cols[0]!, tx: cols[8]! });
  }
  return out;
}

/** Reads one interface's counters, or throws MON_ERR_INTERFACE_NOT_FOUND listing the ones there are. */
export function readInterfaceBytes(iface: string, procRoot = '/proc'): InterfaceBytes {
  const all = parseNetDev(readProc(`${procRoot}/net/dev`));
  const bytes = all.get(iface);
  if (!bytes) {
    throw new MonitorError(
      'MON_ERR_INTERFACE_NOT_FOUND',
      `"${iface}" (this host has: ${[...all.keys()].join(', ') || 'none'})`,
    );
  }
  return bytes;
}
