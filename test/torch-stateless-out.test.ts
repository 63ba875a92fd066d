/**
 * runtime/torch/seqc_chunked.py STATELESS_OUT (issue 6, session 15 task G3): the diagonal chain's stateless parts write the
 * outputs the glue would convert to bf16 as bf16, by their "-bf16out" twins (compiler/backends/torch/chain-plans.ts
 * diagonalBf16Outputs). On CPU torch with every plan stubbed and a twin's run the float32 form's outputs converted by torch
 * (its contract; test/torch/stateless_out.py): "grads" runs prep's backward's twin (Mamba-2's dB and ddt, SimpleGLA's dq
 * come back bf16: one large float32 -> bf16 conversion fewer) and every gradient is bitwise "f32"'s; "bf16" also runs
 * prep's (Mamba-2's kk1, SimpleGLA's q3 reach the cores as bf16: one more conversion gone), the gradients the glue sums
 * bitwise "f32"'s but for the log decay's input's (the decay adjoint's terms and anchors read the rounded k / q: Mamba-2's
 * ld0__bar, SimpleGLA's dg move, within bf16 rounding). A twin that truncates instead of rounding changes the gradients it
 * writes.
 */
import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadProgram } from "../compiler/frontend/load.ts";
import { emitTorch } from "../compiler/backends/torch/target.ts";

const cpuTorch = spawnSync("/usr/bin/python3", ["-c", "import torch; from torch.utils._python_dispatch import TorchDispatchMode; torch.zeros(1, dtype=torch.bfloat16)"]).status === 0;
if (!cpuTorch) console.warn("torch-stateless-out.test: no torch for /usr/bin/python3 (Debian's python3-torch); skipped");

type Row = { out: string; conversions: number; runs: [string, string, string[]][]; dtypes: Record<string, string>; grads_equal_f32?: Record<string, boolean>; max_rel_f32?: Record<string, number>; prep_bw_in_equal_f32?: Record<string, boolean> };

// per model: the twins' bf16 outputs (prep, prep's backward); with "bf16", the inputs whose gradient moves (SimpleGLA's
// log decay is prep's copy of g: the decay adjoint's sums are dg) and prep's backward's inputs that move (Mamba-2's
// ld0__bar, the decay adjoint's sums: the stubbed prep's backward's outputs do not depend on it); an input whose gradient
// is a twin's whole gradient
const WANT: Record<string, { prep: string[]; prepBw: string[]; moved: string[]; movedIn: string[]; whole: string }> = {
  mamba2: { prep: ["kk1"], prepBw: ["B__bar", "dt__bar"], moved: [], movedIn: ["ld0__bar"], whole: "B" },
  simple_gla: { prep: ["q3"], prepBw: ["q__bar"], moved: ["g"], movedIn: [], whole: "q" },
};

function drive(name: string, broken: boolean): Row[] {
  const model = loadProgram([`stdlib/${name}.seq`]).models[0];
  const dir = mkdtempSync(join(tmpdir(), "seqc-stateless-out-"));
  const json = emitTorch(model, { ptx: false }).find((f) => f.path.endsWith(".torch.json"))!;
  writeFileSync(join(dir, json.path), json.contents);
  const r = spawnSync("/usr/bin/python3", ["test/torch/stateless_out.py", dir, model.name, ...(broken ? ["broken"] : [])], { encoding: "utf8" });
  expect(r.status, r.stderr).toBe(0);
  return r.stdout.trim().split("\n").map((l) => JSON.parse(l) as Row);
}

describe.skipIf(!cpuTorch)("torch target: the diagonal chain's stateless parts writing bf16 outputs (STATELESS_OUT; CPU torch, plans stubbed)", () => {
  it.each(Object.keys(WANT))("%s", (name) => {
    const w = WANT[name];
    const [f32, grads, bf16] = drive(name, false);
    expect([f32.out, grads.out, bf16.out]).toEqual(["f32", "grads", "bf16"]);
    // the large float32 -> bf16 conversions: 3 -> 2 (the whole gradient) -> 1 (prep's output too)
    expect([f32.conversions, grads.conversions, bf16.conversions], name).toEqual([3, 2, 1]);
    expect(f32.runs).toEqual([]);
    expect(grads.runs.map((r) => [r[0], r[2]])).toEqual([["prepBw", w.prepBw]]);
    expect(bf16.runs.map((r) => [r[0], r[2]])).toEqual([["prep", w.prep], ["prepBw", w.prepBw]]);
    for (const r of [...grads.runs, ...bf16.runs]) expect(r[1], name).toMatch(/-bf16out$/);
    // gradients returned in each tensor's dtype every way
    expect(grads.dtypes).toEqual(f32.dtypes);
    expect(bf16.dtypes).toEqual(f32.dtypes);
    for (const [k, same] of Object.entries(grads.grads_equal_f32!)) expect(same, `${name} grads: d${k} bitwise as f32`).toBe(true);
    for (const [k, same] of Object.entries(grads.prep_bw_in_equal_f32!)) expect(same, `${name} grads: prep's backward's ${k} as f32`).toBe(true);
    for (const [k, same] of Object.entries(bf16.grads_equal_f32!)) expect(same, `${name} bf16: d${k}`).toBe(!w.moved.includes(k));
    for (const k of w.moved) expect(bf16.max_rel_f32![k], `${name} bf16: d${k} within bf16 rounding`).toBeLessThan(2e-2);
    for (const [k, same] of Object.entries(bf16.prep_bw_in_equal_f32!)) expect(same, `${name} bf16: prep's backward's ${k}`).toBe(!w.movedIn.includes(k));
    // a twin that truncates to bf16 instead of rounding: the whole gradient it writes differs
    const bad = drive(name, true)[1];
    expect(bad.grads_equal_f32![w.whole], `${name}: a truncating twin changes d${w.whole}`).toBe(false);
  }, 180_000);
});
