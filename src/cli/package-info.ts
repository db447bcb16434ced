// Finds this package's root directory and version, whether running from src/ (tsx) or dist/.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The directory holding dotslash's package.json, found by walking up from this module. */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'dotslash') {
      return dir;
    }
    const up = dirname(dir);
    if (up === dir) throw new Error('cannot find the dotslash package.json above ' + import.meta.url);
    dir = up;
  }
}

/** The version field of package.json (what `dotslash --version` prints). */
export function packageVersion(): string {
  return (JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version: string })
    .version;
}
