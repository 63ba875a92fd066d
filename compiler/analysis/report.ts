/** The analysis as JSON-ready data and as text for people (`seqc explain`). */
import { printExpr } from "../ir/print.ts";
import type { FormChoice } from "../backends/index.ts";
import type { ModelAnalysis } from "./types.ts";

export function analysisJson(a: ModelAnalysis, choice: Record<string, FormChoice>) {
  return {
    name: a.model,
    class: a.class,
    states: a.states.map((s) => ({
      name: s.name,
      shape: s.shape,
      class: s.class,
      affine: s.affine,
      ...(s.diagonalPart ? { diagonalPart: s.diagonalPart } : {}),
      ...(s.rank !== undefined ? { rank: s.rank } : {}),
      headAxes: s.headAxes,
      updates: s.updates,
      ...(s.coefficientStates.length ? { coefficientStates: s.coefficientStates } : {}),
      ...(s.coupledTo.length ? { coupledTo: s.coupledTo } : {}),
      ...(s.reason ? { reason: s.reason } : {}),
      ...(s.elementwise ? { elementwise: { a: printExpr(s.elementwise.a), b: printExpr(s.elementwise.b) } } : {}),
      notes: s.notes,
    })),
    readouts: a.readouts,
    forms: a.forms,
    choice,
    notes: a.notes,
  };
}

export function analysisText(a: ModelAnalysis, choice: Record<string, FormChoice>): string {
  const L: string[] = [`model ${a.model}: ${a.class}`];
  for (const s of a.states) {
    const extra = s.class === "diagonal+low-rank" ? ` (${s.diagonalPart} + rank ${s.rank})` : "";
    L.push(`  state ${s.name}${s.shape}: ${s.class}${extra}, ${s.affine ? "affine" : "not affine"}${s.headAxes.length ? `; independent per ${s.headAxes.join(", ")}` : ""}`);
    if (s.reason) L.push(`    why: ${s.reason}`);
    if (s.elementwise) L.push(`    ${s.name}_t = a_t * ${s.name}_{t-1} + b_t with a_t = ${printExpr(s.elementwise.a)}, b_t = ${printExpr(s.elementwise.b)}`);
    for (const n of s.notes) L.push(`    note: ${n}`);
  }
  for (const r of a.readouts) L.push(`  readout: ${r.text}`);
  L.push("  forms:");
  for (const f of a.forms) L.push(`    ${f.eligible ? "+" : "-"} ${f.form}: ${f.why}`);
  L.push("  choice:");
  for (const [b, c] of Object.entries(choice)) L.push(`    ${b}: ${c.form} (${c.why})`);
  for (const n of a.notes) L.push(`  note: ${n}`);
  return L.join("\n");
}
