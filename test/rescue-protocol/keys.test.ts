// Member keys: text form, parse errors, 0600 key files (refused when open to others), sign/verify, keygen.
import { generateKeyPairSync } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  generateKeyPair,
  keygen,
  loadPrivateKey,
  parsePrivateKey,
  parsePublicKey,
  peerKeyMap,
  publicKeyText,
  RescueError,
  signBytes,
  verifyBytes,
  writePrivateKey,
} from '../../rescue-protocol/index.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'dotslash-keys-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(RescueError);
    return (err as RescueError).code;
  }
  return undefined;
}

describe('public key text', () => {
  it('generateKeyPair gives "ed25519:" + 43 base64url chars and a PKCS8 PEM; both parse back to the same key', () => {
    const pair = generateKeyPair();
    expect(pair.publicKey).toMatch(/^ed25519:[A-Za-z0-9_-]{43}$/);
    expect(pair.privateKeyPem).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
    const pub = parsePublicKey(pair.publicKey);
    expect(pub.asymmetricKeyType).toBe('ed25519');
    expect(Buffer.from(pair.publicKey.slice(8), 'base64url')).toHaveLength(32);
    expect(publicKeyText(pub)).toBe(pair.publicKey);
    expect(publicKeyText(parsePrivateKey(pair.privateKeyPem))).toBe(pair.publicKey);
    expect(generateKeyPair().publicKey).not.toBe(pair.publicKey);
    // Surrounding whitespace (a pasted config line) is tolerated.
    expect(publicKeyText(parsePublicKey(`  ${pair.publicKey}\n`))).toBe(pair.publicKey);
  });

  it.each([
    ['empty', '', 'does not start with "ed25519:"'],
    ['no prefix', 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA', 'does not start with "ed25519:"'],
    ['other algorithm', 'rsa:AAAA', 'does not start with "ed25519:"'],
    ['too short', 'ed25519:AAAA', '43 base64url characters'],
    ['too long', `ed25519:${'A'.repeat(44)}`, '43 base64url characters'],
    ['standard base64 characters', `ed25519:${'+'.repeat(43)}`, '43 base64url characters'],
    ['padding', `ed25519:${'A'.repeat(42)}=`, '43 base64url characters'],
    ['non-canonical last character', `ed25519:${'A'.repeat(42)}B`, 'not canonical'],
  ])('%s -> RSC_ERR_BAD_PUBLIC_KEY saying what is wrong', (_name, text, says) => {
    try {
      parsePublicKey(text);
      expect.unreachable();
    } catch (err) {
      expect(err).toMatchObject({ code: 'RSC_ERR_BAD_PUBLIC_KEY' });
      expect((err as Error).message).toContain(says);
    }
  });

  it('a non-string is refused', () => {
    expect(codeOf(() => parsePublicKey(42 as unknown as string))).toBe('RSC_ERR_BAD_PUBLIC_KEY');
  });

  it('peerKeyMap parses every peer and names the one whose key is bad', () => {
    const a = generateKeyPair().publicKey;
    const map = peerKeyMap([
      { id: 'a.test', public_key: a },
      { id: 'b.test', public_key: generateKeyPair().publicKey },
    ]);
    expect([...map.keys()]).toEqual(['a.test', 'b.test']);
    expect(publicKeyText(map.get('a.test')!)).toBe(a);
    expect(() => peerKeyMap([{ id: 'bad.test', public_key: 'ed25519:nope' }])).toThrow(/peer bad\.test/);
    expect(() =>
      peerKeyMap([
        { id: 'a.test', public_key: a },
        { id: 'a.test', public_key: a },
      ]),
    ).toThrow(/listed twice/);
  });
});

describe('private key files', () => {
  it('writePrivateKey writes mode 0600 in a new 0700 directory; loadPrivateKey reads it back', () => {
    const pair = generateKeyPair();
    const file = join(dir, 'state', 'member.key');
    writePrivateKey(file, pair.privateKeyPem);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, 'state')).mode & 0o777).toBe(0o700);
    const loaded = loadPrivateKey(file);
    expect(loaded.publicKey).toBe(pair.publicKey);
    expect(loaded.warning).toBeUndefined();
    expect(loaded.privateKey.asymmetricKeyType).toBe('ed25519');
  });

  it('writePrivateKey refuses to replace a key unless told to, and then the file is 0600 again', () => {
    const file = join(dir, 'member.key');
    writeFileSync(file, 'old', { mode: 0o644 });
    expect(codeOf(() => writePrivateKey(file, generateKeyPair().privateKeyPem))).toBe(
      'RSC_ERR_KEY_FILE_EXISTS',
    );
    expect(readFileSync(file, 'utf8')).toBe('old');
    const pair = generateKeyPair();
    writePrivateKey(file, pair.privateKeyPem, { overwrite: true });
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(loadPrivateKey(file).publicKey).toBe(pair.publicKey);
  });

  it('writePrivateKey refuses text that is not an Ed25519 PEM (nothing written)', () => {
    const file = join(dir, 'member.key');
    expect(codeOf(() => writePrivateKey(file, 'hello'))).toBe('RSC_ERR_BAD_PRIVATE_KEY');
    expect(() => statSync(file)).toThrow();
  });

  it.runIf(process.platform !== 'win32')(
    'a key file readable by group or others is refused, or only warned about when allowed',
    () => {
      const pair = generateKeyPair();
      const file = join(dir, 'member.key');
      writePrivateKey(file, pair.privateKeyPem);
      for (const mode of [0o640, 0o604, 0o660]) {
        chmodSync(file, mode);
        try {
          loadPrivateKey(file);
          expect.unreachable();
        } catch (err) {
          expect(err).toMatchObject({ code: 'RSC_ERR_KEY_FILE_INSECURE' });
          expect((err as Error).message).toContain(mode.toString(8));
          expect((err as Error).message).toContain('chmod 600');
        }
      }
      const loaded = loadPrivateKey(file, { allowInsecureMode: true });
      expect(loaded.publicKey).toBe(pair.publicKey);
      expect(loaded.warning).toMatch(/chmod 600/);
    },
  );

  it('missing file, garbage and non-Ed25519 keys get their own codes', () => {
    expect(codeOf(() => loadPrivateKey(join(dir, 'missing.key')))).toBe('RSC_ERR_KEY_FILE_UNREADABLE');
    const garbage = join(dir, 'garbage.key');
    writeFileSync(garbage, 'not a pem', { mode: 0o600 });
    expect(codeOf(() => loadPrivateKey(garbage))).toBe('RSC_ERR_BAD_PRIVATE_KEY');
    const rsa = join(dir, 'rsa.key');
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 1024 });
    writeFileSync(rsa, privateKey.export({ format: 'pem', type: 'pkcs8' }), { mode: 0o600 });
    try {
      loadPrivateKey(rsa);
      expect.unreachable();
    } catch (err) {
      expect(err).toMatchObject({ code: 'RSC_ERR_BAD_PRIVATE_KEY' });
      expect((err as Error).message).toContain('not Ed25519');
    }
  });
});

describe('signatures', () => {
  it('sign/verify over exact bytes; any change, other key or malformed signature fails without throwing', () => {
    const a = generateKeyPair();
    const b = generateKeyPair();
    const priv = parsePrivateKey(a.privateKeyPem);
    const data = Buffer.from('{"v":1,"type":"SOS"}');
    const sig = signBytes(data, priv);
    expect(sig).toMatch(/^[A-Za-z0-9_-]{86}$/);
    expect(verifyBytes(data, sig, parsePublicKey(a.publicKey))).toBe(true);
    expect(verifyBytes(Buffer.from('{"v":1,"type":"SOS"} '), sig, parsePublicKey(a.publicKey))).toBe(false);
    expect(verifyBytes(data, sig, parsePublicKey(b.publicKey))).toBe(false);
    expect(verifyBytes(data, 'abc', parsePublicKey(a.publicKey))).toBe(false);
    expect(verifyBytes(data, '!'.repeat(86), parsePublicKey(a.publicKey))).toBe(false);
    const flipFirst = (sig[0] === 'A' ? 'B' : 'A') + sig.slice(1);
    expect(verifyBytes(data, flipFirst, parsePublicKey(a.publicKey))).toBe(false);
    // The last character carries 4 spare bits: a text with them set is refused, not read as the same bytes.
    const last = sig.slice(0, 85) + (sig[85] === 'A' ? 'B' : 'A');
    expect(verifyBytes(data, last, parsePublicKey(a.publicKey))).toBe(false);
  });
});

describe('keygen', () => {
  it('prints exactly the public key line on stdout, a note on stderr, and writes the 0600 private key', () => {
    let out = '';
    let err = '';
    const file = join(dir, 'keys', 'member.key');
    const res = keygen({
      keyFile: file,
      stdout: { write: (s: string) => (out += s) },
      stderr: { write: (s: string) => (err += s) },
    });
    expect(out).toBe(`${res.publicKey}\n`);
    expect(res.publicKey).toMatch(/^ed25519:[A-Za-z0-9_-]{43}$/);
    expect(res.keyFile).toBe(file);
    expect(err).toContain(file);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(loadPrivateKey(file).publicKey).toBe(res.publicKey);
    // A second run does not destroy the identity.
    const quiet = { write: () => true };
    expect(codeOf(() => keygen({ keyFile: file, stdout: quiet, stderr: quiet }))).toBe(
      'RSC_ERR_KEY_FILE_EXISTS',
    );
    expect(keygen({ keyFile: file, overwrite: true, stdout: quiet, stderr: quiet }).publicKey).not.toBe(
      res.publicKey,
    );
  });
});
