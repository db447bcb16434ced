// SRV discovery (RFC 2782): resolve `_dotslash._tcp.<community domain>` to endpoints in the order
// a client should try them: by priority, then weighted random within a priority. The registry
// client uses it to find registries.
import { Resolver } from 'node:dns/promises';
import type { SrvRecord } from 'node:dns';
import { DnsError } from './errors.js';

export interface SrvEndpoint {
  readonly host: string;
  readonly port: number;
  readonly priority: number;
  readonly weight: number;
}

export interface ResolveSrvOptions {
  /** DNS servers as "IP" or "IP:PORT" ("[v6]:PORT"); unset = the system's resolvers. */
  readonly servers?: readonly string[];
  /** Per-try timeout; default 2000 ms. */
  readonly timeoutMs?: number;
  /** Tries per server; default 2. */
  readonly tries?: number;
  /** Random source in [0, 1) (tests); default Math.random. */
  readonly random?: () => number;
}

/** The endpoints of `name` in try order. Rejects with DNS_ERR_SRV_LOOKUP (no such name, no records, no server). */
export async function resolveSrv(name: string, opts: ResolveSrvOptions = {}): Promise<SrvEndpoint[]> {
  const resolver = new Resolver({ timeout: opts.timeoutMs ?? 2000, tries: opts.tries ?? 2 });
  if (opts.servers !== undefined) resolver.setServers([...opts.servers]);
  let records: SrvRecord[];
  try {
    records = await resolver.resolveSrv(name);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'ERROR';
    throw new DnsError('DNS_ERR_SRV_LOOKUP', `${name}: ${code}`, [], { cause: err });
  }
  // A single record with target "." means "decidedly not available here" (RFC 2782).
  if (records.length === 1 && (records[0]!.name === '' || records[0]!.name === '.')) return [];
  return orderSrv(records, opts.random ?? Math.random);
}

/** RFC 2782 order: ascending priority; within one, weighted random selection (weight 0 placed first, rarely chosen). */
export function orderSrv(records: readonly SrvRecord[], random: () => number = Math.random): SrvEndpoint[] {
  const byPriority = new Map<number, SrvRecord[]>();
  for (const r of records) {
    const group = byPriority.get(r.priority);
    if (group) group.push(r);
    else byPriority.set(r.priority, [r]);
  }
  const out: SrvEndpoint[] = [];
  for (const priority of [...byPriority.keys()].sort((a, b) => a - b)) {
    const left = [...byPriority.get(priority)!].sort(
      (a, b) => (a.weight === 0 ? 0 : 1) - (b.weight === 0 ? 0 : 1),
    );
    while (left.length > 0) {
      const total = left.reduce((s, r) => s + r.weight, 0);
      const pick = random() * (total + 1);
      let running = 0;
      let index = left.length - 1;
      for (let i = 0; i < left.length; i++) {
        running += left[i]!.weight;
        if (running >= pick) {
          index = i;
          break;
        }
      }
      const [r] = left.splice(index, 1);
      out.push({ host: r!.name.replace(/\.$/, ''), port: r!.port, priority: r!.priority, weight: r!.weight });
    }
  }
  return out;
}
