// Which fixed-rate load generator a bench runs: loadgen.c (built here with the C compiler on
// first use) or loadgen.js. Both take the same arguments and print the same JSON line.
//
// loadgen.c is the default: it sends each request at its own scheduled time instead of in 1 ms
// bursts (bench/proxy/README.md, "A load generator in C"). loadgen.js stays for machines without
// a C compiler and to compare the two; each reports its own CPU per request.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const LOADGEN_KINDS = ['c', 'node'];

/** Compiles loadgen.c into bench/proxy/tmp/ unless the binary there is newer than the source. */
function buildC() {
  const source = path.join(here, 'loadgen.c');
  const binary = path.join(here, 'tmp', 'loadgen');
  let fresh = false;
  try {
    fresh = fs.statSync(binary).mtimeMs >= fs.statSync(source).mtimeMs;
  } catch {
    // Not built yet.
  }
  if (!fresh) {
    fs.mkdirSync(path.dirname(binary), { recursive: true });
    const cc = process.env.CC || 'cc';
    try {
      execFileSync(cc, ['-O2', '-Wall', '-o', binary, source, '-lm'], { stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (err) {
      const why = err.stderr?.toString().trim() || err.message;
      throw new Error(
        `could not build bench/proxy/loadgen.c with ${cc} (${why}); install a C compiler ` +
          '(apt-get install -y gcc) or pass --loadgen node',
      );
    }
  }
  return binary;
}

/**
 * The command for `kind` ('c' or 'node'): `{ file, args, text }`, where the generator's own
 * arguments go after `args`, and `text` names it in reports.
 */
export function loadgenCommand(kind) {
  if (kind === 'c') return { file: buildC(), args: [], text: 'bench/proxy/loadgen.c' };
  if (kind === 'node')
    return { file: process.execPath, args: [path.join(here, 'loadgen.js')], text: 'bench/proxy/loadgen.js' };
  throw new Error(`--loadgen must be one of ${LOADGEN_KINDS.join(', ')}, got "${kind}"`);
}

/** loadgenCommand for a bench's --loadgen option, or exit 2 with the reason (no stack trace). */
export function loadgenOrExit(kind) {
  try {
    return loadgenCommand(kind);
  } catch (err) {
    console.error(err.message);
    process.exit(2);
  }
}

// `node bench/proxy/loadgens.js KIND`: builds if needed and prints the command, one argv word per
// line (for the shell experiments, experiments/upstream.sh).
if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const c = loadgenOrExit(process.argv[2] ?? 'c');
  console.log([c.file, ...c.args].join('\n'));
}
