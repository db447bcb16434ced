// The redirector's public surface, for the front proxy and the controller.
export { Redirector, type RedirectorOptions, type RedirectStats } from './redirector.js';
export { writeRedirect } from './response.js';
export {
  DEFAULT_EXCLUDED_PATHS,
  DEFAULT_RESCUER_MARKER_HEADER,
  prepare,
  redirectSnapshot,
  type PreparedRedirect,
  type RedirectSession,
  type RedirectSnapshot,
} from './snapshot.js';
export { BUCKET_SECONDS } from './token-bucket.js';
