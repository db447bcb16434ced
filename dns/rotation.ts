// The order of a multi-address answer, per query. Every answer lists the whole set; what rotates is
// which address comes first, since stub resolvers mostly use the first (RFC 6724 sorting aside).
// Equal weights: plain rotation. Weights: smooth weighted round robin (nginx's) over a short
// cycle, so over a cycle each address leads in proportion to its weight. The cycle is encoded
// once per snapshot; a query only advances a cursor.

/** Most precomputed orders (encodings) per record set; weights are scaled to fit. */
export const MAX_CYCLE = 64;

/** The answer orders of a set of `weights.length` values (indexes into the set), one per query in turn. */
export function answerOrders(weights: readonly number[]): number[][] {
  const n = weights.length;
  if (n <= 1) return [weights.map((_, i) => i)];
  const rotate = (first: number): number[] => Array.from({ length: n }, (_, k) => (first + k) % n);
  if (weights.every((w) => w === weights[0])) {
    // Plain rotation; with more values than the cycle holds, leaders are spread evenly.
    const count = Math.min(n, MAX_CYCLE);
    return Array.from({ length: count }, (_, r) => rotate(Math.floor((r * n) / count)));
  }
  const shares = integerShares(weights);
  const total = shares.reduce((a, b) => a + b, 0);
  const current = new Array<number>(n).fill(0);
  const orders: number[][] = [];
  for (let step = 0; step < total; step++) {
    let best = 0;
    for (let i = 0; i < n; i++) {
      current[i]! += shares[i]!;
      if (current[i]! > current[best]!) best = i;
    }
    current[best]! -= total;
    orders.push(rotate(best));
  }
  return orders;
}

/** Weights as small integers (each >= 1) whose sum fits MAX_CYCLE where possible, keeping their ratios. */
function integerShares(weights: readonly number[]): number[] {
  const sum = weights.reduce((a, b) => a + b, 0);
  const integral = weights.every((w) => Number.isInteger(w));
  if (integral && sum <= MAX_CYCLE) {
    const g = weights.reduce((a, b) => gcd(a, b));
    return weights.map((w) => w / g);
  }
  const budget = Math.max(MAX_CYCLE, weights.length);
  return weights.map((w) => Math.max(1, Math.round((w / sum) * budget)));
}

function gcd(a: number, b: number): number {
  while (b !== 0) [a, b] = [b, a % b];
  return a;
}
