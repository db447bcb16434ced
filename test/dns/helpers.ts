// Shared by the dns tests: a test zone, a server on 127.0.0.1 (free port), the real `dig`, and
// raw UDP/TCP exchanges for packets dig would never send.
import { execFile, execFileSync } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { connect } from 'node:net';
import type { Socket } from 'node:net';
import { promisify } from 'node:util';
import { DnsServer, buildZoneSnapshot } from '../../dns/index.js';
import type { DnsAddresses, DynamicRecordSet, ZoneConfig } from '../../dns/index.js';

const run = promisify(execFile);

/** The test zone: every record type, a CNAME chain, a long TXT, an SRV set, an answer too big for UDP. */
export const TEST_ZONE: ZoneConfig = {
  name: 'origin.test',
  soa: {
    mname: 'ns1.origin.test',
    rname: 'hostmaster.origin.test',
    serial: 2026112301,
    refresh: 3600,
    retry: 600,
    expire: 604800,
    minimum: 30,
    ttl: 3600,
  },
  ns: ['ns1.origin.test', 'ns2.origin.test'],
  records: [
    { name: 'ns1', type: 'A', values: ['127.0.0.53'] },
    { name: 'ns2', type: 'A', values: ['127.0.0.54'] },
    { name: 'www', type: 'A', ttl: 300, values: ['127.0.0.2'] },
    { name: 'www', type: 'AAAA', values: ['::1', '2001:db8::2'] },
    { name: 'rr', type: 'A', ttl: 60, values: ['127.0.1.1', '127.0.1.2', '127.0.1.3'] },
    { name: 'alias', type: 'CNAME', values: ['alias2.origin.test'] },
    { name: 'alias2', type: 'CNAME', values: ['www.origin.test'] },
    { name: 'dangling', type: 'CNAME', values: ['missing.origin.test'] },
    { name: 'outside', type: 'CNAME', values: ['www.example.net'] },
    { name: 'loop1', type: 'CNAME', values: ['loop2.origin.test'] },
    { name: 'loop2', type: 'CNAME', values: ['loop1.origin.test'] },
    { name: 'txt', type: 'TXT', values: ['x'.repeat(300), ['first string', 'second string']] },
    {
      name: '_dotslash._tcp',
      type: 'SRV',
      values: ['10 60 9300 reg1.origin.test', '10 20 9301 reg2.origin.test', '20 0 9302 reg3.origin.test'],
    },
    // 40 addresses: 16 + 40 * 16 bytes, over 512 (no EDNS) but under 1232.
    { name: 'big', type: 'A', values: Array.from({ length: 40 }, (_, i) => `127.0.2.${i + 1}`) },
    // 100 addresses: over 1232 too, only TCP carries it.
    { name: 'huge', type: 'A', values: Array.from({ length: 100 }, (_, i) => `127.0.3.${i + 1}`) },
  ],
};

export interface TestServer {
  server: DnsServer;
  addresses: DnsAddresses;
  port: number;
  host: string;
  setDynamic(sets: readonly DynamicRecordSet[]): void;
  close(): Promise<void>;
}

export async function startTestServer(
  opts: {
    dynamic?: readonly DynamicRecordSet[];
    tcpIdleMs?: number;
    tcpMaxConnections?: number;
    host?: string;
  } = {},
): Promise<TestServer> {
  const build = (dynamic: readonly DynamicRecordSet[]) =>
    buildZoneSnapshot([TEST_ZONE], { defaultTtl: 300, dynamic });
  const host = opts.host ?? '127.0.0.1';
  const server = new DnsServer({
    listen: `${host}:0`,
    zones: build(opts.dynamic ?? []),
    ...(opts.tcpIdleMs !== undefined && { tcpIdleMs: opts.tcpIdleMs }),
    ...(opts.tcpMaxConnections !== undefined && { tcpMaxConnections: opts.tcpMaxConnections }),
  });
  const addresses = await server.listen();
  return {
    server,
    addresses,
    port: addresses.udp.port,
    host,
    setDynamic: (sets) => server.setZones(build(sets)),
    close: () => server.close(),
  };
}

/** Fail clearly when a tool the test needs is missing (CI installs it: .ci/run). */
export function requireTool(tool: string, pkg: string): void {
  try {
    execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
  } catch {
    throw new Error(`${tool} is not installed: apt-get install ${pkg} (.ci/run installs it)`);
  }
}

export interface DigResult {
  status: string;
  flags: string[];
  answer: string[];
  authority: string[];
  /** The EDNS line's udp size, when the response carried an OPT record. */
  ednsUdp: number | undefined;
  ednsVersion: number | undefined;
  raw: string;
}

/** Run the real dig against the test server (no recursion, short timeouts) and parse its sections. */
export async function dig(t: { host: string; port: number }, ...args: string[]): Promise<DigResult> {
  const { stdout } = await run('dig', [
    `@${t.host}`,
    '-p',
    String(t.port),
    '+norec',
    '+time=2',
    '+tries=2',
    ...args,
  ]);
  const lines = stdout.split('\n');
  const status = /status: ([A-Z]+)/.exec(stdout)?.[1] ?? '';
  const flags = (/;; flags: ([a-z ]+);/.exec(stdout)?.[1] ?? '').trim().split(/\s+/);
  const section = (title: string): string[] => {
    const start = lines.findIndex((l) => l.startsWith(`;; ${title} SECTION:`));
    if (start < 0) return [];
    const out: string[] = [];
    for (const l of lines.slice(start + 1)) {
      if (l.trim() === '') break;
      out.push(l.split(/\s+/).join(' '));
    }
    return out;
  };
  const edns = /; EDNS: version: (\d+), flags:[^;]*; udp: (\d+)/.exec(stdout);
  return {
    status,
    flags,
    answer: section('ANSWER'),
    authority: section('AUTHORITY'),
    ednsUdp: edns ? Number(edns[2]) : undefined,
    ednsVersion: edns ? Number(edns[1]) : undefined,
    raw: stdout,
  };
}

/** One UDP exchange; resolves undefined when nothing comes back within `timeoutMs`. */
export function udpExchange(
  port: number,
  packet: Buffer,
  timeoutMs = 1000,
  host = '127.0.0.1',
): Promise<Buffer | undefined> {
  return new Promise((resolve) => {
    const s = createSocket('udp4');
    const timer = setTimeout(() => {
      s.close();
      resolve(undefined);
    }, timeoutMs);
    s.on('message', (m) => {
      clearTimeout(timer);
      s.close();
      resolve(m);
    });
    s.send(packet, port, host);
  });
}

/** A persistent TCP connection reading length-prefixed DNS messages. */
export class TcpClient {
  readonly socket: Socket;
  #buf = Buffer.alloc(0);
  #waiters: ((m: Buffer) => void)[] = [];
  #queue: Buffer[] = [];
  closed: Promise<void>;

  private constructor(socket: Socket) {
    this.socket = socket;
    this.closed = new Promise((r) => socket.on('close', () => r()));
    socket.on('error', () => {});
    socket.on('data', (chunk: Buffer) => {
      this.#buf = Buffer.concat([this.#buf, chunk]);
      while (this.#buf.length >= 2 && this.#buf.length >= 2 + this.#buf.readUInt16BE(0)) {
        const len = this.#buf.readUInt16BE(0);
        const msg = this.#buf.subarray(2, 2 + len);
        this.#buf = this.#buf.subarray(2 + len);
        const w = this.#waiters.shift();
        if (w) w(msg);
        else this.#queue.push(msg);
      }
    });
  }

  static open(port: number, host = '127.0.0.1'): Promise<TcpClient> {
    return new Promise((resolve, reject) => {
      const s = connect({ port, host }, () => resolve(new TcpClient(s)));
      s.once('error', reject);
    });
  }

  /** Write raw bytes (a frame, part of one, or garbage). */
  write(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  /** Write one message with its length prefix. */
  send(msg: Buffer): void {
    const p = Buffer.alloc(2);
    p.writeUInt16BE(msg.length);
    this.socket.write(Buffer.concat([p, msg]));
  }

  /** The next response, or undefined after `timeoutMs`. */
  next(timeoutMs = 2000): Promise<Buffer | undefined> {
    const queued = this.#queue.shift();
    if (queued) return Promise.resolve(queued);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((w) => w !== done);
        resolve(undefined);
      }, timeoutMs);
      const done = (m: Buffer): void => {
        clearTimeout(timer);
        resolve(m);
      };
      this.#waiters.push(done);
    });
  }

  close(): void {
    this.socket.destroy();
  }
}

/** A plain query packet (no EDNS) built by hand: id, RD, one question. */
export function query(name: string, type: number, id = 0x1234, opts: { edns?: number } = {}): Buffer {
  const labels = name.split('.').filter((l) => l !== '');
  const parts = [Buffer.from([id >> 8, id & 0xff, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, opts.edns ? 1 : 0])];
  for (const l of labels) parts.push(Buffer.from([l.length]), Buffer.from(l, 'latin1'));
  parts.push(Buffer.from([0, type >> 8, type & 0xff, 0, 1]));
  if (opts.edns) parts.push(Buffer.from([0, 0, 41, opts.edns >> 8, opts.edns & 0xff, 0, 0, 0, 0, 0, 0]));
  return Buffer.concat(parts);
}

export function rcodeOf(response: Buffer): number {
  return response[3]! & 0x0f;
}
