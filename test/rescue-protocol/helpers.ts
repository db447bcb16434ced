// Test helpers: members with real key pairs and control servers on 127.0.0.1:0, and raw POSTs of crafted bytes.
import type { KeyObject } from 'node:crypto';
import { request } from 'undici';
import {
  ControlClient,
  ControlServer,
  generateKeyPair,
  parsePrivateKey,
  parsePublicKey,
  type MessageHandler,
  type Peer,
  type ReplyBody,
  type VerifiedMessage,
} from '../../rescue-protocol/index.js';

export interface TestMember {
  readonly id: string;
  readonly publicKey: string;
  readonly privateKey: KeyObject;
  readonly server: ControlServer;
  readonly client: ControlClient;
  /** Every message the handler saw, in order. */
  readonly received: VerifiedMessage[];
  /** This member as a peer of others. */
  peer(): Peer;
}

/** A default handler that answers each request type with a valid success body. */
export const echoHandler: MessageHandler = (msg): ReplyBody => {
  switch (msg.type) {
    case 'SOS':
      return { accepted: true, session: 's-1', vhost: `vh1.${msg.to}`, rate: 200, lease_ms: 30_000 };
    case 'KEEPALIVE':
      return { ok: true, session: msg.body.session, lease_ms: 30_000 };
    default:
      return { ok: true };
  }
};

/**
 * Creates members that all know each other's keys (peers map shared and live, so a test can
 * remove a key). `handler` per member id, default echoHandler.
 */
export async function startMembers(
  ids: string[],
  opts: { handlers?: Record<string, MessageHandler>; skewMs?: number; maxBodyBytes?: number } = {},
): Promise<{ members: Record<string, TestMember>; keys: Map<string, KeyObject>; close(): Promise<void> }> {
  const keys = new Map<string, KeyObject>();
  const members: Record<string, TestMember> = {};
  for (const id of ids) {
    const pair = generateKeyPair();
    keys.set(id, parsePublicKey(pair.publicKey));
    const privateKey = parsePrivateKey(pair.privateKeyPem);
    const received: VerifiedMessage[] = [];
    const handler = opts.handlers?.[id] ?? echoHandler;
    const server = new ControlServer({
      listen: '127.0.0.1:0',
      self: { id, privateKey },
      peers: keys,
      skewMs: opts.skewMs,
      maxBodyBytes: opts.maxBodyBytes,
      onMessage: (msg) => {
        received.push(msg);
        return handler(msg);
      },
    });
    await server.listen();
    const client = new ControlClient({ self: { id, privateKey }, timeoutMs: 3_000 });
    members[id] = {
      id,
      publicKey: pair.publicKey,
      privateKey,
      server,
      client,
      received,
      peer: () => ({ id, control_url: server.url, public_key: pair.publicKey }),
    };
  }
  return {
    members,
    keys,
    async close() {
      await Promise.all(Object.values(members).flatMap((m) => [m.server.close(), m.client.close()]));
    },
  };
}

export interface RawAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json: unknown;
}

/** POSTs exactly `bytes` with `headers` (a raw, possibly hostile, peer). */
export async function rawPost(
  url: string,
  bytes: Buffer | string,
  headers: Record<string, string>,
  method = 'POST',
  path = '/v1/rescue',
): Promise<RawAnswer> {
  const res = await request(url + path, {
    method: method as 'POST',
    headers,
    body: method === 'GET' ? undefined : bytes,
  });
  const text = await res.body.text();
  let json: unknown = null;
  try {
    json = JSON.parse(text);
  } catch {
    json = null;
  }
  return { status: res.statusCode, headers: res.headers, text, json };
}

/** The error code of a plain `{error}` body or of a signed ERROR envelope. */
export function errorCodeOf(answer: RawAnswer): string | undefined {
  const j = answer.json as {
    error?: { code?: string };
    type?: string;
    body?: { error?: { code?: string } };
  } | null;
  return j?.error?.code ?? j?.body?.error?.code;
}
