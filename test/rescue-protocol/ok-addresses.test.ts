// OK's optional `addresses` (issue 4 part B): the rescuer's front addresses for the origin's DNS.
import { describe, expect, it } from 'vitest';
import { parseReplyBody } from '../../rescue-protocol/messages.js';

const ok = { accepted: true, session: 's1.a.example', vhost: 'vh1.a.example', rate: 10, lease_ms: 30_000 };

describe('OK addresses', () => {
  it('is optional, and takes IPv4 and IPv6 literals', () => {
    expect(parseReplyBody('SOS', ok)).not.toHaveProperty('addresses');
    expect(parseReplyBody('SOS', { ...ok, addresses: ['192.0.2.1', '2001:db8::1'] })).toMatchObject({
      addresses: ['192.0.2.1', '2001:db8::1'],
    });
  });

  it('refuses names, garbage and absurd lists with a clear message', () => {
    expect(() => parseReplyBody('SOS', { ...ok, addresses: ['a.example'] })).toThrow(
      /addresses.0: must be an IPv4 or IPv6 address/,
    );
    expect(() => parseReplyBody('SOS', { ...ok, addresses: '192.0.2.1' })).toThrow(/addresses/);
    expect(() => parseReplyBody('SOS', { ...ok, addresses: Array(17).fill('192.0.2.1') })).toThrow(
      /addresses/,
    );
  });
});
