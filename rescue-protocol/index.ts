// The rescue protocol between DotSlash members: signed, versioned JSON messages over each member's control port.
/**
 * Wire format (v 1; docs/PROTOCOL.md has the full text):
 *
 *   POST /v1/rescue HTTP/1.1                         (the peer's control listener, not its site port)
 *   Content-Type: application/json
 *   DotSlash-Sender: origin.example                  (member id = public host name)
 *   DotSlash-Signature: ed25519 <base64url of the 64-byte Ed25519 signature of the body bytes>
 *
 *   {"v":1,"type":"SOS","from":"origin.example","to":"rescue-b.example",
 *    "ts":1767225600000,"nonce":"<base64url of 16 random bytes>","body":{...}}
 *
 * Requests: SOS, TOKEN, RATE, KEEPALIVE, SHUTDOWN, PURGE. The HTTP answer is a signed envelope
 * too, with `re` = the request's nonce: OK (answer to SOS: accepted with session, vhost, rate,
 * lease_ms, or declined with reason and code), ACK (everything else; KEEPALIVE's carries
 * session and lease_ms; in flood-insurance communities SHUTDOWN's may carry a `receipt`), or
 * ERROR `{ error: { code, message } }` with the RSC_ERR_* HTTP status. The SOS `token` and the
 * `receipt` of SHUTDOWN/ACK are token-ledger records, only shape-checked here (src/registry/ledger).
 * A request refused before its signature verifies gets a plain, unsigned `{ error: { code, message } }`.
 *
 * The receiver checks, in order: route, Content-Type, size (64 KiB), signature over the exact
 * bytes (key found by DotSlash-Sender) before trusting any of them, JSON, version, schema,
 * from == DotSlash-Sender, to == itself, |ts - now| <= 30 s (members need NTP), nonce not seen in
 * the last 2 x 30 s. Each refusal has its own RSC_ERR_* code (errors.ts).
 *
 * Use: ControlServer (one per member, on its control address) with an onMessage handler that
 * returns the OK/ACK body or throws RescueError; ControlClient.send(peer, type, body) to talk to
 * a peer; keys from loadPrivateKey / parsePublicKey; keygen() behind `dotslash keygen`.
 */
export {
  RescueErrors,
  RescueError,
  isRescueErrorCode,
  errorBody,
  type RescueErrorCode,
  type RemoteErrorInfo,
} from './errors.js';
export {
  generateKeyPair,
  publicKeyText,
  parsePublicKey,
  parsePrivateKey,
  loadPrivateKey,
  writePrivateKey,
  signBytes,
  verifyBytes,
  type KeyPairText,
  type LoadedPrivateKey,
  type MemberIdentity,
} from './keys.js';
export * from './messages.js';
export {
  SIGNATURE_HEADER,
  SENDER_HEADER,
  DEFAULT_SKEW_MS,
  newNonce,
  envelopeHead,
  sealEnvelope,
  authenticateRequest,
  authenticateReply,
  checkFreshness,
  type PeerKeys,
  type SealedMessage,
  type FreshnessCheck,
} from './envelope.js';
export { NonceCache, type NonceCacheOptions } from './replay.js';
export * from './transport.js';
export { keygen, type KeygenOptions, type KeygenResult } from './keygen.js';
export { peerKeyMap } from './peers.js';
