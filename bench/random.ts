/**
 * The seeded PRNG behind every generated data set (benchmarks, the load generator, tests):
 * mulberry32 (Tommy Ettinger) — tiny, fast, and good enough for test and load data. Same seed,
 * same sequence, on every platform.
 */

/** A seeded PRNG: returns floats in [0, 1). */
export type Rng = () => number;

export function mulberry32(seed: number): Rng {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
