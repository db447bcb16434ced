// The demo's member sites: the example static site on a member's 127.0.0.x address, optionally
// behind a RateQueue so the origin behaves like a small site on a saturated uplink.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import { startStaticSite, type StaticSite } from '../../examples/static-site/server.js';
import { packageRoot } from '../cli/package-info.js';
import { RateQueue } from './limiter.js';

export interface DemoSite extends StaticSite {
  /** Requests queued behind the capacity limit now (0 without a limit). */
  readonly waiting: () => number;
}

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

/**
 * Serves examples/static-site/public on host:0; with `rps`, at most that many requests/s start
 * being answered. `urgent(req)` requests skip the queue: the site's operator lets its rescuers'
 * few cache-filling fetches through first (without that, a rescuer's first fetch of each URL
 * waits behind the whole crowd's backlog and its clients time out).
 */
export async function startDemoSite(opts: {
  host: string;
  rps?: number;
  urgent?: (req: IncomingMessage) => boolean;
}): Promise<DemoSite> {
  const root = join(packageRoot(), 'examples', 'static-site', 'public');
  const site = await startStaticSite({ host: opts.host, port: 0, root });
  if (opts.rps === undefined) return { ...site, waiting: () => 0 };
  const queue = new RateQueue(opts.rps);
  // Put the queue in front of the site's own handler: same server, no extra hop.
  const [serve] = site.server.listeners('request') as Handler[];
  site.server.removeAllListeners('request');
  site.server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    // A client that gave up while waiting leaves the queue without using capacity.
    queue.take(
      () => serve!(req, res),
      () => res.destroyed || req.socket.destroyed,
      opts.urgent?.(req) ?? false,
    );
  });
  return {
    ...site,
    waiting: () => queue.waiting,
    close: async () => {
      queue.close();
      await site.close();
    },
  };
}
