// Ed25519 member keys: the "ed25519:<base64url>" public text form, 0600 PKCS8 PEM key files, sign/verify.
import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  sign as cryptoSign,
  verify as cryptoVerify,
  type KeyObject,
} from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { RescueError } from './errors.js';

const PREFIX = 'ed25519:';
/** base64url (no padding) of 32 bytes is exactly 43 characters; the last one carries 2 spare bits. */
const PUBLIC_TEXT = /^ed25519:[A-Za-z0-9_-]{43}$/;
const SIGNATURE_TEXT = /^[A-Za-z0-9_-]{86}$/; // 64 bytes

export interface KeyPairText {
  /** "ed25519:" + base64url(raw 32-byte public key): the line peers put in their configuration. */
  readonly publicKey: string;
  /** PKCS8 PEM; store it with writePrivateKey (mode 0600). */
  readonly privateKeyPem: string;
}

/** A member's own identity: its id (public host name) and the key it signs with. */
export interface MemberIdentity {
  readonly id: string;
  readonly privateKey: KeyObject;
}

export function generateKeyPair(): KeyPairText {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  return {
    publicKey: publicKeyText(publicKey),
    privateKeyPem: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
  };
}

/** The text form of a public key, or of the public half of a private key. */
export function publicKeyText(key: KeyObject): string {
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  if (pub.asymmetricKeyType !== 'ed25519')
    throw new RescueError('RSC_ERR_BAD_PUBLIC_KEY', 'not an Ed25519 key');
  const jwk = pub.export({ format: 'jwk' });
  return PREFIX + String(jwk.x);
}

/** Parses "ed25519:<base64url raw 32 bytes>"; throws RSC_ERR_BAD_PUBLIC_KEY saying what is wrong. */
export function parsePublicKey(text: string): KeyObject {
  if (typeof text !== 'string') throw new RescueError('RSC_ERR_BAD_PUBLIC_KEY', 'not a string');
  const t = text.trim();
  if (!t.startsWith(PREFIX)) {
    throw new RescueError('RSC_ERR_BAD_PUBLIC_KEY', `"${clip(t)}" does not start with "${PREFIX}"`);
  }
  if (!PUBLIC_TEXT.test(t)) {
    throw new RescueError(
      'RSC_ERR_BAD_PUBLIC_KEY',
      `"${clip(t)}": the part after "${PREFIX}" must be 43 base64url characters (32 bytes)`,
    );
  }
  const x = t.slice(PREFIX.length);
  // Only the canonical encoding: a non-zero spare bit would give two texts for one key.
  if (Buffer.from(x, 'base64url').toString('base64url') !== x) {
    throw new RescueError('RSC_ERR_BAD_PUBLIC_KEY', `"${clip(t)}" is not canonical base64url`);
  }
  try {
    return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x }, format: 'jwk' });
  } catch (err) {
    throw new RescueError('RSC_ERR_BAD_PUBLIC_KEY', `"${clip(t)}": ${(err as Error).message}`, {
      cause: err,
    });
  }
}

/** Parses a PKCS8 PEM Ed25519 private key (throws RSC_ERR_BAD_PRIVATE_KEY). */
export function parsePrivateKey(pem: string | Buffer): KeyObject {
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: pem, format: 'pem' });
  } catch (err) {
    throw new RescueError('RSC_ERR_BAD_PRIVATE_KEY', (err as Error).message, { cause: err });
  }
  if (key.asymmetricKeyType !== 'ed25519') {
    throw new RescueError('RSC_ERR_BAD_PRIVATE_KEY', `a ${key.asymmetricKeyType} key, not Ed25519`);
  }
  return key;
}

export interface LoadedPrivateKey {
  readonly privateKey: KeyObject;
  /** Text form of the matching public key (what peers must have configured for us). */
  readonly publicKey: string;
  /** Set when allowInsecureMode let a group/other-accessible file through. */
  readonly warning?: string;
}

/**
 * Reads a private key file. Like ssh, refuses a file that group or others can access
 * (RSC_ERR_KEY_FILE_INSECURE) unless `allowInsecureMode`, which returns a warning instead.
 * The mode check is skipped on Windows, where POSIX modes mean nothing.
 */
export function loadPrivateKey(file: string, opts: { allowInsecureMode?: boolean } = {}): LoadedPrivateKey {
  let text: string;
  let mode: number;
  try {
    mode = statSync(file).mode & 0o777;
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new RescueError('RSC_ERR_KEY_FILE_UNREADABLE', `${file}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  let warning: string | undefined;
  if (process.platform !== 'win32' && mode & 0o077) {
    const detail = `${file} has mode ${mode.toString(8).padStart(4, '0')}`;
    if (!opts.allowInsecureMode) throw new RescueError('RSC_ERR_KEY_FILE_INSECURE', detail);
    warning = `private key file ${detail}; run chmod 600 on it`;
  }
  let privateKey: KeyObject;
  try {
    privateKey = parsePrivateKey(text);
  } catch (err) {
    throw new RescueError('RSC_ERR_BAD_PRIVATE_KEY', `${file}: ${(err as Error).message}`, { cause: err });
  }
  return warning
    ? { privateKey, publicKey: publicKeyText(privateKey), warning }
    : { privateKey, publicKey: publicKeyText(privateKey) };
}

/**
 * Writes a private key PEM with mode 0600 (parent directory created 0700). Refuses to replace an
 * existing file (RSC_ERR_KEY_FILE_EXISTS) unless `overwrite`: losing a key changes the member's identity.
 */
export function writePrivateKey(
  file: string,
  privateKeyPem: string,
  opts: { overwrite?: boolean } = {},
): void {
  parsePrivateKey(privateKeyPem); // never write something that cannot be loaded back
  try {
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    writeFileSync(file, privateKeyPem.endsWith('\n') ? privateKeyPem : `${privateKeyPem}\n`, {
      mode: 0o600,
      flag: opts.overwrite ? 'w' : 'wx',
    });
    // The mode above applies only to a new file (and after the umask); make it exact either way.
    chmodSync(file, 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST')
      throw new RescueError('RSC_ERR_KEY_FILE_EXISTS', file);
    throw new RescueError('RSC_ERR_KEY_FILE_UNREADABLE', `${file}: ${(err as Error).message}`, {
      cause: err,
    });
  }
}

/** Ed25519 signature (64 bytes, base64url) over exactly `data`. */
export function signBytes(data: Uint8Array, privateKey: KeyObject): string {
  return cryptoSign(null, data, privateKey).toString('base64url');
}

/** True when `signature` (base64url) is a valid Ed25519 signature of exactly `data`; never throws. */
export function verifyBytes(data: Uint8Array, signature: string, publicKey: KeyObject): boolean {
  if (!SIGNATURE_TEXT.test(signature)) return false;
  const raw = Buffer.from(signature, 'base64url');
  // One text per signature: spare bits in the last character must be zero.
  if (raw.toString('base64url') !== signature) return false;
  try {
    return cryptoVerify(null, data, publicKey, raw);
  } catch {
    return false;
  }
}

function clip(s: string): string {
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}
