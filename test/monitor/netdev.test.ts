// /proc/net/dev parsing: a sample text, the live file, and a missing interface.
import { describe, expect, it } from 'vitest';
import { MonitorError } from '../../src/monitor/errors.js';
import { parseNetDev, readInterfaceBytes } from '../../src/monitor/netdev.js';

const SAMPLE = `Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:   39611     541    0    0    0     0          0         0    39611     541    0    0    0     0       0          0
  eth0: 248728485    8304    0    0    0     0          0         0   642825    5068    0    0    0     0       0          0
wlp2s0:1234567890 99 0 0 0 0 0 0 987654321 77 0 0 0 0 0 0
`;

describe('parseNetDev', () => {
  it('reads rx and tx bytes per interface, skipping the two header lines', () => {
    const m = parseNetDev(SAMPLE);
    expect([...m.keys()]).toEqual(['lo', 'eth0', 'wlp2s0']);
    expect(m.get('eth0')).toEqual({ rx: 248728485, tx: 642825 });
    expect(m.get('lo')).toEqual({ rx: 39611, tx: 39611 });
    // A long name glued to its first counter still parses.
    expect(m.get('wlp2s0')).toEqual({ rx: 1234567890, tx: 987654321 });
  });

  it('rejects a truncated line with MON_ERR_PROC_MALFORMED', () => {
    expect(() => parseNetDev('  eth0: 1 2 3\n')).toThrow(MonitorError);
  });

  it('reads the live file, which always has lo', () => {
    const lo = readInterfaceBytes('lo');
    expect(lo.rx).toBeGreaterThanOrEqual(0);
    expect(lo.tx).toBeGreaterThanOrEqual(0);
  });

  it('names the interfaces there are when the configured one is missing', () => {
    try {
      readInterfaceBytes('no-such-if0');
      expect.unreachable();
    } catch (err) {
      expect((err as MonitorError).code).toBe('MON_ERR_INTERFACE_NOT_FOUND');
      expect((err as Error).message).toMatch(/no-such-if0.*lo/);
    }
  });
});
