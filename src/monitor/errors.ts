// Stable MON_ERR_* codes of the workload monitor (STYLE.md 4): codes are never reused.

export const MonitorErrors = {
  MON_ERR_UNSUPPORTED_PLATFORM: {
    message: 'the workload monitor reads /proc and runs on Linux only',
  },
  MON_ERR_PROC_UNREADABLE: {
    message: 'could not read a /proc file the monitor needs',
  },
  MON_ERR_PROC_MALFORMED: {
    message: 'a /proc file did not have the expected format',
  },
  MON_ERR_INTERFACE_NOT_FOUND: {
    message: 'the network interface named in monitor.interface is not in /proc/net/dev',
  },
} as const;

export type MonitorErrorCode = keyof typeof MonitorErrors;

/** An error with a stable code; `message` names the specific problem (file, interface, platform). */
export class MonitorError extends Error {
  readonly code: MonitorErrorCode;
  constructor(code: MonitorErrorCode, detail?: string, options?: { cause?: unknown }) {
    super(detail ? `${MonitorErrors[code].message}: ${detail}` : MonitorErrors[code].message, options);
    this.name = 'MonitorError';
    this.code = code;
  }
}

/** Throws MON_ERR_UNSUPPORTED_PLATFORM unless running on Linux (everything here reads /proc). */
export function assertLinux(platform: NodeJS.Platform = process.platform): void {
  if (platform !== 'linux') {
    throw new MonitorError(
      'MON_ERR_UNSUPPORTED_PLATFORM',
      `this is ${platform}; run DotSlash on Linux (it samples CPU and network counters from /proc)`,
    );
  }
}
