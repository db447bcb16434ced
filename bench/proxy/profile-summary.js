// Summarises a V8 .cpuprofile (from `node --cpu-prof`): top functions by self time, time by
// area (our data path, undici, pino, Node core, GC, ...), and our own functions by total time.
// Usage: node bench/proxy/profile-summary.js FILE.cpuprofile [--top N] [--skip-ms MS]  (Markdown)
//        node bench/proxy/profile-summary.js FILE.cpuprofile --callers writev [--depth 4]
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
export function summarise(profile, { top = 25, root, skipMs = 0 } = {}) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfUs = new Map(); // node id -> microseconds
  const { samples, timeDeltas } = profile;
  let elapsed = 0;
  for (let i = 0; i < samples.length; i++) {
    // timeDeltas[i] is the time since the previous sample; charge it to this sample's node.
    const d = Math.max(0, timeDeltas[i] ?? 0);
    elapsed += d;
    // Skip start-up and warm-up (module loading, JIT) so the summary shows the steady state.
    if (elapsed < skipMs * 1000) continue;
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

  // Inclusive time by area: a sample counts once for every area on its stack, so the native
  // writes a logger makes count towards the logger too.
  const areaIncl = new Map();
  for (const [id, us] of selfUs) {
    const seen = new Set();
    for (let n = id; n !== undefined; n = parent.get(n)) {
      const a = area(byId.get(n).callFrame);
      if (a === 'root' || a === 'idle' || seen.has(a)) continue;
      seen.add(a);
      areaIncl.set(a, (areaIncl.get(a) ?? 0) + us);
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
    areasInclusive: sortDesc([...areaIncl].map(([name, us]) => ({ name, us })))
      .slice(0, top)
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

/**
 * Where `name` is called from: its self time split by the chain of up to `depth` callers
 * above it (for reading a profile, e.g. which code path does the `writev` calls).
 */
export function callers(profile, name, { depth = 4, top = 10, root } = {}) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const selfUs = new Map();
  let busy = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const d = Math.max(0, profile.timeDeltas[i] ?? 0);
    selfUs.set(profile.samples[i], (selfUs.get(profile.samples[i]) ?? 0) + d);
    if (byId.get(profile.samples[i]).callFrame.functionName !== '(idle)') busy += d;
  }
  const chains = new Map();
  for (const [id, us] of selfUs) {
    if (byId.get(id).callFrame.functionName !== name) continue;
    const parts = [];
    for (let n = parent.get(id); n !== undefined && parts.length < depth; n = parent.get(n)) {
      const f = byId.get(n).callFrame;
      if (f.functionName === '(root)') break;
      parts.push(`${f.functionName || '(anonymous)'} ${where(f, root)}`);
    }
    const k = parts.join(' < ');
    chains.set(k, (chains.get(k) ?? 0) + us);
  }
  return [...chains]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([chain, us]) => ({ chain, pct: busy > 0 ? (100 * us) / busy : 0 }));
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
    ...s.areas.filter((a) => a.pct >= 0.5).map((a) => `| ${a.name} | ${p(a.pct)} |`),
    `| everything else (areas under 0.5% each) | ${p(s.areas.filter((a) => a.pct < 0.5).reduce((t, a) => t + a.pct, 0))} |`,
    '',
    '### Total (inclusive) time by area',
    '',
    'A sample counts once for every area on its stack (so these add up to more than 100%).',
    '',
    '| area | total % |',
    '| --- | ---: |',
    ...s.areasInclusive.map((a) => `| ${a.name} | ${p(a.pct)} |`),
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
  const arg = (flag) => {
    const i = process.argv.indexOf(flag);
    return i > 0 ? process.argv[i + 1] : undefined;
  };
  const top = Number(arg('--top') ?? 25);
  const skipMs = Number(arg('--skip-ms') ?? 0);
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
  const profile = JSON.parse(fs.readFileSync(file, 'utf8'));
  const fn = arg('--callers');
  if (fn) {
    // `--callers writev [--depth 4]`: which call chains the function's self time comes from.
    for (const c of callers(profile, fn, { depth: Number(arg('--depth') ?? 4), top, root })) {
      console.log(`${c.pct.toFixed(1).padStart(5)}%  ${c.chain}`);
    }
  } else {
    const s = summarise(profile, { top, root, skipMs });
    console.log(summaryMarkdown(s, { title: `Where the time goes: ${path.basename(file)}` }));
  }
}
