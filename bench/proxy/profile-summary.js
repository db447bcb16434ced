// Summarises a V8 .cpuprofile (from `node --cpu-prof`): top functions by self time, time by
// area (our data path, undici, pino, Node core, GC, ...), and our own functions by total time.
// Usage: node bench/proxy/profile-summary.js FILE.cpuprofile [--top N]   (prints Markdown)
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Which area of the stack a call frame belongs to. */
function area(frame) {
  const { functionName: fn, url } = frame;
  if (fn === '(garbage collector)') return 'GC';
  if (fn === '(idle)') return 'idle';
  if (fn === '(program)') return 'V8/native, unattributed (program)';
  if (fn === '(root)') return 'root';
  if (!url) return 'native builtins / C++ bindings';
  if (url.startsWith('node:')) {
    const m = /^node:(?:internal\/)?([a-z_]+)/.exec(url);
    const mod = m ? m[1].replace(/^_/, '') : url;
    if (/^http|^streams?$|^net$|^stream_base|^timers|^events|^buffer|^url/.test(mod))
      return `node core: ${mod}`;
    return `node core: other (${mod})`;
  }
  if (url.includes('/node_modules/')) {
    const m = /\/node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
    return `dep: ${m ? m[1] : 'other'}`;
  }
  if (url.includes('/dist/proxy/') || url.includes('/proxy/')) return 'ours: proxy/ (data path)';
  if (url.includes('/dist/src/')) return 'ours: src/ (control plane)';
  return 'other';
}

function where(frame, root) {
  let url = frame.url || '';
  if (url.startsWith('file://')) url = fileURLToPath(url);
  if (root && url.startsWith(root)) url = path.relative(root, url);
  return url ? `${url}:${frame.lineNumber + 1}` : '(native)';
}

/**
 * Self time per function (summed over all its call-tree nodes, from the sample time deltas),
 * per area, and inclusive time of our own functions (recursion counted once).
 */
export function summarise(profile, { top = 25, root } = {}) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfUs = new Map(); // node id -> microseconds
  const { samples, timeDeltas } = profile;
  for (let i = 0; i < samples.length; i++) {
    // timeDeltas[i] is the time since the previous sample; charge it to this sample's node.
    const d = Math.max(0, timeDeltas[i] ?? 0);
    selfUs.set(samples[i], (selfUs.get(samples[i]) ?? 0) + d);
  }
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

  const key = (f) => `${f.functionName || '(anonymous)'}\u0000${f.url}\u0000${f.lineNumber}`;
  const fnSelf = new Map();
  const areaSelf = new Map();
  let total = 0;
  let idle = 0;
  for (const [id, us] of selfUs) {
    const f = byId.get(id).callFrame;
    const a = area(f);
    total += us;
    if (a === 'idle') idle += us;
    areaSelf.set(a, (areaSelf.get(a) ?? 0) + us);
    const k = key(f);
    const e = fnSelf.get(k) ?? {
      name: f.functionName || '(anonymous)',
      where: where(f, root),
      area: a,
      us: 0,
    };
    e.us += us;
    fnSelf.set(k, e);
  }

  // Inclusive time of our functions: a sample counts once per distinct function on its stack.
  const oursIncl = new Map();
  for (const [id, us] of selfUs) {
    const seen = new Set();
    for (let n = id; n !== undefined; n = parent.get(n)) {
      const f = byId.get(n).callFrame;
      if (!area(f).startsWith('ours')) continue;
      const k = key(f);
      if (seen.has(k)) continue;
      seen.add(k);
      const e = oursIncl.get(k) ?? { name: f.functionName || '(anonymous)', where: where(f, root), us: 0 };
      e.us += us;
      oursIncl.set(k, e);
    }
  }

  const busy = total - idle;
  const pct = (us) => (busy > 0 ? (100 * us) / busy : 0);
  const sortDesc = (xs) => [...xs].sort((a, b) => b.us - a.us);
  return {
    totalMs: total / 1000,
    busyMs: busy / 1000,
    idleMs: idle / 1000,
    areas: sortDesc([...areaSelf].map(([name, us]) => ({ name, us })))
      .filter((a) => a.name !== 'idle')
      .map((a) => ({ ...a, pct: pct(a.us) })),
    topSelf: sortDesc(fnSelf.values())
      .filter((f) => f.area !== 'idle')
      .slice(0, top)
      .map((f) => ({ ...f, pct: pct(f.us) })),
    oursInclusive: sortDesc(oursIncl.values())
      .slice(0, top)
      .map((f) => ({ ...f, pct: pct(f.us) })),
  };
}

export function summaryMarkdown(s, { title = 'Where the time goes', context = '' } = {}) {
  const p = (x) => `${x.toFixed(1)}%`;
  const lines = [`## ${title}`, ''];
  if (context) lines.push(context, '');
  lines.push(
    `Busy ${s.busyMs.toFixed(0)} ms of ${s.totalMs.toFixed(0)} ms profiled (idle ${s.idleMs.toFixed(0)} ms). ` +
      'Percentages are of busy (non-idle) time.',
    '',
    '### Self time by area',
    '',
    '| area | self % |',
    '| --- | ---: |',
    ...s.areas.map((a) => `| ${a.name} | ${p(a.pct)} |`),
    '',
    '### Top functions by self time',
    '',
    '| # | function | where | area | self % |',
    '| ---: | --- | --- | --- | ---: |',
    ...s.topSelf.map((f, i) => `| ${i + 1} | \`${f.name}\` | ${f.where} | ${f.area} | ${p(f.pct)} |`),
    '',
    '### Our functions by total (inclusive) time',
    '',
    '| function | where | total % |',
    '| --- | --- | ---: |',
    ...s.oursInclusive.map((f) => `| \`${f.name}\` | ${f.where} | ${p(f.pct)} |`),
    '',
  );
  return lines.join('\n');
}

// CLI use: summarise a file given on the command line.
if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const file = process.argv[2];
  if (!file) {
    console.error('usage: node bench/proxy/profile-summary.js FILE.cpuprofile [--top N]');
    process.exit(2);
  }
  const ti = process.argv.indexOf('--top');
  const top = ti > 0 ? Number(process.argv[ti + 1]) : 25;
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
  const s = summarise(JSON.parse(fs.readFileSync(file, 'utf8')), { top, root });
  console.log(summaryMarkdown(s, { title: `Where the time goes: ${path.basename(file)}` }));
}
