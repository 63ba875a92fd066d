/**
 * The persistent matvec cell forms (compiler/backends/cuda/matvec-cell.ts: hoisted fp32 GEMMs, a zeroed
 * barrier, one cooperative kernel with a grid barrier per step) on the CPU emulation: emu.h plus
 * cooperative.h (every block resident, the grid barrier), driven through the real CudaModelRunner by a
 * fake device that also runs the GEMM launches (their u32 arguments, a 2-D grid). `multiprocessors` sets
 * the SM count the runner plans with (LIMIT_SMS: units per block JB = ceil(E / SMs)).
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createHash } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { CudaLaunch, CudaModelPlan } from "../../runtime/cuda/plan.ts";
import type { KernelArg, LaunchConfig } from "../../runtime/cuda/device.ts";
import { SGEMM_ENTRY } from "../../compiler/backends/cuda/sgemm.ts";
import { FakeCudaDevice } from "./fake-device.ts";
import { compileEmu, EMU_READF } from "./harness.ts";

const HERE = import.meta.dirname;

/** The plan cut down to its persistent-matvec forms, and an emulator executable for their launches. */
export function buildCellEmu(plan: CudaModelPlan): { bin: string; plan: CudaModelPlan } {
  const forms = plan.forms.filter((f) => f.variant.startsWith("persistent-matvec"));
  if (!forms.length) throw new Error(`${plan.model} has no persistent-matvec form`);
  const launches = forms.flatMap((f) => f.steps.filter((s): s is CudaLaunch => s.kind === "launch"));
  const entries = [...new Map(launches.map((l) => [l.entry, l])).values()];
  const source = plan.source.replaceAll("extern __shared__ float4 seqc_smem4[];", "float4* seqc_smem4 = (float4*)emu::g.smem;").replaceAll("extern __shared__ float seqc_smem[];", "float* seqc_smem = (float*)emu::g.smem;");
  const tramp = entries.map((l) => `static void body_${l.entry}() { ${l.entry}(${[...l.buffers.map((_, i) => `AnyPtr{A_b[${i}]}`), `*(const SeqcUniforms_${l.entry}*)A_u`, `*(const SeqcOverrides_${l.entry}*)A_o`].join(", ")}); }`);
  const main = `
struct AnyPtr { void* p; template <class T> operator T*() const { return (T*)p; } };
static void** A_b; static const unsigned* A_u; static const unsigned* A_o;
${tramp.join("\n")}
static void body_gemm() { ${SGEMM_ENTRY}(AnyPtr{A_b[0]}, AnyPtr{A_b[1]}, AnyPtr{A_b[2]}, A_u[0], A_u[1], A_u[2], A_u[3], A_u[4], A_u[5]); }
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
    unsigned gx, gy, nthr, smem; int nb, nu, no;
    if (fscanf(lf, "%u %u %u %u %d", &gx, &gy, &nthr, &smem, &nb) != 5) return 2;
    std::vector<void*> b(nb); for (int i = 0; i < nb; ++i) { int k; unsigned long off; if (fscanf(lf, "%d %lu", &k, &off) != 2) return 2; b[i] = (char*)ptrs[k] + off; }
    if (fscanf(lf, "%d", &nu) != 1) return 2; std::vector<unsigned> u(nu + 1); for (int i = 0; i < nu; ++i) if (fscanf(lf, "%u", &u[i]) != 1) return 2;
    if (fscanf(lf, "%d", &no) != 1) return 2; std::vector<unsigned> o(no + 1); for (int i = 0; i < no; ++i) if (fscanf(lf, "%u", &o[i]) != 1) return 2;
    A_b = b.data(); A_u = u.data(); A_o = o.data();
    emu::Dim g; g.x = gx; g.y = gy; emu::Dim blk; blk.x = nthr;
    if (!strcmp(name, "${SGEMM_ENTRY}")) { emu::launch(body_gemm, g, blk, smem); continue; }
    void (*fn)() = nullptr;
${entries.map((l) => `    if (!strcmp(name, "${l.entry}")) fn = body_${l.entry};`).join("\n")}
    if (!fn) { fprintf(stderr, "no entry %s\\n", name); return 2; }
    emu_coop::launch(fn, g, blk, smem);
  }
  for (int i = 0; i < nbuf; ++i) { FILE* f = fopen((dir + "/buf" + std::to_string(i) + ".out").c_str(), "wb"); fwrite(bufs[i].data(), 1, bufs[i].size(), f); fclose(f); }
  return 0;
}
`;
  const full = `// emu ${createHash("sha1").update(readFileSync(join(HERE, "emu.h"))).update(readFileSync(join(HERE, "cooperative.h"))).digest("hex")}\n#include "${join(HERE, "cooperative.h")}"\n#include <string>\n${source}\n${main}`;
  return { bin: compileEmu(full, `${plan.model}-cell`), plan: { ...plan, forms, modules: undefined, ptx: undefined } };
}

/** A fake device running one cell build: cooperative kernels with every block resident, GEMMs on their 2-D grid. */
export class CellFakeDevice extends FakeCudaDevice {
  private bin = "";
  constructor(multiprocessors: number) {
    super({ bin: "/nonexistent", forms: [], model: undefined as never });
    (this as unknown as { info: FakeCudaDevice["info"] }).info = { ...this.info, multiprocessors };
  }
  /** The plan cut down to its cell forms, built; the runner compiles its source into this build. */
  add(plan: CudaModelPlan): CudaModelPlan {
    const b = buildCellEmu(plan);
    this.bin = b.bin;
    return b.plan;
  }
  override async compile() {
    return { fn: (name: string) => ({ name, setMaxDynamicShared() {}, maxActiveBlocksPerSM: () => 1 }), dispose() {} };
  }
  override launch(fn: { name: string }, cfg: LaunchConfig, args: KernelArg[]): void {
    const mem = (this as unknown as { buf(p: bigint): Buffer }).buf.bind(this);
    const ptrs = args.filter((a): a is { ptr: bigint } => "ptr" in a).map((a) => a.ptr);
    const u32s = (b: Buffer) => Array.from({ length: b.length / 4 }, (_, i) => b.readUInt32LE(i * 4));
    const structs = args.filter((a): a is { bytes: Buffer } => "bytes" in a).map((a) => u32s(a.bytes));
    // the GEMM takes its sizes as u32 arguments: the emulator reads them as its uniforms
    const plain = args.filter((a): a is { u32: number } => "u32" in a).map((a) => a.u32 >>> 0);
    const [u, o] = structs.length ? structs : [plain, []];
    // a pointer may point into a buffer (the GEMM's param at its offset in the packed params)
    const bases = (this as unknown as { mem: Map<bigint, Buffer> }).mem;
    const baseOf = (p: bigint) => [...bases.entries()].find(([b, buf]) => p >= b && p < b + BigInt(buf.length))?.[0] ?? p;
    const dir = mkdtempSync(join(tmpdir(), "seqc-cell-"));
    try {
      const uniq = [...new Set(ptrs.map(baseOf))];
      uniq.forEach((p, i) => writeFileSync(join(dir, `buf${i}.bin`), mem(p)));
      const binds = ptrs.map((p) => `${uniq.indexOf(baseOf(p))} ${p - baseOf(p)}`).join(" ");
      writeFileSync(join(dir, "launches.txt"), `${uniq.length}\n${fn.name} ${cfg.grid[0]} ${cfg.grid[1] ?? 1} ${cfg.block[0]} ${cfg.sharedBytes ?? 0} ${ptrs.length} ${binds} ${u.length} ${u.join(" ")} ${o.length} ${o.join(" ")}\n`);
      execFileSync(this.bin, [dir], { stdio: "pipe" });
      uniq.forEach((p, i) => readFileSync(join(dir, `buf${i}.out`)).copy(mem(p)));
      this.launches++;
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
}
