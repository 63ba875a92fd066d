/**
 * Which forms (schedules) can compute a model, derived from the analysis. A form is a schedule,
 * not a different model: every eligible form computes the same function as the sequential one.
 */
import type { FormEligibility, ModelAnalysis, StateAnalysis } from "./types.ts";

/** `matrix`: whether the model has the matrix-state canonical form (compiler/forms/matrix-form.ts), with a summary or the reason it has none. */
export function formEligibility(states: StateAnalysis[], matrix: { ok: boolean; text: string; extended?: boolean }): FormEligibility[] {
  const scanBlock = states.find((s) => !s.elementwise);
  const chunkClasses = new Set(["identity", "scalar", "diagonal", "diagonal+low-rank"]);
  // a canonical form with value columns or a stabiliser covers states that are affine only given the stabiliser
  const chunkBlock = matrix.ok && matrix.extended ? undefined : states.find((s) => !s.affine || !chunkClasses.has(s.class) || s.coupledTo.length > 0);
  return [
    { form: "sequential", eligible: true, why: "every model runs step by step with its state on chip" },
    {
      form: "scan",
      eligible: !scanBlock,
      why: scanBlock
        ? `state ${scanBlock.name} is ${scanBlock.class}${scanBlock.coupledTo.length ? `, coupled to ${scanBlock.coupledTo.join(", ")}` : ""}: a scan needs elementwise (identity/scalar/diagonal) transitions`
        : "every state is X_t = a_t * X_{t-1} + b_t elementwise: (a, b) compose associatively",
    },
    {
      form: "chunked",
      eligible: !chunkBlock && matrix.ok,
      why: chunkBlock
        ? `state ${chunkBlock.name} is ${chunkBlock.class}${chunkBlock.coupledTo.length ? ` and coupled to ${chunkBlock.coupledTo.join(", ")}` : ""}: chunking needs affine identity/scalar/diagonal/diagonal+low-rank transitions`
        : matrix.ok
          ? `matrix state in canonical form (${matrix.text}): intra-chunk work becomes masked matmuls`
          : `no matrix-state canonical form: ${matrix.text}`,
    },
  ];
}

/** Preference among eligible forms a backend implements, when no shape-based cost model applies. */
const PREFERENCE = ["chunked", "scan", "sequential"] as const;

export function defaultForm(a: ModelAnalysis, implemented: readonly string[]): { form: string; why: string } {
  for (const f of PREFERENCE) {
    const e = a.forms.find((x) => x.form === f);
    if (e?.eligible && implemented.includes(f)) return { form: f, why: e.why };
  }
  return { form: "sequential", why: "the only form this backend implements for this model" };
}
