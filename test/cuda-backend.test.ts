/**
 * CUDA backend without a GPU: every stdlib model's CUDA output compiles with `nvcc -ptx` for sm_80 and
 * sm_90 (skipped, saying so, where nvcc is not installed), and the CUDA-specific variants are chosen
 * exactly for the models whose IR allows them.
 */
import { describe, expect, it } from "vitest";
import { readdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { loadProgram } from "../compiler/frontend/load.ts";
import { combinedSource, lowerCuda } from "../compiler/backends/cuda/plan.ts";
import { findNvcc, nvccPtx } from "../compiler/backends/cuda/nvcc.ts";
import { CUDA_CAPABILITIES } from "../compiler/backends/cuda/capabilities.ts";
import { renderKernel } from "../compiler/backends/cuda/render.ts";
import { f32Literal } from "../compiler/backends/cuda/math.ts";
import * as K from "../compiler/kernel/ir.ts";
import type { Model } from "../compiler/ir/types.ts";
import { CHAIN_CONFIGS, CHAIN_SWEEP } from "../compiler/backends/cuda/pointwise-chain.ts";
import { evalSize, type Env } from "../runtime/plan.ts";
import type { CudaFormPlan, CudaLaunch } from "../runtime/cuda/plan.ts";

const STDLIB = resolve(import.meta.dirname, "../stdlib");
const files = readdirSync(STDLIB).filter((f) => f.endsWith(".seq")).sort();
const load = (f: string): Model => {
  const p = loadProgram([join(STDLIB, f)]);
  expect(p.diagnostics.filter((d) => d.severity === "error")).toEqual([]);
  return p.models[0];
};
const nvcc = findNvcc();
if (!nvcc) console.warn("cuda-backend.test: nvcc is not installed here, so the `nvcc -ptx` checks of the stdlib are skipped (the other checks still run).");

describe("CUDA renderer", () => {
  it("writes fp32 literals that round-trip and infinities without literals", () => {
    for (const v of [0, 1, -2.5, 0.1, 1e-30, 3.4e38, Math.PI]) {
      const s = f32Literal(v).replace(/f$/, "");
      expect(Math.fround(Number(s))).toBe(Math.fround(v));
    }
    expect(f32Literal(Infinity)).toBe("SEQC_INF");
    expect(f32Literal(-Infinity)).toBe("(-SEQC_INF)");
  });

  it("renders a kernel's buffers, uniforms, overrides and shared arrays", () => {
    const k: K.Kernel = {
      name: "k1",
      workgroupSize: K.u32(64),
      buffers: [
        { name: "out_y", binding: 2, access: "read_write" },
        { name: "in_x", binding: 1, access: "read" },
      ],
      uniformBinding: 0,
      uniforms: ["B", "T"],
      overrides: [{ name: "D_N" }],
      shared: [{ name: "s_a", length: K.ref("D_N") }],
      body: [K.store("out_y", K.ref("lid"), K.call("exp", K.load("in_x", K.ref("lid")))), { k: "barrier" }],
      needs: [],
    };
    const src = renderKernel(k);
    expect(src).toMatch(/extern "C" __global__ void k1\(const float\* __restrict__ in_x, float\* __restrict__ out_y, const SeqcUniforms_k1 u, const SeqcOverrides_k1 ov\)/);
    expect(src).toContain("out_y[seqc_lid] = expf(in_x[seqc_lid]);");
    expect(src).toContain("float* s_a = seqc_smem + 0u;");
    expect(src).toContain("__syncthreads();");
    expect(() => renderKernel({ ...k, buffers: [{ name: "out_y", binding: 2, access: "read" }] })).toThrow(/read-only but stored to/);
  });
});

describe("CUDA variants generated from the IR", () => {
  const variants = (f: string) => lowerCuda(load(f)).plan.forms.map((x) => x.variant);
  it("hgrn gets the single-pass look-back scan and the streaming form; gla and mamba do not (their readouts contract the state)", () => {
    expect(variants("hgrn.seq")).toContain("pointwise-lookback");
    expect(variants("hgrn.seq")).toContain("pointwise-stream");
    expect(variants("gla.seq")).not.toContain("pointwise-lookback");
    expect(variants("mamba.seq")).not.toContain("pointwise-lookback");
  });
  it("lstm and gru get the persistent matvec cell; slstm (block-diagonal heads) and deltanet do not", () => {
    expect(variants("lstm.seq")[0]).toMatch(/^persistent-matvec/);
    expect(variants("gru.seq")[0]).toMatch(/^persistent-matvec/);
    expect(variants("slstm.seq")).not.toContain("persistent-matvec");
    expect(variants("deltanet.seq")).not.toContain("persistent-matvec");
  });
  it("every model has a sequential form", () => {
    for (const f of files) expect(lowerCuda(load(f)).plan.forms.some((x) => x.form === "sequential"), f).toBe(true);
  });
});

describe.skipIf(!nvcc)("nvcc -ptx on every stdlib model", () => {
  // one translation unit for all models per architecture: the same code as per-model files, a fraction
  // of the compiler start-ups (the suite runs beside other CPU-bound tests on two cores)
  for (const sm of CUDA_CAPABILITIES.smTargets) {
    it(`sm_${sm}: every kernel of every form of every model`, () => {
      const lowerings = files.map((f) => ({ f, l: lowerCuda(load(f)) }));
      const { ptx } = nvccPtx(combinedSource(lowerings.map((x) => x.l)), sm, nvcc, { lowPriority: true });
      expect(ptx).toContain(`.target sm_${sm}`);
      for (const { f, l } of lowerings) {
        // forms whose kernels live in modules of their own (chunked) are compiled by cuda-chunked.test.ts
        const entries = new Set(l.plan.forms.filter((x) => !x.module).flatMap((x) => x.steps.filter((s) => s.kind !== "zero").map((s) => (s as { entry: string }).entry)));
        expect(entries.size, f).toBeGreaterThan(0);
        for (const e of entries) expect(ptx, `${f}: entry ${e} for sm_${sm}`).toMatch(new RegExp(`\\.entry ${e}\\(`));
      }
    }, 120_000);
  }
});

describe("pointwise chain scan (a block per channel group over all T, no look-back)", () => {
  const H100 = { LIMIT_SMS: 132, LIMIT_SMEM_OPTIN: 232448, LIMIT_SHARED: 232448, LIMIT_THREADS: 1024 };
  /** The variant the runtime would run: the first applicable form whose `prefer` holds (runtime/cuda/runner.ts). */
  const pick = (forms: CudaFormPlan[], env0: Env): string | undefined => {
    const ok = forms.map((f) => {
      const env: Env = { ...env0 };
      for (const [k, e] of f.vars) env[k] = evalSize(e, env);
      const applicable = f.applicable === undefined || evalSize(f.applicable, env) !== 0;
      const preferred = f.prefer === undefined || evalSize(f.prefer, env) !== 0;
      return { f, applicable, preferred };
    });
    return (ok.find((x) => x.applicable && x.preferred) ?? ok.find((x) => x.applicable))?.f.variant;
  };
  it("hgrn: the wide chain at the bench shape, the narrow one for fewer channels, the look-back scan for a few long channels", () => {
    const forms = lowerCuda(load("hgrn.seq")).plan.forms;
    expect(forms[0].variant).toBe("pointwise-chain");
    expect(pick(forms, { ...H100, D: 1536, B: 8, T: 16384 })).toBe("pointwise-chain");
    expect(pick(forms, { ...H100, D: 1536, B: 2, T: 1031 })).toBe("pointwise-chain-c32");
    expect(pick(forms, { ...H100, D: 64, B: 1, T: 20000 })).toBe("pointwise-lookback");
  });
  it("every chain variant reads the initial states from their read-only buffer, so the runner need not copy them per forward", () => {
    const forms = lowerCuda(load("hgrn.seq"), { chainConfigs: [...CHAIN_CONFIGS, ...CHAIN_SWEEP] }).plan.forms.filter((f) => f.variant.startsWith("pointwise-chain"));
    expect(forms.length).toBe(CHAIN_CONFIGS.length + CHAIN_SWEEP.length);
    for (const f of forms) {
      expect(f.statesCopy, f.variant).toBe(false);
      const launch = f.steps[0] as CudaLaunch;
      expect(launch.buffers, f.variant).toContainEqual({ kind: "initialStates" });
      expect(launch.buffers, f.variant).toContainEqual({ kind: "states" });
    }
  });
  it("cluster variants apply only when the grid is a multiple of the cluster", () => {
    const f = lowerCuda(load("hgrn.seq"), { chainConfigs: [{ CB: 128, J: 4, L: 6, NST: 3, cl: 4, suffix: "-cl4" }] }).plan.forms[0];
    for (const [D, B, ok] of [[1536, 8, 1], [1536, 1, 1], [300, 3, 0], [640, 4, 1], [640, 1, 0]] as const) {
      const env: Env = { ...H100, D, B, T: 100 };
      for (const [k, e] of f.vars) env[k] = evalSize(e, env);
      expect(evalSize(f.applicable!, env) !== 0, `D=${D} B=${B}`).toBe(ok === 1);
    }
  });
  it("16-byte channel groups (V = 4) apply only when C % 4 == 0", () => {
    const m = loadProgram([resolve(import.meta.dirname, "../bench/cuda/models/lru_gate.seq")]).models[0];
    const forms = lowerCuda(m, { chainConfigs: CHAIN_SWEEP }).plan.forms.filter((f) => /^pointwise-chain-.*v4/.test(f.variant));
    expect(forms.length).toBeGreaterThan(0);
    for (const f of forms) {
      for (const [D, ok] of [[1536, 1], [301, 0]] as const) {
        const env: Env = { ...H100, D, B: 8, T: 100 };
        for (const [k, e] of f.vars) env[k] = evalSize(e, env);
        expect(evalSize(f.applicable!, env) !== 0, `${f.variant} D=${D}`).toBe(ok === 1);
      }
    }
  });
  it.skipIf(!nvcc)("every swept configuration compiles (sm_90) for a model with two states, a broadcast input, params and an optional input", () => {
    const m = loadProgram([resolve(import.meta.dirname, "../bench/cuda/models/ema2.seq")]).models[0];
    const l = lowerCuda(m, { chainConfigs: CHAIN_SWEEP });
    const { ptx } = nvccPtx(combinedSource([l]), 90, nvcc, { lowPriority: true });
    for (const c of CHAIN_SWEEP) expect(ptx).toContain(`.entry seqc_Ema2_scan_chain${c.suffix.replace(/-/g, "_")}(`);
  }, 120_000);
});
