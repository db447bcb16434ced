// Regenerates docs/errors.md from the errors.ts code tables (npm run docs:errors);
// test/e2e/docs.test.ts fails when the two differ.
import { errorTables } from './error-codes.js';

const out: string[] = [
  '# Error codes',
  '',
  'Every error DotSlash reports has a stable code, never reused: `CFG_ERR_*` (configuration),',
  '`PRX_ERR_*` (the proxy data path: the JSON body of a response the proxy generates is',
  '`{ "error": { "code", "message" } }`), `ADM_ERR_*` (admin listener), `MON_ERR_*` (workload',
  'monitor), and the codes of later folders. This file is generated from the `errors.ts` tables',
  '(`npm run docs:errors`); a test keeps the two equal.',
  '',
  'The CLI prints configuration errors as `file:line:column: key: message` and exits 1; runtime',
  'failures (such as a port already in use) exit 2.',
];

for (const { file, name, codes } of await errorTables()) {
  const withStatus = codes.some(([, e]) => e.status !== undefined);
  out.push('', `## ${file} (\`${name}\`)`, '');
  out.push(withStatus ? '| code | HTTP status | meaning |' : '| code | meaning |');
  out.push(withStatus ? '| --- | --- | --- |' : '| --- | --- |');
  for (const [code, e] of codes) {
    const msg = e.message.replace(/\|/g, '\\|');
    out.push(withStatus ? `| \`${code}\` | ${e.status ?? ''} | ${msg} |` : `| \`${code}\` | ${msg} |`);
  }
}
process.stdout.write(out.join('\n') + '\n');
