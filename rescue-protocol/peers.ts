// Turns configured peers ({ id, public_key } text) into the key lookup the control server verifies with.
import type { KeyObject } from 'node:crypto';
import { RescueError } from './errors.js';
import { parsePublicKey } from './keys.js';

/**
 * Parses every peer's public key once (at config load), so a bad key fails start-up with the
 * peer's id in the message rather than at the first message. Duplicate ids are refused too.
 */
export function peerKeyMap(peers: readonly { id: string; public_key: string }[]): Map<string, KeyObject> {
  const map = new Map<string, KeyObject>();
  for (const peer of peers) {
    if (map.has(peer.id)) throw new RescueError('RSC_ERR_BAD_PUBLIC_KEY', `peer ${peer.id} is listed twice`);
    try {
      map.set(peer.id, parsePublicKey(peer.public_key));
    } catch (err) {
      throw new RescueError('RSC_ERR_BAD_PUBLIC_KEY', `peer ${peer.id}: ${(err as Error).message}`, {
        cause: err,
      });
    }
  }
  return map;
}
