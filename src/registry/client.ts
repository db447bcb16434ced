// The daemon's registry client: registers at start, renews every lease/3, re-publishes spare
// capacity when it changes (throttled), looks up rescue candidates and keeps the community's
// public keys, failing over between registries (config URLs or DNS SRV).
import type { KeyObject } from 'node:crypto';
import type { Logger } from 'pino';
import { SENDER_HEADER } from '../../rescue-protocol/envelope.js';
import { parsePublicKey } from '../../rescue-protocol/keys.js';
import type { Peer } from '../../rescue-protocol/control-client.js';
import { RegistryError, isRegistryErrorCode } from './errors.js';
import {
  DEREGISTER_PATH,
  DIRECTORY_PATH,
  LEDGER_BALANCE_PATH,
  LEDGER_SPEND_PATH,
  LEDGER_SUBMIT_PATH,
  LOOKUP_PATH,
  REGISTER_PATH,
  type Candidate,
  type DirectoryEntry,
  type Registration,
  type RequestType,
  WANT_SIGNED_HEADER,
} from './messages.js';
import type { Balance, LedgerRecord, SpendRecord, SpendVerdict } from './ledger/index.js';
import { macRequest, parseJson, sealRequest, signedBy } from './signed.js';

/** Where registries are: fixed URLs, or a resolver (DNS SRV) asked again on every fail-over round. */
export type RegistrySource = readonly string[] | (() => Promise<readonly string[]>);

export interface RegistryClientOptions {
  readonly self: { id: string; privateKey: KeyObject };
  /** Everything registered except spare capacity (published separately). */
  readonly registration: Omit<Registration, 'spare'>;
  readonly registries: RegistrySource;
  /** Registry keys whose signed answers are trusted; empty = answers not verified. */
  readonly trustedKeys?: readonly string[];
  readonly timeoutMs?: number;
  /** Spare capacity is re-published at most this often, and only after a 10 % change. */
  readonly publishIntervalMs?: number;
  /** Lookups for candidates at most this often. */
  readonly lookupIntervalMs?: number;
  /** A member learned from the registry (its key goes into the member's peer key map). */
  readonly onMember?: (id: string, key: KeyObject) => void;
  readonly logger?: Logger;
}

const SPARE_CHANGE = 0.1;

export class RegistryClient {
  private readonly opts: RegistryClientOptions;
  private readonly trusted: KeyObject[];
  private spare: Registration['spare'];
  private publishedSpare: Registration['spare'] | null = null;
  private lastPublish = -Infinity;
  private lastLookup = -Infinity;
  private renewTimer: NodeJS.Timeout | null = null;
  private closed = false;
  /** Index into the current registry list of the one that answered last (tried first). */
  private preferred = 0;
  private found: Candidate[] = [];
  private listed: Peer[] = [];
  private readonly known = new Map<string, Peer>();
  /** Registry URL -> the session key its registration answer gave us (for lookups). */
  private readonly sessionKeys = new Map<string, Buffer>();
  private lookingUp: Promise<void> | null = null;
  private registering: Promise<void> | null = null;
  /** The registry URL that last accepted our registration (tests, status). */
  current: string | null = null;
  registered = false;

  constructor(opts: RegistryClientOptions) {
    this.opts = opts;
    this.trusted = (opts.trustedKeys ?? []).map((k) => parsePublicKey(k));
    this.spare = { ...opts.registration.capacity };
  }

  /** Registers now (without waiting for success: a registry may come up later) and renews every lease/3. */
  start(): Promise<void> {
    const every = Math.max(500, Math.floor(this.opts.registration.lease_ms / 3));
    this.renewTimer = setInterval(() => void this.renew(), every);
    this.renewTimer.unref();
    return this.renew();
  }

  /** The latest spare capacity (from monitor samples); re-registers when it moved enough. */
  setSpare(spare: Registration['spare']): void {
    this.spare = spare;
    const p = this.publishedSpare;
    const moved = (a: number, b: number): boolean => Math.abs(a - b) > SPARE_CHANGE * Math.max(a, b, 1);
    if (p && !moved(p.uplink_bps, spare.uplink_bps) && !moved(p.cpu, spare.cpu) && !moved(p.rps, spare.rps))
      return;
    if (performance.now() - this.lastPublish < (this.opts.publishIntervalMs ?? 5_000)) return;
    void this.renew();
  }

  /** Registration (first and renewal): the whole record again, so any registry can take over. */
  renew(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.registering ??= (async () => {
      this.lastPublish = performance.now();
      const spare = this.spare;
      try {
        await this.call(REGISTER_PATH, 'register', { ...this.opts.registration, spare });
        this.publishedSpare = spare;
        if (!this.registered)
          this.opts.logger?.info({ registry: this.current }, 'registered with the registry');
        this.registered = true;
        await this.refreshDirectory();
      } catch (err) {
        this.opts.logger?.warn(
          { err: (err as Error).message },
          'registry registration failed; retrying at the next renewal',
        );
      }
    })().finally(() => (this.registering = null));
    return this.registering;
  }

  /** Candidates from the last lookup, best first (the controller reads this synchronously). */
  candidates(): readonly Peer[] {
    return this.found.map((c) => this.known.get(c.id)!).filter((p) => p !== undefined);
  }

  /** A member the registry told us about. */
  peer(id: string): Peer | undefined {
    return this.known.get(id);
  }

  /** The live members the last directory answer listed (not us), in its order. */
  members(): readonly Peer[] {
    return this.listed;
  }

  /** Asks for fresh candidates (throttled); `exclude` = current rescuers and recent decliners. */
  refresh(exclude: readonly string[], rtt: Record<string, number> = {}): Promise<void> {
    if (this.closed || this.lookingUp) return this.lookingUp ?? Promise.resolve();
    if (performance.now() - this.lastLookup < (this.opts.lookupIntervalMs ?? 1_000)) return Promise.resolve();
    this.lastLookup = performance.now();
    this.lookingUp = this.lookup(exclude, rtt)
      .then(
        () => undefined,
        (err: unknown) => this.opts.logger?.warn({ err: (err as Error).message }, 'registry lookup failed'),
      )
      .finally(() => (this.lookingUp = null));
    return this.lookingUp;
  }

  /** One lookup: candidates for us, their keys learned. */
  async lookup(
    exclude: readonly string[],
    rtt: Record<string, number> = {},
    limit = 4,
  ): Promise<Candidate[]> {
    const { id, community } = this.opts.registration;
    const body = { community, origin: id, exclude: [...exclude].slice(0, 256), rtt_ms: rtt, limit };
    const answer = (await this.call(LOOKUP_PATH, 'lookup', body)) as { candidates?: Candidate[] };
    const found = Array.isArray(answer.candidates) ? answer.candidates : [];
    for (const c of found) this.learn(c);
    this.found = found.filter((c) => this.known.has(c.id));
    return this.found;
  }

  /** Every live member's key: a rescuer must know an origin's key before its SOS arrives. */
  async refreshDirectory(): Promise<DirectoryEntry[]> {
    const { community } = this.opts.registration;
    const answer = (await this.call(DIRECTORY_PATH, 'directory', { community })) as {
      members?: DirectoryEntry[];
    };
    const members = Array.isArray(answer.members) ? answer.members : [];
    for (const m of members) this.learn(m);
    this.listed = members.map((m) => this.known.get(m.id)).filter((p) => p !== undefined);
    return members;
  }

  // ---- token ledger (flood-insurance communities): SpendChecker and ReceiptSink for MemberLedger ----

  /** The rescuer's question before it accepts an SOS: is this spend (paying us) good? Recorded if so. */
  async admitSpend(spend: SpendRecord, payee: string): Promise<SpendVerdict> {
    if (payee !== this.opts.registration.id)
      throw new RegistryError('REG_ERR_BAD_REQUEST', 'a member admits only spends paying itself');
    const { community } = this.opts.registration;
    const answer = (await this.call(LEDGER_SPEND_PATH, 'ledger-spend', { community, spend })) as {
      verdict?: SpendVerdict;
    };
    if (answer.verdict === undefined) throw new RegistryError('REG_ERR_BAD_REPLY', 'no verdict');
    return answer.verdict;
  }

  /** Hands a signed record (a receipt, a release) to the registry's ledger. */
  async submit(record: LedgerRecord): Promise<void> {
    const { community } = this.opts.registration;
    await this.call(LEDGER_SUBMIT_PATH, 'ledger-submit', { community, record });
  }

  async balance(account: string = this.opts.registration.id): Promise<Balance> {
    const { community } = this.opts.registration;
    const answer = (await this.call(LEDGER_BALANCE_PATH, 'ledger-balance', { community, account })) as {
      balance: Balance;
    };
    return answer.balance;
  }

  /** Stops renewing and deregisters (best effort: an unreachable registry lets the lease lapse). */
  async close(opts: { deregister?: boolean } = {}): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.renewTimer) clearInterval(this.renewTimer);
    await this.registering?.catch(() => undefined);
    if (opts.deregister !== false && this.registered) {
      const { id, community } = this.opts.registration;
      await this.call(DEREGISTER_PATH, 'deregister', { id, community }, true).catch(() => undefined);
    }
  }

  private learn(m: { id: string; control_url: string; public_key: string }): void {
    if (m.id === this.opts.registration.id) return;
    const before = this.known.get(m.id);
    if (before && before.control_url === m.control_url && before.public_key === m.public_key) return;
    let key: KeyObject;
    try {
      key = parsePublicKey(m.public_key);
    } catch {
      return; // a registry that sends a bad key has its entry ignored
    }
    this.known.set(m.id, { id: m.id, control_url: m.control_url, public_key: m.public_key });
    this.opts.onMember?.(m.id, key);
  }

  private async registries(): Promise<readonly string[]> {
    const src = this.opts.registries;
    const urls = typeof src === 'function' ? await src() : src;
    if (urls.length === 0) throw new RegistryError('REG_ERR_UNREACHABLE', 'no registry URLs (config or SRV)');
    return urls;
  }

  /**
   * A signed request to the preferred registry, then each other in turn. Unreachable, timed out,
   * 5xx, and "not registered here" (an update not yet replicated: we register there and retry)
   * move on; other refusals (bad request, not admitted) are the answer.
   */
  private async call(path: string, type: RequestType, body: unknown, closing = false): Promise<unknown> {
    const urls = await this.registries();
    let last: unknown = null;
    for (let i = 0; i < urls.length; i++) {
      const idx = (this.preferred + i) % urls.length;
      const url = urls[idx]!.replace(/\/+$/, '');
      try {
        const answer = await this.post(url, path, type, body);
        this.preferred = idx;
        if (type === 'register') this.current = url;
        return answer;
      } catch (err) {
        last = err;
        const code = err instanceof RegistryError ? err.remote : undefined;
        if (code === 'REG_ERR_UNKNOWN_SENDER' && type !== 'register' && !closing) {
          // Fail-over to a registry our registration has not reached yet: register there first.
          try {
            await this.post(url, REGISTER_PATH, 'register', { ...this.opts.registration, spare: this.spare });
            const answer = await this.post(url, path, type, body);
            this.preferred = idx;
            this.current = url;
            return answer;
          } catch (again) {
            last = again;
          }
        } else if (code !== undefined && !RETRYABLE.has(code)) throw err;
        this.opts.logger?.debug(
          { registry: url, err: (err as Error).message },
          'registry failed; trying the next',
        );
      }
    }
    throw last instanceof RegistryError ? last : new RegistryError('REG_ERR_UNREACHABLE', String(last));
  }

  private async post(url: string, path: string, type: RequestType, body: unknown): Promise<unknown> {
    const { id, privateKey } = this.opts.self;
    const community = this.opts.registration.community;
    // Reads go with this registry's session key (cheap to check); everything else is signed.
    const macKey = type === 'lookup' || type === 'directory' ? this.sessionKeys.get(url) : undefined;
    const sealed = macKey
      ? macRequest(id, community, type, body, macKey)
      : sealRequest(id, community, type, body, privateKey);
    let res: Response;
    try {
      res = await fetch(url + path, {
        method: 'POST',
        headers: this.trusted.length > 0 ? { ...sealed.headers, [WANT_SIGNED_HEADER]: '1' } : sealed.headers,
        body: sealed.bytes,
        signal: AbortSignal.timeout(this.opts.timeoutMs ?? 3_000),
      });
    } catch (err) {
      throw new RegistryError('REG_ERR_UNREACHABLE', `${url}: ${(err as Error).message}`, { cause: err });
    }
    const bytes = Buffer.from(await res.arrayBuffer());
    if (!res.ok) {
      let e: { code?: unknown; message?: unknown } | undefined;
      try {
        e = (parseJson(bytes) as { error?: typeof e }).error;
      } catch {
        e = undefined;
      }
      const code = isRegistryErrorCode(e?.code) ? e.code : 'REG_ERR_REMOTE';
      throw new RegistryError('REG_ERR_REMOTE', `${url}: ${code}: ${String(e?.message ?? res.status)}`, {
        status: res.status,
        remote: code,
      });
    }
    const headers = Object.fromEntries(res.headers);
    if (this.trusted.length > 0 && !this.trusted.some((k) => signedBy(bytes, headers, k)))
      throw new RegistryError(
        'REG_ERR_BAD_REPLY',
        `${url}: answer not signed by a trusted registry (${String(headers[SENDER_HEADER])})`,
      );
    const answer = parseJson(bytes) as { re?: unknown; session_key?: unknown };
    if (answer.re !== sealed.nonce)
      throw new RegistryError('REG_ERR_BAD_REPLY', `${url}: answer not bound to the request`);
    if (type === 'register' && typeof answer.session_key === 'string')
      this.sessionKeys.set(url, Buffer.from(answer.session_key, 'base64url'));
    return answer;
  }
}

/** Remote codes worth trying another registry for. */
const RETRYABLE = new Set<string>([
  'REG_ERR_INTERNAL',
  'REG_ERR_NONCE_FLOOD',
  'REG_ERR_REMOTE',
  'REG_ERR_STORE',
  'REG_ERR_UNKNOWN_SENDER',
  'REG_ERR_STALE_TIMESTAMP',
]);
