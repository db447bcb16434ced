// What the rescuer's data path serves (issue 3 item 5): host name -> the rescue session it belongs
// to. Built by the controller as an immutable object, read per request by the data path; defined
// here, on the data-path side, so proxy/ never imports the control plane.

export interface RescueServingEntry {
  /** Protocol session id. */
  readonly session: string;
  /** The origin member's id. */
  readonly origin: string;
  /** The origin's public front: the only place this session may fetch from (no open proxy). */
  readonly front_url: string;
  /** Every host name of this session: vhN.<own name> and the origin's site names. */
  readonly names: readonly string[];
  /** Paths the origin allows to be micro-cached for ttl_s, or null. */
  readonly micro_cache: { readonly paths: readonly string[]; readonly ttl_s: number } | null;
  /** serve: cache and fetch misses; drain: pass straight through to the origin, no caching. */
  readonly state: 'serve' | 'drain';
  /** While draining: until when (monotonic performance.now() ms); after it the names get 421. null while serving. */
  readonly drain_until: number | null;
}

export interface RescueServingView {
  /** Bumped on every change, so a reader can tell views apart cheaply. */
  readonly version: number;
  /** Lower-case host name (no port) -> its session. */
  readonly hosts: ReadonlyMap<string, RescueServingEntry>;
  /** Session id -> entry (for cache clean-up when a session leaves the view). */
  readonly sessions: ReadonlyMap<string, RescueServingEntry>;
}

export const EMPTY_SERVING_VIEW: RescueServingView = Object.freeze({
  version: 0,
  hosts: new Map<string, RescueServingEntry>(),
  sessions: new Map<string, RescueServingEntry>(),
});
