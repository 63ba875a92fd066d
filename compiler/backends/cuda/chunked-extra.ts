/**
 * The two launches a CUDA chunked form gets around the core (chunked-core.ts) when its canonical form has a
 * stabiliser or value columns (compiler/forms/matrix-form.ts); the same algorithm as the WGSL ones
 * (compiler/backends/wgsl/chunked-extra.ts), written once for every model over the generated row loader:
 *
 *   stabiliser  one block (256 threads) per batch x head: m_t = max(a_t + m_{t-1}, b_t) as a blocked scan of the
 *               max-plus pairs (a, b) (each thread composes a segment of ceil(T / 256) tokens, a block scan
 *               composes the segments, each thread walks its segment again); writes the workspace `stab`
 *               [B][H][T + 2] = (m_{-1} - m^, m^ = m_0 - a_0, m_0 ... m_{T-1}) and the final m. Before phase A.
 *   post        after the walk (value columns): one thread per output element (b, t, head, value), outputs from
 *               the workspace `ybuf` (y and the column readouts) and m_t.
 * Every chunked kernel of such a form takes the workspaces after its own (chunked-model.ts, extraParams).
 */
import * as I from "../../ir/types.ts";
import type { SizeExpr } from "../../../runtime/plan.ts";
import type { CudaBufferRef, CudaFormPlan, CudaLaunch } from "../../../runtime/cuda/plan.ts";
import type { ChunkRows } from "../../forms/chunk-rows.ts";
import { chunkExtraPlan, EXTRA_THREADS } from "../../forms/chunk-extra.ts";
import { extraParams, extraWorkspaces, ioTag, ioType, rowsSetup, type ChunkDtype, type ChunkModelSource } from "./chunked-model.ts";


const EXTRA_CORE = String.raw`
// ==== seqc chunked form: stabiliser scan and post (model-independent) ====
template <class R> __device__ void seqc_stab_scan(const R& rows, char* smem) {
  float* sA = reinterpret_cast<float*>(smem);
  float* sB = sA + ${EXTRA_THREADS};
  const u32 H = rows.heads(), T = rows.u.T, tid = threadIdx.x;
  const u32 blk = blockIdx.x + gridDim.x * blockIdx.y;
  if (blk >= rows.u.B * H) return;
  const u32 h = blk % H, b = blk / H;
  const u32 L = (T + ${EXTRA_THREADS - 1}u) / ${EXTRA_THREADS}u;
  const u32 lo = tid * L < T ? tid * L : T, hi = lo + L < T ? lo + L : T;
  float A = 0.f, Bm = -3.0e38f;
  for (u32 t = lo; t < hi; ++t) {
    const float a = rows.stabA(b, t, h);
    Bm = fmaxf(Bm + a, rows.stabB(b, t, h));
    A += a;
  }
  sA[tid] = A;
  sB[tid] = Bm;
  __syncthreads();
  for (u32 off = 1; off < ${EXTRA_THREADS}u; off <<= 1) {
    float na = sA[tid], nb = sB[tid];
    if (tid >= off) {
      nb = fmaxf(sB[tid - off] + na, nb);
      na = sA[tid - off] + na;
    }
    __syncthreads();
    sA[tid] = na;
    sB[tid] = nb;
    __syncthreads();
  }
  const float m0 = rows.stabInit(b, h);
  float m = tid > 0 ? fmaxf(sA[tid - 1] + m0, sB[tid - 1]) : m0;
  float* st = rows.stab + ((size_t)b * H + h) * (T + 2u);
  for (u32 t = lo; t < hi; ++t) {
    const float a = rows.stabA(b, t, h);
    const float mn = fmaxf(a + m, rows.stabB(b, t, h));
    st[2 + t] = mn;
    if (t == 0) {
      st[1] = mn - a;
      st[0] = m0 - (mn - a);
    }
    m = mn;
  }
  if (lo < hi && hi == T) rows.stabFinal(b, h, m);
  if (T == 0 && tid == 0) rows.stabFinal(b, h, m0);
}
template <class R> __device__ void seqc_post_out(const R& rows) {
  const u32 H = rows.heads(), V0 = rows.valueDim0();
  const size_t e = ((size_t)blockIdx.x + (size_t)gridDim.x * blockIdx.y) * ${EXTRA_THREADS}u + threadIdx.x;
  if (e >= (size_t)rows.u.B * rows.u.T * H * V0) return;
  const u32 j = (u32)(e % V0);
  const size_t r = e / V0;
  const u32 h = (u32)(r % H);
  const size_t bt = r / H;
  rows.postOut((u32)(bt / rows.u.T), (u32)(bt % rows.u.T), h, j);
}
`;

/** Add the stabiliser and post launches (and their workspaces) to every chunked variant of a form that needs them. */
export function chunkedExtras(model: I.Model, cr: ChunkRows, src: ChunkModelSource, low: { forms: CudaFormPlan[]; modules: Record<string, { source: string }> }): { forms: CudaFormPlan[]; modules: Record<string, { source: string }> } {
  const ws = extraWorkspaces(cr);
  if (!ws.length) return low;
  const plan = chunkExtraPlan(model, cr);
  const entry = (k: string, d: string) => `seqc_${model.name}_chunk_${k}_${d}`;
  const buffers: CudaBufferRef[] = [
    ...src.inputs.map((name) => ({ kind: "input", name }) as CudaBufferRef),
    ...src.outputs.map((name) => ({ kind: "output", name }) as CudaBufferRef),
    { kind: "params" },
    { kind: "states" },
    ...ws.map((name) => ({ kind: "workspace", name }) as CudaBufferRef),
  ];
  const workspaces = [plan.stab, plan.post].flatMap((x) => (x ? [x.workspace] : []));
  const forms = low.forms.map((f) => {
    const d = ioTag(f.io as ChunkDtype, (f.out ?? f.io) as ChunkDtype).replace("-", "_");
    const launch = (k: string, x: { grid: SizeExpr; sharedBytes: number }): CudaLaunch => ({ kind: "launch", entry: entry(k, d), grid: x.grid, threads: EXTRA_THREADS, sharedBytes: x.sharedBytes, buffers, uniforms: src.uniforms, overrides: (f.steps[0] as CudaLaunch).overrides });
    const steps = f.steps.map((st) => (st.kind === "launch" ? { ...st, buffers: [...st.buffers, ...ws.map((name) => ({ kind: "workspace", name }) as CudaBufferRef)] } : st));
    return {
      ...f,
      workspaces: [...f.workspaces, ...workspaces],
      steps: [
        ...(plan.stab ? [launch("stab", plan.stab)] : []),
        ...steps,
        ...(plan.post ? [launch("post", plan.post)] : []),
      ],
    } as CudaFormPlan;
  });
  const modules: Record<string, { source: string }> = {};
  for (const [d, m] of Object.entries(low.modules)) {
    // the module's element types: inputs, outputs (its key is ioTag: `bf16`, `bf16-of32`)
    const f = low.forms.find((x) => x.module === d)!;
    modules[d] = { source: m.source + "\n" + EXTRA_CORE + "\n" + wrappers(model, cr, src, f.io as ChunkDtype, (f.out ?? f.io) as ChunkDtype, entry) + "\n" };
  }
  return { forms, modules };
}

function wrappers(model: I.Model, cr: ChunkRows, src: ChunkModelSource, io: ChunkDtype, outIo: ChunkDtype, entry: (k: string, d: string) => string): string {
  const T = ioType(io), Tout = ioType(outIo);
  const d = ioTag(io, outIo).replace("-", "_");
  const params = [
    ...src.inputs.map((n) => `const ${T}* __restrict__ p_in_${n}`),
    ...src.outputs.map((n) => `${Tout}* __restrict__ p_out_${n}`),
    "const float* __restrict__ params",
    "float* __restrict__ states",
    ...extraParams(cr),
    `const SeqcU_${model.name} u`,
    `const SeqcO_${model.name} ov`,
  ];
  const body = (call: string) => `${rowsSetup(`SeqcRows_${model.name}`, T, src.inputs, src.outputs, cr, Tout)}
  ${call}
  (void)seqc_smem;`;
  const out: string[] = [];
  if (cr.stab) out.push(`extern "C" __global__ void __launch_bounds__(${EXTRA_THREADS}, 1) ${entry("stab", d)}(${params.join(", ")}) {\n${body("seqc_stab_scan(rows, seqc_smem);")}\n}`);
  if (cr.columns) out.push(`extern "C" __global__ void __launch_bounds__(${EXTRA_THREADS}, 1) ${entry("post", d)}(${params.join(", ")}) {\n${body("seqc_post_out(rows);")}\n}`);
  return out.join("\n");
}
