// `dotslash keygen`: makes a member key pair, writes the private key (0600) and prints the public key line.
import { resolve } from 'node:path';
import { generateKeyPair, writePrivateKey } from './keys.js';

export interface KeygenOptions {
  /** Where the private key goes (PKCS8 PEM, mode 0600, parent directory created 0700). */
  readonly keyFile: string;
  /** Replace an existing key file (otherwise RSC_ERR_KEY_FILE_EXISTS: the member's identity would change). */
  readonly overwrite?: boolean;
  /** Gets exactly the public key text and a newline (scriptable); default process.stdout. */
  readonly stdout?: { write(s: string): unknown };
  /** Gets the human note about where the private key went; default process.stderr. */
  readonly stderr?: { write(s: string): unknown };
}

export interface KeygenResult {
  /** "ed25519:<base64url>": give it to peers (their `peers[].public_key`). */
  readonly publicKey: string;
  /** Absolute path of the private key file written. */
  readonly keyFile: string;
}

/** Generates a key pair, writes the private key, prints the public key. Throws RescueError (RSC_ERR_KEY_FILE_*). */
export function keygen(opts: KeygenOptions): KeygenResult {
  const keyFile = resolve(opts.keyFile);
  const pair = generateKeyPair();
  writePrivateKey(keyFile, pair.privateKeyPem, { overwrite: opts.overwrite });
  (opts.stdout ?? process.stdout).write(`${pair.publicKey}\n`);
  (opts.stderr ?? process.stderr).write(
    `private key written to ${keyFile} (mode 0600); peers configure the public key above as this member's public_key\n`,
  );
  return { publicKey: pair.publicKey, keyFile };
}
