/**
 * The latency sketch: every quantile within the stated relative error of the exact nearest-rank
 * quantile of generated samples; merging equals sketching the union.
 */
import { describe, expect, it } from "vitest";
import { add, count, merge, quantile, RELATIVE_ERROR, type Sketch, summary } from "../../src/metrics/sketch";

/** A seeded generator (mulberry32), so failures replay. */
function rng(seed: number) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const exact = (sorted: number[], q: number) => sorted[Math.max(1, Math.ceil(q * sorted.length)) - 1]!;

const SAMPLES: Record<string, (r: () => number) => number> = {
  "uniform 1 ms – 10 s": (r) => 1 + r() * 10_000,
  "log-normal around 300 ms": (r) => Math.exp(Math.log(300) + 1.2 * Math.sqrt(-2 * Math.log(r() + 1e-12)) * Math.cos(2 * Math.PI * r())),
  "bimodal: fast hits and slow misses": (r) => (r() < 0.8 ? 5 + r() * 20 : 2_000 + r() * 60_000),
  "heavy tail up to hours": (r) => 10 / Math.max(1e-6, r()) ** 1.5,
};

describe("latency sketch", () => {
  for (const [name, gen] of Object.entries(SAMPLES)) {
    it(`${name}: p50/p70/p90/p98/p99 within ${RELATIVE_ERROR * 100} %`, () => {
      const r = rng(name.length * 7919);
      const values = Array.from({ length: 20_000 }, () => Math.max(1.0001, gen(r)));
      const sketch: Sketch = {};
      for (const v of values) add(sketch, v);
      const sorted = [...values].sort((a, b) => a - b);
      for (const q of [0.5, 0.7, 0.9, 0.98, 0.99]) {
        const want = exact(sorted, q);
        const got = quantile(sketch, q)!;
        expect(Math.abs(got - want) / want, `q=${q} want ${want} got ${got}`).toBeLessThanOrEqual(RELATIVE_ERROR + 1e-9);
      }
      expect(Object.keys(sketch).length).toBeLessThan(600);
    });
  }

  it("merging sketches equals sketching the union", () => {
    const r = rng(42);
    const a: Sketch = {};
    const b: Sketch = {};
    const both: Sketch = {};
    for (let i = 0; i < 5_000; i++) {
      const v = 1 + r() * 1_000;
      add(i % 2 ? a : b, v);
      add(both, v);
    }
    expect(merge({ ...a }, b)).toEqual(both);
    expect(count(both)).toBe(5_000);
  });

  it("summarizes an empty sketch as nulls", () => {
    expect(summary({})).toEqual({ p70: null, p90: null, p98: null, count: 0 });
    expect(summary(add({}, 250))).toMatchObject({ count: 1, p70: expect.any(Number) });
  });
});
