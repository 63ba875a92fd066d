/** Pick a form per backend for a model (and optionally a shape). */
import type { Model } from "../ir/types.ts";
import { BACKENDS, type FormChoice } from "../backends/index.ts";
import { defaultForm } from "./forms.ts";
import type { ModelAnalysis } from "./types.ts";

export function chooseForms(model: Model, analysis: ModelAnalysis, shape?: Record<string, number>): Record<string, FormChoice> {
  const out: Record<string, FormChoice> = {};
  for (const b of BACKENDS) {
    if (b.chooseForm && shape) out[b.name] = b.chooseForm(model, analysis, shape);
    else out[b.name] = defaultForm(analysis, b.forms) as FormChoice;
  }
  return out;
}
