// Experiment (issue 2's p99 target): what one sleep-and-wake costs in CPU on this machine.
// A proxy at a fixed, moderate rate is woken for a few requests at a time, so this cost is paid
// per request far more often than under wrk's saturating load. Two loops, each for --seconds:
//   - futex: Atomics.wait with a 1 ms timeout (a bare kernel sleep and timer wake-up);
//   - event loop: setInterval(1 ms) (the same, through libuv's epoll loop and Node's timers).
// Prints CPU µs (user + system) per wake-up. On bare metal both are a few µs; a virtual machine
// that exits to its hypervisor to halt and to program timers pays far more.
//   node bench/proxy/experiments/wakeup-cost.js [--seconds 5]
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '5' } } });
const ms = Number(values.seconds) * 1000;

function cpuUs() {
  const u = process.cpuUsage();
  return u.user + u.system;
}

const cell = new Int32Array(new SharedArrayBuffer(4));
let c0 = cpuUs();
let t0 = performance.now();
let n = 0;
while (performance.now() - t0 < ms) {
  Atomics.wait(cell, 0, 0, 1);
  n++;
}
const futex = { wakeups: n, cpuUs: (cpuUs() - c0) / n, wallMs: (performance.now() - t0) / n };

c0 = cpuUs();
t0 = performance.now();
n = 0;
await new Promise((resolve) => {
  const timer = setInterval(() => {
    n++;
    if (performance.now() - t0 >= ms) {
      clearInterval(timer);
      resolve();
    }
  }, 1);
});
const loop = { wakeups: n, cpuUs: (cpuUs() - c0) / n, wallMs: (performance.now() - t0) / n };

const fmt = (r) =>
  `${r.wakeups} wake-ups, ${r.cpuUs.toFixed(1)} µs CPU each, one every ${r.wallMs.toFixed(2)} ms`;
console.log(`futex sleep 1 ms:      ${fmt(futex)}`);
console.log(`event loop timer 1 ms: ${fmt(loop)}`);
