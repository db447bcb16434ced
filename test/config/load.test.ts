// Config loading: defaults, every error kind with its exact position and key, ${ENV}
// substitution, deep freezing, and the flags-only config of `dotslash proxy`.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, formatIssue } from '../../src/config/errors.js';
import type { ConfigIssue } from '../../src/config/errors.js';
import { configFromFlags, loadConfigFile, parseConfig } from '../../src/config/load.js';
import { configSchema } from '../../src/config/schema.js';

/** The issues parseConfig throws for `text` (fails the test if it does not throw). */
function issuesOf(text: string, env: NodeJS.ProcessEnv = {}): readonly ConfigIssue[] {
  try {
    parseConfig(text, 'test.yaml', { env });
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).issues;
  }
  throw new Error('expected a ConfigError');
}

const lines = (...l: string[]): string => l.join('\n') + '\n';

describe('valid configuration', () => {
  it('fills every default around the one required key', () => {
    const cfg = parseConfig(lines('proxy:', '  upstreams: [http://127.0.0.1:8081]'), 'test.yaml', {
      env: {},
    });
    expect(cfg.proxy.listen).toBe('127.0.0.1:8080');
    expect(cfg.proxy.upstreams).toEqual(['http://127.0.0.1:8081']);
    expect(cfg.proxy.host_header).toBe('preserve');
    expect(cfg.proxy.timeouts.drain_ms).toBe(10_000);
    expect(cfg.proxy.limits.max_header_bytes).toBe(16_384);
    expect(cfg.proxy.access_log).toEqual({ enabled: true, output: 'stdout' });
    expect(cfg.admin).toEqual({
      listen: '127.0.0.1:9180',
      token_env: 'DOTSLASH_ADMIN_TOKEN',
      token_file: '.dotslash/admin.token',
    });
    expect(cfg.monitor.interval_ms).toBe(1000);
    expect(cfg.monitor.bytes_out).toEqual({ capacity: 12_500_000, lower: 0.5, upper: 0.8 });
    expect(cfg.log.level).toBe('info');
    expect(cfg.name).toBeUndefined();
  });

  it('examples/dotslash.yaml is valid and shows the true defaults', () => {
    const cfg = loadConfigFile(join(import.meta.dirname, '../../examples/dotslash.yaml'), { env: {} });
    const defaults = configSchema.parse({ proxy: { upstreams: ['http://127.0.0.1:8081'] } });
    expect(cfg).toEqual(defaults);
  });

  it('deep-freezes the result', () => {
    const cfg = parseConfig('proxy: { upstreams: [http://a.test:1] }', 'test.yaml', { env: {} });
    expect(Object.isFrozen(cfg)).toBe(true);
    expect(Object.isFrozen(cfg.proxy)).toBe(true);
    expect(Object.isFrozen(cfg.proxy.upstreams)).toBe(true);
    expect(Object.isFrozen(cfg.proxy.timeouts)).toBe(true);
    expect(Object.isFrozen(cfg.monitor.cpu.pids)).toBe(true);
    expect(() => {
      (cfg.proxy.timeouts as { drain_ms: number }).drain_ms = 1;
    }).toThrow(TypeError);
    expect(() => (cfg.proxy.upstreams as string[]).push('http://b.test')).toThrow(TypeError);
  });
});

describe('${ENV} substitution', () => {
  it('replaces references in string values, with :- defaults and $${ escapes', () => {
    const cfg = parseConfig(
      lines(
        'proxy:',
        '  upstreams: ["http://${UP_HOST}:${UP_PORT}"]',
        '  via: "${VIA_NAME:-fallback}"',
        '  host_header: "$${NOT_A_VAR}"',
        'admin:',
        '  token_file: ${SECRET_DIR}/token',
      ),
      'test.yaml',
      { env: { UP_HOST: '127.0.0.9', UP_PORT: '9000', SECRET_DIR: '/run/secrets' } },
    );
    expect(cfg.proxy.upstreams).toEqual(['http://127.0.0.9:9000']);
    expect(cfg.proxy.via).toBe('fallback');
    expect(cfg.proxy.host_header).toBe('${NOT_A_VAR}');
    expect(cfg.admin.token_file).toBe('/run/secrets/token');
  });

  it('names a missing variable, with the position of the value that uses it', () => {
    const issues = issuesOf(
      lines('proxy:', '  upstreams:', '    - http://127.0.0.1:1', '    - ${MISSING_UPSTREAM}'),
    );
    expect(issues).toEqual([
      {
        code: 'CFG_ERR_ENV_MISSING',
        file: 'test.yaml',
        line: 4,
        column: 7,
        path: 'proxy.upstreams[1]',
        message: 'environment variable MISSING_UPSTREAM is not set',
      },
    ]);
  });

  it('does not substitute inside keys', () => {
    const issues = issuesOf(lines('proxy:', '  upstreams: [http://a.test:1]', '  ${X}: 1'), { X: 'via' });
    expect(issues[0]).toMatchObject({ code: 'CFG_ERR_UNKNOWN_KEY', path: 'proxy.${X}' });
  });
});

describe('errors carry file:line:column and the key', () => {
  it('YAML syntax errors', () => {
    const issues = issuesOf(lines('proxy:', '  upstreams: [http://a.test:1', '  via: x'));
    expect(issues.length).toBeGreaterThan(0);
    expect(issues[0]).toMatchObject({ code: 'CFG_ERR_YAML', file: 'test.yaml', path: '' });
    expect(issues[0]!.line).toBeGreaterThanOrEqual(2);
  });

  it('an alias bomb ("billion laughs") is refused, not expanded', () => {
    const bomb = ['a: &a [x, x, x, x, x, x, x, x, x, x]'];
    for (let i = 1; i < 10; i++) {
      const prev = String.fromCharCode(96 + i);
      const cur = String.fromCharCode(97 + i);
      bomb.push(`${cur}: &${cur} [${Array(10).fill(`*${prev}`).join(', ')}]`);
    }
    const issues = issuesOf(lines(...bomb));
    expect(issues).toEqual([expect.objectContaining({ code: 'CFG_ERR_YAML', line: 1, column: 1 })]);
    expect(issues[0]!.message).toMatch(/alias/i);
  });

  it('duplicate keys are a YAML error at the second key', () => {
    const issues = issuesOf(lines('proxy:', '  upstreams: [http://a.test:1]', '  via: a', '  via: b'));
    expect(issues).toEqual([
      expect.objectContaining({
        code: 'CFG_ERR_YAML',
        line: 4,
        column: 3,
        message: 'Map keys must be unique',
      }),
    ]);
  });

  it('unknown key: points at the key and suggests the likely one', () => {
    const issues = issuesOf(
      lines('proxy:', '  upstreams: [http://a.test:1]', '  timeouts:', '    conect_ms: 5'),
    );
    expect(issues).toEqual([
      {
        code: 'CFG_ERR_UNKNOWN_KEY',
        file: 'test.yaml',
        line: 4,
        column: 5,
        path: 'proxy.timeouts.conect_ms',
        message: 'unknown key "conect_ms" (did you mean "connect_ms"?)',
      },
    ]);
  });

  it('unknown top-level key', () => {
    const issues = issuesOf(lines('proxy:', '  upstreams: [http://a.test:1]', 'zones:', '  zone: x'));
    expect(issues).toEqual([
      expect.objectContaining({ code: 'CFG_ERR_UNKNOWN_KEY', line: 3, column: 1, path: 'zones' }),
    ]);
  });

  it('missing key: points at the parent key', () => {
    const issues = issuesOf(lines('# comment', 'log:', '  level: info', 'proxy:', '  listen: 127.0.0.1:1'));
    expect(issues).toEqual([
      {
        code: 'CFG_ERR_MISSING_KEY',
        file: 'test.yaml',
        line: 4,
        column: 1,
        path: 'proxy.upstreams',
        message: 'required key "upstreams" is missing',
      },
    ]);
  });

  it('missing top-level section: points at the top of the file', () => {
    const issues = issuesOf(lines('', 'log:', '  level: info'));
    expect(issues).toEqual([
      expect.objectContaining({ code: 'CFG_ERR_MISSING_KEY', line: 1, column: 1, path: 'proxy' }),
    ]);
  });

  it('wrong type: points at the value', () => {
    const issues = issuesOf(lines('proxy:', '  upstreams: [http://a.test:1]', '  connections: lots'));
    expect(issues).toEqual([
      {
        code: 'CFG_ERR_INVALID_VALUE',
        file: 'test.yaml',
        line: 3,
        column: 16,
        path: 'proxy.connections',
        message: 'expected number, received string',
      },
    ]);
  });

  it('bad value inside a list: the index is in the key path', () => {
    const issues = issuesOf(lines('proxy:', '  upstreams:', '    - http://a.test:1', '    - ftp://b.test'));
    expect(issues).toEqual([
      expect.objectContaining({
        code: 'CFG_ERR_INVALID_VALUE',
        line: 4,
        column: 7,
        path: 'proxy.upstreams[1]',
        message: 'upstream URL must use http:// or https://',
      }),
    ]);
    expect(formatIssue(issues[0]!)).toBe(
      'test.yaml:4:7: proxy.upstreams[1]: upstream URL must use http:// or https://',
    );
  });

  it('out of range, bad enum, empty list and a cross-field rule, all reported at once in file order', () => {
    const issues = issuesOf(
      lines(
        'proxy:',
        '  listen: 127.0.0.1:99999',
        '  upstreams: []',
        'monitor:',
        '  cpu:',
        '    source: everything',
        '  request_rate:',
        '    upper: 0.2',
      ),
    );
    expect(issues.map((i) => [i.line, i.column, i.path, i.code])).toEqual([
      [2, 11, 'proxy.listen', 'CFG_ERR_INVALID_VALUE'],
      [3, 14, 'proxy.upstreams', 'CFG_ERR_INVALID_VALUE'],
      [6, 13, 'monitor.cpu.source', 'CFG_ERR_INVALID_VALUE'],
      // lower is defaulted (absent), so the rule points at the section that holds upper.
      [7, 3, 'monitor.request_rate.lower', 'CFG_ERR_INVALID_VALUE'],
    ]);
    expect(issues[0]!.message).toBe('port must be 0-65535');
    expect(issues[1]!.message).toBe('at least one upstream URL is required');
    expect(issues[3]!.message).toBe('lower must be below upper');
  });

  it('a document that is not a mapping', () => {
    const issues = issuesOf('just a string\n');
    expect(issues).toEqual([
      expect.objectContaining({ code: 'CFG_ERR_INVALID_VALUE', line: 1, column: 1, path: '' }),
    ]);
  });

  it('an unreadable file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'dotslash-cfg-'));
    expect(() => loadConfigFile(join(dir, 'nope.yaml'))).toThrow(
      /nope\.yaml:1:1: cannot read file \(ENOENT\)/,
    );
    try {
      loadConfigFile(join(dir, 'nope.yaml'));
    } catch (err) {
      expect((err as ConfigError).code).toBe('CFG_ERR_READ');
    }
  });

  it('loadConfigFile labels positions with the file path', () => {
    const dir = mkdtempSync(join(tmpdir(), 'dotslash-cfg-'));
    const file = join(dir, 'site.yaml');
    writeFileSync(file, lines('proxy:', '  upstreams: [http://a.test:1]', '  bogus: 1'));
    expect(() => loadConfigFile(file)).toThrow(`${file}:3:3: proxy.bogus: unknown key "bogus"`);
  });
});

describe('configFromFlags (dotslash proxy)', () => {
  it('builds a full config from the flags', () => {
    const cfg = configFromFlags({
      listen: '0.0.0.0:80',
      upstreams: ['http://127.0.0.1:8081', 'http://127.0.0.1:8082'],
    });
    expect(cfg.proxy.listen).toBe('0.0.0.0:80');
    expect(cfg.proxy.upstreams).toHaveLength(2);
    expect(cfg.admin.listen).toBe('127.0.0.1:9180');
    expect(Object.isFrozen(cfg.proxy)).toBe(true);
  });

  it('names the flag and value that is wrong', () => {
    try {
      configFromFlags({ listen: 'localhost', upstreams: ['not a url'], admin: '127.0.0.1:9180' });
      expect.unreachable();
    } catch (err) {
      const e = err as ConfigError;
      expect(e.issues.every((i) => i.code === 'CFG_ERR_FLAG')).toBe(true);
      expect(e.message).toContain('--listen "localhost": expected HOST:PORT');
      expect(e.message).toContain('--upstream "not a url": expected an absolute URL');
    }
  });
});
