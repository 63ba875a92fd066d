/**
 * The torch target on torch.bfloat16 tensors (issue 6): the module's forward plan and the chunked backward's four
 * cores carry the chunked form's bf16 variants (tensor cores, fp32 accumulation) beside the float32 forms, the other
 * plans float32 only; and seqc_torch.py / seqc_chunked.py send bf16 tensors through them: the forward and the cores
 * with io "bf16" (a bf16 variant picked by the real form choice at an H100's limits), prep, the backward models of
 * prep and post, the decay adjoint and the glue in float32, gradients returned in bf16. Driven on CPU torch with
 * every plan run by the float64 interpreter on inputs rounded to what the kernels read (test/torch/autograd_bf16.py),
 * against seqc's float64 reference gradients. The GPU run of the same path: bench/torch/check.py --bf16.
 */
import { describe, expect, it } from "vitest";
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { loadProgram } from "../compiler/frontend/load.ts";
import { interpret, shapeSizes } from "../compiler/ir/interpret.ts";
import * as I from "../compiler/ir/types.ts";
import { gradients } from "../compiler/grad/run.ts";
import { modelChain } from "../compiler/grad/chunked-chain.ts";
import { torchChain } from "../compiler/backends/torch/chain-copies.ts";
import { buildTorchPlans } from "../compiler/backends/torch/plans.ts";
import { emitTorch } from "../compiler/backends/torch/target.ts";
import { relativeError } from "../compiler/io/manifest.ts";
import { type ChainPart } from "../runtime/chunked-backward.ts";
import { fromBf16, toBf16 } from "../runtime/cuda/half.ts";
import { smallDims, randomCotangents } from "./helpers/random.ts";
import { chunkInputs } from "./helpers/chunk-inputs.ts";

const CORES = ["core", "coreT", "adjoint", "adjointT"];
const MODELS = ["simple_gla", "gla", "mamba2", "linear_attention"];
const load = (name: string) => loadProgram([`stdlib/${name}.seq`]).models[0];
const ios = (p: { forms: { io?: string }[] }) => [...new Set(p.forms.map((f) => f.io ?? "f32"))].sort();

describe("torch target: bf16 forms in the module's plans", () => {
  it.each(MODELS)("%s: forward and the chain's cores f32 + bf16 (a bf16 module), the stateless parts f32 + bf16-input twins, every other plan f32 only", (name) => {
    const tp = buildTorchPlans(load(name));
    expect(ios(tp.plans.forward)).toEqual(["bf16", "f32"]);
    expect(tp.plans.forward.forms.filter((f) => f.io === "bf16").every((f) => f.form === "chunked" && /-bf16-/.test(f.variant))).toBe(true);
    expect(tp.plans.forward.forms[0].io ?? "f32").toBe("f32"); // float32 tensors pick as before: the first applicable f32 form
    for (const [key, plan0] of Object.entries(tp.plans)) {
      let plan = plan0;
      const part = key.startsWith("chain:") ? key.slice(6) : undefined;
      if (key === "forward" || (part && CORES.includes(part))) {
        expect(ios(plan), key).toEqual(["bf16", "f32"]);
        // the transposed cores of a scalar log decay also read bf16 and write fp32 (module bf16-of32; forms io bf16, out f32)
        const mixed = !!tp.chunked && "names" in tp.chunked && tp.chunked.names.decay === "scalar" && (part === "coreT" || part === "adjointT");
        expect(Object.keys(plan.modules ?? {}).sort(), key).toEqual(mixed ? ["bf16", "bf16-of32", "f32"] : ["bf16", "f32"]);
        expect(plan.forms.filter((f) => f.out).map((f) => [f.io, f.out, f.module]), key).toEqual(plan.forms.filter((f) => /-bf16-of32-/.test(f.variant)).map(() => ["bf16", "f32", "bf16-of32"]));
        expect(plan.forms.some((f) => f.out === "f32"), key).toBe(mixed);
      } else if (part === "prep" || part === "postBw" || part === "prepBw") {
        // the stateless parts: float32 forms, then their bf16-input twins (stateless-bf16.ts: io bf16, out f32, the
        // forward's inputs (and post's backward's cotangents) read in bf16; never picked for float32 tensors)
        expect(ios(plan), key).toEqual(["bf16", "f32"]);
        const f32 = plan.forms.filter((f) => (f.io ?? "f32") === "f32");
        const all = plan.forms.filter((f) => f.io === "bf16");
        // the warp-split twins (stateless-warp.ts, "-bf16in-wr"): after the twins, each of a twin whose form sums over a row;
        // then the no-zeros twins (stateless-nz.ts, "-nz": Mamba-2's post and prep backward, which write literal zeros);
        // then the row-major twins (stateless-rows.ts, "-rm<M>") of the global form's last twin and its "-nz" twin, 3 each
        // and last their vector twins (stateless-vec.ts, "-rv<M>"), one for each, then the fused ones ("-rf<M>", where
        // phases fuse: Mamba-2's warp splits of post's and prep's backward), each of a row-major twin
        const base = name === "mamba2" && part !== "prep" ? ["global-bf16in-wr", "global-bf16in-wr-nz"] : ["global-bf16in"];
        // appended after all these, the "-bf16out" twins (stateless-bf16.ts bf16Out, chain-plans.ts diagonalBf16Outputs;
        // seqc_chunked.STATELESS_OUT): one of each earlier twin that stores them, in plan order, writing as bf16 prep's
        // outputs but the log decay and prep's backward's whole gradients (none for GLA's per-key decay)
        const outs = plan.forms.filter((f) => f.out === "bf16");
        expect(plan.forms.slice(plan.forms.length - outs.length), key).toEqual(outs);
        expect(outs.map((f) => f.variant), key).toEqual(plan.forms.filter((f) => f.io === "bf16" && f.out !== "bf16" && outs.some((o) => o.variant === `${f.variant}-bf16out`)).map((f) => `${f.variant}-bf16out`));
        const lowOut: Record<string, Record<string, string[]>> = { prep: { simple_gla: ["q3"], mamba2: ["kk1"], linear_attention: ["q2"] }, prepBw: { simple_gla: ["q__bar"], mamba2: ["B__bar", "dt__bar"], linear_attention: ["q__bar"] } };
        expect([...new Set(outs.map((f) => JSON.stringify(f.bf16Outputs)))], key).toEqual(lowOut[part]?.[name] ? [JSON.stringify(lowOut[part][name])] : []);
        expect(outs.length, key).toBe(!lowOut[part]?.[name] ? 0 : name === "mamba2" && part === "prepBw" ? 25 : 9);
        plan = { ...plan, forms: plan.forms.slice(0, plan.forms.length - outs.length) };
        const rf = plan.forms.filter((f) => /-rf\d+$/.test(f.variant));
        expect(plan.forms.slice(plan.forms.length - rf.length), key).toEqual(rf);
        expect(rf.map((f) => f.variant), key).toEqual(name === "mamba2" && part !== "prep" ? [1, 4, 16].map((M) => `global-bf16in-wr-rf${M}`) : []);
        plan = { ...plan, forms: plan.forms.slice(0, plan.forms.length - rf.length) };
        const rv = plan.forms.filter((f) => /-rv\d+$/.test(f.variant));
        expect(plan.forms.slice(plan.forms.length - rv.length), key).toEqual(rv);
        expect(rv.map((f) => f.variant), key).toEqual(base.flatMap((v) => [1, 4, 16].map((M) => `${v}-rv${M}`)));
        plan = { ...plan, forms: plan.forms.slice(0, plan.forms.length - rv.length) };
        const rm = plan.forms.filter((f) => /-rm\d+$/.test(f.variant));
        expect(plan.forms.slice(plan.forms.length - rm.length), key).toEqual(rm);
        expect(rm.map((f) => f.variant), key).toEqual(base.flatMap((v) => [1, 4, 16].map((M) => `${v}-rm${M}`)));
        plan = { ...plan, forms: plan.forms.slice(0, plan.forms.length - rm.length) };
        all.splice(0, all.length, ...plan.forms.filter((f) => f.io === "bf16"));
        const nz = all.filter((f) => f.variant.endsWith("-nz"));
        const split = all.filter((f) => f.variant.endsWith("-wr"));
        const twins = all.filter((f) => !f.variant.endsWith("-wr") && !f.variant.endsWith("-nz"));
        expect(plan.forms.slice(0, f32.length), key).toEqual(f32);
        expect(twins.map((f) => f.variant), key).toEqual(f32.filter((f) => !f.module).map((f) => `${f.variant}-bf16in`));
        expect(plan.forms.slice(plan.forms.length - split.length - nz.length, plan.forms.length - nz.length), key).toEqual(split);
        expect(plan.forms.slice(plan.forms.length - nz.length), key).toEqual(nz);
        expect(split.map((f) => f.variant), key).toEqual(name === "mamba2" && part !== "prep" ? ["workgroup-bf16in-wr", "global-bf16in-wr"] : []);
        expect(nz.map((f) => f.variant).sort(), key).toEqual(name === "mamba2" && part !== "prep" ? [...twins, ...split].map((f) => `${f.variant}-nz`).sort() : []);
        for (const f of all) {
          expect([f.out, f.bf16Inputs!.length > 0], key).toEqual(["f32", true]);
          for (const n of f.bf16Inputs!) expect(plan.tensors.some((t) => t.role === "input" && t.name === n && !/__bar$/.test(n) || part === "postBw" && t.name === n), `${key} ${n}`).toBe(true);
        }
      } else expect(ios(plan), key).toEqual(["f32"]);
    }
  }, 120_000);
});

type Wire = { shape: number[]; data: number[] };
const wire = (a: Float64Array, shape: number[]): Wire => ({ shape, data: Array.from(a) });
type Request = { run: string; dims: Record<string, number>; B: number; T: number; inputs: Record<string, number[]>; params: Record<string, number[]>; initial: Record<string, number[]> };

/** Runs test/torch/autograd_bf16.py; each plan it asks for runs on the float64 interpreter (forward: the model, chain:<part>: the chain's). */
async function serve(json: string, first: unknown, model: I.Model, chain: ReturnType<typeof torchChain>) {
  const py = spawn("/usr/bin/python3", ["test/torch/autograd_bf16.py", json], { stdio: ["pipe", "pipe", "pipe"] });
  let err = "";
  py.stderr.on("data", (d) => (err += d));
  py.stdin.write(JSON.stringify(first) + "\n");
  for await (const line of createInterface({ input: py.stdout })) {
    const msg = JSON.parse(line);
    if (msg.done) { py.stdin.end(); return msg; }
    const q = msg as Request;
    const m = q.run === "forward" ? model : chain.models[q.run.replace(/^chain:/, "") as ChainPart];
    if (!m) throw new Error(`unexpected plan ${q.run}`);
    const f64 = (o: Record<string, number[]>) => Object.fromEntries(Object.entries(o).map(([k, v]) => [k, Float64Array.from(v)]));
    const own = new Set(I.tensorsOfKind(m, "input").map((t) => t.name));
    const r = interpret(m, { dims: q.dims, batch: q.B, time: q.T, inputs: f64(Object.fromEntries(Object.entries(q.inputs).filter(([k]) => own.has(k)))), params: f64(q.params), initialState: f64(q.initial) });
    const shapeOf = (n: string, lead: number[]) => [...lead, ...shapeSizes(m.tensors.find((t) => t.name === n)!.shape, q.dims)];
    py.stdin.write(JSON.stringify({
      outputs: Object.fromEntries(Object.entries(r.outputs).map(([k, v]) => [k, wire(v, shapeOf(k, [q.B, q.T]))])),
      final: Object.fromEntries(Object.entries(r.finalState).map(([k, v]) => [k, wire(v, shapeOf(k, [q.B]))])),
    }) + "\n");
  }
  throw new Error(`autograd_bf16.py ended without its result: ${err}`);
}

const cpuTorch = spawnSync("/usr/bin/python3", ["-c", "import torch; torch.zeros(1, dtype=torch.bfloat16)"]).status === 0;
if (!cpuTorch) console.warn("torch-bf16.test: no torch for /usr/bin/python3 (Debian's python3-torch); the bf16 dispatch check is skipped");
describe.skipIf(!cpuTorch)("torch target: bf16 tensors through the forward and the chunked backward (CPU torch; plans on the float64 interpreter)", () => {
  it.each(MODELS)("%s", async (name) => {
    const model = load(name);
    const dims = smallDims(model, { K: 5, V: 7, P: 7, N: 5 });
    const dir = mkdtempSync(join(tmpdir(), "seqc-torch-bf16-"));
    const json = emitTorch(model, { ptx: false }).find((f) => f.path.endsWith(".torch.json"))!;
    writeFileSync(join(dir, json.path), json.contents);
    const chain = torchChain(modelChain(model, dims), dims); // the chain as the module runs it (without prep's copies, the backward models' zeros and copies)
    // bf16 cores: all four without a decay; with one, core and adjoint (dq and dk feed the decay adjoint's
    // cancelling sums: fp32, seqc_chunked.BF16_DECAY_PARTS); a per-key decay's transposed cores are torch ops
    // (the forward core does not rerun where post's backward does not run: the forward's final state is kept).
    // With a scalar decay the default seqc_chunked.TRANSPOSED_IO "mixed": the transposed cores read bf16 and write fp32
    // (the plans' bf16-of32 variants), the decay adjoint then anchored every C tokens (seqc_chunked.DECAY_ANCHOR
    // "mixed": runtime/torch/seqc_decay_adjoint.py; C = 64 > T is one anchor, C = 8 several); "f32" the old path.
    // "default": nothing set (mixed where the decay is scalar, else as f32)
    const scalar = chain.names.decay === "scalar";
    // the forward core reruns only for a y that post's backward reads (seqc_chunked.CORE_RERUN "bound"): not where it does
    // not run (skip), nor where no form of its plan binds a readout's y (Mamba-2: y = y0 + D x, its backward reads x and dy)
    type Step = { kind: string; buffers?: { kind: string; name?: string }[] };
    const postPlan = (JSON.parse(json.contents) as { plans: Record<string, { forms: { steps: Step[] }[] }> }).plans["chain:postBw"];
    const ys = new Set(chain.names.readouts.map((r) => r.y));
    const postReadsY = !chain.names.postBw.skip && postPlan.forms.some((f) => f.steps.some((st) => (st.buffers ?? []).some((b) => b.kind === "input" && ys.has(b.name ?? ""))));
    if (name === "mamba2") expect(postReadsY).toBe(false);
    // glue "old": the reversals and reverse sums as before seqc_chunked.REVERSE_SUM / REVERSE_GLUE (flips, one cumsum
    // over T) and the anchors' stack Gram; else the defaults (reverse sums per chunk, the adjoint's reversed inputs from
    // their bf16 copies, the lean Gram)
    const cases: [number, number, boolean, string, number?, string?][] = [[2, 37, true, "f32"], [3, 11, false, "f32"], [1, 1, true, "f32"], [2, 19, true, "default"],
      [2, 19, true, "default", undefined, "old"],
      // the glue's copies as before seqc_chunked.GLUE_COPIES "lean" (the default), and the lean copies at T = 1 and a ragged T
      [2, 19, true, "default", undefined, "copies-old"], [1, 1, true, "default"], [3, 13, false, "default"],
      // the stateless parts on float32 copies of the bf16 inputs and cotangents (seqc_chunked.STATELESS_IO "f32", the old way)
      [2, 19, true, "default", undefined, "stateless-f32"], [1, 1, true, "default", undefined, "stateless-f32"],
      // prep's and post's copies of bf16 tensors handed on as float32 copies (seqc_chunked.ALIAS_IO "f32")
      [2, 19, true, "default", undefined, "alias-f32"],
      // the stateless parts' float32 outputs converted where read (seqc_chunked.STATELESS_OUT "f32", the way before F15m)
      [2, 19, true, "default", undefined, "stateless-out-f32"],
      ...(scalar ? [[2, 37, true, "mixed", 64], [2, 37, true, "mixed", 8], [2, 37, true, "mixed", 8, "old"], [2, 37, true, "mixed", 8, "copies-old"], [1, 1, true, "mixed", 8], [3, 29, true, "mixed", 8], [3, 13, false, "mixed", 8, "stateless-f32"]] as [number, number, boolean, string, number, string?][] : [])];
    for (const [B, T, init, sent, anchorChunk, glue] of cases) {
      const tio = sent === "default" ? (scalar ? "mixed" : "f32") : sent;
      const mixed = tio === "mixed" ? ["chain:coreT", "chain:adjointT"] : [];
      const bf16Cores = (chain.names.ld && !mixed.length ? ["chain:core", "chain:adjoint"] : ["chain:core", "chain:coreT", "chain:adjoint", "chain:adjointT"]).filter((k) => !(k === "chain:core" && !postReadsY));
      const run = chunkInputs(model, { dims, batch: B, time: T, seed: 21 + T, initialState: init });
      // the tensors as bf16 holds them (the reference is the float64 gradient at the values the kernels are given)
      for (const o of [run.inputs, run.params ?? {}, run.initialState ?? {}]) for (const k of Object.keys(o)) o[k] = o[k].map((v) => fromBf16(toBf16(v)));
      const ref = interpret(model, run);
      const cot = randomCotangents(ref, T + 6);
      const want = await gradients(model, run, cot);
      const list = (o: Record<string, Float64Array> | undefined) => Object.fromEntries(Object.entries(o ?? {}).map(([k, v]) => [k, Array.from(v)]));
      const got = await serve(join(dir, json.path),
        { B, T, dims, backward: "auto", transposedIo: sent === "default" ? undefined : sent, anchorChunk, glue, inputs: list(run.inputs), params: list(run.params), initialState: list(run.initialState), cotOutputs: list(cot.outputs), cotFinal: list(cot.finalState) }, model, chain);
      const label = `B=${B} T=${T} init=${init} transposed ${sent}${anchorChunk ? ` anchors every ${anchorChunk}` : ""}${glue ? ` glue ${glue}` : ""}`;
      expect(got.chunked, label).toBe(true);
      expect(got.dtypes, label).toEqual(["bfloat16"]);
      const runs = got.runs as [string, string, string, string[], string][];
      expect(runs[0].slice(0, 2), label).toEqual(["forward", "bf16"]);
      const cores = runs.filter(([k]) => bf16Cores.includes(k));
      expect(cores.map(([k]) => k), label).toEqual(bf16Cores);
      for (const [k, io, variant, dts, out] of [runs[0], ...cores]) {
        expect(io, `${label} ${k}`).toBe("bf16");
        expect(variant, `${label} ${k}`).toMatch(mixed.includes(k) ? /^chunked-\w+-bf16-of32-/ : /^chunked-\w+-bf16-k/);
        expect(out, `${label} ${k}`).toBe(mixed.includes(k) ? "f32" : "bf16");
        expect(dts, `${label} ${k}`).toEqual(["bfloat16"]);
      }
      const stateless = /^chain:(prep|postBw|prepBw)$/;
      const lowStateless = glue !== "stateless-f32"; // seqc_chunked.STATELESS_IO "bf16" (the default)
      // seqc_chunked.STATELESS_OUT "bf16" (the default since H200 call F15m): prep's backward takes its "-bf16out" twin
      // where the plan has one (lowOut above: every model but GLA), prep too where every chunked core reads bf16
      const hasOut = (k: string) => k === "chain:prepBw" && ["simple_gla", "mamba2", "linear_attention"].includes(name);
      const lowOuts = lowStateless && glue !== "stateless-out-f32";
      for (const [k, io, variant, , out, arrived, low] of runs.slice(1).filter((r) => !cores.includes(r)) as unknown as [string, string, string, string[], string, string[], string[] | null][]) {
        expect(k, label).toMatch(/^chain:/);
        if (lowStateless && stateless.test(k)) {
          // the bf16-input twin, given exactly the tensors it reads in bf16 as bf16 (the bf16 inputs and cotangents
          // themselves, no float32 copy of them), every other input (prep's adjoints, y) in float32
          if (!lowOuts) expect([io, out, variant.endsWith("-bf16in")], `${label} ${k}`).toEqual(["bf16", "f32", true]);
          else {
            if (hasOut(k)) expect(out, `${label} ${k}: STATELESS_OUT "bf16"`).toBe("bf16");
            expect([io, variant.endsWith(out === "bf16" ? "-bf16in-bf16out" : "-bf16in")], `${label} ${k} (out ${out}: ${variant})`).toEqual(["bf16", true]);
          }
          expect(arrived.length, `${label} ${k}`).toBeGreaterThan(0);
          expect(arrived.every((n) => low!.includes(n)), `${label} ${k}: ${arrived} vs ${low}`).toBe(true);
        } else expect([io, /-bf16/.test(variant), arrived], `${label} ${k}`).toEqual(["f32", false, []]);
      }
      // bf16 inputs, bf16 at the cores' boundaries, fp32 accumulation: inputs' and initial states' gradients within
      // 1e-2 of the float64 ones; a param's (a sum over batch and time: Mamba-2's A, D) within 3e-2 (Mamba-2's dA at
      // B=3 T=11 came out 1.6e-2: dA = sum dt dld over cancelling terms, a0 = <dS_N, S_N> among them, S_N from
      // bf16-rounded k and v; with two heads the relative error of the whole is that of a few such sums)
      const errs: string[] = [];
      const cmp = (what: string, g: number[], w: Float64Array, tol: number) => {
        const e = relativeError(Float64Array.from(g), w);
        errs.push(`${what} ${e.toExponential(1)}`);
        expect(e, `${label}: d ${what}`).toBeLessThanOrEqual(tol);
      };
      for (const [k, v] of Object.entries(want.inputs)) cmp(k, got.inputs[k], v, 1e-2);
      for (const [k, v] of Object.entries(want.params)) if (run.params?.[k]) cmp(k, got.params[k], v, 3e-2);
      if (init) for (const [k, v] of Object.entries(want.initialState)) cmp(`${k}0`, got.initialState[k], v, 1e-2);
      console.log(`${name} ${label}: ${errs.join(", ")}`);
    }
  }, 300_000);
});
