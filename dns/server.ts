// The authoritative server: one UDP socket and one TCP listener on the same address and port,
// answering from the current zone snapshot (swapped whole by setZones). UDP answers beyond the
// client's size get TC and the client retries over TCP (RFC 7766), where connections are
// persistent and pipelined, with an idle timeout, a connection cap and a 65535-byte frame bound.
import { createSocket } from 'node:dgram';
import type { RemoteInfo, Socket as UdpSocket } from 'node:dgram';
import { EventEmitter } from 'node:events';
import { lookup } from 'node:dns';
import type { LookupOneOptions } from 'node:dns';
import { createServer, isIP, isIPv6 } from 'node:net';
import type { AddressInfo, Server, Socket } from 'node:net';
import { answerQuery } from './answer.js';
import type { AnswerOptions, Outcome } from './answer.js';
import { DnsError } from './errors.js';
import type { ZoneSnapshot } from './snapshot.js';

export interface DnsServerOptions {
  /** "HOST:PORT" ("[v6]:PORT"); port 0 picks a free port, the same for UDP and TCP. */
  readonly listen: string;
  readonly zones: ZoneSnapshot;
  /** Largest UDP answer, whatever the client advertises (EDNS0); default 1232 (DNS flag day 2020). */
  readonly maxUdpSize?: number;
  /** A TCP connection that completes no query for this long is closed; default 10 s. */
  readonly tcpIdleMs?: number;
  /** Most concurrent TCP connections; more are refused (closed); default 256. */
  readonly tcpMaxConnections?: number;
}

/** Cumulative counters (the data path reports, the control plane reads). */
export interface DnsStats {
  udpQueries: number;
  tcpQueries: number;
  answered: number;
  nxdomain: number;
  nodata: number;
  refused: number;
  formerr: number;
  notimp: number;
  badvers: number;
  dropped: number;
  truncated: number;
  tcpConnections: number;
  tcpRejected: number;
}

export interface DnsAddresses {
  readonly udp: AddressInfo;
  readonly tcp: AddressInfo;
}

/** Answers per TCP connection waiting to be written before the connection stops reading (backpressure). */
const TCP_MAX_PENDING_BYTES = 256 * 1024;

/** Emits 'error' (Error) for socket failures after start, if anyone listens; never throws from the data path. */
export class DnsServer extends EventEmitter {
  #zones: ZoneSnapshot;
  readonly #listen: string;
  readonly #answerOpts: AnswerOptions;
  readonly #idleMs: number;
  readonly #maxConnections: number;
  #udp: UdpSocket | undefined;
  /** The family of the reply being sent (see #lookup); 0 outside a reply. */
  #replyFamily = 0;
  #tcp: Server | undefined;
  readonly #sockets = new Set<Socket>();
  readonly #stats: DnsStats = {
    udpQueries: 0,
    tcpQueries: 0,
    answered: 0,
    nxdomain: 0,
    nodata: 0,
    refused: 0,
    formerr: 0,
    notimp: 0,
    badvers: 0,
    dropped: 0,
    truncated: 0,
    tcpConnections: 0,
    tcpRejected: 0,
  };

  constructor(opts: DnsServerOptions) {
    super();
    this.#zones = opts.zones;
    this.#listen = opts.listen;
    this.#answerOpts = { maxUdpSize: Math.max(512, Math.min(opts.maxUdpSize ?? 1232, 65535)) };
    this.#idleMs = opts.tcpIdleMs ?? 10_000;
    this.#maxConnections = opts.tcpMaxConnections ?? 256;
  }

  /** The snapshot being served. */
  get zones(): ZoneSnapshot {
    return this.#zones;
  }

  /** Swap the zone data atomically: the next packet is answered from `zones`. */
  setZones(zones: ZoneSnapshot): void {
    this.#zones = zones;
  }

  stats(): DnsStats {
    return { ...this.#stats };
  }

  /** Bind UDP then TCP on the same port. Rejects with DNS_ERR_LISTEN. */
  async listen(): Promise<DnsAddresses> {
    const { host, port } = splitHostPort(this.#listen);
    // With port 0 the UDP port may be taken for TCP by someone else: try a few free ports.
    for (let attempt = 0; ; attempt++) {
      const udp = createSocket({
        type: isIPv6(host) ? 'udp6' : 'udp4',
        reuseAddr: false,
        lookup: (address, options, callback) => this.#lookup(address, options, callback),
      });
      try {
        await new Promise<void>((resolve, reject) => {
          udp.once('error', reject);
          udp.bind(port, host, () => {
            udp.off('error', reject);
            resolve();
          });
        });
      } catch (err) {
        udp.close();
        throw new DnsError(
          'DNS_ERR_LISTEN',
          `cannot bind UDP ${this.#listen}: ${(err as Error).message}`,
          [],
          { cause: err },
        );
      }
      const udpAddr = udp.address();
      const tcp = createServer({ noDelay: true }, (s) => this.#onConnection(s));
      tcp.maxConnections = this.#maxConnections;
      tcp.on('drop', () => this.#stats.tcpRejected++);
      try {
        await new Promise<void>((resolve, reject) => {
          tcp.once('error', reject);
          tcp.listen({ port: udpAddr.port, host, exclusive: true }, () => {
            tcp.off('error', reject);
            resolve();
          });
        });
      } catch (err) {
        udp.close();
        if (port === 0 && attempt < 5 && (err as NodeJS.ErrnoException).code === 'EADDRINUSE') continue;
        throw new DnsError(
          'DNS_ERR_LISTEN',
          `cannot listen on TCP ${host}:${udpAddr.port}: ${(err as Error).message}`,
          [],
          {
            cause: err,
          },
        );
      }
      udp.on('message', (msg, rinfo) => this.#onDatagram(msg, rinfo));
      udp.on('error', (err) => this.#fail(err));
      tcp.on('error', (err) => this.#fail(err));
      this.#udp = udp;
      this.#tcp = tcp;
      return { udp: udpAddr, tcp: tcp.address() as AddressInfo };
    }
  }

  /** Stop both listeners and close open TCP connections. Idempotent. */
  async close(): Promise<void> {
    const udp = this.#udp;
    const tcp = this.#tcp;
    this.#udp = undefined;
    this.#tcp = undefined;
    for (const s of this.#sockets) s.destroy();
    this.#sockets.clear();
    await Promise.all([
      udp && new Promise<void>((r) => udp.close(() => r())),
      tcp && new Promise<void>((r) => tcp.close(() => r())),
    ]);
  }

  #count(outcome: Outcome, truncated: boolean): void {
    this.#stats[outcome]++;
    if (truncated) this.#stats.truncated++;
  }

  #onDatagram(msg: Buffer, rinfo: RemoteInfo): void {
    this.#stats.udpQueries++;
    const r = answerQuery(msg, this.#zones, true, this.#answerOpts);
    this.#count(r.outcome, r.truncated);
    if (r.packet === undefined) return;
    // Source port 0 cannot be answered (send() throws on it); a forged packet must not crash us.
    if (rinfo.port === 0) return;
    try {
      // No callback: a failed send is dropped silently, as a lost datagram would be.
      this.#replyFamily = rinfo.family === 'IPv6' ? 6 : 4;
      this.#udp?.send(r.packet, rinfo.port, rinfo.address);
    } catch (err) {
      this.#fail(err as Error);
    } finally {
      this.#replyFamily = 0;
    }
  }

  /**
   * send() resolves the destination through the socket's lookup even when it is an address;
   * the default defers each reply by a tick. A reply goes to the literal address the query came
   * from, whose family #onDatagram sets here, so it passes straight through. Anything else (a
   * host name in dns.listen, at bind) goes to dns.lookup.
   */
  #lookup(
    address: string,
    options: LookupOneOptions | number,
    callback: (err: NodeJS.ErrnoException | null, address: string, family: number) => void,
  ): void {
    if (this.#replyFamily !== 0) return callback(null, address, this.#replyFamily);
    const literal = isIP(address);
    if (literal !== 0) return callback(null, address, literal);
    // Node passes the family as a number here.
    const family = typeof options === 'number' ? options : (options.family ?? 0);
    lookup(address, { family: family === 6 ? 6 : family === 4 ? 4 : 0 }, callback);
  }

  /** Socket trouble is reported, never thrown: an 'error' event with no listener would end the process. */
  #fail(err: Error): void {
    if (this.listenerCount('error') > 0) this.emit('error', err);
  }

  #onConnection(socket: Socket): void {
    this.#stats.tcpConnections++;
    this.#sockets.add(socket);
    let idle: NodeJS.Timeout;
    // The idle timer restarts on a complete query, not on any byte: a frame trickled in slowly
    // still ends the connection after tcpIdleMs.
    const restartIdle = (): void => {
      clearTimeout(idle);
      idle = setTimeout(() => socket.destroy(), this.#idleMs);
      idle.unref();
    };
    restartIdle();
    const answer = (msg: Buffer): void => {
      this.#stats.tcpQueries++;
      restartIdle();
      const r = answerQuery(msg, this.#zones, false, this.#answerOpts);
      this.#count(r.outcome, r.truncated);
      if (r.packet === undefined) return;
      const prefix = Buffer.allocUnsafe(2);
      prefix.writeUInt16BE(r.packet.length);
      socket.cork();
      socket.write(prefix);
      socket.write(r.packet);
      socket.uncork();
    };
    // Framing state: a length prefix may arrive split; a frame split over chunks is copied into
    // a buffer of its announced size (<= 65535), so a trickled frame costs O(its size), never
    // a re-concatenation per chunk.
    const prefix = Buffer.alloc(2);
    let prefixHave = 0;
    let frame: Buffer | undefined;
    let filled = 0;
    socket.on('data', (chunk: Buffer) => {
      let i = 0;
      while (i < chunk.length) {
        if (frame === undefined) {
          let length: number;
          if (prefixHave === 0 && chunk.length - i >= 2) {
            length = chunk.readUInt16BE(i);
            i += 2;
          } else {
            prefix[prefixHave++] = chunk[i++]!;
            if (prefixHave < 2) continue;
            prefixHave = 0;
            length = prefix.readUInt16BE(0);
          }
          if (chunk.length - i >= length) {
            answer(chunk.subarray(i, i + length)); // whole frame in this chunk: no copy
            i += length;
            continue;
          }
          frame = Buffer.allocUnsafe(length);
          filled = 0;
        }
        const n = Math.min(frame.length - filled, chunk.length - i);
        chunk.copy(frame, filled, i, i + n);
        filled += n;
        i += n;
        if (filled === frame.length) {
          const msg = frame;
          frame = undefined;
          answer(msg);
        }
      }
      if (socket.writableLength > TCP_MAX_PENDING_BYTES) {
        socket.pause();
        socket.once('drain', () => socket.resume());
      }
    });
    socket.on('error', () => socket.destroy());
    socket.on('close', () => {
      clearTimeout(idle);
      this.#sockets.delete(socket);
    });
  }
}

function splitHostPort(hostPort: string): { host: string; port: number } {
  const colon = hostPort.lastIndexOf(':');
  let host = hostPort.slice(0, colon);
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  return { host, port: Number(hostPort.slice(colon + 1)) };
}
