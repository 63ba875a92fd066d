/**
 * Runs CUDA chunked-form variants on the CPU emulation (emu.h): builds one executable per model and set of
 * variants with g++, and executes a variant's launch steps the way runtime/cuda/runner.ts does (inputs
 * encoded in the variant's I/O type, params and states fp32, uniforms and overrides packed in order).
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { createHash } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type * as I from "../../compiler/ir/types.ts";
import type { RunInputs, RunResult } from "../../compiler/ir/interpret.ts";
import { chunkedEligible, lowerChunked, type ChunkIo } from "../../compiler/backends/cuda/chunked-plan.ts";
import { tensorSpecs, uniformFields } from "../../compiler/kernel/interface.ts";
import { evalSize, type Env } from "../../runtime/plan.ts";
import type { CudaFormPlan, CudaLaunch } from "../../runtime/cuda/plan.ts";
import { decodeIo, encodeIo, ioBytes, nanBits } from "../../runtime/cuda/half.ts";

const HERE = import.meta.dirname;
const CACHE = join(tmpdir(), "seqc-emu-cache");

export interface EmuBuild { bin: string; forms: CudaFormPlan[]; model: I.Model }

const ctype = (io: string) => (io === "f32" ? "float" : io === "bf16" ? "seqc_bf16" : "seqc_f16");

/** `ios`: the I/O types to lower (default chunked-plan.ts CHUNK_IOS), e.g. [BF16_IN_F32_OUT] for the mixed variants.
 *  `patch`: an edit of the module's source before it is compiled (tests that a deliberately broken kernel fails). */
export function buildEmu(model: I.Model, variants: string[], ios?: readonly ChunkIo[], patch?: (src: string) => string): EmuBuild {
  const el = chunkedEligible(model);
  if (!el.ok) throw new Error(el.why);
  const { forms, modules } = lowerChunked(model, el, { only: (v) => variants.includes(v), ios });
  const io = forms[0].io!;
  const outIo = forms[0].out ?? io;
  if (forms.some((f) => f.module !== forms[0].module)) throw new Error("one emulator build takes variants of one I/O type (one module)");
  const src0 = modules[forms[0].module!].source;
  const src = patch ? patch(src0) : src0;
  if (patch && src === src0) throw new Error("buildEmu: the patch changed nothing");
  const launches = forms.flatMap((f) => f.steps as CudaLaunch[]);
  const entries = [...new Map(launches.map((l) => [l.entry, l])).values()];
  const T = ctype(io), Tout = ctype(outIo);
  const tramp = entries.map((l) => {
    // a workspace's element type as the kernel declares it (fp32 workspaces beside 2-byte ones)
    const decl = new RegExp(`\\b${l.entry}\\(([^)]*)\\)`).exec(src)?.[1].split(",").map((p) => p.replace("__restrict__", "").trim().replace(/\s*\w+$/, ""));
    const args = l.buffers.map((b, i) => {
      const t = b.kind === "params" ? "const float*" : b.kind === "states" ? "float*" : b.kind === "input" ? `const ${T}*` : b.kind === "output" ? `${Tout}*` : (decl?.[i] ?? `${T}*`);
      return `(${t})A_b[${i}]`;
    });
    return `static void body_${l.entry}() { ${l.entry}(${[...args, `*(const SeqcU_${model.name}*)A_u`, `*(const SeqcO_${model.name}*)A_o`].join(", ")}); }`;
  });
  const main = `
static void** A_b; static const unsigned* A_u; static const unsigned* A_o;
${tramp.join("\n")}
${EMU_READF}
int main(int argc, char** argv) {
  std::string dir = argv[1];
  // the fake device (fake-device.ts) writes the threads per block to block.txt and launches without them
  unsigned fixedThreads = 0;
  if (FILE* bf = fopen((dir + "/block.txt").c_str(), "r")) { if (fscanf(bf, "%u", &fixedThreads) != 1) return 2; fclose(bf); }
  FILE* lf = fopen((dir + "/launches.txt").c_str(), "r");
  int nbuf; if (fscanf(lf, "%d", &nbuf) != 1) return 2;
  std::vector<std::vector<char>> bufs(nbuf);
  std::vector<void*> ptrs(nbuf);
  for (int i = 0; i < nbuf; ++i) { bufs[i] = readf(dir + "/buf" + std::to_string(i) + ".bin"); bufs[i].reserve(bufs[i].size() + 64); ptrs[i] = bufs[i].data(); }
  char name[256];
  while (fscanf(lf, "%255s", name) == 1) {
    unsigned gx, gy, nthr, smem; int nb, nu, no;
    if (fixedThreads) { nthr = fixedThreads; if (fscanf(lf, "%u %u %u %d", &gx, &gy, &smem, &nb) != 4) return 2; }
    else if (fscanf(lf, "%u %u %u %u %d", &gx, &gy, &nthr, &smem, &nb) != 5) return 2;
    std::vector<void*> b(nb); for (int i = 0; i < nb; ++i) { int k; if (fscanf(lf, "%d", &k) != 1) return 2; b[i] = ptrs[k]; }
    if (fscanf(lf, "%d", &nu) != 1) return 2; std::vector<unsigned> u(nu + 1); for (int i = 0; i < nu; ++i) if (fscanf(lf, "%u", &u[i]) != 1) return 2;
    if (fscanf(lf, "%d", &no) != 1) return 2; std::vector<unsigned> o(no + 1); for (int i = 0; i < no; ++i) if (fscanf(lf, "%u", &o[i]) != 1) return 2;
    A_b = b.data(); A_u = u.data(); A_o = o.data();
    void (*fn)() = nullptr;
${entries.map((l) => `    if (!strcmp(name, "${l.entry}")) fn = body_${l.entry};`).join("\n")}
    if (!fn) { fprintf(stderr, "no entry %s\\n", name); return 2; }
    emu::Dim g; g.x = gx; g.y = gy; emu::Dim blk; blk.x = nthr;
    emu::launch(fn, g, blk, smem);
  }
  for (int i = 0; i < nbuf; ++i) { FILE* f = fopen((dir + "/buf" + std::to_string(i) + ".out").c_str(), "wb"); fwrite(bufs[i].data(), 1, bufs[i].size(), f); fclose(f); }
  return 0;
}
`;
  const full = `// emu.h ${createHash("sha1").update(readFileSync(join(HERE, "emu.h"))).digest("hex")}\n#include "${join(HERE, "emu.h")}"\n#include <string>\n${src}\n${main}`;
  return { bin: compileEmu(full, model.name), forms, model };
}

/** The emulator executable of C++ source `full`, compiled with g++ once per source: CACHE/<name>-<hash of full>. */
export function compileEmu(full: string, name: string): string {
  const hash = createHash("sha1").update(full).digest("hex").slice(0, 16);
  mkdirSync(CACHE, { recursive: true });
  const bin = join(CACHE, `${name}-${hash}`);
  if (!existsSync(bin)) {
    const cpp = `${bin}.cpp`;
    writeFileSync(cpp, full);
    try {
      execFileSync("g++", ["-std=c++17", "-O1", "-fno-strict-aliasing", "-w", "-o", bin, cpp], { stdio: "pipe" });
    } catch (e) {
      throw new Error(`g++ failed on ${cpp}:\n${String((e as { stderr?: Buffer }).stderr ?? e).slice(0, 4000)}`);
    }
  }
  return bin;
}

/** The emulator mains' file reader (C++): a whole file into a vector. */
export const EMU_READF = `static std::vector<char> readf(const std::string& p) { FILE* f = fopen(p.c_str(), "rb"); if (!f) { perror(p.c_str()); exit(2); } fseek(f, 0, SEEK_END); long n = ftell(f); fseek(f, 0, SEEK_SET); std::vector<char> v(n + 64); if (n && fread(v.data(), 1, n, f) != (size_t)n) exit(2); fclose(f); v.resize(n); return v; }`;

/** Run one variant like the CUDA runner: buffers, uniforms, overrides, launches; results as float64. */
export function runEmu(b: EmuBuild, variant: string, run: RunInputs): RunResult & { form: CudaFormPlan; workspaces: Record<string, Buffer> } {
  const form = b.forms.find((f) => f.variant === variant);
  if (!form) throw new Error(`no variant ${variant} in this build (${b.forms.map((f) => f.variant).join(", ")})`);
  const model = b.model;
  const specs = tensorSpecs(model);
  const dims = { ...run.dims };
  const env: Env = { ...dims, B: run.batch, T: run.time, LIMIT_SMS: 132, LIMIT_SMEM_OPTIN: 227 * 1024 };
  for (const [k, e] of form.vars) env[k] = evalSize(e, env);
  if (form.applicable !== undefined && evalSize(form.applicable, env) === 0) throw new Error(`${variant} does not apply to this shape`);
  const size = (name: string) => specs.find((t) => t.name === name)!.shape.reduce<number>((a, s) => a * evalSize(s, env), 1);
  const B = run.batch, T = run.time;
  const bufs: Buffer[] = [];
  const index = new Map<string, number>();
  const add = (key: string, data: Buffer) => {
    index.set(key, bufs.length);
    bufs.push(data);
  };
  const io = form.io;
  const outIo = form.out ?? io;
  for (const t of specs.filter((x) => x.role === "input")) {
    const v = run.inputs[t.name];
    const enc = v ? encodeIo(Float32Array.from(v), io) : new Float32Array(4);
    add(`input:${t.name}`, Buffer.from(enc.buffer, enc.byteOffset, enc.byteLength));
  }
  for (const t of specs.filter((x) => x.role === "output")) {
    const n = Math.ceil((B * T * size(t.name) * ioBytes(outIo)) / 4);
    add(`output:${t.name}`, Buffer.from(new Uint32Array(n).fill(nanBits(outIo)).buffer));
  }
  const params = specs.filter((t) => t.role === "param");
  const pHost = new Float32Array(Math.max(1, params.reduce((a, t) => a + size(t.name), 0)));
  let off = 0;
  const hasParam = new Set<string>();
  for (const t of params) {
    const v = run.params?.[t.name];
    if (v) {
      pHost.set(Float32Array.from(v), off);
      hasParam.add(t.name);
    }
    off += size(t.name);
  }
  add("params", Buffer.from(pHost.buffer));
  const states = specs.filter((t) => t.role === "state");
  const sOff = new Map<string, number>();
  let total = 0;
  for (const s of states) {
    sOff.set(s.name, total);
    total += B * size(s.name);
  }
  const sHost = new Float32Array(Math.max(1, total));
  for (const s of states) if (run.initialState?.[s.name]) sHost.set(Float32Array.from(run.initialState[s.name]), sOff.get(s.name)!);
  add("states", Buffer.from(sHost.buffer));
  for (const w of form.workspaces) add(`workspace:${w.name}`, Buffer.alloc(Math.max(16, evalSize(w.words, env) * 4)));
  const uni = (f: string) => (f === "B" ? B : f === "T" ? T : f.startsWith("has_") ? (run.inputs[f.slice(4)] || hasParam.has(f.slice(4)) ? 1 : 0) : f.startsWith("init_") ? (run.initialState?.[f.slice(5)] ? 1 : 0) : f.startsWith("SO_") ? (sOff.get(f.slice(3)) ?? 0) : (env[f] ?? 0));
  const lines = [String(bufs.length)];
  for (const st of form.steps as CudaLaunch[]) {
    const grid = evalSize(st.grid, env);
    const refs = st.buffers.map((r) => index.get(r.kind === "input" || r.kind === "output" || r.kind === "workspace" ? `${r.kind}:${(r as { name: string }).name}` : r.kind === "initialStates" ? "states" : r.kind)!);
    const us = st.uniforms.map(uni);
    const os = Object.values(st.overrides).map((e) => evalSize(e, env));
    lines.push(`${st.entry} ${grid} 1 ${evalSize(st.threads, env)} ${evalSize(st.sharedBytes, env)} ${refs.length} ${refs.join(" ")} ${us.length} ${us.join(" ")} ${os.length} ${os.join(" ")}`);
  }
  const dir = mkdtempSync(join(tmpdir(), "seqc-emu-"));
  try {
    bufs.forEach((d, i) => writeFileSync(join(dir, `buf${i}.bin`), d));
    writeFileSync(join(dir, "launches.txt"), lines.join("\n") + "\n");
    execFileSync(b.bin, [dir], { stdio: "pipe", timeout: 600_000 });
    const out = (key: string) => readFileSync(join(dir, `buf${index.get(key)}.out`));
    const outputs: Record<string, Float64Array> = {};
    for (const t of specs.filter((x) => x.role === "output")) outputs[t.name] = Float64Array.from(decodeIo(out(`output:${t.name}`), outIo).subarray(0, B * T * size(t.name)));
    const sAll = new Float32Array(new Uint8Array(out("states")).buffer);
    const finalState: Record<string, Float64Array> = {};
    for (const s of states) finalState[s.name] = Float64Array.from(sAll.subarray(sOff.get(s.name)!, sOff.get(s.name)! + B * size(s.name)));
    void uniformFields;
    // the workspaces' bytes after the launches (e.g. split3's chunk start states, "chunkS")
    const workspaces = Object.fromEntries(form.workspaces.map((w) => [w.name, out(`workspace:${w.name}`)]));
    return { outputs, finalState, form, workspaces };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
