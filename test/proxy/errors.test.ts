// The PRX_ERR_* table: stable codes with a status and message, and the raw responses built
// from it are well-formed HTTP/1.1 with a matching Content-Length and a JSON body.
import { describe, expect, it } from 'vitest';
import { ProxyError, ProxyErrors, errorBodies, rawErrorResponses } from '../../proxy/errors.js';

describe('PRX_ERR_* codes', () => {
  it('every code has a 4xx/5xx status and a message, and a JSON body naming it', () => {
    for (const [code, e] of Object.entries(ProxyErrors)) {
      expect(code).toMatch(/^PRX_ERR_[A-Z_]+$/);
      expect(e.status).toBeGreaterThanOrEqual(400);
      expect(e.status).toBeLessThan(600);
      expect(e.message.length).toBeGreaterThan(5);
      const body = JSON.parse(errorBodies[code as keyof typeof ProxyErrors].toString()) as unknown;
      expect(body).toEqual({ error: { code, message: e.message } });
    }
  });

  it('raw responses are complete HTTP/1.1 messages with Connection: close', () => {
    for (const [code, e] of Object.entries(ProxyErrors)) {
      const text = rawErrorResponses[code as keyof typeof ProxyErrors].toString('latin1');
      const [head, body] = text.split('\r\n\r\n') as [string, string];
      expect(head).toMatch(new RegExp(`^HTTP/1\\.1 ${e.status} [A-Za-z ]+\\r\\n`));
      expect(head).toContain('\r\nConnection: close');
      expect(head).toContain(`\r\nContent-Length: ${Buffer.byteLength(body)}`);
    }
  });

  it('ProxyError carries code and status', () => {
    const err = new ProxyError('PRX_ERR_BODY_TOO_LARGE', 'over 10 bytes');
    expect(err.code).toBe('PRX_ERR_BODY_TOO_LARGE');
    expect(err.status).toBe(413);
    expect(err.message).toBe('request body too large: over 10 bytes');
  });
});
