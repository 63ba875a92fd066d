/**
 * The sequential form's stream variant on a real GPU against the float64 interpreter (the test suite
 * runs it on lavapipe; this checks the barriers and the packed-param reads where threads really run
 * concurrently): lstm, gru, slstm at H=256-class dims, B=3, T=100, non-zero initial states, final
 * states compared; also with two batch rows per workgroup ($BB=2). Prints one line per case and exits
 * non-zero above 1e-4.
 *
 *   node dist/check-stream.js      (bundle: esbuild bench/webgpu/check-stream.ts --bundle --platform=node --format=esm --external:webgpu --external:prettier --external:ts-morph --outfile=dist/check-stream.js)
 */
import { join } from "node:path";
import { loadProgram } from "../../compiler/frontend/load.ts";
import { compileWgsl } from "../../compiler/backends/wgsl/index.ts";
import { interpret, type RunInputs } from "../../compiler/ir/interpret.ts";
import { relativeError } from "../../compiler/io/manifest.ts";
import { ModelRunner, requestDevice, ShapeError, type ModelPlan } from "../../runtime/index.ts";
import { randArray, rng, sizeOf } from "../../test/helpers/random.ts";

const device = await requestDevice();
const CASES: [string, Record<string, number>][] = [["lstm", { H: 256, I: 64 }], ["gru", { H: 256, I: 64 }], ["slstm", { NH: 4, DH: 64, I: 64 }]];
let bad = 0;
for (const [name, dims] of CASES) {
  const model = loadProgram([join(process.cwd(), "stdlib", `${name}.seq`)]).models[0];
  const B = 3, T = 100;
  const r = rng(17);
  const run: RunInputs = { dims, batch: B, time: T, inputs: {}, params: {}, initialState: {} };
  for (const t of model.tensors) {
    const n = sizeOf(t, dims);
    if (t.kind === "input") run.inputs[t.name] = randArray(B * T * n, () => r());
    else if (t.kind === "param" && t.shape.length > 0) run.params![t.name] = randArray(n, () => 0.2 * r());
    else if (t.kind === "state") run.initialState![t.name] = randArray(B * n, () => 0.5 * r());
  }
  const want = interpret(model, run);
  const plan = compileWgsl(model);
  for (const set of [{}, { $BB: 2 }] as Record<string, number>[]) {
    const p: ModelPlan = { ...plan, forms: plan.forms.filter((f) => f.variant === "stream").map((f) => ({ ...f, vars: f.vars.map(([k, e]) => [k, k in set ? set[k] : e] as [string, typeof e]) })) };
    const f32 = (o: Record<string, Float64Array> | undefined) => Object.fromEntries(Object.entries(o ?? {}).map(([k, v]) => [k, Float32Array.from(v)]));
    const runner = await ModelRunner.create(p, { device, dims, params: f32(run.params), tune: false });
    const full = runner.dimsFor(T);
    const inputs = Object.fromEntries(Object.entries(run.inputs).map(([k, a]) => [k, { data: Float32Array.from(a), shape: [B, T, ...model.tensors.find((t) => t.name === k)!.shape.map((e) => (e.kind === "lit" ? e.value : full[e.name]))] }]));
    let got: Awaited<ReturnType<ModelRunner["forward"]>>;
    try {
      got = await runner.forward(inputs, { initialState: f32(run.initialState), returnFinalState: true, form: "sequential" });
    } catch (e) {
      // a forced $BB whose workgroup memory exceeds the device's: nothing to check (the plan's own $BB fits)
      if (!(e instanceof ShapeError)) throw e;
      console.log(`check ${name} ${JSON.stringify(dims)} ${JSON.stringify(set)}: skipped, does not fit: ${e.message.slice(0, 160)}`);
      runner.dispose();
      continue;
    }
    runner.dispose();
    const errs: Record<string, number> = {};
    for (const [k, v] of Object.entries(want.outputs)) errs[k] = relativeError(Float64Array.from(got.outputs[k] as Float32Array), v);
    for (const [k, v] of Object.entries(want.finalState)) errs[`final ${k}`] = relativeError(Float64Array.from((got.finalState as Record<string, Float32Array>)[k]), v);
    const worst = Math.max(...Object.values(errs).map((x) => (Number.isNaN(x) ? Infinity : x)));
    if (!(worst <= 1e-4)) bad++;
    console.log(`check ${name} ${JSON.stringify(dims)} B=${B} T=${T} ${JSON.stringify(set)} stream (${got.form}): worst ${worst.toExponential(2)} ${worst <= 1e-4 ? "ok" : "FAIL"} ${JSON.stringify(errs)}`);
  }
}
device.destroy();
process.exit(bad ? 1 : 0);
