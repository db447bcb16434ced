// The registry's replay cache: a nonce is refused while it could still be replayed, forgotten after.
import { describe, expect, it } from 'vitest';
import { ReplayCache } from '../../src/registry/replay.js';

describe('ReplayCache', () => {
  it('refuses a nonce seen within two spans, forgets it later, and refuses a flood', () => {
    let now = 0;
    const c = new ReplayCache({ spanMs: 1_000, maxEntries: 3, now: () => now });
    c.check('a', 'n1');
    expect(() => c.check('a', 'n1')).toThrow(/REPLAYED|already seen/);
    c.check('b', 'n1'); // another sender
    now = 1_500; // rotated once: n1 is in the previous generation
    expect(() => c.check('a', 'n1')).toThrow(/already seen/);
    c.check('a', 'n2');
    expect(() => c.check('a', 'n3')).toThrow(/too many/);
    now = 3_000; // two spans later: all forgotten
    c.check('a', 'n1');
  });
});
