// What a daemon registers (from its config and bound control address), its spare capacity (from
// monitor samples), and where its registries are (config URLs or DNS SRV): the daemon-side glue.
import { cpus } from 'node:os';
import type { Config } from '../config/schema.js';
import type { RescueSettings } from '../controller/settings.js';
import type { MonitorSample } from '../monitor/types.js';
import type { Registration } from './messages.js';
import type { RegistrySource } from './client.js';
import { resolveSrv } from '../../dns/srv.js';

/** Everything but spare capacity: who we are, how to reach us, what we have. */
export function memberRegistration(
  config: Config,
  settings: RescueSettings,
  controlUrl: string,
  publicKey: string,
): Omit<Registration, 'spare'> {
  const cpu = config.monitor.cpu.capacity > 0 ? config.monitor.cpu.capacity : cpus().length;
  return {
    id: settings.self,
    names: [...settings.site.names],
    control_url: controlUrl,
    public_key: publicKey,
    community: config.registry.community,
    lease_ms: config.registry.lease_ms,
    willing: config.registry.willing,
    capacity: {
      uplink_bps: config.monitor.bytes_out.capacity,
      cpu,
      rps: config.monitor.request_rate.capacity,
    },
  };
}

/**
 * Spare capacity: capacity minus the smoothed load, per resource; none at all while the member
 * is heavy (it needs rescue itself) or its request rate is past the upper threshold.
 */
export function spareFromSample(s: MonitorSample): Registration['spare'] {
  if (s.region === 'heavy') return { uplink_bps: 0, cpu: 0, rps: 0 };
  const free = (r: MonitorSample['resources'][keyof MonitorSample['resources']]): number =>
    r.capacity > 0 && r.value !== null ? Math.max(0, r.capacity - r.value) : r.capacity;
  return {
    uplink_bps: Math.round(free(s.resources.bytes_out)),
    cpu: Math.round(free(s.resources.cpu) * 100) / 100,
    rps: Math.round(free(s.resources.request_rate) * 10) / 10,
  };
}

/** Config URLs, or `_dotslash._tcp.<srv>` resolved on every fail-over round (dns/srv.ts), URLs after. */
export function registrySource(r: Config['registry']): RegistrySource {
  if (r.srv === undefined) return r.urls;
  const domain = r.srv;
  return async () => {
    let urls: string[] = [];
    try {
      const found = await resolveSrv(
        `_dotslash._tcp.${domain}`,
        r.dns_servers.length > 0 ? { servers: r.dns_servers } : {},
      );
      urls = found.map((x) => `http://${x.host.includes(':') ? `[${x.host}]` : x.host}:${x.port}`);
    } catch {
      urls = []; // no SRV answer: the configured URLs (if any) are all there is
    }
    return [...urls, ...r.urls];
  };
}
