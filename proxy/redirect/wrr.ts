// Smooth weighted round robin over rescue sessions, weights = their Rr, as nginx picks upstream
// peers (ngx_http_upstream_get_peer): sessions whose token bucket is empty sit the round out,
// like nginx's unavailable peers, so no session is ever sent more than its Rr.
import type { PreparedSession } from './snapshot.js';

/**
 * Pick a session for one redirect and take a token from it, or return null when no session has
 * a token. One pass over the sessions (a handful): refill, add weight, keep the largest.
 * Over any run where all buckets have tokens, session i gets exactly weight_i / sum(weights)
 * of the picks, spread evenly rather than in runs.
 */
export function pickSession(sessions: readonly PreparedSession[], nowMs: number): PreparedSession | null {
  let best: PreparedSession | null = null;
  let bestCurrent = 0;
  let total = 0;
  for (let i = 0; i < sessions.length; i++) {
    const s = sessions[i]!;
    const st = s.state;
    if (st.bucket.refill(nowMs) < 1) continue;
    const current = (st.current += s.weight);
    total += s.weight;
    if (best === null || current > bestCurrent) {
      best = s;
      bestCurrent = current;
    }
  }
  if (best !== null) {
    best.state.current -= total;
    best.state.bucket.tokens -= 1;
    best.state.redirects++;
  }
  return best;
}
