// Control-port transport, the two ends: ControlServer (receive, verify, answer) and ControlClient (send, verify the answer).
export * from './control-server.js';
export * from './control-client.js';
export { DEFAULT_MAX_BODY_BYTES, HEALTH_PATH, RESCUE_PATH } from './http-body.js';
