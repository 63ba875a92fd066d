/**
 * Deterministic uniform numbers in [0, 1) (mulberry32): the one generator behind the test suite's
 * random inputs, the benchmark scripts' and the browser example's, so a seed means the same data
 * everywhere (the end-to-end test recomputes the page's inputs for the reference interpreter).
 */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The same numbers shifted to [-0.5, 0.5). */
export function centered(seed: number): () => number {
  const u = mulberry32(seed);
  return () => u() - 0.5;
}
