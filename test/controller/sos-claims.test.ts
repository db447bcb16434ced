// What an SOS may claim: its names must not be ours or another origin's we serve, and its
// front_url must be the origin's own (no SSRF through a rescuer, no hijack of our names).
import { describe, expect, it } from 'vitest';
import type { SosBody } from '../../rescue-protocol/index.js';
import { rescueSettings } from '../../src/controller/settings.js';
import { checkSosClaims } from '../../src/controller/sos-claims.js';
import { Session } from '../../src/sessions/session.js';
import { memberConfig } from './control-helpers.js';

const s = rescueSettings(
  memberConfig('rescue-b.example', ['origin.example', 'other.example'], {
    site: { names: ['rescue-b.example', 'www.rescue-b.example'], front_url: 'http://10.0.0.2:80' },
  }),
);
const CONTROL = 'http://10.0.0.1:9181';
const sos = (names: string[], front: string): SosBody => ({
  origin: { id: 'origin.example', names, front_url: front },
  content: 'static',
  want_rate: 100,
});
const check = (body: SosBody, live: Session[] = [], control: string | null = CONTROL) =>
  checkSosClaims(s, 'origin.example', body, control ?? undefined, live);

function liveFor(peer: string, names: string[]): Session {
  const x = new Session({
    key: 1,
    role: 'rescuer',
    peer,
    state: 'active',
    leaseMs: 1000,
    want: 10,
    nowMs: 0,
  });
  x.id = `s1.${peer}`;
  x.origin = { id: peer, names, front_url: `http://${peer}`, content: 'static', micro_cache: null };
  return x;
}

describe('checkSosClaims', () => {
  it('accepts a front under one of the origin names, its id, or its control host', () => {
    expect(check(sos(['www.origin.example'], 'http://www.origin.example:8080'))).toBeNull();
    expect(check(sos(['www.origin.example'], 'https://origin.example'))).toBeNull();
    expect(check(sos(['www.origin.example'], 'http://10.0.0.1:8080/base/'))).toBeNull();
  });

  it('refuses a front anywhere else: internal addresses, other hosts (CTL_ERR_FRONT_URL)', () => {
    for (const front of [
      'http://127.0.0.1:6379',
      'http://169.254.169.254/',
      'http://evil.example',
      'http://[::1]:80',
    ]) {
      expect(check(sos(['www.origin.example'], front))?.code, front).toBe('CTL_ERR_FRONT_URL');
    }
    // Without a known control URL only the origin's names count.
    expect(check(sos(['origin.example'], 'http://10.0.0.1:8080'), [], null)?.code).toBe('CTL_ERR_FRONT_URL');
  });

  it("refuses our own front even under the origin's names", () => {
    const r = checkSosClaims(
      s,
      'origin.example',
      sos(['10.0.0.2'], 'http://10.0.0.2:80'),
      'http://10.0.0.2:9181',
      [],
    );
    expect(r?.code).toBe('CTL_ERR_FRONT_URL');
  });

  it('refuses our own names and their sub-names, and names we serve for another origin (CTL_ERR_NAME_CONFLICT)', () => {
    for (const n of [
      'rescue-b.example',
      'WWW.Rescue-B.example',
      'vh7.rescue-b.example',
      'x.rescue-b.example',
    ]) {
      expect(check(sos([n], 'http://origin.example'))?.code, n).toBe('CTL_ERR_NAME_CONFLICT');
    }
    const live = [liveFor('other.example', ['www.other.example'])];
    const r = check(sos(['www.other.example'], 'http://origin.example'), live);
    expect(r).toEqual({ code: 'CTL_ERR_NAME_CONFLICT', detail: expect.stringContaining('other.example') });
    // The same origin asking again for its own names is not a conflict with itself.
    expect(
      check(sos(['www.origin.example'], 'http://origin.example'), [
        liveFor('origin.example', ['www.origin.example']),
      ]),
    ).toBeNull();
  });
});
