// The token ledger (src/registry/ledger, wip/ledger) inside the registry: one Ledger per
// flood-insurance community, its records replicated through the mesh as kind 'ledger', and the
// member endpoints: submit a record (receipt, release), admit a spend (the rescuer's question
// before it accepts an SOS), read a balance.
import type { Logger } from 'pino';
import { z } from 'zod';
import { memberIdSchema } from '../../rescue-protocol/messages.js';
import type { Directory } from './directory.js';
import { memberKey } from './directory.js';
import { RegistryError } from './errors.js';
import { Ledger, LedgerError, parseRecord, recordId } from './ledger/index.js';
import { LEDGER_BALANCE_PATH, LEDGER_SPEND_PATH, LEDGER_SUBMIT_PATH } from './messages.js';
import type { RecordKind, RegistryRecord } from './records.js';
import type { SignedRoute } from './server.js';
import { describeIssues } from './signed.js';
import type { RegistryService } from './service.js';
import type { RegistryStore } from './store.js';
import type { CommunityConfig } from '../config/schema.js';

const community = z.string().min(1).max(63);
const submitSchema = z.object({ community, record: z.unknown() }).strict();
const spendSchema = z.object({ community, spend: z.unknown() }).strict();
const balanceSchema = z.object({ community, account: memberIdSchema }).strict();
const payloadSchema = z.object({ community, record: z.unknown() }).strict();

/** One Ledger per flood-insurance community, fed by the store's 'ledger' records. */
export class RegistryLedgers {
  private readonly ledgers = new Map<string, Ledger>();
  private readonly log: Logger | undefined;

  constructor(
    communities: readonly CommunityConfig[],
    store: RegistryStore,
    directory: Directory,
    logger?: Logger,
  ) {
    this.log = logger;
    for (const c of communities) {
      if (c.type !== 'flood-insurance') continue;
      const policy = c.policy;
      this.ledgers.set(
        c.name,
        new Ledger({
          community: c.name,
          policy,
          // A member's key: its registration's (live or lapsed but not purged), if admitted.
          keys: {
            keyOf: (member) => {
              const reg = store.get('member', memberKey(c.name, member))?.payload as
                { public_key?: string } | undefined;
              const key = reg?.public_key;
              return key !== undefined && directory.isAdmitted(c.name, key) ? key : undefined;
            },
          },
        }),
      );
    }
  }

  get(name: string): Ledger {
    const l = this.ledgers.get(name);
    if (!l)
      throw new RegistryError(
        'REG_ERR_BAD_REQUEST',
        `community ${name} has no token ledger (not flood-insurance)`,
      );
    return l;
  }

  /**
   * Kind 'ledger': payload { community, record }. Records from peers were verified by the
   * registry that accepted them (registries trust each other, as for members), so they are added
   * trusted: every registry then counts the same set, whatever order the records arrive in.
   */
  readonly kind: RecordKind = {
    validate: (rec) => {
      const p = payloadSchema.safeParse(rec.payload);
      if (!p.success) throw new Error(describeIssues(p.error.issues));
      const record = parseRecord(p.data.record);
      if (rec.key !== `${p.data.community}/${recordId(record)}`)
        throw new Error('key does not match the record');
    },
    applied: (rec: RegistryRecord) => {
      const p = rec.payload as { community: string; record: unknown };
      const ledger = this.ledgers.get(p.community);
      if (!ledger) return;
      try {
        ledger.add(p.record, { trusted: true });
      } catch (err) {
        this.log?.warn({ err: (err as Error).message, key: rec.key }, 'ledger record not applied');
      }
    },
  };

  routes(svc: RegistryService): Record<string, SignedRoute> {
    const to = (t: string): boolean => this.ledgers.has(t);
    const parse = <T>(schema: z.ZodType<T>, v: unknown): T => {
      const r = schema.safeParse(v);
      if (!r.success) throw new RegistryError('REG_ERR_BAD_REQUEST', describeIssues(r.error.issues));
      return r.data;
    };
    const ledgerCall = <T>(fn: () => T): T => {
      try {
        return fn();
      } catch (err) {
        if (err instanceof LedgerError)
          throw new RegistryError('REG_ERR_LEDGER', `${err.code}: ${err.message}`);
        throw err;
      }
    };
    const replicate = (name: string, record: unknown): void => {
      const id = recordId(parseRecord(record));
      svc.update('ledger', `${name}/${id}`, { community: name, record });
    };
    return {
      [LEDGER_SUBMIT_PATH]: {
        type: 'ledger-submit',
        to,
        keyOf: (env) => svc.memberKey(env.to, env.from),
        handle: (env) => {
          const b = parse(submitSchema, env.body);
          if (b.community !== env.to)
            throw new RegistryError('REG_ERR_BAD_REQUEST', 'community differs from "to"');
          const ledger = this.get(b.community);
          const r = ledgerCall(() => ledger.add(b.record));
          if (r.added) replicate(b.community, b.record);
          return { id: r.id, added: r.added };
        },
      },
      [LEDGER_SPEND_PATH]: {
        type: 'ledger-spend',
        to,
        keyOf: (env) => svc.memberKey(env.to, env.from),
        handle: (env) => {
          const b = parse(spendSchema, env.body);
          if (b.community !== env.to)
            throw new RegistryError('REG_ERR_BAD_REQUEST', 'community differs from "to"');
          const ledger = this.get(b.community);
          // The asking rescuer is the payee: nobody can admit a spend meant for someone else.
          const verdict = ledgerCall(() => ledger.admitSpend(b.spend, Date.now(), env.from));
          if (verdict.ok) replicate(b.community, b.spend);
          return { verdict };
        },
      },
      [LEDGER_BALANCE_PATH]: {
        type: 'ledger-balance',
        to,
        keyOf: (env) => svc.memberKey(env.to, env.from),
        handle: (env) => {
          const b = parse(balanceSchema, env.body);
          if (b.community !== env.to)
            throw new RegistryError('REG_ERR_BAD_REQUEST', 'community differs from "to"');
          return { balance: this.get(b.community).balance(b.account, Date.now()) };
        },
      },
    };
  }
}
