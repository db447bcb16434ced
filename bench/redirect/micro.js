// In-process cost of one Redirector decision (no sockets), as a cross-check for the wrk numbers:
// ns per decideRaw() at Pr = 1 over 3 sessions, for the bench's two header sets, plus an empty
// loop's cost. Run by bench/redirect/run.js; prints one JSON line.
// Usage: node bench/redirect/micro.js --module PATH
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';

const { values: opt } = parseArgs({
  options: { module: { type: 'string' }, n: { type: 'string', default: '2000000' } },
});
const mod = await import(pathToFileURL(opt.module).href);
const N = Number(opt.n);
const redirector = new mod.Redirector(
  mod.redirectSnapshot({
    pr: 1,
    sessions: [
      { id: 'a', vhost: 'vh1.rescue-a.example', scheme: 'http', rate: 1e9 },
      { id: 'b', vhost: 'vh2.rescue-b.example', scheme: 'http', rate: 2e9 },
      { id: 'c', vhost: 'vh3.rescue-c.example', scheme: 'http', rate: 3e9 },
    ],
    sessionCookies: ['PHPSESSID', 'wordpress_logged_in_*', 'sid'],
  }),
);
const url = '/articles/2026/11/flash-crowd.html?ref=front&utm_source=news';
const sets = {
  minimal: ['Host', '127.0.0.1:8080'],
  browser: [
    'Host',
    '127.0.0.1:8080',
    'User-Agent',
    'Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0',
    'Accept',
    'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8',
    'Accept-Language',
    'en-US,en;q=0.5',
    'Accept-Encoding',
    'gzip, deflate, br',
    'Referer',
    'https://news.example/item?id=41',
    'Cookie',
    '_ga=GA1.2.1234567890.1700000000; theme=dark; consent=yes',
    'Upgrade-Insecure-Requests',
    '1',
    'Sec-Fetch-Mode',
    'navigate',
  ],
};

function time(fn) {
  let sink = 0;
  for (let i = 0; i < N / 10; i++) sink += fn();
  const t = process.hrtime.bigint();
  for (let i = 0; i < N; i++) sink += fn();
  const ns = Number(process.hrtime.bigint() - t) / N;
  if (sink === -1) process.stdout.write(''); // keep the result alive
  return ns;
}

const out = { n: N, loopNs: time(() => url.length) };
for (const [name, h] of Object.entries(sets))
  out[name] = time(() => redirector.decideRaw('GET', url, h).length);
process.stdout.write(JSON.stringify(out) + '\n');
