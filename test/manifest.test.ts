/**
 * compiler/io/manifest.ts and `seqc run`: binding by name, layouts (permutation, `_`, reshape), dim
 * inference, and the user errors (exit 1, the tensor named with expected and given shapes, no stack).
 */
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { loadProgram } from "../compiler/frontend/load.ts";
import { bindCase, fromCanonical, parseDims, readCase, relativeError, resultTensors, toCanonical, writeCase, type Case, type Manifest } from "../compiler/io/manifest.ts";
import { interpret } from "../compiler/ir/interpret.ts";
import { UserError } from "../compiler/cli/errors.ts";
import { backendNames, getBackend, registerBackend } from "../compiler/backends/index.ts";

const ROOT = resolve(import.meta.dirname, "..");
const GOLDEN = join(ROOT, "test/fixtures/golden");
const model = (src: string) => {
  const p = loadProgram(["t.seq"], new Map([["t.seq", src]]));
  expect(p.diagnostics.filter((d) => d.severity === "error")).toEqual([]);
  return p.models[0];
};
const stdlib = (name: string) => loadProgram([join(ROOT, "stdlib", `${name}.seq`)]).models[0];
const clone = (c: Case): Case => ({ manifest: JSON.parse(JSON.stringify(c.manifest)) as Manifest, data: { ...c.data } });

function userError(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(UserError);
    return (e as Error).message;
  }
  throw new Error("expected a UserError");
}

describe("binding", () => {
  let gla: Case;
  beforeAll(() => {
    gla = readCase(join(GOLDEN, "gla.json"));
  });

  it("infers B, T and dims from the tensors", () => {
    const b = bindCase(stdlib("gla"), gla);
    expect([b.batch, b.time, b.dims]).toEqual([2, 100, { H: 2, K: 16, V: 24 }]);
  });

  it("permutes a state stored [batch, H, V, K] by its labels", () => {
    const c = clone(gla);
    const h0 = c.manifest.tensors.h0;
    const [B, H, K, V] = h0.shape;
    const t = new Float64Array(c.data.h0.length);
    for (let b = 0; b < B; b++) for (let h = 0; h < H; h++) for (let k = 0; k < K; k++) for (let v = 0; v < V; v++)
      t[((b * H + h) * V + v) * K + k] = c.data.h0[((b * H + h) * K + k) * V + v];
    c.data.h0 = t;
    h0.shape = [B, H, V, K];
    h0.layout = ["batch", "H", "V", "K"];
    const ref = bindCase(stdlib("gla"), gla).run.initialState!.S;
    expect(bindCase(stdlib("gla"), c).run.initialState!.S).toEqual(ref);
  });

  it("drops '_' axes and reshapes torch's [4H, I] weights to the declared [4, H, I]", () => {
    const lstm = readCase(join(GOLDEN, "lstm.json"));
    const b = bindCase(stdlib("lstm"), lstm);
    expect(b.dims).toEqual({ H: 12, I: 8 });
    expect(b.run.params!.weight_ih_l0).toEqual(lstm.data.weight_ih_l0);
    // x is stored [time, batch, I]: canonical is [batch, time, I]
    const x = lstm.data.x;
    expect(b.run.inputs.x[(1 * 100 + 3) * 8 + 5]).toBe(x[(3 * 2 + 1) * 8 + 5]);
  });

  it("round-trips every layout: fromCanonical(toCanonical(x)) == x", () => {
    for (const name of ["lstm", "mamba_selective_scan", "gla"]) {
      const c = readCase(join(GOLDEN, `${name}.json`));
      const m = stdlib(name === "mamba_selective_scan" ? "mamba" : name);
      const b = bindCase(m, c);
      for (const p of b.plans) {
        const x = c.data[p.name];
        expect(fromCanonical(p, toCanonical(p, x, b.dims, b.batch, b.time), b.dims, b.batch, b.time)).toEqual(x);
      }
    }
  });

  it("leaves optional inputs and params out (mamba without z, D, delta_bias)", () => {
    const c = clone(readCase(join(GOLDEN, "mamba_selective_scan.json")));
    for (const n of ["z", "D", "delta_bias"]) delete c.manifest.tensors[n];
    delete c.manifest.tensors.out;
    delete c.manifest.tensors.last_state;
    const m = stdlib("mamba");
    const b = bindCase(m, c);
    const outs = resultTensors(b, interpret(m, b.run));
    // a case without outputs gets every model output and final state in canonical layout
    expect(outs.map((o) => [o.name, o.shape, o.layout])).toEqual([
      ["out", [2, 100, 8], ["batch", "time", "D"]],
      ["final_h", [2, 8, 4], ["batch", "D", "N"]],
    ]);
    expect(outs[0].data.every(Number.isFinite)).toBe(true);
  });

  it("takes dims that no tensor carries from --dims or their default, and checks them", () => {
    const c = readCase(join(GOLDEN, "causal_softmax_attention.json"));
    expect(bindCase(stdlib("softmax_attention"), c).dims.L).toBe(100); // dims L = T
    expect(bindCase(stdlib("softmax_attention"), c, { L: 128 }).dims.L).toBe(128);
    const noDefault = model("model F { dims H, L\n input x[H]\n state s[L] = 0\n s[l] = s[l]\n output y[h] = x[h] }");
    const fc: Case = { manifest: { case: "f", dtype: "float64", tensors: { x: { shape: [1, 2, 3], role: "input", offset: 0, length: 6, layout: ["batch", "time", "H"] } } }, data: { x: new Float64Array(6) } };
    expect(userError(() => bindCase(noDefault, fc))).toMatch(/dim L .*--dims L=/);
    expect(userError(() => bindCase(stdlib("softmax_attention"), c, { Q: 1 }))).toMatch(/no dim 'Q'/);
    expect(userError(() => bindCase(stdlib("gla"), gla, { K: 8 }))).toBe("input 'q': expected [B, T, H=2, K=8] (layout batch,time,H,K), got [2, 100, 2, 16]");
  });

  it("checks fixed dims", () => {
    const m = model("model F { dims H = 3, K\n input x[H,K]\n output y[h,k] = x[h,k] }");
    const c: Case = { manifest: { case: "f", dtype: "float64", tensors: { x: { shape: [1, 2, 2, 4], role: "input", offset: 0, length: 16, layout: ["batch", "time", "H", "K"] } } }, data: { x: new Float64Array(16) } };
    expect(userError(() => bindCase(m, c))).toBe("input 'x': expected [B, T, H=3, K=4] (layout batch,time,H,K), got [1, 2, 2, 4]");
  });

  it("names the tensor, expected and given shapes on a mismatch", () => {
    const c = clone(gla);
    c.manifest.tensors.k.shape = [2, 100, 2, 15];
    expect(userError(() => bindCase(stdlib("gla"), c))).toBe("input 'k': expected [B, T, H=2, K=16] (layout batch,time,H,K), got [2, 100, 2, 15]");
    const d = clone(gla);
    d.manifest.tensors.h0.shape = [3, 2, 16, 24];
    expect(userError(() => bindCase(stdlib("gla"), d))).toMatch(/^initial state 'h0': expected \[B, H=2, K=16, V=24\] .*got \[3, 2, 16, 24\] \(the other tensors have B=2\)/);
    const lstm = clone(readCase(join(GOLDEN, "lstm.json")));
    lstm.manifest.tensors.weight_hh_l0.shape = [48, 11];
    expect(userError(() => bindCase(stdlib("lstm"), lstm))).toMatch(/^param 'weight_hh_l0': expected axes holding \[4, H=12, H=12\] = 576 elements \(layout G,H\), got \[48, 11\]/);
  });

  it("names a missing required tensor and an unknown one", () => {
    const c = clone(gla);
    delete c.manifest.tensors.gk;
    expect(userError(() => bindCase(stdlib("gla"), c))).toBe("missing input 'gk' of shape [B, T, H=2, K=16] (layout batch,time,H,K): model Gla requires it");
    const d = clone(gla);
    d.manifest.tensors.kk = d.manifest.tensors.k;
    expect(userError(() => bindCase(stdlib("gla"), d))).toBe("input 'kk' is not an input of model Gla (inputs: q, k, v, gk)");
    const e = clone(gla);
    e.manifest.tensors.h0.state = "Z";
    expect(userError(() => bindCase(stdlib("gla"), e))).toMatch(/^state 'Z' \(of initial state 'h0'\) is not a state of model Gla \(states: S\)/);
  });

  it("rejects bad layouts", () => {
    const c = clone(gla);
    c.manifest.tensors.q.layout = ["batch", "H", "K", "K"];
    expect(userError(() => bindCase(stdlib("gla"), c))).toMatch(/'q': layout \[batch,H,K,K\] must have a 'time' axis/);
    const d = clone(readCase(join(GOLDEN, "lstm.json")));
    d.manifest.tensors.h0.shape = [2, 2, 6];
    expect(userError(() => bindCase(stdlib("lstm"), d))).toMatch(/'h0': axis 0 is '_' \(size 1 to drop\) but has size 2/);
  });

  it("parses --dims", () => {
    expect(parseDims("K=16, V=24")).toEqual({ K: 16, V: 24 });
    expect(userError(() => parseDims("K16"))).toMatch(/NAME=SIZE/);
  });
});

describe("case files and backends", () => {
  let tmp: string;
  beforeAll(() => {
    tmp = mkdtempSync(join(tmpdir(), "seqc-manifest-"));
  });
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it("writeCase/readCase round-trip", () => {
    const data = Float64Array.from([1.5, -2, Math.PI, 1e-300, -0, 7]);
    writeCase(join(tmp, "r.json"), "r", [{ name: "a", role: "output", shape: [1, 2, 3], layout: ["batch", "time", "K"], data }]);
    const c = readCase(join(tmp, "r.json"));
    expect(c.data.a).toEqual(data);
    expect(c.manifest.tensors.a).toMatchObject({ shape: [1, 2, 3], role: "output", offset: 0, length: 6 });
  });

  it("rejects tensors outside the .bin", () => {
    writeFileSync(join(tmp, "bad.json"), JSON.stringify({ case: "bad", dtype: "float64", tensors: { q: { shape: [4], role: "input", offset: 0, length: 4 } } }));
    writeFileSync(join(tmp, "bad.bin"), Buffer.alloc(16));
    expect(userError(() => readCase(join(tmp, "bad.json")))).toMatch(/'q': bytes 0\.\.32 lie outside the \.bin file \(16 bytes\)/);
  });

  it("has a registry with cpu that other backends can join", async () => {
    expect(backendNames()).toContain("cpu");
    const c = readCase(join(GOLDEN, "simple_gla.json"));
    const m = stdlib("simple_gla");
    const b = bindCase(m, c);
    registerBackend({ name: "test-double", description: "test", forms: ["sequential"], run: (mm, run) => interpret(mm, run) });
    const r = await getBackend("test-double")!.run(m, b.run);
    const o = resultTensors(b, r).find((t) => t.name === "o")!;
    expect(relativeError(o.data, c.data.o)).toBeLessThan(1e-12);
  });
});

describe("seqc run: user errors exit 1 with the tensor, expected and given shapes, no stack trace", () => {
  let tmp: string;
  beforeAll(() => {
    tmp = mkdtempSync(join(tmpdir(), "seqc-run-"));
  });
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  const seqc = (...args: string[]) => spawnSync(process.execPath, [join(ROOT, "bin/seqc.js"), ...args], { cwd: ROOT, encoding: "utf8" });
  const variant = (name: string, edit: (m: Manifest) => void) => {
    const m = JSON.parse(JSON.stringify(readCase(join(GOLDEN, "gla.json")).manifest)) as Manifest;
    edit(m);
    writeFileSync(join(tmp, `${name}.json`), JSON.stringify(m));
    copyFileSync(join(GOLDEN, "gla.bin"), join(tmp, `${name}.bin`));
    return join(tmp, `${name}.json`);
  };
  const noStack = (stderr: string) => {
    expect(stderr).not.toMatch(/\n\s+at /);
    expect(stderr).not.toMatch(/internal error/);
  };

  it("mis-shaped tensor", () => {
    const inputs = variant("misshaped", (m) => {
      m.tensors.k.shape = [2, 100, 2, 15];
      m.tensors.k.length = 6000;
    });
    const r = seqc("run", "stdlib/gla.seq", "--inputs", inputs, "--backend", "cpu", "--out", join(tmp, "o.json"));
    expect(r.status).toBe(1);
    expect(r.stderr).toContain("input 'k': expected [B, T, H=2, K=16] (layout batch,time,H,K), got [2, 100, 2, 15]");
    noStack(r.stderr);
  }, 30_000);

  it("missing tensor", () => {
    const inputs = variant("missing", (m) => delete m.tensors.gk);
    const r = seqc("run", "stdlib/gla.seq", "--inputs", inputs, "--out", join(tmp, "o.json"));
    expect(r.status).toBe(1);
    expect(r.stderr).toContain("missing input 'gk' of shape [B, T, H=2, K=16]");
    noStack(r.stderr);
  }, 30_000);

  it("unknown backend, missing file", () => {
    const a = seqc("run", "stdlib/gla.seq", "--inputs", join(GOLDEN, "gla.json"), "--backend", "tpu", "--out", join(tmp, "o.json"));
    expect(a.status).toBe(1);
    expect(a.stderr).toContain("unknown backend 'tpu' (available: cpu");
    noStack(a.stderr);
    const b = seqc("run", "stdlib/gla.seq", "--inputs", join(tmp, "nope.json"), "--out", join(tmp, "o.json"));
    expect(b.status).toBe(1);
    expect(b.stderr).toMatch(/cannot read manifest .*nope\.json/);
    noStack(b.stderr);
  }, 30_000);
});
