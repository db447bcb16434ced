// Stable CTL_ERR_* codes of the rescue controller (STYLE.md 4): why an SOS was declined (sent in the
// OK body's `code`), and controller failures. Never reused or renumbered.

export const ControllerErrors = {
  CTL_ERR_MODE_OFF: { message: 'rescue is off on this member (rescue.mode off)' },
  CTL_ERR_MODE_OBSERVE: {
    message: 'this member only observes (rescue.mode observe): it would have decided, but acts on nothing',
  },
  CTL_ERR_IN_SOS: {
    message: 'this member is being rescued itself; a member never rescues and is rescued at once',
  },
  CTL_ERR_HEAVY: { message: 'this member is in its heavy load region' },
  CTL_ERR_MAX_SESSIONS: { message: 'this member already serves rescue.max_sessions rescue sessions' },
  CTL_ERR_NO_SPARE: { message: 'no spare capacity left within rescue.max_share' },
  CTL_ERR_ALREADY_RESCUING: { message: 'this member already rescues that origin' },
  CTL_ERR_NAME_CONFLICT: {
    message: "a site name in the SOS is this member's own, or one it already serves for another origin",
  },
  CTL_ERR_FRONT_URL: {
    message:
      "the SOS's front_url is not the origin's: its host must be one of the origin's names or its control host",
  },
  // Flood-insurance communities (the token ledger, src/registry/ledger): the reason names the LGR_ERR_* code.
  CTL_ERR_NO_TOKENS: {
    message: "the origin's token does not pay for a rescue (no token, or not enough available tokens)",
  },
  CTL_ERR_BAD_TOKEN: {
    message: "the origin's token is not a valid spend (signature, key, payee, age, reuse or double spend)",
  },
  CTL_ERR_LEDGER_UNAVAILABLE: { message: 'the token ledger (registry) could not be asked; rescue declined' },
} as const satisfies Record<string, { message: string }>;

export type ControllerErrorCode = keyof typeof ControllerErrors;
