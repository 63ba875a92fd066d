/**
 * The tensors of a chain glue driver's case (test/torch/chain_glue.py, decay_anchor_glue.py, lowrank_glue.py): the
 * forward's inputs, the matrix state's initial value, the cotangents and the tensor specs, as the drivers read them.
 */
import { shapeSizes, type RunInputs } from "../../compiler/ir/interpret.ts";
import * as I from "../../compiler/ir/types.ts";
import { wire } from "./python-serve.ts";

export function glueTensors(model: I.Model, state: string, run: RunInputs, cot: { outputs: Record<string, Float64Array>; finalState: Record<string, Float64Array> }, dropStateCot: boolean) {
  const dims = { ...run.dims };
  const { batch: B, time: T } = run;
  const decl = (n: string) => model.tensors.find((t) => t.name === n)!;
  const sizes = (t: I.TensorDecl) => shapeSizes(t.shape, dims);
  const stateShape = sizes(decl(state));
  const spec = (kind: I.TensorDecl["kind"]) => I.tensorsOfKind(model, kind).map((t) => [t.name, sizes(t)]);
  const S0 = run.initialState?.[state];
  return {
    stateShape,
    given: Object.fromEntries(Object.entries(run.inputs).map(([k, v]) => [k, wire(v, [B, T, ...sizes(decl(k))])])),
    S0: S0 ? wire(S0, [B, ...stateShape]) : null,
    cotOutputs: Object.fromEntries(Object.entries(cot.outputs).map(([k, v]) => [k, wire(v, [B, T, ...sizes(decl(k))])])),
    cotState: dropStateCot ? null : wire(cot.finalState[state], [B, ...stateShape]),
    inputs: spec("input").filter(([n]) => run.inputs[n as string]), params: spec("param"), outputs: spec("output"),
  };
}
