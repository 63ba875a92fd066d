/** Results of the structure analysis (what `seqc explain --json` prints, and what form selection reads). */
import type * as I from "../ir/types.ts";

/** Ordered from most to least structured. */
export const CLASSES = ["identity", "scalar", "diagonal", "diagonal+low-rank", "dense", "nonlinear"] as const;
export type TransitionClass = (typeof CLASSES)[number];

export interface StateAnalysis {
  name: string;
  shape: string;
  /** Affine in its previous value with coefficients free of every state (the strict definition). */
  affine: boolean;
  class: TransitionClass;
  /** For diagonal+low-rank: the class of the diagonal part and the rank of the low-rank part. */
  diagonalPart?: "identity" | "scalar" | "diagonal" | "zero";
  rank?: number | string;
  /** State axes along which the update is independent and uniform (every read carries the index). */
  headAxes: string[];
  /** Other states the transition coefficients depend on (makes the state not affine, strictly). */
  coefficientStates: string[];
  /** Other states that enter the input term b_t (coupled system). */
  coupledTo: string[];
  /** Number of update statements per step (after unrolling micro-step loops). */
  updates: number;
  /** Why the state is not affine, when it is not. */
  reason?: string;
  notes: string[];
  /** For identity/scalar/diagonal states: new[vars] = a * old[vars] + b, a and b free of every state. */
  elementwise?: { vars: I.IndexVar[]; a: I.Expr; b: I.Expr };
}

export interface ReadoutAnalysis {
  output: string;
  state: string;
  kind: "contraction" | "elementwise" | "nonlinear";
  /** Dims contracted (summed) against the state, for contractions. */
  contracted: string[];
  /** Which value of the state is read: step t (after its update), t-1, or both. */
  reads: "updated" | "previous" | "both";
  text: string;
}

export type Form = "sequential" | "scan" | "chunked";

export interface FormEligibility { form: Form; eligible: boolean; why: string }

export interface ModelAnalysis {
  model: string;
  /** The least structured state class: the model's class. */
  class: TransitionClass;
  states: StateAnalysis[];
  readouts: ReadoutAnalysis[];
  forms: FormEligibility[];
  /** Every state has an elementwise (identity/scalar/diagonal) update and no state reads another. */
  scanEligible: boolean;
  /** The elementwise linear system of all states (k x k per element), when there is one: the general scan. */
  scanSystem?: import("./scan-system.ts").ScanSystem;
  notes: string[];
}
