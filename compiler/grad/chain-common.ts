/**
 * What the two chunked backward chains share (chunked-chain.ts: transposed cores; chunked-chain-lowrank.ts:
 * chunk start states for low-rank cores): loading their generated models, the model's covered matrix form,
 * prep's and post's backward models with the names every chain's glue takes, and running the chain's
 * models through an executor for the runtime's glue (runtime/chunked-backward*.ts).
 */
import * as I from "../ir/types.ts";
import { evalConst, product, shapeSizes, type RunInputs, type RunResult } from "../ir/interpret.ts";
import { loadProgram } from "../frontend/load.ts";
import { matrixForm, type MatrixForm } from "../forms/matrix-form.ts";
import { buildBackward, type Backward } from "./backward.ts";
import type { ChainProblem } from "../../runtime/chunked-backward.ts";
import type { Tensors } from "../../runtime/train.ts";
import type { Cotangents } from "./run.ts";

/** The generated `.seq` sources `src` as models (files `${prefix}<n>.seq`); `what` names the chain in the error. */
export function loadGenerated(src: string[], prefix: string, what: string): I.Model[] {
  const files = new Map(src.map((s, n) => [`${prefix}${n}.seq`, s]));
  const prog = loadProgram([...files.keys()], files);
  const errors = prog.diagnostics.filter((d) => d.severity === "error");
  if (errors.length) throw new Error(`${what}: generated models do not load: ${errors.map((e) => e.message).join("; ")}`);
  return prog.models;
}

/** The model's matrix form, where `refusal` (why a chain does not cover a form) lets it through; throws otherwise. */
export function coveredForm(model: I.Model, refusal: (form: MatrixForm) => string | undefined): MatrixForm {
  const mf = matrixForm(model);
  if (!mf.ok) throw new Error(`${model.name} has no chunked form: ${mf.reason}`);
  const why = refusal(mf.form);
  if (why) throw new Error(`${model.name}: ${why}`);
  return mf.form;
}

/**
 * The backward models of prep and post at `dims` and the names every chain takes: `head` (the model, its
 * matrix state and its declared initial value, the state's axes) and `tail` (prep's outputs, the backward
 * models' names), which a chain's names put around its own.
 */
export function chainEnds(model: I.Model, form: MatrixForm, dims: Record<string, number>) {
  const postBw = buildBackward(form.post, dims, { paramAdjoints: "output" });
  const prepBw = buildBackward(form.prep, dims, { paramAdjoints: "output" });
  const bars = (b: Backward) => ({ outputBar: b.outputBar, inputBar: b.inputBar, paramBar: b.paramBar });
  const decl = model.tensors.find((t) => t.name === form.state)!;
  return {
    head: { model: model.name, state: form.state, stateInit: decl.init ? evalConst(decl.init, dims) : 0, heads: form.heads, key: form.key, value: form.value },
    tail: { prepOutputs: I.tensorsOfKind(form.prep, "output").map((o) => o.name), prepBw: bars(prepBw), postBw: bars(postBw) },
    models: { prep: form.prep, postBw: postBw.model, prepBw: prepBw.model },
  };
}

/** `run`'s dims with the sequence-length dims not given at its length. */
export function runDims(model: I.Model, run: RunInputs): Record<string, number> {
  const dims = { ...run.dims };
  for (const d of model.dims) if (d.sequenceDefault && dims[d.name] === undefined) dims[d.name] = run.time;
  return dims;
}

/**
 * The runner of a chain's parts (each model with the inputs it declares, in the form `forms` gives, through
 * `exec`; `dims` for the generated models, the model's own and its params for prep/post) and the problem its
 * glue takes. `what` names the chain in the error for a missing part.
 */
export function chainRunner<P extends string, F>(
  model: I.Model, run: RunInputs, cot: Cotangents, dims: Record<string, number>, chain: { names: { state: string }; models: Record<P, I.Model | undefined> },
  exec: (m: I.Model, run: RunInputs, form: F) => RunResult | Promise<RunResult>, forms: Record<P, F>, what: string,
) {
  const runPart = async (part: P, partDims: Record<string, number> | undefined, inputs: Tensors, initialState: Tensors | undefined, batch: number, time: number) => {
    const m = chain.models[part];
    if (!m) throw new Error(`${model.name}: ${what} has no ${part} model`);
    const own = new Set(I.tensorsOfKind(m, "input").map((t) => t.name));
    const ins = Object.fromEntries(Object.entries(inputs).filter(([k]) => own.has(k))) as Record<string, Float64Array>;
    const r = await exec(m, { ...run, dims: partDims ?? dims, batch, time, inputs: ins, params: partDims ? {} : run.params, initialState: initialState as Record<string, Float64Array> | undefined }, forms[part]);
    return { outputs: r.outputs as Tensors, finalState: r.finalState as Tensors };
  };
  const sized = (kind: I.TensorDecl["kind"]) => I.tensorsOfKind(model, kind).map((t) => ({ name: t.name, size: product(shapeSizes(t.shape, dims)) }));
  const state = chain.names.state;
  const problem: ChainProblem = {
    batch: run.batch, time: run.time, stateShape: shapeSizes(model.tensors.find((t) => t.name === state)!.shape, dims), inputs: sized("input"), params: sized("param"), outputs: sized("output"), given: run.inputs,
    initialState: run.initialState?.[state], cotOutputs: cot.outputs, cotState: cot.finalState?.[state], initialStates: run.initialState, cotStates: cot.finalState, alloc: (n) => new Float64Array(n),
  };
  return { runPart, problem };
}
