/**
 * A mergeable, bounded-size histogram for latencies (the DDSketch idea): a value v > 0 falls in
 * bin ceil(log_γ v) with γ = (1 + α) / (1 − α), so every quantile read back is within a relative
 * error α of a value in the sample. Bins are sparse counts; two sketches merge by adding counts.
 * With α = 2 % and values from 1 ms to 7 days, at most ~500 bins exist, most of them empty.
 */
export const RELATIVE_ERROR = 0.02;
const GAMMA = (1 + RELATIVE_ERROR) / (1 - RELATIVE_ERROR);
const LOG_GAMMA = Math.log(GAMMA);

/** Bin index → count. Values ≤ 1 ms share bin 0. */
export type Sketch = Record<string, number>;

export function binOf(value: number): number {
  return value <= 1 ? 0 : Math.ceil(Math.log(value) / LOG_GAMMA);
}

/** The representative value of a bin: within RELATIVE_ERROR of every value in it. */
function valueOf(bin: number): number {
  return bin === 0 ? 1 : (2 * GAMMA ** bin) / (GAMMA + 1);
}

export function add(sketch: Sketch, value: number): Sketch {
  const k = String(binOf(Math.max(0, value)));
  sketch[k] = (sketch[k] ?? 0) + 1;
  return sketch;
}

export function merge(into: Sketch, other: Sketch): Sketch {
  for (const [k, n] of Object.entries(other)) into[k] = (into[k] ?? 0) + n;
  return into;
}

export function count(sketch: Sketch): number {
  return Object.values(sketch).reduce((a, b) => a + b, 0);
}

/** The q-quantile (0 < q ≤ 1), by the nearest-rank rule; null for an empty sketch. */
export function quantile(sketch: Sketch, q: number): number | null {
  const total = count(sketch);
  if (total === 0) return null;
  const rank = Math.max(1, Math.ceil(q * total));
  let seen = 0;
  for (const bin of Object.keys(sketch).map(Number).sort((a, b) => a - b)) {
    seen += sketch[String(bin)]!;
    if (seen >= rank) return valueOf(bin);
  }
  return null;
}

/** p70, p90 and p98 in whole ms, and the sample count, as the metrics API shows them. */
export function summary(sketch: Sketch): { p70: number | null; p90: number | null; p98: number | null; count: number } {
  const r = (v: number | null) => (v === null ? null : Math.round(v));
  return { p70: r(quantile(sketch, 0.7)), p90: r(quantile(sketch, 0.9)), p98: r(quantile(sketch, 0.98)), count: count(sketch) };
}
