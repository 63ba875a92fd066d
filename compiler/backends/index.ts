/**
 * Every backend, as data: its name, the forms it implements, and (optionally) a cost model that
 * picks a form for a shape. `seqc explain` and `seqc compile` read this table; adding a backend
 * touches no front-end file.
 */
import type { Model } from "../ir/types.ts";
import type { Form, ModelAnalysis } from "../analysis/types.ts";

export interface FormChoice { form: Form; why: string }

export interface BackendInfo {
  name: string;
  description: string;
  /** Forms this backend implements (for any model whose analysis makes them eligible). */
  forms: readonly Form[];
  /** Shape-aware choice; without it the most parallel eligible implemented form is taken. */
  chooseForm?: (model: Model, analysis: ModelAnalysis, shape: Record<string, number>) => FormChoice;
}

export const BACKENDS: BackendInfo[] = [
  { name: "cpu", description: "float64 reference interpreter (the oracle)", forms: ["sequential"] },
];

export function registerBackend(b: BackendInfo): void {
  const i = BACKENDS.findIndex((x) => x.name === b.name);
  if (i >= 0) BACKENDS[i] = b;
  else BACKENDS.push(b);
}
