// Experiment (issue 2's p99 target): FrontProxy in WORKERS processes (node:cluster, default 2)
// sharing one listener, each as bench/proxy/ours.js with the same arguments (access log as
// configured by default, every worker appending to the same stdout). Answers: does a proxy
// whose max is no longer set by one core get a lower tail at half of its max? Not product code:
// the daemon runs one process.
//   node bench/proxy/experiments/cluster-front.js --listen 127.0.0.1:PORT --upstream URL
//   node bench/proxy/run.js --variant cluster=bench/proxy/experiments/cluster-front.js
//   node bench/proxy/experiments/fixed-rate-sweep.js --targets direct,ours-cluster ...
import cluster from 'node:cluster';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const workers = Number(process.env.WORKERS ?? 2);
if (!Number.isInteger(workers) || workers < 1) {
  console.error(`WORKERS: want a positive whole number, got "${process.env.WORKERS}"`);
  process.exit(2);
}
let stopping = false;
// Round robin by the primary (Linux default) spreads connections evenly; the kernel's choice
// (SCHED_NONE) favours whichever worker happens to be awake.
cluster.schedulingPolicy = cluster.SCHED_RR;
cluster.setupPrimary({ exec: path.join(here, '../ours.js'), args: process.argv.slice(2) });
for (let i = 0; i < workers; i++) cluster.fork();
cluster.on('exit', (w, code, signal) => {
  if (!stopping) {
    console.error(`worker ${w.process.pid} exited (${signal ?? code}); stopping`);
    process.exit(1);
  }
});
const stop = () => {
  stopping = true;
  for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGTERM');
  setTimeout(() => process.exit(0), 1_500).unref();
  cluster.on('exit', () => {
    if (Object.keys(cluster.workers ?? {}).length === 0) process.exit(0);
  });
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
