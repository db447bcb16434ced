// Which requests the redirector may send to a rescuer (issue 3 item 4): GET/HEAD only, no
// Authorization, no session cookie, not a rescuer's fetch, not under an excluded path.
import { describe, expect, it } from 'vitest';
import { Redirector, redirectSnapshot, type RedirectSnapshot } from '../../../proxy/redirect/index.js';
import { cookieNeedles, hasCookie } from '../../../proxy/redirect/cookies.js';

/** Pr = 1, one session with a rate high enough that its bucket never runs dry in these tests. */
function redirector(over: Partial<RedirectSnapshot> = {}): Redirector {
  let t = 0;
  const r = new Redirector(
    redirectSnapshot({
      pr: 1,
      sessions: [{ id: 's1', vhost: 'vh1.rescue-a.example', scheme: 'http', rate: 1e6 }],
      sessionCookies: ['PHPSESSID', 'wordpress_logged_in_*'],
      ...over,
    }),
    // Each call moves the clock 1 s, so the bucket is full for every decision.
    { now: () => (t += 1000) },
  );
  return r;
}

const LOC = 'http://vh1.rescue-a.example';

describe('eligibility', () => {
  it('redirects GET and HEAD, nothing else', () => {
    const r = redirector();
    expect(r.decideRaw('GET', '/a', [])).toBe(`${LOC}/a`);
    expect(r.decideRaw('HEAD', '/a', [])).toBe(`${LOC}/a`);
    for (const m of ['POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'get', 'TRACE']) {
      expect(r.decideRaw(m, '/a', []), m).toBeNull();
    }
  });

  it('never redirects a request with Authorization, whatever its case', () => {
    const r = redirector();
    expect(r.decideRaw('GET', '/a', ['Authorization', 'Bearer x'])).toBeNull();
    expect(r.decideRaw('GET', '/a', ['authorization', 'Basic eDp5'])).toBeNull();
    expect(r.decideRaw('GET', '/a', ['Host', 'h', 'AUTHORIZATION', 'x'])).toBeNull();
    // Similar names are not Authorization.
    expect(r.decideRaw('GET', '/a', ['X-Authorization', 'x'])).toBe(`${LOC}/a`);
  });

  it('never redirects a request carrying a session cookie; other cookies are fine', () => {
    const r = redirector();
    const get = (cookie: string): string | null => r.decideRaw('GET', '/p', ['Host', 'h', 'Cookie', cookie]);
    expect(get('PHPSESSID=abc')).toBeNull();
    expect(get('theme=dark; PHPSESSID=abc')).toBeNull();
    expect(get('theme=dark;PHPSESSID=abc')).toBeNull();
    expect(get('a=1;  \tPHPSESSID=abc; b=2')).toBeNull();
    expect(get('wordpress_logged_in_0123abcd=u%7C1')).toBeNull();
    // Prefix match applies to names only.
    expect(get('x=1; wordpress_logged_in_=v')).toBeNull();
    // Other cookies, and session-cookie names inside names or values, do not count.
    expect(get('theme=dark')).toBe(`${LOC}/p`);
    expect(get('XPHPSESSID=abc')).toBe(`${LOC}/p`);
    expect(get('PHPSESSIDX=abc')).toBe(`${LOC}/p`);
    expect(get('phpsessid=abc')).toBe(`${LOC}/p`); // cookie names are case-sensitive
    expect(get('a=PHPSESSID=abc')).toBe(`${LOC}/p`);
    expect(get('a=xwordpress_logged_in_1')).toBe(`${LOC}/p`);
    expect(get('')).toBe(`${LOC}/p`);
    // Several Cookie fields (HTTP/2 style, or a client that splits them): each is checked.
    expect(r.decideRaw('GET', '/p', ['Cookie', 'a=1', 'cookie', 'PHPSESSID=z'])).toBeNull();
  });

  it('with no session cookies configured, cookies do not matter; "*" makes any cookie count', () => {
    expect(redirector({ sessionCookies: [] }).decideRaw('GET', '/', ['Cookie', 'PHPSESSID=1'])).toBe(
      `${LOC}/`,
    );
    const any = redirector({ sessionCookies: ['*'] });
    expect(any.decideRaw('GET', '/', ['Cookie', 'a=1'])).toBeNull();
    expect(any.decideRaw('GET', '/', ['Host', 'h'])).toBe(`${LOC}/`);
  });

  it("never redirects a rescuer's fetch (marker header present, any case, any value)", () => {
    const r = redirector();
    expect(r.decideRaw('GET', '/a', ['X-DotSlash-Rescuer', 'sig'])).toBeNull();
    expect(r.decideRaw('GET', '/a', ['x-dotslash-rescuer', ''])).toBeNull();
    const custom = redirector({ rescuerMarkerHeader: 'X-Rescue-Fetch' });
    expect(custom.decideRaw('GET', '/a', ['x-rescue-fetch', '1'])).toBeNull();
    expect(custom.decideRaw('GET', '/a', ['X-DotSlash-Rescuer', '1'])).toBe(`${LOC}/a`);
  });

  it('never redirects under an excluded path; the ACME challenge path is excluded by default', () => {
    const r = redirector();
    expect(r.decideRaw('GET', '/.well-known/acme-challenge/tok123', [])).toBeNull();
    expect(r.decideRaw('GET', '/.well-known/other', [])).toBe(`${LOC}/.well-known/other`);
    const ex = redirector({ excludedPaths: ['/admin', '/api/', '/.well-known/acme-challenge/'] });
    expect(ex.decideRaw('GET', '/admin', [])).toBeNull();
    expect(ex.decideRaw('GET', '/admin/users', [])).toBeNull();
    expect(ex.decideRaw('GET', '/admin?x=1', [])).toBeNull();
    expect(ex.decideRaw('GET', '/administrator', [])).toBe(`${LOC}/administrator`);
    expect(ex.decideRaw('GET', '/api/v1', [])).toBeNull();
    expect(ex.decideRaw('GET', '/api', [])).toBe(`${LOC}/api`);
    expect(ex.decideRaw('GET', '/.well-known/acme-challenge/t', [])).toBeNull();
  });

  it('only redirects origin-form targets', () => {
    const r = redirector();
    expect(r.decideRaw('GET', 'http://elsewhere.example/x', [])).toBeNull();
    expect(r.decideRaw('GET', '*', [])).toBeNull();
  });

  it('Location keeps the path and query exactly, with scheme, vhost and a non-default port', () => {
    const r = redirector({
      sessions: [{ id: 's', vhost: 'vh7.rescue-b.example', scheme: 'https', port: 8443, rate: 1e6 }],
    });
    expect(r.decideRaw('GET', '/dir/page.html?q=a%20b&x=1#no', [])).toBe(
      'https://vh7.rescue-b.example:8443/dir/page.html?q=a%20b&x=1#no',
    );
    expect(r.decideRaw('GET', '/', [])).toBe('https://vh7.rescue-b.example:8443/');
    // Default ports are left out of the Location.
    const d = redirector({
      sessions: [{ id: 's', vhost: 'vh1.r.example', scheme: 'https', port: 443, rate: 1e6 }],
    });
    expect(d.decideRaw('GET', '/x?y', [])).toBe('https://vh1.r.example/x?y');
  });
});

describe('cookie needles', () => {
  it('refuses names that cannot be cookie names', () => {
    for (const bad of ['', 'a b', 'a=b', 'a;b', 'a,b', 'é'])
      expect(() => cookieNeedles([bad]), bad).toThrow(TypeError);
  });
  it('finds names only at a name start', () => {
    const n = cookieNeedles(['sid']);
    expect(hasCookie('sid=1', n)).toBe(true);
    expect(hasCookie('a=b; sid=1', n)).toBe(true);
    expect(hasCookie('a=sid=1', n)).toBe(false);
    expect(hasCookie('xsid=1; a=sid=2', n)).toBe(false);
    expect(hasCookie('xsid=1; sid=2', n)).toBe(true);
  });
});
