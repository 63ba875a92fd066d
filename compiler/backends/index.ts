/**
 * Every backend, as data, in one table: its name, the forms it implements, an optional cost model
 * that picks a form for a shape (`seqc explain`, `seqc compile`), and the runner behind
 * `seqc run --backend <name>`. Each backend module exports its entry; nothing registers itself
 * by side effect, so any importer of this table sees every backend. `registerBackend` adds or
 * replaces an entry (plug-ins, test doubles).
 *
 * Runners take canonical-layout tensors (compiler/io/manifest.ts) and return canonical-layout results.
 */
import type { Model } from "../ir/types.ts";
import type { Form, ModelAnalysis } from "../analysis/types.ts";
import type { RunInputs, RunResult } from "../ir/interpret.ts";
import { cpuBackend } from "./cpu.ts";
import { webgpuBackend } from "./wgsl/run-backend.ts";
import { cudaBackend } from "./cuda/run-backend.ts";

export interface FormChoice { form: Form; why: string }

/** `form`: auto (default) or a form name (sequential, scan, chunked) for backends that implement several. */
export type BackendRunner = (model: Model, run: RunInputs, opts?: { form?: string }) => Promise<RunResult> | RunResult;

export interface BackendInfo {
  name: string;
  description: string;
  /** Forms this backend implements (for any model whose analysis makes them eligible). */
  forms: readonly Form[];
  /** Shape-aware choice; without it the most parallel eligible implemented form is taken. */
  chooseForm?: (model: Model, analysis: ModelAnalysis, shape: Record<string, number>) => FormChoice;
  /** Runs a model on this backend (`seqc run`). */
  run: BackendRunner;
}

export const BACKENDS: BackendInfo[] = [cpuBackend, webgpuBackend, cudaBackend];

export function registerBackend(b: BackendInfo): void {
  const i = BACKENDS.findIndex((x) => x.name === b.name);
  if (i >= 0) BACKENDS[i] = b;
  else BACKENDS.push(b);
}

export function getBackend(name: string): BackendInfo | undefined {
  return BACKENDS.find((b) => b.name === name);
}

export function backendNames(): string[] {
  return BACKENDS.map((b) => b.name);
}
