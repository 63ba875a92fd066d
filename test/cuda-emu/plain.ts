/**
 * The plain CUDA forms (the kernels lowered from the shared kernel IR: sequential thread / workgroup /
 * global, scan tile) on the CPU emulation (emu.h): one executable per model with just those kernels,
 * driven by FakeCudaDevice so that the real CudaModelRunner runs them. These kernels use only
 * threadIdx / blockIdx, __syncthreads and dynamic shared memory, which emu.h covers; the hand-written
 * variants (persistent matvec with grid barriers and atomics, look-back scans) are left out.
 */
import { readFileSync } from "node:fs";
import { createHash } from "node:crypto";
import { join } from "node:path";
import type { CudaLaunch, CudaModelPlan } from "../../runtime/cuda/plan.ts";
import type { KernelArg, LaunchConfig } from "../../runtime/cuda/device.ts";
import { compileEmu, EMU_READF, type EmuBuild } from "./harness.ts";
import { FakeCudaDevice } from "./fake-device.ts";

const HERE = import.meta.dirname;

/** Forms made only of kernels lowered from the kernel IR (no sgemm, no zeroed look-back workspaces). */
export function plainForms(plan: CudaModelPlan): CudaModelPlan["forms"] {
  return plan.forms.filter((f) => !f.module && f.steps.every((s) => s.kind === "launch" && !s.entry.startsWith("seqc_") && !s.cooperative));
}

/** The kernel `entry` of the main source: its uniform and override structs and its body. */
export function kernelText(source: string, entry: string): string {
  const start = source.indexOf(`struct SeqcUniforms_${entry} `);
  const sig = source.indexOf(`extern "C" __global__ void ${entry}(`, start);
  if (start < 0 || sig < 0) throw new Error(`kernel ${entry} is not in the source`);
  const end = source.indexOf("\n}\n", sig);
  return source.slice(start, end + 3);
}

/** CUDA's integer and float min / max overloads. */
export const MINMAX = ["unsigned", "int", "float"].map((t) => `inline ${t} min(${t} a, ${t} b) { return a < b ? a : b; }\ninline ${t} max(${t} a, ${t} b) { return a > b ? a : b; }`).join("\n");

/** An emulator executable for the plain forms of `plan`, and the plan cut down to them. */
export function buildPlainEmu(plan: CudaModelPlan): { build: EmuBuild; plan: CudaModelPlan } {
  const forms = plainForms(plan);
  if (!forms.length) throw new Error(`${plan.model} has no plain CUDA forms`);
  const entries = [...new Set(forms.flatMap((f) => (f.steps as CudaLaunch[]).map((s) => s.entry)))];
  const launchOf = (e: string) => forms.flatMap((f) => f.steps as CudaLaunch[]).find((s) => s.entry === e)!;
  const helpers = plan.source.slice(0, plan.source.search(/\n(struct Seqc|\/\/ ====)/));
  const kernels = entries.map((e) => kernelText(plan.source, e).replace("extern __shared__ float seqc_smem[];", "float* seqc_smem = (float*)emu::g.smem;")).join("\n");
  const tramp = entries.map((e) => {
    const l = launchOf(e);
    const args = l.buffers.map((_, i) => `(float*)A_b[${i}]`);
    return `static void body_${e}() { ${e}(${[...args, `*(const SeqcUniforms_${e}*)A_u`, `*(const SeqcOverrides_${e}*)A_o`].join(", ")}); }`;
  });
  const main = `
static void** A_b; static const unsigned* A_u; static const unsigned* A_o;
${tramp.join("\n")}
${EMU_READF}
int main(int argc, char** argv) {
  std::string dir = argv[1];
  unsigned threads = 256;
  if (FILE* bf = fopen((dir + "/block.txt").c_str(), "r")) { if (fscanf(bf, "%u", &threads) != 1) return 2; fclose(bf); }
  FILE* lf = fopen((dir + "/launches.txt").c_str(), "r");
  int nbuf; if (fscanf(lf, "%d", &nbuf) != 1) return 2;
  std::vector<std::vector<char>> bufs(nbuf);
  std::vector<void*> ptrs(nbuf);
  for (int i = 0; i < nbuf; ++i) { bufs[i] = readf(dir + "/buf" + std::to_string(i) + ".bin"); bufs[i].reserve(bufs[i].size() + 64); ptrs[i] = bufs[i].data(); }
  char name[256];
  while (fscanf(lf, "%255s", name) == 1) {
    unsigned gx, gy, smem; int nb, nu, no;
    if (fscanf(lf, "%u %u %u %d", &gx, &gy, &smem, &nb) != 4) return 2;
    std::vector<void*> b(nb); for (int i = 0; i < nb; ++i) { int k; if (fscanf(lf, "%d", &k) != 1) return 2; b[i] = ptrs[k]; }
    if (fscanf(lf, "%d", &nu) != 1) return 2; std::vector<unsigned> u(nu + 1); for (int i = 0; i < nu; ++i) if (fscanf(lf, "%u", &u[i]) != 1) return 2;
    if (fscanf(lf, "%d", &no) != 1) return 2; std::vector<unsigned> o(no + 1); for (int i = 0; i < no; ++i) if (fscanf(lf, "%u", &o[i]) != 1) return 2;
    A_b = b.data(); A_u = u.data(); A_o = o.data();
    void (*fn)() = nullptr;
${entries.map((e) => `    if (!strcmp(name, "${e}")) fn = body_${e};`).join("\n")}
    if (!fn) { fprintf(stderr, "no entry %s\\n", name); return 2; }
    emu::Dim g; g.x = gx; g.y = gy; emu::Dim blk; blk.x = threads;
    emu::g.bidx.z = 0;  // emu::launch sets x and y only; the plain kernels flatten x, y and z
    emu::launch(fn, g, blk, smem);
  }
  for (int i = 0; i < nbuf; ++i) { FILE* f = fopen((dir + "/buf" + std::to_string(i) + ".out").c_str(), "wb"); fwrite(bufs[i].data(), 1, bufs[i].size(), f); fclose(f); }
  return 0;
}
`;
  const full = `// emu.h ${createHash("sha1").update(readFileSync(join(HERE, "emu.h"))).digest("hex")}\n#include "${join(HERE, "emu.h")}"\n#include <string>\n${MINMAX}\n${helpers}\n${kernels}\n${main}`;
  const bin = compileEmu(full, `${plan.model}-plain`);
  return { build: { bin, forms, model: undefined as never }, plan: { ...plan, forms, modules: undefined, ptx: undefined } };
}

/**
 * A FakeCudaDevice for several plans at once (a class's forward, recording forward and backward model
 * share one device): each module compiled from a plan's source runs that plan's emulator build.
 */
export class MultiPlanFakeDevice extends FakeCudaDevice {
  protected readonly builds = new Map<string, EmuBuild>();
  constructor() {
    super({ bin: "/nonexistent", forms: [], model: undefined as never });
  }
  /** The plan cut down to its plain forms, its kernels built; modules compiled from its source run them. */
  add(plan: CudaModelPlan): CudaModelPlan {
    const { build, plan: cut } = buildPlainEmu(plan);
    this.builds.set(cut.source, build);
    return cut;
  }
  override loadModule(): never {
    throw new Error("the multi-plan fake device compiles plan sources (plans without PTX)");
  }
  override async compile(...args: unknown[]) {
    const build = this.builds.get(args[0] as string);
    if (!build) throw new Error("fake device: no emulator build for this source (add() its plan first)");
    return { fn: (name: string) => ({ name, build, setMaxDynamicShared() {}, maxActiveBlocksPerSM: () => 1 }), dispose() {} };
  }
  override launch(fn: { name: string; build?: EmuBuild }, cfg: LaunchConfig, args: KernelArg[]): void {
    (this as unknown as { build: EmuBuild }).build = fn.build!;
    super.launch(fn, cfg, args);
  }
}
