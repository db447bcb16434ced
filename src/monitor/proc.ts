// Synchronous /proc reads with MON_ERR_* errors; /proc files are tiny, in-memory and never block.
import { readFileSync } from 'node:fs';
import { MonitorError } from './errors.js';

/** Reads a /proc file, or throws MON_ERR_PROC_UNREADABLE naming the file and the OS error. */
export function readProc(path: string): string {
  try {
    return readFileSync(path, 'latin1');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? String(err);
    throw new MonitorError('MON_ERR_PROC_UNREADABLE', `${path} (${code})`, { cause: err });
  }
}

/** Like readProc, but returns null when the file does not exist (a process that has exited). */
export function readProcIfExists(path: string): string | null {
  try {
    return readFileSync(path, 'latin1');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ESRCH') return null;
    throw new MonitorError('MON_ERR_PROC_UNREADABLE', `${path} (${code ?? String(err)})`, { cause: err });
  }
}
