// The proxy bench's fixed-rate load generators (bench/proxy/loadgen.c, the default, and
// loadgen.js): a p99 is only as good as the generator that measured it, so each must frame
// Content-Length and chunked responses, count non-2xx answers and broken connections, keep to
// its schedule, and refuse bad arguments with a message. Real sockets, a real node:http server.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO } from './helpers.js';

interface Command {
  file: string;
  args: string[];
  text: string;
}
// A plain-JS bench module: imported by URL so the type checker does not look for its types.
const { loadgenCommand } = (await import(pathToFileURL(join(REPO, 'bench/proxy/loadgens.js')).href)) as {
  loadgenCommand(kind: string): Command;
};

interface Result {
  targetRate: number;
  achievedRate: number;
  completed: number;
  expected: number;
  errors: number;
  non2xx: number;
  unanswered: number;
  bytes: number;
  generatorCpuUs: number;
  latencyMs: {
    p50: number | null;
    p90: number | null;
    p99: number | null;
    p999: number | null;
    max: number | null;
  };
}

const BODY = Buffer.alloc(1000, 'x');
let server: Server;
let base: string;

beforeAll(async () => {
  server = createServer((req, res) => {
    if (req.url === '/length') {
      res.writeHead(200, { 'content-length': String(BODY.length) });
      res.end(BODY);
    } else if (req.url === '/chunked') {
      // No Content-Length: node:http frames it chunked, here in three chunks plus a trailer.
      res.writeHead(200, { trailer: 'x-sum' });
      res.write(BODY.subarray(0, 10));
      res.write(BODY.subarray(10, 600));
      res.addTrailers({ 'x-sum': 'done' });
      res.end(BODY.subarray(600));
    } else if (req.url === '/empty') {
      res.writeHead(204);
      res.end();
    } else if (req.url === '/cut') {
      // A head promising 1000 bytes, 10 of them, then the connection is gone.
      res.writeHead(200, { 'content-length': String(BODY.length) });
      res.write(BODY.subarray(0, 10), () => res.socket?.destroy());
    } else {
      res.writeHead(404, { 'content-length': '9' });
      res.end('not found');
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

function run(cmd: Command, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(cmd.file, [...cmd.args, ...args], { timeout: 30_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

async function load(cmd: Command, path: string, extra: string[] = []): Promise<Result> {
  // 200 req/s for 0.1 s of warm-up and 0.5 s measured: 100 measured requests.
  const args = ['--url', `${base}${path}`, '--rate', '200', '--warmup', '0.1', '--duration', '0.5'];
  const { code, stdout, stderr } = await run(cmd, [...args, '--connections', '4', ...extra]);
  expect(code, stderr).toBe(0);
  return JSON.parse(stdout.trim().split('\n').pop()!) as Result;
}

for (const kind of ['c', 'node']) {
  describe(`bench/proxy load generator: ${kind === 'c' ? 'loadgen.c' : 'loadgen.js'}`, () => {
    let cmd: Command;
    beforeAll(() => {
      cmd = loadgenCommand(kind); // builds loadgen.c with cc into bench/proxy/tmp
    }, 60_000);

    it('frames Content-Length responses and keeps to its schedule', async () => {
      const r = await load(cmd, '/length');
      expect(r).toMatchObject({ expected: 100, completed: 100, errors: 0, non2xx: 0, unanswered: 0 });
      expect(r.achievedRate).toBe(200);
      // Every measured response's body, plus its head.
      expect(r.bytes).toBeGreaterThan(100 * BODY.length);
      expect(r.bytes).toBeLessThan(100 * (BODY.length + 300));
      const l = r.latencyMs;
      expect(l.p50).toBeGreaterThan(0);
      expect(l.p50!).toBeLessThanOrEqual(l.p99!);
      expect(l.p99!).toBeLessThanOrEqual(l.max!);
      // Its own CPU per request sent: more than nothing, far less than the 5 ms between requests.
      expect(r.generatorCpuUs).toBeGreaterThan(0);
      expect(r.generatorCpuUs).toBeLessThan(5000);
    });

    it('frames chunked responses with trailers, and bodiless ones', async () => {
      expect(await load(cmd, '/chunked')).toMatchObject({ completed: 100, errors: 0, non2xx: 0 });
      expect(await load(cmd, '/empty')).toMatchObject({ completed: 100, errors: 0, non2xx: 0 });
    });

    it('counts non-2xx answers and connections cut mid-response', async () => {
      expect(await load(cmd, '/missing')).toMatchObject({ completed: 100, errors: 0, non2xx: 100 });
      const cut = await load(cmd, '/cut');
      expect(cut.completed).toBe(0);
      expect(cut.errors).toBe(100);
    });

    it('refuses bad arguments with a message naming them', async () => {
      const bad = await run(cmd, ['--url', `${base}/length`, '--rate', 'abc']);
      expect(bad.code).toBe(2);
      if (kind === 'c') {
        expect(bad.stderr).toMatch(/--rate must be a number/);
        const url = await run(cmd, ['--url', 'ftp://127.0.0.1/', '--rate', '10']);
        expect(url.code).toBe(2);
        expect(url.stderr).toMatch(/--url must start with http:\/\//);
        const many = await run(cmd, ['--url', `${base}/length`, '--rate', '10', '--connections', '1e12']);
        expect(many.code).toBe(2);
        expect(many.stderr).toMatch(/--connections must be at most 65535/);
        const refused = await run(cmd, ['--url', 'http://127.0.0.1:1/', '--rate', '10', '--duration', '0.1']);
        expect(refused.code).toBe(1);
        expect(refused.stderr).toMatch(/connect to 127\.0\.0\.1:1 failed/);
      }
    });

    if (kind === 'c') {
      it('--trace writes each measured request: its scheduled time and latency', async () => {
        const file = join(tmpdir(), `loadgen-trace-${process.pid}.txt`);
        const r = await load(cmd, '/length', ['--trace', file]);
        const lines = readFileSync(file, 'utf8').trim().split('\n');
        expect(lines).toHaveLength(r.completed);
        const [at, ms] = lines[0]!.split(' ').map(Number);
        // The first measured request is scheduled just after the 0.1 s warm-up.
        expect(at).toBeGreaterThanOrEqual(100);
        expect(at).toBeLessThan(110);
        expect(ms).toBeGreaterThan(0);
      });
    }
  });
}
