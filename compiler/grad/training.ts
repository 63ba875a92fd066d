/**
 * What a generated class needs to train a model, built once at compile time: the recording forward
 * (each state before each step as an extra output) and the backward model (param adjoints in
 * states, same-shape inputs packed), with the names that tie them together. The backward unrolls the
 * step's `for` loops, so it is built here only when their extents are known without the dims bound
 * at create() (literals and fixed dims); otherwise `why` says which loop stops it.
 */
import * as I from "../ir/types.ts";
import { recording, trainingBackward } from "./run.ts";
import type { GradNames } from "../../runtime/train.ts";

export type Training = { ok: true; record: I.Model; backward: I.Model; names: GradNames } | { ok: false; why: string };

function freeLoop(model: I.Model, body: I.Stmt[]): string | undefined {
  for (const s of body) {
    if (s.k !== "for") continue;
    const e = s.v.extent;
    if (e.kind === "dim" && model.dims.find((d) => d.name === e.name)?.fixed === undefined) return e.name;
    const inner = freeLoop(model, s.body);
    if (inner) return inner;
  }
  return undefined;
}

export function trainingModels(model: I.Model): Training {
  const dim = freeLoop(model, model.body);
  if (dim) return { ok: false, why: `${model.name}'s step loops over ${dim}, and its backward is built per value of ${dim}; compile-time training plans need the loop's extent fixed (declare ${dim} = <size>)` };
  const fixed = Object.fromEntries(model.dims.filter((d) => d.fixed !== undefined).map((d) => [d.name, d.fixed!]));
  const bw = trainingBackward(model, fixed);
  return { ok: true, record: recording(model), backward: bw.model, names: bw.names };
}
