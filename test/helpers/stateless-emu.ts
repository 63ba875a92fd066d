/**
 * The CPU emulation (test/cuda-emu/emu.h, g++) of a stateless part's plan as the torch runtime runs it: one executable
 * for every form's kernels (buildEmu) and one form's run over [B, T] (runForm). A copy of test/torch-stateless-bf16-emu's
 * (which keeps its own) for test/torch-stateless-vec-emu.test.ts.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createHash } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { evalSize, type Env } from "../../runtime/plan.ts";
import type { CudaFormPlan, CudaLaunch, CudaModelPlan } from "../../runtime/cuda/plan.ts";
import { fromBf16, toBf16 } from "../../runtime/cuda/half.ts";
import { compileEmu, EMU_READF } from "../cuda-emu/harness.ts";
import { kernelText, MINMAX } from "../cuda-emu/plain.ts";

const EMU_H = join(import.meta.dirname, "..", "cuda-emu", "emu.h");

/** One emulator executable for every plain form of a stateless plan (the float32 forms and their bf16-input twins). */
export function buildEmu(plan: CudaModelPlan): string {
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
export function runForm(bin: string, plan: CudaModelPlan, f: CudaFormPlan, dims: Record<string, number>, B: number, T: number, inputs: Record<string, Float64Array>, params: Record<string, Float64Array>): Record<string, Float64Array> {
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

