/**
 * The generated TypeScript classes: `seqc compile --target wgsl,ts` writes them for every stdlib
 * model, they type-check with tsc next to a user's script, depend on seqc/runtime only, and a
 * user-style script (test/wgsl/user-script.ts) runs the generated Lstm: forward() against the
 * float64 interpreter, step() token by token against forward(), and the input checks.
 */
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { execFileSync } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync, copyFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT, STDLIB, stdlibModel } from "./wgsl/support.ts";
import { interpret } from "../compiler/ir/interpret.ts";
import { relativeError } from "../compiler/io/manifest.ts";

// inside the package, so that "seqc/runtime" resolves by package self-reference (as in a user's project)
const OUT = join(ROOT, "tmp", `codegen-test-${process.pid}`);

beforeAll(() => {
  mkdirSync(OUT, { recursive: true });
  execFileSync(process.execPath, [join(ROOT, "bin/seqc.js"), "compile", ...STDLIB.map((n) => join(ROOT, "stdlib", `${n}.seq`)), "--target", "wgsl,ts", "--out", OUT], { cwd: ROOT, stdio: "pipe" });
}, 300_000);
afterAll(() => rmSync(OUT, { recursive: true, force: true }));

describe("seqc compile --target wgsl,ts", () => {
  it("writes a class, a plan and WGSL kernels per model", () => {
    const files = readdirSync(OUT);
    for (const n of STDLIB) {
      const m = stdlibModel(n).name;
      expect(files, m).toContain(`${m}.ts`);
      expect(files, m).toContain(`${m}.plan.json`);
      expect(files, m).toContain(`${m}_seq_thread.wgsl`);
    }
    expect(files).toContain("Hgrn_scan_tile.wgsl");
    expect(files).not.toContain("Lstm_scan_tile.wgsl");
  });

  it("generated modules import seqc/runtime and nothing of the compiler", () => {
    for (const f of readdirSync(OUT).filter((x) => x.endsWith(".ts"))) {
      const text = readFileSync(join(OUT, f), "utf8");
      const imports = [...text.matchAll(/from\s+"([^"]+)"/g)].map((m) => m[1]);
      expect(imports, f).toEqual(["seqc/runtime"]);
    }
  });

  it("type-check with tsc, together with a user's script", () => {
    copyFileSync(join(ROOT, "test/wgsl/user-script.ts"), join(OUT, "user-script.ts"));
    writeFileSync(join(OUT, "tsconfig.json"), JSON.stringify({
      compilerOptions: { target: "ES2022", module: "NodeNext", moduleResolution: "NodeNext", strict: true, noEmit: true, allowImportingTsExtensions: true, skipLibCheck: true, types: ["node"] },
      include: ["*.ts"],
    }));
    let out = "";
    try {
      execFileSync(process.execPath, [join(ROOT, "node_modules/typescript/bin/tsc"), "-p", join(OUT, "tsconfig.json")], { cwd: ROOT, stdio: "pipe" });
    } catch (e) {
      out = String((e as { stdout?: Buffer }).stdout ?? e);
    }
    expect(out).toBe("");
  }, 300_000);

  it("a type error in user code is caught (the check can fail)", () => {
    writeFileSync(join(OUT, "bad-user.ts"), `import { Hgrn } from "./Hgrn.ts";\nconst m = await Hgrn.create({ dims: { D: 4 } });\nawait m.forward({ x: new Float32Array(4) });\n`);
    let out = "";
    try {
      execFileSync(process.execPath, [join(ROOT, "node_modules/typescript/bin/tsc"), "-p", join(OUT, "tsconfig.json")], { cwd: ROOT, stdio: "pipe" });
    } catch (e) {
      out = String((e as { stdout?: Buffer }).stdout ?? e);
    } finally {
      rmSync(join(OUT, "bad-user.ts"));
    }
    expect(out).toMatch(/bad-user\.ts.*Property 'g' is missing/);
  }, 300_000);
});

describe("a user's script runs the generated Lstm", () => {
  let r: Record<string, unknown>;
  beforeAll(() => {
    const out = execFileSync(process.execPath, ["--import", "tsx", join(OUT, "user-script.ts"), OUT], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] }).toString();
    r = JSON.parse(out.trim().split("\n").pop()!);
  }, 300_000);

  it("forward() matches the float64 interpreter, step() matches forward()", () => {
    const model = stdlibModel("lstm");
    const f64 = (k: string) => Float64Array.from(r[k] as number[]);
    const params = r.params as Record<string, number[]>;
    const want = interpret(model, {
      dims: { H: 5, I: 3 }, batch: 2, time: 6, inputs: { x: f64("x") },
      params: Object.fromEntries(Object.entries(params).map(([k, v]) => [k, Float64Array.from(v)])),
      initialState: { h: f64("h0"), c: f64("c0") },
    });
    expect(relativeError(f64("output"), want.outputs.output)).toBeLessThanOrEqual(1e-5);
    expect(relativeError(f64("h"), want.finalState.h)).toBeLessThanOrEqual(1e-5);
    expect(relativeError(f64("c"), want.finalState.c)).toBeLessThanOrEqual(1e-5);
    expect(relativeError(f64("stepped"), f64("output"))).toBeLessThanOrEqual(1e-6);
    expect(relativeError(f64("stepH"), f64("h"))).toBeLessThanOrEqual(1e-6);
  });

  it("bad inputs throw errors that name the tensor and the expected shape", () => {
    const e = r.errors as string[];
    expect(e[0]).toMatch(/input 'x' has shape \[2, 6, 4\], expected \[B=2, T=6, I=3\]/);
    expect(e[1]).toMatch(/input 'x' must be a Float32Array or a GPUBuffer.*got a Float64Array/);
    expect(e[2]).toMatch(/Lstm has no input 'y'; its inputs are x/);
    expect(e[3]).toMatch(/initial state 'h' has 3 elements, expected shape \[B=\d+, H=5\]/);
    expect(e[4]).toMatch(/missing param 'weight_hh_l0' of shape \[4, H=5, H=5\]/);
    expect(e[5]).toMatch(/dim 'H' must be a positive integer, got 0/);
  });

  it("the cost model picks the scan form for a long HGRN sequence", () => {
    expect(r.form).toBe("scan/tile");
  });
});
