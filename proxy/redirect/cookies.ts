// Does a Cookie header carry one of the site's session cookies? Looks at cookie names only,
// with indexOf over the raw header: no split, no per-request allocation.

/** RFC 6265 section 4.1.1: a cookie-name is an RFC 7230 token. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/**
 * Compile the configured names into search needles. "name" matches that cookie exactly
 * (needle "name="); "prefix*" matches every cookie whose name starts with prefix (e.g.
 * "wordpress_logged_in_*"); "*" alone matches any cookie. Throws on a name that cannot be a
 * cookie name, which would otherwise silently never match.
 */
export function cookieNeedles(names: readonly string[]): string[] {
  const out: string[] = [];
  for (const name of names) {
    const prefix = name.endsWith('*');
    const base = prefix ? name.slice(0, -1) : name;
    if (!(prefix && base === '') && !TOKEN.test(base)) {
      throw new TypeError(
        `sessionCookies: "${name}" is not a cookie name (RFC 6265 token, optional trailing *)`,
      );
    }
    out.push(prefix ? base : `${base}=`);
  }
  return out;
}

/**
 * True when `header` (a Cookie field value, "a=1; b=2") has a cookie whose name a needle
 * matches. A needle counts only at the start of a name: at the start of the header or after
 * ";" and optional spaces. Values cannot contain ";" (RFC 6265 cookie-octet), so a match there
 * is never inside another cookie's value.
 */
export function hasCookie(header: string, needles: readonly string[]): boolean {
  if (header.length === 0) return false;
  for (let n = 0; n < needles.length; n++) {
    const needle = needles[n]!;
    let i = header.indexOf(needle);
    while (i !== -1) {
      if (atNameStart(header, i)) return true;
      i = header.indexOf(needle, i + 1);
    }
  }
  return false;
}

function atNameStart(header: string, i: number): boolean {
  let j = i - 1;
  let c = j >= 0 ? header.charCodeAt(j) : -1;
  while (c === 0x20 || c === 0x09) c = --j >= 0 ? header.charCodeAt(j) : -1;
  return c === -1 || c === 0x3b; // start of header or ';'
}
