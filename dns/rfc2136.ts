// RFC 2136 dynamic UPDATE client, TSIG-signed (tsig.ts), for zones hosted on BIND/PowerDNS/Knot:
// each UPDATE replaces the managed names' whole A and AAAA sets (delete RRset + add records, no
// prerequisites), so it is idempotent and any one UPDATE leaves the zone equal to one snapshot.
// Rfc2136Updater sends one UPDATE at a time, newest snapshot first, with backoff on failure.
import { randomInt } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { EventEmitter } from 'node:events';
import { connect, isIP } from 'node:net';
import { recordSetsKey, type DnsRecordSets, type NameRecordSet } from './record-sets.js';
import { signMessage, TSIG_ERROR, verifyResponse, type TsigKey } from './tsig.js';
import { DnsUpdateError } from './update-errors.js';
import {
  addressRdata,
  canonicalName,
  CLASS,
  encodeName,
  encodeRecord,
  isDnsName,
  OPCODE_UPDATE,
  RCODE,
  RCODE_NAMES,
  readHeader,
  TYPE,
  WireError,
  WireReader,
} from './update-wire.js';

export interface Rfc2136Target {
  readonly host: string;
  readonly port: number;
  /** The zone the names live in (the UPDATE's zone section). */
  readonly zone: string;
  readonly key: TsigKey;
}

export interface ExchangeOptions {
  /** Per attempt (UDP, then TCP if the answer was truncated). */
  readonly timeoutMs?: number;
}

/** UDP is used up to this size; larger UPDATEs go over TCP straight away (RFC 9715-ish safe size). */
const UDP_MAX = 1232;
const DEFAULT_TIMEOUT_MS = 3000;

/** True when `name` is the zone or below it. */
export function inZone(name: string, zone: string): boolean {
  const n = canonicalName(name);
  const z = canonicalName(zone);
  return n === z || n.endsWith(`.${z}`);
}

/**
 * The UPDATE message (unsigned): for each name in `sets`, delete its A and AAAA RRsets and add
 * its addresses (each once: a DNS RRset has no duplicates) with the set's TTL; for each of
 * `deleteNames`, only the deletes (a name we managed before and no longer serve).
 */
export function buildUpdate(
  id: number,
  zone: string,
  sets: readonly NameRecordSet[],
  deleteNames: readonly string[] = [],
): Buffer {
  const updates: Buffer[] = [];
  const deleteSets = (name: string): void => {
    updates.push(encodeRecord(name, TYPE.A, CLASS.ANY, 0, Buffer.alloc(0)));
    updates.push(encodeRecord(name, TYPE.AAAA, CLASS.ANY, 0, Buffer.alloc(0)));
  };
  for (const s of sets) {
    deleteSets(s.name);
    for (const address of new Set(s.addresses.map((a) => a.address))) {
      const { type, rdata } = addressRdata(address);
      updates.push(encodeRecord(s.name, type, CLASS.IN, s.ttl, rdata));
    }
  }
  for (const n of deleteNames) deleteSets(n);
  const header = Buffer.alloc(12);
  header.writeUInt16BE(id, 0);
  header.writeUInt16BE(OPCODE_UPDATE << 11, 2);
  header.writeUInt16BE(1, 4); // ZOCOUNT
  header.writeUInt16BE(0, 6); // PRCOUNT
  header.writeUInt16BE(updates.length, 8); // UPCOUNT
  header.writeUInt16BE(0, 10); // ADCOUNT (TSIG is added by signMessage)
  const zoneSection = Buffer.concat([encodeName(zone), Buffer.from([0, TYPE.SOA, 0, CLASS.IN])]);
  return Buffer.concat([header, zoneSection, ...updates]);
}

/** Checks names before anything is sent (a local mistake is a clear error, not a NOTZONE later). */
export function checkNames(zone: string, names: readonly string[]): void {
  for (const n of names) {
    if (!isDnsName(n))
      throw new DnsUpdateError('DNS_ERR_UPDATE_NAME', `${JSON.stringify(n)} is not a DNS name`);
    if (!inZone(n, zone)) throw new DnsUpdateError('DNS_ERR_UPDATE_NAME', `${n} is not in zone ${zone}`);
  }
}

export interface UpdateResult {
  /** "udp" or "tcp" (after a truncated UDP answer, or for a large UPDATE). */
  readonly transport: 'udp' | 'tcp';
  readonly ms: number;
}

/** Sends one signed UPDATE and checks the signed answer; throws DnsUpdateError with a DNS_ERR_UPDATE_* code. */
export async function sendUpdate(
  target: Rfc2136Target,
  sets: readonly NameRecordSet[],
  deleteNames: readonly string[] = [],
  opts: ExchangeOptions = {},
): Promise<UpdateResult> {
  checkNames(target.zone, [...sets.map((s) => s.name), ...deleteNames]);
  const started = performance.now();
  const id = randomInt(0, 0x10000);
  const signed = signMessage(buildUpdate(id, target.zone, sets, deleteNames), target.key);
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  let transport: 'udp' | 'tcp' = signed.wire.length > UDP_MAX ? 'tcp' : 'udp';
  let answer = transport === 'udp' ? await udpExchange(target, signed.wire, id, timeoutMs) : null;
  if (answer === null || (answer.readUInt16BE(2) & 0x0200) !== 0) {
    transport = 'tcp';
    answer = await tcpExchange(target, signed.wire, timeoutMs);
  }
  checkAnswer(target, answer, id, signed.mac);
  return { transport, ms: performance.now() - started };
}

function checkAnswer(target: Rfc2136Target, answer: Buffer, id: number, requestMac: Buffer): void {
  let rcode: number;
  let check: ReturnType<typeof verifyResponse>;
  try {
    const h = readHeader(new WireReader(answer));
    if (h.id !== id) throw new WireError(`answer id ${h.id} is not the UPDATE's ${id}`);
    if ((h.flags & 0x8000) === 0 || ((h.flags >> 11) & 0xf) !== OPCODE_UPDATE)
      throw new WireError('not an answer to an UPDATE (QR/opcode)');
    rcode = h.flags & 0xf;
    check = verifyResponse(answer, target.key, requestMac);
  } catch (err) {
    if (err instanceof WireError) throw new DnsUpdateError('DNS_ERR_UPDATE_BAD_REPLY', err.message);
    throw err;
  }
  const where = `${target.host}:${target.port} zone ${target.zone}`;
  // A TSIG error is sent unsigned (BADSIG/BADKEY): report it as the server's verdict on our key.
  const tsigError = check.tsig?.error ?? 0;
  if (tsigError === TSIG_ERROR.BADSIG) throw new DnsUpdateError('DNS_ERR_UPDATE_BADSIG', where);
  if (tsigError === TSIG_ERROR.BADKEY)
    throw new DnsUpdateError('DNS_ERR_UPDATE_BADKEY', `${target.key.name} at ${where}`);
  if (tsigError === TSIG_ERROR.BADTIME) throw new DnsUpdateError('DNS_ERR_UPDATE_BADTIME', where);
  if (rcode === RCODE.NOTAUTH) throw new DnsUpdateError('DNS_ERR_UPDATE_NOTAUTH', where);
  if (rcode === RCODE.REFUSED)
    throw new DnsUpdateError('DNS_ERR_UPDATE_REFUSED', `key ${target.key.name} at ${where}`);
  if (rcode === RCODE.NOTZONE) throw new DnsUpdateError('DNS_ERR_UPDATE_NOTZONE', where);
  if (!check.ok) {
    if (check.why === 'unsigned' || check.why === 'other-key')
      throw new DnsUpdateError(
        'DNS_ERR_UPDATE_UNSIGNED_REPLY',
        `${where} (rcode ${RCODE_NAMES[rcode] ?? rcode})`,
      );
    throw new DnsUpdateError('DNS_ERR_UPDATE_REPLY_BADSIG', `${check.why} from ${where}`);
  }
  if (rcode !== RCODE.NOERROR)
    throw new DnsUpdateError(
      'DNS_ERR_UPDATE_RCODE',
      `${RCODE_NAMES[rcode] ?? `rcode ${rcode}`} from ${where}`,
    );
}

function udpExchange(target: Rfc2136Target, wire: Buffer, id: number, timeoutMs: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const sock = createSocket(isIP(target.host) === 6 ? 'udp6' : 'udp4');
    const done = (err: Error | null, answer?: Buffer): void => {
      clearTimeout(timer);
      sock.close();
      if (err) reject(err);
      else resolve(answer!);
    };
    const timer = setTimeout(
      () =>
        done(
          new DnsUpdateError(
            'DNS_ERR_UPDATE_TIMEOUT',
            `no UDP answer from ${target.host}:${target.port} in ${timeoutMs} ms`,
          ),
        ),
      timeoutMs,
    );
    sock.on('error', (err) =>
      done(
        new DnsUpdateError('DNS_ERR_UPDATE_NETWORK', `UDP ${target.host}:${target.port}: ${err.message}`, {
          cause: err,
        }),
      ),
    );
    // Anything that is not an answer to this UPDATE (wrong sender or id) is ignored, as a resolver would.
    sock.on('message', (msg, rinfo) => {
      if (rinfo.port !== target.port || msg.length < 12 || msg.readUInt16BE(0) !== id) return;
      done(null, msg);
    });
    sock.send(wire, target.port, target.host);
  });
}

function tcpExchange(target: Rfc2136Target, wire: Buffer, timeoutMs: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const sock = connect({ host: target.host, port: target.port });
    const chunks: Buffer[] = [];
    let got = 0;
    const done = (err: Error | null, answer?: Buffer): void => {
      clearTimeout(timer);
      sock.destroy();
      if (err) reject(err);
      else resolve(answer!);
    };
    const timer = setTimeout(
      () =>
        done(
          new DnsUpdateError(
            'DNS_ERR_UPDATE_TIMEOUT',
            `no TCP answer from ${target.host}:${target.port} in ${timeoutMs} ms`,
          ),
        ),
      timeoutMs,
    );
    sock.on('connect', () => {
      const len = Buffer.alloc(2);
      len.writeUInt16BE(wire.length, 0);
      sock.write(Buffer.concat([len, wire]));
    });
    sock.on('data', (d: Buffer) => {
      chunks.push(d);
      got += d.length;
      if (got < 2) return;
      const all = Buffer.concat(chunks);
      const len = all.readUInt16BE(0);
      if (all.length >= 2 + len) done(null, all.subarray(2, 2 + len));
    });
    sock.on('error', (err) =>
      done(
        new DnsUpdateError('DNS_ERR_UPDATE_NETWORK', `TCP ${target.host}:${target.port}: ${err.message}`, {
          cause: err,
        }),
      ),
    );
    sock.on('end', () =>
      done(
        new DnsUpdateError(
          'DNS_ERR_UPDATE_BAD_REPLY',
          `TCP ${target.host}:${target.port} closed before a whole answer`,
        ),
      ),
    );
  });
}

export interface UpdaterOptions {
  readonly target: Rfc2136Target;
  readonly timeoutMs?: number;
  /** Backoff after a failed UPDATE: doubles from minMs to maxMs. */
  readonly backoff?: { readonly minMs: number; readonly maxMs: number };
}

export interface UpdaterStatus {
  readonly desiredVersion: number | null;
  readonly appliedVersion: number | null;
  readonly failures: number;
  readonly lastError: { readonly code: string; readonly message: string } | null;
}

/**
 * Keeps the zone equal to the newest published snapshot. One UPDATE in flight at a time; a
 * snapshot published meanwhile replaces any not yet sent (only the newest is ever sent next,
 * so an older set never lands after a newer one); failures retry with exponential backoff.
 * Names outside the zone are skipped ('skipped' event, once per name).
 * Events: 'applied' ({ version, transport, ms }), 'error' (DnsUpdateError), 'skipped' (name).
 */
export class Rfc2136Updater extends EventEmitter {
  private readonly opts: UpdaterOptions;
  private desired: DnsRecordSets | null = null;
  private appliedKey: string | null = null;
  private appliedVersion: number | null = null;
  /** Names the zone holds sets of because of us: dropped names get their sets deleted. */
  private managed = new Set<string>();
  private readonly skippedNames = new Set<string>();
  private running = false;
  private closed = false;
  private failures = 0;
  private lastError: DnsUpdateError | null = null;
  private wakeSleep: (() => void) | null = null;

  constructor(opts: UpdaterOptions) {
    super();
    this.opts = opts;
  }

  /** Hands over the newest snapshot; returns at once (the UPDATE goes out in the background). */
  publish(sets: DnsRecordSets): void {
    if (this.closed) return;
    if (this.desired !== null && sets.version < this.desired.version) return;
    this.desired = sets;
    if (!this.running) void this.run();
  }

  status(): UpdaterStatus {
    return {
      desiredVersion: this.desired?.version ?? null,
      appliedVersion: this.appliedVersion,
      failures: this.failures,
      lastError: this.lastError ? { code: this.lastError.code, message: this.lastError.message } : null,
    };
  }

  /**
   * Resolves true once the newest snapshot has been applied, false after `timeoutMs` (a clean
   * stop waits for "rescuers out of the zone" to land before the process exits).
   */
  settled(timeoutMs: number): Promise<boolean> {
    const done = (): boolean => this.desired === null || recordSetsKey(this.desired) === this.appliedKey;
    if (done()) return Promise.resolve(true);
    return new Promise((resolve) => {
      const onApplied = (): void => {
        if (!done()) return;
        clearTimeout(timer);
        this.off('applied', onApplied);
        resolve(true);
      };
      const timer = setTimeout(() => {
        this.off('applied', onApplied);
        resolve(false);
      }, timeoutMs);
      this.on('applied', onApplied);
    });
  }

  /** Stops retrying; an UPDATE in flight still completes. */
  close(): void {
    this.closed = true;
    this.wakeSleep?.();
  }

  private async run(): Promise<void> {
    this.running = true;
    try {
      for (;;) {
        const want = this.desired;
        if (this.closed || want === null || recordSetsKey(want) === this.appliedKey) return;
        const zone = this.opts.target.zone;
        const sets = want.sets.filter((s) => {
          if (inZone(s.name, zone) && isDnsName(s.name)) return true;
          if (!this.skippedNames.has(s.name)) {
            this.skippedNames.add(s.name);
            this.emit('skipped', s.name);
          }
          return false;
        });
        const keep = new Set(sets.map((s) => s.name));
        const gone = [...this.managed].filter((n) => !keep.has(n));
        try {
          const r = await sendUpdate(this.opts.target, sets, gone, { timeoutMs: this.opts.timeoutMs });
          this.managed = keep;
          this.appliedKey = recordSetsKey(want);
          this.appliedVersion = want.version;
          this.failures = 0;
          this.lastError = null;
          this.emit('applied', { version: want.version, transport: r.transport, ms: r.ms });
        } catch (err) {
          const e =
            err instanceof DnsUpdateError
              ? err
              : new DnsUpdateError('DNS_ERR_UPDATE_NETWORK', String(err), { cause: err });
          this.failures++;
          this.lastError = e;
          if (this.listenerCount('error') > 0) this.emit('error', e);
          await this.sleep(this.backoffMs());
        }
      }
    } finally {
      this.running = false;
    }
  }

  private backoffMs(): number {
    const { minMs, maxMs } = this.opts.backoff ?? { minMs: 500, maxMs: 30_000 };
    return Math.min(maxMs, minMs * 2 ** Math.min(this.failures - 1, 20));
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(resolve, ms);
      t.unref();
      this.wakeSleep = () => {
        clearTimeout(t);
        resolve();
      };
    });
  }
}
