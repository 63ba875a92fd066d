/**
 * The model library: every stdlib/*.seq passes `seqc check` cleanly, carries a paper header, runs
 * consistently when a sequence is split in two (final state fed back as initial state), and a few
 * models agree with direct TypeScript loops on T = 1, B = 3 with a non-zero initial state.
 */
import { describe, it, expect } from "vitest";
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { loadProgram } from "../compiler/frontend/load.ts";
import { interpret, type RunInputs } from "../compiler/ir/interpret.ts";
import type { Model, TensorDecl } from "../compiler/ir/types.ts";
import { relativeError } from "../compiler/io/manifest.ts";
import { randArray, rng, sizeOf, SMALL_DIMS } from "./helpers/random.ts";

const ROOT = resolve(import.meta.dirname, "..");
const STDLIB = join(ROOT, "stdlib");
const REQUIRED = [
  "linear_attention", "retnet", "simple_gla", "mamba2", "gla", "mamba", "hgrn", "s4d", "mlstm", "deltanet",
  "gated_deltanet", "gated_deltaproduct", "rwkv7", "lstm", "gru", "slstm", "softmax_attention", "titans",
];
const files = readdirSync(STDLIB).filter((f) => f.endsWith(".seq")).sort();

function load(name: string): Model {
  const p = loadProgram([join(STDLIB, `${name}.seq`)]);
  expect(p.diagnostics).toEqual([]);
  expect(p.models).toHaveLength(1);
  return p.models[0];
}


describe("stdlib files", () => {
  it("has every required model", () => {
    for (const name of REQUIRED) expect(files, name).toContain(`${name}.seq`);
  });

  it("`seqc check stdlib/*.seq` reports no errors and no warnings", () => {
    const out = execFileSync(process.execPath, [join(ROOT, "bin/seqc.js"), "check", ...files.map((f) => join(STDLIB, f))], { cwd: ROOT, stdio: "pipe" }).toString();
    expect(out).toMatch(new RegExp(`^ok: ${files.length} models \\(`));
    expect(out).not.toMatch(/warning/);
  }, 30_000);

  for (const f of files) {
    it(`${f}: clean front end and a header naming the paper`, () => {
      const text = readFileSync(join(STDLIB, f), "utf8");
      expect(text.startsWith("//")).toBe(true);
      const header = text.slice(0, text.indexOf("model "));
      expect(header).toMatch(/\b(19|20)\d\d\b/); // a year
      expect(header).toMatch(/arXiv:\d{4}\.\d{4,5}|no arXiv id/);
      load(f.replace(/\.seq$/, ""));
    });
  }
});

describe("splitting a sequence: run(T1) then run(T2 from its final state) == run(T1 + T2)", () => {
  for (const f of files) {
    const name = f.replace(/\.seq$/, "");
    it(name, () => {
      const model = load(name);
      const dims: Record<string, number> = {};
      for (const d of model.dims) dims[d.name] = d.fixed ?? SMALL_DIMS[d.name] ?? 3;
      const B = 2, T1 = 2, T2 = 3, T = T1 + T2;
      const r = rng(1234);
      const inputs: Record<string, Float64Array> = {};
      const params: Record<string, Float64Array> = {};
      for (const t of model.tensors) {
        if (t.kind === "input") inputs[t.name] = randArray(B * T * sizeOf(t, dims), r);
        if (t.kind === "param" && t.shape.length > 0) params[t.name] = randArray(sizeOf(t, dims), r);
      }
      const slice = (from: number, to: number) => {
        const out: Record<string, Float64Array> = {};
        for (const t of model.tensors.filter((x) => x.kind === "input")) {
          const n = sizeOf(t, dims);
          const a = new Float64Array(B * (to - from) * n);
          for (let b = 0; b < B; b++) a.set(inputs[t.name].subarray((b * T + from) * n, (b * T + to) * n), b * (to - from) * n);
          out[t.name] = a;
        }
        return out;
      };
      const full = interpret(model, { dims, batch: B, time: T, inputs, params });
      const first = interpret(model, { dims, batch: B, time: T1, inputs: slice(0, T1), params });
      const second = interpret(model, { dims, batch: B, time: T2, inputs: slice(T1, T), params, initialState: first.finalState });
      for (const t of model.tensors.filter((x) => x.kind === "output")) {
        const n = sizeOf(t, dims);
        const joined = new Float64Array(B * T * n);
        for (let b = 0; b < B; b++) {
          joined.set(first.outputs[t.name].subarray(b * T1 * n, (b + 1) * T1 * n), b * T * n);
          joined.set(second.outputs[t.name].subarray(b * T2 * n, (b + 1) * T2 * n), (b * T + T1) * n);
        }
        expect(joined.every(Number.isFinite), `${name}.${t.name} finite`).toBe(true);
        expect(relativeError(joined, full.outputs[t.name]), `${name}.${t.name}`).toBeLessThanOrEqual(1e-12);
      }
      for (const s of Object.keys(full.finalState)) {
        const a = second.finalState[s], b = full.finalState[s];
        expect(a.every((x, i) => x === b[i] || Math.abs(x - b[i]) <= 1e-12 * (1 + Math.abs(b[i]))), `${name} state ${s}`).toBe(true);
      }
    });
  }
});

// ---------------------------------------------------------------------------------------------
// Direct loops, written independently of the interpreter, on T = 1 (and T = 4), B = 3, non-zero initial state.

interface Case { B: number; T: number; dims: Record<string, number>; run: RunInputs }

function makeRun(model: Model, B: number, T: number, dims: Record<string, number>, seed: number, tweak?: (name: string, a: Float64Array) => void): Case {
  const r = rng(seed);
  const run: RunInputs = { dims, batch: B, time: T, inputs: {}, params: {}, initialState: {} };
  for (const t of model.tensors) {
    const n = sizeOf(t, dims);
    if (t.kind === "input") run.inputs[t.name] = randArray(B * T * n, r);
    else if (t.kind === "param" && t.shape.length) run.params![t.name] = randArray(n, r);
    else if (t.kind === "state") run.initialState![t.name] = randArray(B * n, r);
    const a = run.inputs[t.name] ?? run.params?.[t.name] ?? run.initialState?.[t.name];
    if (a && tweak) tweak(`${t.kind}:${t.name}`, a);
  }
  return { B, T, dims, run };
}

function expectClose(got: Float64Array, want: Float64Array, what: string): void {
  expect(got.length, what).toBe(want.length);
  expect(relativeError(got, want), what).toBeLessThanOrEqual(1e-12);
}

/** GLA: S = exp(gk) S + k v^T; o = S^T (q / sqrt(K)). */
function glaLoop({ B, T, dims, run }: Case) {
  const { H, K, V } = dims;
  const S = Float64Array.from(run.initialState!.S);
  const o = new Float64Array(B * T * H * V);
  const { q, k, v, gk } = run.inputs;
  for (let b = 0; b < B; b++)
    for (let t = 0; t < T; t++)
      for (let h = 0; h < H; h++) {
        const x = ((b * T + t) * H + h);
        for (let i = 0; i < K; i++)
          for (let j = 0; j < V; j++) {
            const s = ((b * H + h) * K + i) * V + j;
            S[s] = Math.exp(gk[x * K + i]) * S[s] + k[x * K + i] * v[x * V + j];
          }
        for (let j = 0; j < V; j++) {
          let acc = 0;
          for (let i = 0; i < K; i++) acc += (q[x * K + i] / Math.sqrt(K)) * S[((b * H + h) * K + i) * V + j];
          o[x * V + j] = acc;
        }
      }
  return { o, S };
}

/** Titans: err = M^T k - v; S = eta S - theta k err^T; M = (1 - alpha) M + S; o = M^T q. */
function titansLoop({ B, T, dims, run }: Case) {
  const { H, K, V } = dims;
  const M = Float64Array.from(run.initialState!.M);
  const S = Float64Array.from(run.initialState!.S);
  const o = new Float64Array(B * T * H * V);
  const { q, k, v, theta, eta, alpha } = run.inputs;
  for (let b = 0; b < B; b++)
    for (let t = 0; t < T; t++)
      for (let h = 0; h < H; h++) {
        const x = (b * T + t) * H + h;
        const base = (b * H + h) * K * V;
        const err = new Float64Array(V);
        for (let j = 0; j < V; j++) {
          let acc = 0;
          for (let i = 0; i < K; i++) acc += M[base + i * V + j] * k[x * K + i];
          err[j] = acc - v[x * V + j];
        }
        for (let i = 0; i < K; i++)
          for (let j = 0; j < V; j++) {
            const s = base + i * V + j;
            S[s] = eta[x] * S[s] - theta[x] * k[x * K + i] * err[j];
            M[s] = (1 - alpha[x]) * M[s] + S[s];
          }
        for (let j = 0; j < V; j++) {
          let acc = 0;
          for (let i = 0; i < K; i++) acc += q[x * K + i] * M[base + i * V + j];
          o[x * V + j] = acc;
        }
      }
  return { o, M, S };
}

/** sLSTM with gates (i, f, z, o), per-head recurrence, stabiliser m. */
function slstmLoop({ B, T, dims, run }: Case) {
  const { NH, DH, I } = dims;
  const U = NH * DH;
  const [y, c, n, m] = ["y", "c", "n", "m"].map((s) => Float64Array.from(run.initialState![s]));
  const out = new Float64Array(B * T * U);
  const { W, R, bias } = run.params!;
  const x = run.inputs.x;
  const logsig = (z: number) => -(Math.max(-z, 0) + Math.log1p(Math.exp(-Math.abs(z))));
  for (let b = 0; b < B; b++)
    for (let t = 0; t < T; t++) {
      const pre = new Float64Array(4 * U);
      for (let g = 0; g < 4; g++)
        for (let e = 0; e < NH; e++)
          for (let d = 0; d < DH; d++) {
            const u = e * DH + d;
            let acc = bias[g * U + u];
            for (let i = 0; i < I; i++) acc += W[(g * U + u) * I + i] * x[(b * T + t) * I + i];
            for (let r = 0; r < DH; r++) acc += R[(g * U + u) * DH + r] * y[b * U + e * DH + r];
            pre[g * U + u] = acc;
          }
      for (let u = 0; u < U; u++) {
        const s = b * U + u;
        const logf = logsig(pre[U + u]);
        const mnew = Math.max(logf + m[s], pre[u]);
        const ig = Math.exp(pre[u] - mnew), fg = Math.exp(logf + m[s] - mnew);
        c[s] = fg * c[s] + ig * Math.tanh(pre[2 * U + u]);
        n[s] = fg * n[s] + ig;
        m[s] = mnew;
        y[s] = (1 / (1 + Math.exp(-pre[3 * U + u]))) * c[s] / n[s];
        out[(b * T + t) * U + u] = y[s];
      }
    }
  return { h: out, y, c, n, m };
}

describe("interpreter vs direct loops (B = 3, non-zero initial state)", () => {
  for (const T of [1, 4]) {
    it(`gla, T = ${T}`, () => {
      const model = load("gla");
      const c = makeRun(model, 3, T, { H: 2, K: 3, V: 5 }, 7 + T, (n, a) => {
        if (n === "input:gk") a.forEach((x, i) => (a[i] = -Math.abs(x) * 2));
      });
      const got = interpret(model, c.run);
      const want = glaLoop(c);
      expectClose(got.outputs.o, want.o, "o");
      expectClose(got.finalState.S, want.S, "S");
    });

    it(`titans, T = ${T}`, () => {
      const model = load("titans");
      const c = makeRun(model, 3, T, { H: 2, K: 4, V: 3 }, 11 + T);
      const got = interpret(model, c.run);
      const want = titansLoop(c);
      expectClose(got.outputs.o, want.o, "o");
      expectClose(got.finalState.M, want.M, "M");
      expectClose(got.finalState.S, want.S, "S");
    });

    it(`slstm, T = ${T}`, () => {
      const model = load("slstm");
      const c = makeRun(model, 3, T, { NH: 2, DH: 3, I: 4 }, 13 + T, (n, a) => {
        if (n === "state:n") a.forEach((x, i) => (a[i] = 1 + Math.abs(x))); // a normaliser is positive
      });
      const got = interpret(model, c.run);
      const want = slstmLoop(c);
      expectClose(got.outputs.h, want.h, "h");
      for (const s of ["y", "c", "n", "m"] as const) expectClose(got.finalState[s], want[s], s);
    });
  }
});
