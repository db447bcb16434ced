// Shared by the control server and client: the control endpoints and a size-capped body reader.
import type { Readable } from 'node:stream';

export const RESCUE_PATH = '/v1/rescue';
export const HEALTH_PATH = '/v1/health';
/**
 * Control messages are small (a typical SOS is well under 2 KiB); this cap bounds the memory one
 * message can take. It is the effective limit on list sizes too: a PURGE of very many URLs is
 * sent as several messages.
 */
export const DEFAULT_MAX_BODY_BYTES = 64 * 1024;

/**
 * The whole body, or null as soon as it exceeds `cap` bytes. Not `for await ... break`: leaving
 * the loop destroys an IncomingMessage and its socket, and the 413 answer would be lost. Past the
 * cap the rest is read and dropped (the caller answers and closes the connection).
 */
export function readCapped(stream: Readable, cap: number): Promise<Buffer | null> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let total = 0;
    let over = false;
    let ended = false;
    stream.on('data', (chunk: Buffer) => {
      if (over) return;
      total += chunk.length;
      if (total > cap) {
        over = true;
        chunks.length = 0;
        resolve(null);
      } else chunks.push(chunk);
    });
    stream.on('end', () => {
      ended = true;
      // One chunk (the usual small message) needs no copy.
      resolve(over ? null : chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, total));
    });
    stream.on('error', reject);
    // A peer that goes away mid-body. 'close' follows every 'end' too: only then is an Error
    // made (its stack trace cost 8% of a registry lookup when it was made on every request).
    stream.on('close', () => {
      if (!ended) reject(new Error('connection closed before the body ended'));
    });
  });
}
