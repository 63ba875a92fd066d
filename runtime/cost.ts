/**
 * The cost model that picks a form when the user asks for `auto`: an estimate of each applicable
 * variant's time from its plan's cost terms (bytes moved, serial steps per thread, threads), on a
 * nominal device profile. Coarse on purpose: it must rank forms, not predict milliseconds.
 */
import { evalSize, formEnv, type Env, type FormPlan } from "./plan.ts";

export interface DeviceProfile {
  /** Sustained device memory bandwidth, bytes/s. */
  bandwidth: number;
  /** Threads the device keeps in flight at once. */
  residentThreads: number;
  /** Seconds one dependent step of a thread costs (a memory round trip, amortised). */
  stepSeconds: number;
  /** Seconds per unit of serial work inside a step. */
  workSeconds: number;
}

/** A large discrete GPU (H100-class); used when nothing better is known. */
export const NOMINAL_GPU: DeviceProfile = { bandwidth: 2.5e12, residentThreads: 132 * 2048, stepSeconds: 4e-7, workSeconds: 2e-9 };

export interface Estimate {
  form: FormPlan;
  seconds: number;
  memorySeconds: number;
  latencySeconds: number;
  env: Env;
}

export function estimate(form: FormPlan, base: Env, dev: DeviceProfile = NOMINAL_GPU): Estimate | undefined {
  // LIMIT_BINDING (storage binding size) defaults to the WebGPU floor where the caller gave no device limits
  const env = formEnv(form, { LIMIT_BINDING: 134217728, ...base });
  if (form.applicable !== undefined && evalSize(form.applicable, env) === 0) return undefined;
  const bytes = evalSize(form.cost.bytes, env);
  const serial = evalSize(form.cost.serialSteps, env);
  const threads = evalSize(form.cost.threads, env);
  const waves = Math.max(1, threads / dev.residentThreads);
  const memorySeconds = bytes / dev.bandwidth;
  // a thread's dependent rounds and its serial work cannot overlap; more threads than fit run in waves
  const syncs = form.cost.syncs !== undefined ? evalSize(form.cost.syncs, env) : env.T;
  const syncNs = form.cost.syncNs ?? dev.stepSeconds * 1e9;
  const workNs = form.cost.workNs ?? dev.workSeconds * 1e9;
  const latencySeconds = waves * (syncs * syncNs + serial * workNs) * 1e-9;
  return { form, seconds: Math.max(memorySeconds, latencySeconds), memorySeconds, latencySeconds, env };
}

/** Rank the applicable variants, fastest first. */
export function rankForms(forms: FormPlan[], base: Env, dev: DeviceProfile = NOMINAL_GPU): Estimate[] {
  return forms.map((f) => estimate(f, base, dev)).filter((e): e is Estimate => e !== undefined).sort((a, b) => a.seconds - b.seconds);
}
