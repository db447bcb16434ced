// What an SOS may claim (issue 3: "a rescuer is never an open proxy"). The signature proves who
// sent it, not that its names and front URL are the sender's to give: a member could otherwise
// point our fetches at an internal address (SSRF) or claim our own site's names and have its
// pages served under them. Pure checks; the rescuer declines with the code on failure.
import type { SosBody } from '../../rescue-protocol/index.js';
import type { Session } from '../sessions/session.js';
import type { ControllerErrorCode } from './errors.js';
import type { RescueSettings } from './settings.js';

export interface ClaimRefusal {
  readonly code: ControllerErrorCode;
  readonly detail: string;
}

/** URL host without brackets, lower case ("[::1]" -> "::1"). */
function hostOf(url: string): string {
  return new URL(url).hostname.replace(/^\[(.*)\]$/, '$1').toLowerCase();
}

function portOf(u: URL): string {
  return u.port || (u.protocol === 'https:' ? '443' : '80');
}

/**
 * null when the SOS's claims are acceptable. `controlUrl` is where we know the sender's control
 * listener (configuration or registry), `live` our rescuer sessions that still serve or drain names.
 */
export function checkSosClaims(
  s: RescueSettings,
  from: string,
  body: SosBody,
  controlUrl: string | undefined,
  live: readonly Session[],
): ClaimRefusal | null {
  const self = s.self.toLowerCase();
  const ownNames = new Set([self, ...s.site.names.map((n) => n.toLowerCase())]);
  const names = body.origin.names.map((n) => n.toLowerCase());
  for (const n of names) {
    if (ownNames.has(n) || n.endsWith(`.${self}`))
      return { code: 'CTL_ERR_NAME_CONFLICT', detail: `${n} is this member's own name` };
    const holder = live.find((x) => x.peer !== from && x.origin?.names.some((o) => o.toLowerCase() === n));
    if (holder !== undefined)
      return {
        code: 'CTL_ERR_NAME_CONFLICT',
        detail: `${n} is served for ${holder.peer} (session ${holder.id})`,
      };
  }

  // The front we will fetch from must be the origin's own: one of its names, or the host we
  // already send its control messages to.
  const front = new URL(body.origin.front_url);
  const host = hostOf(body.origin.front_url);
  const allowed = new Set([from.toLowerCase(), ...names]);
  if (controlUrl !== undefined) allowed.add(hostOf(controlUrl));
  if (!allowed.has(host))
    return {
      code: 'CTL_ERR_FRONT_URL',
      detail: `front_url host ${host} is neither one of ${from}'s names nor its control host`,
    };
  const own = new URL(s.site.frontUrl);
  if (ownNames.has(host) || (host === hostOf(s.site.frontUrl) && portOf(front) === portOf(own)))
    return {
      code: 'CTL_ERR_FRONT_URL',
      detail: `front_url ${body.origin.front_url} is this member's own front`,
    };
  return null;
}
