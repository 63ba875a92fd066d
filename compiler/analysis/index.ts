/** The structure analysis: per state, affine or not, transition class, readout; per model, eligible forms. */
import * as I from "../ir/types.ts";
import { inlineModel, Renamer } from "./inline.ts";
import { analyzeTransition } from "./transition.ts";
import { analyzeReadouts } from "./readout.ts";
import { formEligibility } from "./forms.ts";
import { matrixForm, type MatrixForm } from "../forms/matrix-form.ts";
import { scanSystem } from "./scan-system.ts";
import { CLASSES, type ModelAnalysis } from "./types.ts";

export * from "./types.ts";
export { defaultForm } from "./forms.ts";

function describeMatrixForm(f: MatrixForm): string {
  const decay = f.decay === "none" ? "no decay" : f.decay === "scalar" ? "scalar decay per head" : "per-key decay";
  const loops = f.steps.filter((s) => s.loop).length;
  const cols = f.columns.length ? `, value column${f.columns.length > 1 ? "s" : ""} ${f.columns.join(", ")} (normaliser)` : "";
  const stab = f.stabiliser ? `, stabiliser ${f.stabiliser.state} (max-plus pass; decays and input scales in log space relative to it)` : "";
  return `${decay}${f.lowRank ? ", low-rank updates (UT transform)" : ""}, ${f.steps.length} update${f.steps.length > 1 ? "s" : ""} per token${loops ? " incl. a micro-step loop" : ""}${cols}${stab}`;
}

export function analyzeModel(model: I.Model): ModelAnalysis {
  const renamer = new Renamer(model);
  const prev = inlineModel(model, "previous", renamer);
  const readout = inlineModel(model, "readout", renamer);
  const stateDecls = I.tensorsOfKind(model, "state");
  const stateNames = new Set(stateDecls.map((s) => s.name));
  const states = stateDecls.map((d) =>
    analyzeTransition(d, prev.states.get(d.name), { model, stateNames, updates: prev.updates.get(d.name) ?? 0, symbolicLoops: prev.symbolicLoops }),
  );
  const cls = states.reduce((acc, s) => (CLASSES.indexOf(s.class) > CLASSES.indexOf(acc) ? s.class : acc), "identity" as (typeof CLASSES)[number]);
  const notes: string[] = [];
  const coupled = states.filter((s) => s.coupledTo.length);
  if (coupled.length && states.every((s) => s.affine)) {
    notes.push(`states ${states.map((s) => s.name).join(", ")} form a jointly affine system (block transition coupling ${coupled.map((s) => `${s.name}<-${s.coupledTo.join(",")}`).join("; ")})`);
  }
  if (prev.symbolicLoops.length) notes.push(`micro-step loop over ${prev.symbolicLoops[0].extent} analysed symbolically (its extent is bound at run time)`);
  const mf = matrixForm(model);
  const sys = scanSystem(model, prev.states, renamer);
  const forms = formEligibility(states, mf.ok ? { ok: true, text: describeMatrixForm(mf.form), extended: !!mf.form.stabiliser || mf.form.columns.length > 0 } : { ok: false, text: mf.reason });
  return {
    model: model.name,
    class: cls,
    states,
    readouts: analyzeReadouts(model, readout.outputs),
    forms,
    scanEligible: forms.find((f) => f.form === "scan")!.eligible,
    ...(sys.ok ? { scanSystem: sys.system } : {}),
    notes,
  };
}
