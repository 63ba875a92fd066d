// The float64 reference of the token-aligned delta backward (test/helpers/delta-ref.ts), which the delta kernels'
// emulation tests compare against: its gradients against central finite differences of the token loop.
import { describe, expect, it } from "vitest";
import { deltaBackward, deltaForward, nChunks, prepAll, prepFwdChunk, walk, type DeltaInputs, type DeltaShape } from "./helpers/delta-ref.ts";
import { rng } from "./helpers/random.ts";

function inputs(s: DeltaShape, decay: boolean | "key", init: boolean, seed: number): DeltaInputs {
  const r = rng(seed), n = (m: number, f: () => number) => Float64Array.from({ length: m }, f);
  const BTH = s.B * s.T * s.H;
  return {
    u: n(BTH * s.K, () => r()), w: n(BTH * s.K, () => r()), k: n(BTH * s.K, () => r()), q: n(BTH * s.K, () => r()), v: n(BTH * s.V, () => 2 * r()),
    ld: decay ? n(decay === "key" ? BTH * s.K : BTH, () => -(r() + 0.5)) : null, S: init ? n(s.B * s.H * s.K * s.V, () => r()) : null,
    ...(decay === "key" ? { perKey: true } : {}),
  };
}

const loss = (inp: DeltaInputs, dY: Float64Array, dS: Float64Array | null, s: DeltaShape) => {
  const { y, SF } = deltaForward(inp, s);
  let l = 0;
  for (let i = 0; i < y.length; i++) l += y[i] * dY[i];
  if (dS) for (let i = 0; i < SF.length; i++) l += SF[i] * dS[i];
  return l;
};

describe("delta backward reference (float64)", () => {
  for (const [s, decay, init, final] of [
    [{ B: 2, T: 11, H: 2, K: 3, V: 2, C: 4 }, true, true, true],
    [{ B: 1, T: 9, H: 1, K: 2, V: 3, C: 3 }, false, false, false],
    [{ B: 1, T: 1, H: 2, K: 3, V: 2, C: 4 }, true, true, false],
    [{ B: 2, T: 11, H: 2, K: 3, V: 2, C: 4 }, "key", true, true],
    [{ B: 1, T: 1, H: 1, K: 2, V: 3, C: 4 }, "key", false, true],
  ] as [DeltaShape, boolean | "key", boolean, boolean][]) {
    it(`T=${s.T} C=${s.C} decay=${decay} init=${init} final=${final}: gradients match central differences`, () => {
      const inp = inputs(s, decay, init, 7 + s.T);
      const r = rng(99);
      const dY = Float64Array.from({ length: s.B * s.T * s.H * s.V }, () => r());
      const dS = final ? Float64Array.from({ length: s.B * s.H * s.K * s.V }, () => r()) : null;
      // the forward walk's end state is the token loop's
      const pf = prepAll(s, (b, h, c) => prepFwdChunk(inp, s, b, h, c), inp.perKey);
      const fw = walk(pf, inp.S, s.B * s.H, nChunks(s), s.C, s.K, s.V, false);
      const { SF } = deltaForward(inp, s);
      for (let i = 0; i < SF.length; i++) expect(Math.abs(fw.ZF[i] - SF[i])).toBeLessThan(1e-12);
      const g = deltaBackward(inp, dY, dS, s);
      const pairs: [Float64Array, Float64Array][] = [[inp.u, g.du], [inp.w, g.dw], [inp.k, g.dk], [inp.v, g.dv], [inp.q, g.dq]];
      if (inp.ld && g.dld) pairs.push([inp.ld, g.dld]);
      if (inp.S) pairs.push([inp.S, g.dS]);
      let worst = 0;
      for (const [x, gx] of pairs) {
        const scale = Math.max(1, ...Array.from(gx, Math.abs)); // (an all-zero gradient, e.g. dw at T = 1 from a zero state: absolute)
        for (let i = 0; i < x.length; i++) {
          const x0 = x[i], e = 1e-5;
          x[i] = x0 + e; const lp = loss(inp, dY, dS, s);
          x[i] = x0 - e; const lm = loss(inp, dY, dS, s);
          x[i] = x0;
          worst = Math.max(worst, Math.abs((lp - lm) / (2 * e) - gx[i]) / scale);
        }
      }
      expect(worst).toBeLessThan(1e-6);
    });
  }
});
