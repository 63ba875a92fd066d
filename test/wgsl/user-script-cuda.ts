/**
 * The generated Lstm on backend "cuda", as a user writes it: copied by test/codegen-class.test.ts next
 * to the generated modules, type-checked there with tsc and run: on a machine without an NVIDIA driver,
 * create() fails with the CUDA runtime's one sentence and the WebGPU path is unaffected. Prints one
 * JSON object.
 */
// @ts-ignore -- resolved where the test copies this script: next to the generated Lstm.ts (checked there, fully typed)
import { Lstm } from "./Lstm.ts";

const H = 5, I = 3;
const params = { weight_ih_l0: new Float32Array(4 * H * I), weight_hh_l0: new Float32Array(4 * H * H) };
let cuda = "(no error)";
try {
  const m = await Lstm.create({ backend: "cuda", dims: { H, I }, params, dtype: "f32" });
  cuda = `ran on ${m.backend}`;
  m.dispose();
} catch (e) {
  cuda = `${(e as Error).name}: ${(e as Error).message}`;
}
const w = await Lstm.create({ backend: "webgpu", dims: { H, I }, params });
const r = await w.forward({ x: new Float32Array(2 * I) });
w.dispose();
console.log(JSON.stringify({ cuda, webgpu: { backend: w.backend, length: r.output.length } }));
