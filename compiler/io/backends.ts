/**
 * Backend registry for `seqc run --backend <name>`: a map name -> runner. `cpu` is the float64
 * reference interpreter; the WebGPU and CUDA backends add themselves with registerBackend().
 * Every runner takes canonical-layout tensors (see manifest.ts) and returns canonical-layout results.
 */
import type { Model } from "../ir/types.ts";
import { interpret, type RunInputs, type RunResult } from "../ir/interpret.ts";

/** `form`: auto (default) or a form name (sequential, scan, chunked) for backends that implement several. */
export type BackendRunner = (model: Model, run: RunInputs, opts?: { form?: string }) => Promise<RunResult> | RunResult;

const BACKENDS = new Map<string, BackendRunner>([["cpu", (model, run) => interpret(model, run)]]);

export function registerBackend(name: string, runner: BackendRunner): void {
  BACKENDS.set(name, runner);
}

export function getBackend(name: string): BackendRunner | undefined {
  return BACKENDS.get(name);
}

export function backendNames(): string[] {
  return [...BACKENDS.keys()];
}
