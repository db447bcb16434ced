// Rescue sessions with leases on both sides (issue 3 item 2).
export {
  Session,
  TRANSITIONS,
  type OriginInfo,
  type OriginState,
  type RescuerState,
  type SessionRole,
  type SessionState,
} from './session.js';
export {
  SessionTable,
  TransitionError,
  systemClock,
  type Clock,
  type SessionChange,
  type SessionTableOptions,
} from './table.js';
