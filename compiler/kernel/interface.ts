/** The outside of a model as the kernels and the runtime see it: tensor specs, uniform fields, buffer names. */
import * as I from "../ir/types.ts";
import type { TensorSpec } from "../../runtime/plan.ts";
import { extentS } from "./symbolic.ts";

export const inputBuffer = (name: string) => `in_${name}`;
export const outputBuffer = (name: string) => `out_${name}`;
export const PARAMS = "params";
export const STATES = "states";
/** Initial states, read-only: kept apart from STATES because elements that share a state (a state
 *  without some partition axis) would otherwise read a final value another thread already wrote. */
export const STATES_IN = "states_in";
export const paramOffset = (name: string) => `PO_${name}`;
export const stateOffset = (name: string) => `SO_${name}`;
export const hasFlag = (name: string) => `has_${name}`;
export const initFlag = (name: string) => `init_${name}`;

export function tensorSpecs(model: I.Model): TensorSpec[] {
  return model.tensors
    .filter((t) => t.kind !== "let")
    .map((t) => ({
      name: t.name,
      role: t.kind as TensorSpec["role"],
      shape: t.shape.map(extentS),
      axes: t.shape.map((e) => (e.kind === "lit" ? e.value : e.name)),
      ...((t.kind === "input" || t.kind === "param") && t.init ? { optional: true } : {}),
    }));
}

/**
 * Uniform fields: B, T, a presence flag per optional input/param, an initial-state flag per state,
 * and each state's offset in the packed state buffer (laid out [state][B][...shape], so the offset
 * is B times the sizes of the states before it).
 */
export function uniformFields(model: I.Model): string[] {
  const u = ["B", "T"];
  for (const t of model.tensors) if ((t.kind === "input" || t.kind === "param") && t.init) u.push(hasFlag(t.name));
  for (const t of model.tensors) if (t.kind === "state") u.push(initFlag(t.name));
  for (const t of model.tensors) if (t.kind === "state") u.push(stateOffset(t.name));
  return u;
}
