/**
 * What a user writes after `seqc compile stdlib/lstm.seq --target ts --out gen/`: import the generated
 * class, create it, run forward() and step(), and trip the checks. Run by test/codegen-class.test.ts
 * with the generated folder as argv[2]; prints one JSON object.
 */
import { pathToFileURL } from "node:url";
import { join } from "node:path";

const dir = process.argv[2];
const { Lstm } = await import(pathToFileURL(join(dir, "Lstm.ts")).href);
const { Hgrn } = await import(pathToFileURL(join(dir, "Hgrn.ts")).href);

const H = 5, I = 3, B = 2, T = 6;
let seed = 3;
const rnd = () => ((seed = (seed * 16807) % 2147483647) / 2147483647 - 0.5);
const arr = (n: number) => Float32Array.from({ length: n }, rnd);
const params = { weight_ih_l0: arr(4 * H * I), weight_hh_l0: arr(4 * H * H), bias_ih_l0: arr(4 * H) };
const x = arr(B * T * I);
const h0 = arr(B * H), c0 = arr(B * H);

const lstm = await Lstm.create({ dims: { H, I }, params });
const full = await lstm.forward({ x: { data: x, shape: [B, T, I] } }, { initialState: { h: h0, c: c0 }, returnFinalState: true });

// token by token with step(): the same outputs and final state
let state = { h: h0, c: c0 };
const stepped = new Float32Array(B * T * H);
for (let t = 0; t < T; t++) {
  const xt = new Float32Array(B * I);
  for (let b = 0; b < B; b++) xt.set(x.subarray((b * T + t) * I, (b * T + t + 1) * I), b * I);
  const r = await lstm.step({ x: { data: xt, shape: [B, I] } }, state);
  for (let b = 0; b < B; b++) stepped.set(r.output.subarray(b * H, (b + 1) * H), (b * T + t) * H);
  state = r.state;
}

const errors: string[] = [];
const expectError = async (f: () => Promise<unknown>) => {
  try {
    await f();
    errors.push("(no error)");
  } catch (e) {
    errors.push((e as Error).message);
  }
};
await expectError(() => lstm.forward({ x: { data: x, shape: [B, T, I + 1] } }));
await expectError(() => lstm.forward({ x: Float64Array.from(x) as unknown as Float32Array }));
await expectError(() => lstm.forward({ y: x } as never));
await expectError(() => lstm.forward({ x }, { initialState: { h: new Float32Array(3) } }));
await expectError(() => Lstm.create({ dims: { H, I }, params: { weight_ih_l0: params.weight_ih_l0 } } as never));
await expectError(() => Lstm.create({ dims: { H: 0, I }, params }));
lstm.dispose();

const hgrn = await Hgrn.create({ dims: { D: 4 } });
const form = hgrn.formFor(8, 4096);
hgrn.dispose();

console.log(JSON.stringify({ x: Array.from(x), params: Object.fromEntries(Object.entries(params).map(([k, v]) => [k, Array.from(v)])), h0: Array.from(h0), c0: Array.from(c0),
  output: Array.from(full.output), h: Array.from(full.finalState.h), c: Array.from(full.finalState.c), stepped: Array.from(stepped), stepH: Array.from(state.h), errors, form }));
