/**
 * The chunked backward's stateless parts read bf16 (compiler/backends/torch/stateless-bf16.ts) on the CPU emulation of
 * CUDA (test/cuda-emu/emu.h, g++): each bf16-input twin (`<variant>-bf16in`: the inputs of its bf16Inputs as bf16 words
 * widened in registers, every other input float32) against the float32 form it copies, given the same values (the bf16
 * inputs rounded to bf16, the float32 ones, e.g. prep's adjoints, not): bitwise the same outputs (the widening is exact,
 * the arithmetic the same), and both within 1e-5 of the float64 interpreter on those values. prep, post's backward
 * (Mamba-2: the cotangent y__bar among its bf16 inputs) and prep's backward of SimpleGLA, GLA and Mamba-2 at odd sizes,
 * T = 1 and a ragged T. The twins without the stores of the outputs the glue does not read ("-nz", stateless-nz.ts):
 * those outputs left as they were, the rest bitwise the twin they copy. The row-major twins ("-rm<M>",
 * stateless-rows.ts: items row by row, 4 a thread a pass, M times the rows a block): bitwise the form they copy. The
 * delta family's twins writing bf16 outputs ("-bf16out", bf16Outputs: prep's outputs, post's backward's dY, prep's
 * backward's whole gradients), and the diagonal chain's (chain-plans.ts diagonalBf16Outputs: prep's outputs but the log
 * decay, prep's backward's whole gradients): those outputs bitwise the form they copy rounded to bf16 (torch's
 * conversion), the rest bitwise.
 */
import { describe, expect, it } from "vitest";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createHash } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadProgram } from "../compiler/frontend/load.ts";
import { interpret } from "../compiler/ir/interpret.ts";
import { modelChain } from "../compiler/grad/chunked-chain.ts";
import { torchChain } from "../compiler/backends/torch/chain-copies.ts";
import { lowRankChain } from "../compiler/grad/chunked-chain-lowrank.ts";
import { torchLowRankChain } from "../compiler/backends/torch/chain-copies-lowrank.ts";
import { buildTorchPlans } from "../compiler/backends/torch/plans.ts";
import { relativeError } from "../compiler/io/manifest.ts";
import { evalSize, type Env } from "../runtime/plan.ts";
import type { CudaFormPlan, CudaLaunch, CudaModelPlan } from "../runtime/cuda/plan.ts";
import type { ChainPart } from "../runtime/chunked-backward.ts";
import { fromBf16, toBf16 } from "../runtime/cuda/half.ts";
import { compileEmu, EMU_READF } from "./cuda-emu/harness.ts";
import { kernelText, MINMAX } from "./cuda-emu/plain.ts";
import { randomRun, smallDims } from "./helpers/random.ts";

const EMU_H = join(import.meta.dirname, "cuda-emu", "emu.h");
const gxx = spawnSync("g++", ["--version"]).status === 0;
const load = (name: string) => loadProgram([`stdlib/${name}.seq`]).models[0];

/** One emulator executable for every plain form of a stateless plan (the float32 forms and their bf16-input twins). */
function buildEmu(plan: CudaModelPlan): string {
  const launches = plan.forms.flatMap((f) => f.steps as CudaLaunch[]);
  const entries = [...new Map(launches.map((l) => [l.entry, l])).values()];
  const helpers = plan.source.slice(0, plan.source.search(/\nstruct Seqc/));
  const kernels = entries.map((l) => kernelText(plan.source, l.entry).replace("extern __shared__ float seqc_smem[];", "float* seqc_smem = (float*)emu::g.smem;"));
  const tramp = entries.map((l) => {
    // each buffer cast to the type the kernel declares (const unsigned short* for a bf16 input)
    const decl = new RegExp(`\\b${l.entry}\\(([^)]*)\\)`).exec(plan.source)![1].split(",").map((p) => p.replace("__restrict__", "").trim().replace(/\s*\w+$/, ""));
    const args = l.buffers.map((_, i) => `(${decl[i]})A_b[${i}]`);
    return `static void body_${l.entry}() { ${l.entry}(${[...args, `*(const SeqcUniforms_${l.entry}*)A_u`, `*(const SeqcOverrides_${l.entry}*)A_o`].join(", ")}); }`;
  });
  const main = `
static void** A_b; static const unsigned* A_u; static const unsigned* A_o;
${tramp.join("\n")}
${EMU_READF}
int main(int argc, char** argv) {
  std::string dir = argv[1];
  FILE* lf = fopen((dir + "/launches.txt").c_str(), "r");
  int nbuf; if (fscanf(lf, "%d", &nbuf) != 1) return 2;
  std::vector<std::vector<char>> bufs(nbuf);
  std::vector<void*> ptrs(nbuf);
  for (int i = 0; i < nbuf; ++i) { bufs[i] = readf(dir + "/buf" + std::to_string(i) + ".bin"); bufs[i].reserve(bufs[i].size() + 64); ptrs[i] = bufs[i].data(); }
  char name[256];
  while (fscanf(lf, "%255s", name) == 1) {
    unsigned gx, nthr, smem; int nb, nu, no;
    if (fscanf(lf, "%u %u %u %d", &gx, &nthr, &smem, &nb) != 4) return 2;
    std::vector<void*> b(nb); for (int i = 0; i < nb; ++i) { int k; if (fscanf(lf, "%d", &k) != 1) return 2; b[i] = ptrs[k]; }
    if (fscanf(lf, "%d", &nu) != 1) return 2; std::vector<unsigned> u(nu + 1); for (int i = 0; i < nu; ++i) if (fscanf(lf, "%u", &u[i]) != 1) return 2;
    if (fscanf(lf, "%d", &no) != 1) return 2; std::vector<unsigned> o(no + 1); for (int i = 0; i < no; ++i) if (fscanf(lf, "%u", &o[i]) != 1) return 2;
    A_b = b.data(); A_u = u.data(); A_o = o.data();
    void (*fn)() = nullptr;
${entries.map((l) => `    if (!strcmp(name, "${l.entry}")) fn = body_${l.entry};`).join("\n")}
    if (!fn) { fprintf(stderr, "no entry %s\\n", name); return 2; }
    emu::Dim g; g.x = gx; g.y = 1; emu::Dim blk; blk.x = nthr;
    emu::g.bidx.z = 0;
    emu::launch(fn, g, blk, smem);
  }
  for (int i = 0; i < nbuf; ++i) { FILE* f = fopen((dir + "/buf" + std::to_string(i) + ".out").c_str(), "wb"); fwrite(bufs[i].data(), 1, bufs[i].size(), f); fclose(f); }
  return 0;
}
`;
  const full = `// emu.h ${createHash("sha1").update(readFileSync(EMU_H)).digest("hex")}\n#include "${EMU_H}"\n#include <string>\n${MINMAX}\n${helpers}\n${kernels.join("\n")}\n${main}`;
  return compileEmu(full, `${plan.model}-stateless-bf16`);
}

/** Run form f of the plan over [B, T] as the torch runtime does (seqc_torch.execute): an input of f.bf16Inputs as bf16
 *  words, every other input, the params and the outputs float32 (an output of f.bf16Outputs bf16 words, start NaN).
 *  Returns the outputs as float64. */
function runForm(bin: string, plan: CudaModelPlan, f: CudaFormPlan, dims: Record<string, number>, B: number, T: number, inputs: Record<string, Float64Array>, params: Record<string, Float64Array>): Record<string, Float64Array> {
  const specs = plan.tensors;
  const env: Env = { ...dims, B, T, LIMIT_SMS: 132, LIMIT_SMEM_OPTIN: 227 * 1024, LIMIT_SHARED: 227 * 1024, LIMIT_THREADS: 1024 };
  for (const [k, e] of f.vars) env[k] = evalSize(e, env);
  if (f.applicable !== undefined && evalSize(f.applicable, env) === 0) throw new Error(`${f.variant} does not apply`);
  const size = (t: { shape: unknown[] }) => (t.shape as never[]).reduce<number>((a, s) => a * evalSize(s, env), 1);
  const bufs: Buffer[] = [];
  const index = new Map<string, number>();
  const add = (key: string, data: Buffer) => (index.set(key, bufs.length), bufs.push(data));
  const low = new Set(f.io === "bf16" ? (f.bf16Inputs ?? specs.filter((t) => t.role === "input").map((t) => t.name)) : []);
  for (const t of specs.filter((x) => x.role === "input")) {
    const v = inputs[t.name];
    if (!v) add(`input:${t.name}`, Buffer.alloc(16));
    else if (low.has(t.name)) add(`input:${t.name}`, Buffer.from(Uint16Array.from(v, (x) => toBf16(x)).buffer));
    else add(`input:${t.name}`, Buffer.from(Float32Array.from(v).buffer));
  }
  const lowOut = new Set(f.out === "bf16" ? (f.bf16Outputs ?? []) : []);
  for (const t of specs.filter((x) => x.role === "output")) {
    add(`output:${t.name}`, lowOut.has(t.name) ? Buffer.from(new Uint16Array(B * T * size(t)).fill(0x7fc0).buffer) : Buffer.from(new Float32Array(B * T * size(t)).fill(NaN).buffer));
  }
  const ps = specs.filter((t) => t.role === "param");
  const pHost = new Float32Array(Math.max(1, ps.reduce((a, t) => a + size(t), 0)));
  let off = 0;
  for (const t of ps) {
    if (params[t.name]) pHost.set(Float32Array.from(params[t.name]), off);
    off += size(t);
  }
  add("params", Buffer.from(pHost.buffer));
  add("states", Buffer.alloc(16));
  for (const w of f.workspaces) add(`workspace:${w.name}`, Buffer.alloc(Math.max(16, evalSize(w.words, env) * 4)));
  const uni = (u: string) => (u === "B" ? B : u === "T" ? T : u.startsWith("has_") ? (inputs[u.slice(4)] || params[u.slice(4)] ? 1 : 0) : (env[u] ?? 0));
  const lines = [String(bufs.length)];
  for (const st of f.steps as CudaLaunch[]) {
    const refs = st.buffers.map((r) => index.get(r.kind === "input" || r.kind === "output" || r.kind === "workspace" ? `${r.kind}:${(r as { name: string }).name}` : r.kind === "initialStates" ? "states" : r.kind)!);
    const us = st.uniforms.map(uni);
    const os = Object.values(st.overrides).map((e) => evalSize(e, env));
    lines.push(`${st.entry} ${evalSize(st.grid, env)} ${evalSize(st.threads, env)} ${evalSize(st.sharedBytes, env)} ${refs.length} ${refs.join(" ")} ${us.length} ${us.join(" ")} ${os.length} ${os.join(" ")}`);
  }
  const dir = mkdtempSync(join(tmpdir(), "seqc-stateless-emu-"));
  try {
    bufs.forEach((d, i) => writeFileSync(join(dir, `buf${i}.bin`), d));
    writeFileSync(join(dir, "launches.txt"), lines.join("\n") + "\n");
    execFileSync(bin, [dir], { stdio: "pipe", timeout: 600_000 });
    const out: Record<string, Float64Array> = {};
    for (const t of specs.filter((x) => x.role === "output")) {
      const b = readFileSync(join(dir, `buf${index.get(`output:${t.name}`)}.out`));
      out[t.name] = lowOut.has(t.name) ? Float64Array.from(new Uint16Array(b.buffer, b.byteOffset, B * T * size(t)), fromBf16) : Float64Array.from(new Float32Array(b.buffer, b.byteOffset, B * T * size(t)));
    }
    return out;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const STATELESS: ChainPart[] = ["prep", "postBw", "prepBw"];

/** Each twin of the stateless parts of model `name` at `sizes` (its chain's models by `models`) against the float32 form
 *  it copies (see the file's comment); the counts of the twins checked by kind and of the unwritten outputs left as they were. */
function checkTwins(name: string, sizes: Record<string, number>, models: (model: ReturnType<typeof load>, dims: Record<string, number>) => Partial<Record<string, import("../compiler/ir/types.ts").Model>>) {
  {
    const model = load(name);
    const dims = smallDims(model, sizes);
    const tp = buildTorchPlans(model, { dims: Object.fromEntries(Object.entries(BAKED).filter(([k]) => model.dims.some((d) => d.name === k))) });
    const chain = { models: models(model, dims) };
    let twins = 0;
    let splits = 0;
    let nzs = 0;
    let nzLeft = 0;
    let rms = 0;
    let rvs = 0;
    let outs = 0;
    let rounded = 0; // bf16 outputs of "-bf16out" twins holding values that are not bf16 ones (prep's: the rounding checked)
    for (const part of STATELESS) {
      const plan = tp.plans[`chain:${part}`];
      if (!plan) continue;
      const m = chain.models[part]!;
      const bin = buildEmu(plan);
      const f32 = plan.forms.filter((f) => (f.io ?? "f32") === "f32" && !f.module);
      for (const [B, T, seed] of [[2, 9, 3], [1, 1, 5], [3, 5, 7]]) {
        // the chain's models run over [B*T, 1] in the glue (seqc_chunked.pointwise); here [B, T] as is (stateless: the same)
        const run = randomRun(m, { dims, batch: B, time: T, seed: seed * 11 + part.length });
        for (const f of plan.forms.filter((x) => x.io === "bf16" && !x.bf16Bars)) {  // (the "-bf16bar" twins: their own test below)
          // (the fused vector twins, "-rf<M>", and the warp-fused ones, "-rw<M>": bitwise their row-major twins in
          // test/torch-stateless-vec-emu.test.ts)
          if (/-r[fw]\d+(-bf16out)?$/.test(f.variant)) continue;
          if (f.out === "bf16") {
            // a twin writing bf16Outputs as bf16 ("-bf16out"): those outputs the form it copies rounded to bf16, the rest
            // bitwise (unwritten ones left as they were)
            const src = plan.forms.find((x) => `${x.variant}-bf16out` === f.variant)!;
            expect(src, `${name} ${part} ${f.variant}`).toBeDefined();
            expect(src.out, `${name} ${part} ${f.variant}`).toBe("f32");
            const vals = Object.fromEntries(Object.entries(run.inputs).map(([k, v]) => [k, f.bf16Inputs!.includes(k) ? v.map((x) => fromBf16(toBf16(x))) : Float64Array.from(Float32Array.from(v))]));
            const pars = Object.fromEntries(Object.entries(run.params ?? {}).map(([k, v]) => [k, Float64Array.from(Float32Array.from(v))]));
            const a = runForm(bin, plan, src, dims, B, T, vals, pars);
            const b = runForm(bin, plan, f, dims, B, T, vals, pars);
            expect(f.bf16Outputs!.length, `${name} ${part} ${f.variant}`).toBeGreaterThan(0);
            for (const o of Object.keys(a)) {
              const label = `${name} ${part} ${f.variant} B=${B} T=${T} ${o}`;
              const low = f.bf16Outputs!.includes(o);
              if (low && a[o].some((x) => !Number.isNaN(x) && fromBf16(toBf16(x)) !== x)) rounded++;
              expect(Array.from(b[o]), label).toEqual(low ? Array.from(a[o], (x) => (Number.isNaN(x) ? x : fromBf16(toBf16(x)))) : Array.from(a[o]));
            }
            outs++;
            continue;
          }
          // a row-major twin (stateless-rows.ts, "-rm<M>") or its vector twin (stateless-vec.ts, "-rv<M>"): bitwise the form
          // it copies (v0)
          const rv = /-rv\d+$/.test(f.variant);
          const rm = rv || /-rm\d+$/.test(f.variant);
          const v0 = f.variant.replace(/-r[mv]\d+$/, "");
          // a twin without its unwritten outputs' stores (stateless-nz.ts, "-nz"): the twin it copies otherwise
          const nz = v0.endsWith("-nz");
          // a warp-split twin (stateless-warp.ts, "-wr"): its row sums in another order
          const split = v0.replace(/-nz$/, "").endsWith("-wr");
          const base = f32.find((x) => `${x.variant}-bf16in` === v0.replace(/-nz$/, "").replace(/-wr$/, ""))!;
          expect(base, `${name} ${part} ${f.variant}`).toBeDefined();
          // the values the kernels are given: the bf16 inputs rounded to bf16, the others (prep's adjoints, y) float32
          const vals = Object.fromEntries(Object.entries(run.inputs).map(([k, v]) => [k, f.bf16Inputs!.includes(k) ? v.map((x) => fromBf16(toBf16(x))) : Float64Array.from(Float32Array.from(v))]));
          const pars = Object.fromEntries(Object.entries(run.params ?? {}).map(([k, v]) => [k, Float64Array.from(Float32Array.from(v))]));
          const a = runForm(bin, plan, base, dims, B, T, vals, pars);
          const b = runForm(bin, plan, f, dims, B, T, vals, pars);
          const want = interpret(m, { dims, batch: B, time: T, inputs: vals, params: pars, initialState: {} }).outputs;
          const src = rm || nz ? runForm(bin, plan, plan.forms.find((x) => x.variant === (rm ? v0 : v0.slice(0, -3)))!, dims, B, T, vals, pars) : undefined;
          expect(Boolean(f.unwritten?.length), `${name} ${part} ${f.variant}`).toBe(nz);
          for (const o of Object.keys(a)) {
            const label = `${name} ${part} ${f.variant} B=${B} T=${T} ${o}`;
            if (nz && f.unwritten!.includes(o)) {
              // left as it was (the outputs start NaN here); the glue does not read it (seqc_chunked.ZERO_STORES)
              expect(b[o].every((x) => Number.isNaN(x)), label).toBe(true);
              nzLeft++;
              continue;
            }
            if (src) expect(Array.from(b[o]), label).toEqual(Array.from(src[o]));
            if (split) expect(relativeError(b[o], a[o]), label).toBeLessThanOrEqual(1e-6);
            else expect(Array.from(b[o]), label).toEqual(Array.from(a[o]));
            expect(relativeError(b[o], want[o]), label).toBeLessThanOrEqual(1e-5);
          }
          twins++;
          if (rv) rvs++;
          else if (rm) rms++;
          else if (split && !nz) splits++;
          else if (nz) nzs++;
        }
      }
    }
    return { twins, splits, nzs, nzLeft, rms, rvs, outs, rounded };
  }
}

/** Sizes a loop's extent is compiled with (gated_deltaproduct's J), as test/torch-chunked-lowrank.test.ts. */
const BAKED: Record<string, number> = { J: 2 };

describe.skipIf(!gxx)("torch target: the stateless parts' bf16-input twins on the CUDA emulation", () => {
  it.each([
    ["simple_gla", { H: 3, K: 5, V: 7 }],
    ["gla", { H: 3, K: 5, V: 7 }],
    ["mamba2", { H: 3, P: 7, N: 5 }],
    // rows longer than a warp: the warp-split twins' lanes walk 2-3 strides, odd tails
    ["mamba2", { H: 2, P: 45, N: 70 }],
  ] as [string, Record<string, number>][])("%s %j: each twin bitwise its float32 form on bf16-valued inputs (warp-split twins within 1e-6), both vs float64", (name, sizes) => {
    const { twins, splits, nzs, nzLeft, rms, rvs, outs, rounded } = checkTwins(name, sizes, (model, dims) => torchChain(modelChain(model, dims), dims).models);
    expect(twins).toBeGreaterThan(0);
    // the twins writing bf16 outputs (chain-plans.ts diagonalBf16Outputs; seqc_chunked.STATELESS_OUT), per case: prep's
    // (kk1 / q3: 3 + 3 row-major + 3 vector) and prep's backward's whole gradients (Mamba-2's dB, ddt: its 22 twins but
    // the 3 fused ones, checked in torch-stateless-vec-emu; SimpleGLA's dq: 9); none for GLA's per-key decay
    expect(outs).toBe({ mamba2: (9 + 22) * 3, simple_gla: (9 + 9) * 3, gla: 0 }[name]);
    // prep's kk1 = dt B, q3 = q K^-0.5 are no bf16 values: the twins' rounding is compared
    if (outs) expect(rounded).toBeGreaterThanOrEqual(9 * 3);
    // Mamba-2's prep and post backward sum over rows: their workgroup and global forms get warp-split twins
    if (name === "mamba2") expect(splits).toBe(2 * 2 * 3);
    else expect(splits).toBe(0);
    // Mamba-2's post backward (zeros dt__bar, B__bar, C__bar, A__bar; copy y0__bar) and prep backward (zero D__bar):
    // each bf16-input twin and warp split (5 a part) gets a twin leaving them unwritten; the others' post backward
    // does not run and their prep backward has no zeros (and the row-major and vector twins of the "-nz" twins: 5 + 1 a case each)
    if (name === "mamba2") expect([nzs, nzLeft - 2 * (5 + 1) * 3 * 3]).toEqual([2 * 5 * 3, (5 * 5 + 5 * 1) * 3]);
    else expect(nzs).toBe(0);
    // the global form's row-major twins (3 row multiples each): Mamba-2's prep 1 base, its post and prep backward 2
    // (the warp split and its "-nz" twin); every model's prep has one
    if (name === "mamba2") expect(rms).toBe((1 + 2 + 2) * 3 * 3);
    else expect(rms).toBeGreaterThanOrEqual(3 * 3);
    // and each its vector twin (stateless-vec.ts: every one of these has a phase with a vector version)
    expect(rvs).toBe(rms);
  }, 300_000);

  // the delta family's (the low-rank chain's, chain-plans-lowrank.ts; prep without its copies of inputs, chain-copies-lowrank.ts:
  // RWKV-7's prep is all copies, so it has neither prep nor prep's backward)
  it.each([
    ["deltanet", { H: 3, K: 5, V: 7 }],
    ["gated_deltanet", { H: 3, K: 5, V: 7 }],
    ["rwkv7", { H: 3, K: 5, V: 7 }],
    ["gated_deltaproduct", { H: 2, K: 5, V: 7 }],
    // rows longer than a warp
    ["deltanet", { H: 2, K: 45, V: 70 }],
  ] as [string, Record<string, number>][])("%s %j (the low-rank chain): each twin bitwise its float32 form on bf16-valued inputs (warp-split twins within 1e-6), both vs float64", (name, sizes) => {
    const { twins, splits, nzs, nzLeft, rms, rvs, outs, rounded } = checkTwins(name, sizes, (model, dims) => torchLowRankChain(lowRankChain(model, { ...dims, ...BAKED }), { ...dims, ...BAKED }).models);
    const zeros = Object.keys(lowRankChain(load(name), BAKED).names.postBw.inputBar).length - 1;
    // per part and case: prep, prep's and post's backward each 3 twins of the float32 forms; the row-major twins (3
    // multiples) of prep's, prep's backward's and post's backward's global twin and of post's backward's "-nz" twin
    const preps = name === "rwkv7" ? 0 : 1;
    expect(twins - splits - nzs - rms - rvs).toBe((1 + 2 * preps) * 3 * 3);
    expect(rms).toBe((2 * preps + 2) * 3 * 3);
    // and each its vector twin (stateless-vec.ts)
    expect(rvs).toBe(rms);
    // prep's backward sums over K for beta__bar (DeltaNet, Gated DeltaNet, Gated DeltaProduct; and dg): its workgroup and
    // global forms get warp splits; RWKV-7's has no row sum in a phase of its own
    expect(splits).toBe(name === "rwkv7" ? 0 : 2 * 3);
    // post's backward: every cotangent but y's a literal zero, left unwritten by the three "-nz" twins (and their rm and
    // rv twins)
    expect([nzs, nzLeft]).toEqual([3 * 3, (3 + 3 + 3) * zeros * 3]);
    // the delta kernels' per-token tensors written as bf16 (E = P = R = 1, not Gated DeltaProduct's two micro-steps): every
    // twin of prep (3 + its 3 row-major + 3 vector), of post's backward (3, 3 "-nz", 6 row-major, 6 vector) and of prep's
    // backward (its whole gradients q__bar, beta__bar: 3, 2 warp splits, 3 row-major, 3 vector), per case
    expect(outs).toBe(name === "gated_deltaproduct" ? 0 : ((9 + 11) * preps + 18) * 3);
    // prep's outputs (u = -beta k, q K^-0.5, ...) are no bf16 values: the twins' rounding is compared (post's backward's
    // dY is its bf16 cotangent as it is)
    if (preps && outs) expect(rounded).toBeGreaterThanOrEqual((6 + 8) * 3);
  }, 600_000);

  // prep's backward's twins reading the adjoints of prep's outputs as bf16 too (stateless-bf16.ts BF16_BAR, bf16Bars: the
  // delta adjoint's bf16 gradients, seqc_delta_bwd LR_DELTA_ADJ_OUT): each bitwise its "-bf16in" counterpart given those
  // adjoints' bf16 values (the widening exact, the arithmetic the same), which reads them as float32
  it.each([
    ["deltanet", { H: 3, K: 5, V: 7 }],
    ["gated_deltanet", { H: 2, K: 45, V: 70 }],
  ] as [string, Record<string, number>][])("%s %j: prep's backward's \"-bf16bar\" twins bitwise their \"-bf16in\" forms on bf16-valued adjoints", (name, sizes) => {
    const model = load(name);
    const dims = smallDims(model, sizes);
    const plan = buildTorchPlans(model).plans["chain:prepBw"];
    const chain = torchLowRankChain(lowRankChain(model, dims), dims), m = chain.models.prepBw!;
    const bars = plan.forms.filter((f) => f.bf16Bars);
    const barNames = Object.values(chain.names.prepBw.outputBar).sort();
    // every bf16-input twin again (its warp splits, row-major and "-bf16out" twins), after them all
    expect(bars.map((f) => f.variant)).toEqual(plan.forms.filter((f) => f.io === "bf16" && !f.bf16Bars).map((f) => f.variant.replace("-bf16in", "-bf16bar")));
    expect(plan.forms.findIndex((f) => f.bf16Bars)).toBe(plan.forms.length - bars.length);
    const bin = buildEmu(plan);
    let checked = 0;
    for (const [B, T, seed] of [[2, 9, 3], [1, 1, 5]]) {
      const run = randomRun(m, { dims, batch: B, time: T, seed });
      for (const f of bars) {
        expect(f.bf16Bars, f.variant).toEqual(barNames);
        const src = plan.forms.find((x) => x.variant === f.variant.replace("-bf16bar", "-bf16in"))!;
        expect(f.bf16Inputs, f.variant).toEqual([...src.bf16Inputs!, ...barNames].sort());
        const vals = Object.fromEntries(Object.entries(run.inputs).map(([k, v]) => [k, f.bf16Inputs!.includes(k) ? v.map((x) => fromBf16(toBf16(x))) : Float64Array.from(Float32Array.from(v))]));
        expect(barNames.every((n) => vals[n].some((x, i) => x !== Math.fround(run.inputs[n][i]))), "the adjoints are rounded").toBe(true);
        const pars = Object.fromEntries(Object.entries(run.params ?? {}).map(([k, v]) => [k, Float64Array.from(Float32Array.from(v))]));
        const a = runForm(bin, plan, src, dims, B, T, vals, pars);
        const b = runForm(bin, plan, f, dims, B, T, vals, pars);
        for (const o of Object.keys(a)) expect(Array.from(b[o]), `${name} ${f.variant} B=${B} T=${T} ${o}`).toEqual(Array.from(a[o]));
        checked++;
      }
    }
    expect(checked).toBe(2 * bars.length);
    // a "-bf16bar" twin that reads its adjoints' bf16 words as float32 words gives other values (the check can fail)
    const broken = { ...plan, source: plan.source.replace("_global_bf16bar_wr(const unsigned short* __restrict__ in_k, const unsigned short* __restrict__ in_beta, const unsigned short* __restrict__ in_u0__bar", "_global_bf16bar_wr(const unsigned short* __restrict__ in_k, const unsigned short* __restrict__ in_beta, const float* __restrict__ in_u0__bar") };
    if (name === "deltanet") {
      expect(broken.source).not.toEqual(plan.source);
      const f = bars.find((x) => x.variant === "global-bf16bar-wr")!, src = plan.forms.find((x) => x.variant === "global-bf16in-wr")!;
      const run = randomRun(m, { dims, batch: 2, time: 9, seed: 3 });
      const vals = Object.fromEntries(Object.entries(run.inputs).map(([k, v]) => [k, f.bf16Inputs!.includes(k) ? v.map((x) => fromBf16(toBf16(x))) : Float64Array.from(Float32Array.from(v))]));
      const bb = buildEmu(broken);
      const a = runForm(bb, broken, src, dims, 2, 9, vals, {}), b = runForm(bb, broken, f, dims, 2, 9, vals, {});
      expect(Object.keys(a).some((o) => a[o].some((x, i) => !Object.is(x, b[o][i])))).toBe(true);
    }
  }, 600_000);

  it("a warp-split twin whose warp sum skips a lane fails the comparison (the check can fail)", () => {
    const model = load("mamba2");
    const dims = smallDims(model, { H: 2, P: 45, N: 70 });
    const plan0 = buildTorchPlans(model).plans["chain:prepBw"];
    // a broken butterfly: the last step (lanes l and l ^ 1) left out
    const plan = { ...plan0, source: plan0.source.replace("for (int m = 16; m > 0; m >>= 1)", "for (int m = 16; m > 1; m >>= 1)") };
    expect(plan.source).not.toEqual(plan0.source);
    const m = torchChain(modelChain(model, dims), dims).models.prepBw!;
    const bin = buildEmu(plan);
    const run = randomRun(m, { dims, batch: 2, time: 3, seed: 9 });
    const f = plan.forms.find((x) => x.variant === "workgroup-bf16in-wr")!;
    const vals = Object.fromEntries(Object.entries(run.inputs).map(([k, v]) => [k, f.bf16Inputs!.includes(k) ? v.map((x) => fromBf16(toBf16(x))) : Float64Array.from(Float32Array.from(v))]));
    const want = interpret(m, { dims, batch: 2, time: 3, inputs: vals, params: run.params ?? {}, initialState: {} }).outputs;
    const got = runForm(bin, plan, f, dims, 2, 3, vals, run.params ?? {});
    expect(Math.max(...Object.keys(got).map((o) => relativeError(got[o], want[o])))).toBeGreaterThan(1e-2);
  }, 120_000);

  it("a row-major twin that skips items fails the comparison (the check can fail)", () => {
    const model = load("mamba2");
    const dims = smallDims(model, { H: 2, P: 45, N: 70 });
    const plan0 = buildTorchPlans(model).plans["chain:postBw"];
    // a broken permutation: the item's row (r / X) dropped, so only a block's first row is computed
    const plan = { ...plan0, source: plan0.source.replace(/\* SEQC_G\) \+ \((f_\d+_rm) \//g, "* SEQC_G) + 0u * ($1 /") };
    expect(plan.source).not.toEqual(plan0.source);
    const m = torchChain(modelChain(model, dims), dims).models.postBw!;
    const bin = buildEmu(plan);
    const run = randomRun(m, { dims, batch: 3, time: 5, seed: 9 });
    const f = plan.forms.find((x) => x.variant === "global-bf16in-wr-rm4")!;
    const vals = Object.fromEntries(Object.entries(run.inputs).map(([k, v]) => [k, f.bf16Inputs!.includes(k) ? v.map((x) => fromBf16(toBf16(x))) : Float64Array.from(Float32Array.from(v))]));
    const want = interpret(m, { dims, batch: 3, time: 5, inputs: vals, params: run.params ?? {}, initialState: {} }).outputs;
    const got = runForm(bin, plan, f, dims, 3, 5, vals, run.params ?? {});
    const err = (o: string) => (got[o].some((x) => Number.isNaN(x)) ? Infinity : relativeError(got[o], want[o]));
    expect(Math.max(err("x__bar"), err("D__bar"))).toBeGreaterThan(1e-2);
  }, 120_000);

  it("a \"-bf16out\" twin that truncates instead of rounding to nearest even differs from the float32 form's values converted (the check can fail)", () => {
    const model = load("deltanet");
    const dims = smallDims(model, { H: 3, K: 5, V: 7 });
    const plan0 = buildTorchPlans(model).plans["chain:prep"];
    // a broken store: the float's upper half taken as it is (no rounding)
    const plan = { ...plan0, source: plan0.source.replace("return (unsigned short)((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);", "return (unsigned short)(x >> 16);") };
    expect(plan.source).not.toEqual(plan0.source);
    const m = torchLowRankChain(lowRankChain(model, dims), dims).models.prep!;
    const bin = buildEmu(plan);
    const run = randomRun(m, { dims, batch: 2, time: 9, seed: 9 });
    const f = plan.forms.find((x) => x.variant === "global-bf16in-rm4-bf16out")!;
    const src = plan.forms.find((x) => x.variant === "global-bf16in-rm4")!;
    const vals = Object.fromEntries(Object.entries(run.inputs).map(([k, v]) => [k, f.bf16Inputs!.includes(k) ? v.map((x) => fromBf16(toBf16(x))) : Float64Array.from(Float32Array.from(v))]));
    const a = runForm(bin, plan, src, dims, 2, 9, vals, run.params ?? {});
    const b = runForm(bin, plan, f, dims, 2, 9, vals, run.params ?? {});
    expect(f.bf16Outputs).toEqual(["kk2", "q4", "u0"]);
    const differ = f.bf16Outputs!.filter((o) => a[o].some((x, i) => fromBf16(toBf16(x)) !== b[o][i]));
    expect(differ.length).toBeGreaterThan(0);
  }, 120_000);

  it("a twin that widens its bf16 words wrongly fails the comparison (the check can fail)", () => {
    const model = load("mamba2");
    const dims = smallDims(model, { H: 3, P: 7, N: 5 });
    const plan0 = buildTorchPlans(model).plans["chain:prepBw"];
    // a broken widening: the bf16 word taken as the float's low half
    const plan = { ...plan0, source: plan0.source.replace("return __uint_as_float(((unsigned int)x) << 16);", "return __uint_as_float((unsigned int)x);") };
    expect(plan.source).not.toEqual(plan0.source);
    const m = torchChain(modelChain(model, dims), dims).models.prepBw!;
    const bin = buildEmu(plan);
    const run = randomRun(m, { dims, batch: 2, time: 3, seed: 9 });
    const f = plan.forms.find((x) => x.io === "bf16")!;
    const vals = Object.fromEntries(Object.entries(run.inputs).map(([k, v]) => [k, f.bf16Inputs!.includes(k) ? v.map((x) => fromBf16(toBf16(x))) : Float64Array.from(Float32Array.from(v))]));
    const want = interpret(m, { dims, batch: 2, time: 3, inputs: vals, params: run.params ?? {}, initialState: {} }).outputs;
    const got = runForm(bin, plan, f, dims, 2, 3, vals, run.params ?? {});
    expect(Math.max(...Object.keys(got).map((o) => relativeError(got[o], want[o])))).toBeGreaterThan(1e-2);
  }, 120_000);
});
