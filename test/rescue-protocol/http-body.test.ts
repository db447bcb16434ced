// readCapped over real sockets: whole bodies (one chunk or many), the cap, and a peer that goes
// away mid-body (the promise must settle with an error, not hang).
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { readCapped } from '../../rescue-protocol/http-body.js';

let server: Server | null = null;
afterEach(() => {
  server?.closeAllConnections();
  server?.close();
  server = null;
});

/** A server that hands each request's readCapped outcome to `seen`; returns its port. */
async function serve(cap: number, seen: (r: { body?: Buffer | null; err?: Error }) => void): Promise<number> {
  server = createServer((req: IncomingMessage, res) => {
    readCapped(req, cap).then(
      (body) => {
        seen({ body });
        res.end('ok');
      },
      (err: Error) => seen({ err }),
    );
  });
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
  return (server!.address() as AddressInfo).port;
}

function send(port: number, parts: string[], end = true): Promise<void> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1', async () => {
      for (const p of parts) {
        s.write(p);
        await new Promise((r) => setTimeout(r, 20));
      }
      if (end) s.once('data', () => s.destroy());
      else s.destroy();
      resolve();
    });
    s.on('error', () => {});
  });
}

const head = (n: number): string => `POST / HTTP/1.1\r\nhost: x\r\ncontent-length: ${n}\r\n\r\n`;

describe('readCapped', () => {
  it('returns a body sent in one chunk and one sent in several', async () => {
    const got: Buffer[] = [];
    const port = await serve(1024, (r) => got.push(r.body!));
    await send(port, [head(5) + 'hello']);
    await send(port, [head(11), 'hello', ' ', 'world']);
    await new Promise((r) => setTimeout(r, 100));
    expect(got.map((b) => b.toString())).toEqual(['hello', 'hello world']);
  });

  it('gives null past the cap', async () => {
    const got: (Buffer | null | undefined)[] = [];
    const port = await serve(8, (r) => got.push(r.body));
    await send(port, [head(20), 'x'.repeat(10), 'y'.repeat(10)]);
    await new Promise((r) => setTimeout(r, 100));
    expect(got).toEqual([null]);
  });

  it('rejects when the peer goes away mid-body', async () => {
    const errs: Error[] = [];
    const port = await serve(1024, (r) => r.err && errs.push(r.err));
    await send(port, [head(100), 'only ten b'], false);
    await new Promise((r) => setTimeout(r, 100));
    expect(errs.map((e) => e.message)).toEqual([
      expect.stringMatching(/closed before the body ended|aborted/) as unknown as string,
    ]);
  });
});
