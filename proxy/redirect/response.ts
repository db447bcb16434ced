// Writes the redirector's 302: one writeHead with a flat header array and a constant body.
import type { ServerResponse } from 'node:http';

const BODY = 'Found: this page is served by a rescue server.\n';
const BODY_LENGTH = String(Buffer.byteLength(BODY));

/**
 * Reused for every response: writeHead() serialises a flat array synchronously (when no
 * setHeader() came before) and keeps no reference, so only the Location slot changes per call.
 * `no-store` keeps browsers and shared caches from remembering a redirect that is only right
 * while the rescue lasts (RFC 9111 5.2.2.5); a 302 is not cacheable by default anyway
 * (RFC 9110 15.4.3), but some caches apply heuristics.
 */
const HEADERS: string[] = [
  'Location',
  '',
  'Cache-Control',
  'no-store',
  'Content-Type',
  'text/plain; charset=utf-8',
  'Content-Length',
  BODY_LENGTH,
];

/** Answer with `302 Found`, Location `location`. HEAD responses carry no body (Node drops it). */
export function writeRedirect(res: ServerResponse, location: string): void {
  HEADERS[1] = location;
  res.writeHead(302, HEADERS);
  res.end(BODY);
}
