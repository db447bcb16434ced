// The rescue control plane's public surface, for the daemon and the admin API.
export {
  RescueController,
  type ControllerOptions,
  type ControllerStatus,
  type MemberState,
  type RescueTransport,
  type SessionStatus,
} from './controller.js';
export {
  createRescueControl,
  loadOrCreateIdentity,
  type RescueControl,
  type RescueControlDeps,
} from './create.js';
export { ControllerErrors, type ControllerErrorCode } from './errors.js';
export { handleMessage, type InboxHost, type PurgeRequest } from './inbox.js';
export { rescueSettings, virtualHost, type RescueSettings, type SiteSettings } from './settings.js';
export { buildRedirectSnapshot, buildServingView } from './views.js';
export { TrafficPredictor, type Prediction, type PredictorOptions } from './predictor.js';
