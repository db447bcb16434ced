// A tiny static file server (node:http) for the example site: the "existing web server"
// that `dotslash example` (npm start) puts the daemon in front of.
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, join, normalize, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.txt': 'text/plain; charset=utf-8',
  '.json': 'application/json',
};

export interface StaticSite {
  readonly server: Server;
  readonly address: AddressInfo;
  close(): Promise<void>;
}

async function serveFile(file: string, headOnly: boolean, res: ServerResponse): Promise<void> {
  const st = await stat(file).catch(() => null);
  if (st === null || !st.isFile()) {
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
    return;
  }
  res.writeHead(200, {
    'content-type': TYPES[extname(file)] ?? 'application/octet-stream',
    'content-length': st.size,
    'last-modified': st.mtime.toUTCString(),
    'cache-control': 'public, max-age=60',
  });
  if (headOnly) res.end();
  else
    createReadStream(file)
      .on('error', () => res.destroy())
      .pipe(res);
}

/** Where the site's files are when running from the source tree (the CLI passes its own path). */
export const DEFAULT_ROOT = fileURLToPath(new URL('./public', import.meta.url));

/** Serve `root` on host:port (port 0 = any free port). GET and HEAD only; no directory listing. */
export async function startStaticSite(
  opts: { host?: string; port?: number; root?: string } = {},
): Promise<StaticSite> {
  const root = normalize(opts.root ?? DEFAULT_ROOT);
  const server = createServer((req, res) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' }).end('method not allowed\n');
      return;
    }
    let pathname: string;
    try {
      pathname = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    } catch {
      res.writeHead(400, { 'content-type': 'text/plain' }).end('bad request\n');
      return;
    }
    if (pathname.endsWith('/')) pathname += 'index.html';
    const file = normalize(join(root, pathname));
    // normalize() resolves "..": anything that ends up outside root is refused.
    if (!file.startsWith(root + sep) || pathname.includes('\0')) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    void serveFile(file, req.method === 'HEAD', res);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 8081, opts.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    server,
    address: server.address() as AddressInfo,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
