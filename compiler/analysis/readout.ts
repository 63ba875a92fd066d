/** How each output reads each state: a contraction (q^T S), elementwise, or through a nonlinearity. */
import * as I from "../ir/types.ts";
import type { Def } from "./inline.ts";
import { UPDATED } from "./inline.ts";
import { linearize, tensorsRead } from "./linearize.ts";
import type { ReadoutAnalysis } from "./types.ts";

export function analyzeReadouts(model: I.Model, outputs: Map<string, Def>): ReadoutAnalysis[] {
  const result: ReadoutAnalysis[] = [];
  const states = I.tensorsOfKind(model, "state");
  for (const [name, def] of outputs) {
    const read = tensorsRead(def.expr);
    for (const s of states) {
      const prev = read.has(s.name);
      const upd = read.has(s.name + UPDATED);
      if (!prev && !upd) continue;
      const reads = prev && upd ? "both" : upd ? "updated" : "previous";
      const which = reads === "updated" ? `the updated ${s.name} (${s.name}_t)` : reads === "previous" ? `the previous ${s.name} (${s.name}_{t-1})` : `both ${s.name}_{t-1} and ${s.name}_t`;
      const lin = linearize(def.expr, (t) => t === s.name || t === s.name + UPDATED);
      if (!lin.ok) {
        result.push({ output: name, state: s.name, kind: "nonlinear", contracted: [], reads, text: `${name} reads ${which} nonlinearly (${lin.reason.replace(/'(?=\[)/g, "")})` });
        continue;
      }
      const outIds = new Set(def.vars.map((v) => v.id));
      const contracted = new Set<string>();
      for (const t of lin.terms) {
        const sums = new Set(t.sums.map((v) => v.id));
        t.read.idx.forEach((ix, p) => {
          if (ix.kind === "var" && sums.has(ix.v.id) && !outIds.has(ix.v.id)) contracted.add(I.extentText(s.shape[p]));
        });
      }
      if (contracted.size) {
        const dims = [...contracted];
        result.push({ output: name, state: s.name, kind: "contraction", contracted: dims, reads, text: `${name} contracts ${which} over ${dims.join(", ")} (like q^T S)` });
      } else {
        result.push({ output: name, state: s.name, kind: "elementwise", contracted: [], reads, text: `${name} reads ${which} elementwise` });
      }
    }
  }
  return result;
}
