/**
 * A ChainFakeDevice that also runs the rows readout module (compiler/backends/cuda/rows-readout.ts) a class's chain
 * carries (<Model>.grad.cuda.json `chunked.rowsReadout`): the module's source compiled by the runtime
 * (runtime/cuda/rows-readout.ts RowsReadoutRunner) runs on an emulator build of its one-segment entries, launched
 * with their pointer and u32 arguments and 2-D grid as the runtime passes them. Records every launched entry
 * (`entries`), and `mutate` may rewrite a rows launch's arguments (tests that a broken launch fails).
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createHash } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { KernelArg, LaunchConfig } from "../../runtime/cuda/device.ts";
import type { RowsReadoutKernel } from "../../compiler/backends/cuda/rows-readout.ts";
import { compileEmu, EMU_READF } from "./harness.ts";
import { ChainFakeDevice } from "./chain-device.ts";

const HERE = import.meta.dirname;

/** An emulator executable of the module's one-segment entries: argv[1] a directory with buf<i>.bin and launches.txt
 * (the buffer count, then per launch: entry, grid x and y, threads, shared bytes, its pointers by buffer index, its u32s). */
function buildRowsEmu(source: string, kernels: RowsReadoutKernel[]): string {
  const arity = new Map(kernels.map((k) => [k.entry, 1 + 2 * k.pairs + 2 * k.readouts + 1]));
  const tramp = [...arity].map(([e, np]) => `static void body_${e}() { ${e}(${[...Array.from({ length: np }, (_, i) => `Ptr{PTR[${i}]}`), ...Array.from({ length: 6 }, (_, i) => `U[${i}]`)].join(", ")}); }`);
  const main = `
static void* PTR[32]; static unsigned U[16];
struct Ptr { void* p; template <class X> operator X*() const { return (X*)p; } };
${tramp.join("\n")}
${EMU_READF}
int main(int argc, char** argv) {
  std::string dir = argv[1];
  FILE* lf = fopen((dir + "/launches.txt").c_str(), "r");
  int nbuf; if (fscanf(lf, "%d", &nbuf) != 1) return 2;
  std::vector<std::vector<char>> bufs(nbuf);
  for (int i = 0; i < nbuf; ++i) bufs[i] = readf(dir + "/buf" + std::to_string(i) + ".bin");
  char name[256];
  while (fscanf(lf, "%255s", name) == 1) {
    unsigned gx, gy, nthr, smem; int np, nu;
    if (fscanf(lf, "%u %u %u %u %d", &gx, &gy, &nthr, &smem, &np) != 5) return 2;
    for (int i = 0; i < np; ++i) { int k; if (fscanf(lf, "%d", &k) != 1) return 2; PTR[i] = bufs[k].data(); }
    if (fscanf(lf, "%d", &nu) != 1) return 2;
    for (int i = 0; i < nu; ++i) if (fscanf(lf, "%u", &U[i]) != 1) return 2;
    void (*fn)() = nullptr;
${[...arity.keys()].map((e) => `    if (!strcmp(name, "${e}")) fn = body_${e};`).join("\n")}
    if (!fn) { fprintf(stderr, "no entry %s\\n", name); return 2; }
    emu::Dim g; g.x = gx; g.y = gy; emu::Dim blk; blk.x = nthr;
    emu::launch(fn, g, blk, smem);
  }
  for (int i = 0; i < nbuf; ++i) { FILE* f = fopen((dir + "/buf" + std::to_string(i) + ".out").c_str(), "wb"); fwrite(bufs[i].data(), 1, bufs[i].size(), f); fclose(f); }
  return 0;
}
`;
  const full = `// emu.h ${createHash("sha1").update(readFileSync(join(HERE, "emu.h"))).digest("hex")}\n#include "${join(HERE, "emu.h")}"\n#include <string>\n${source}\n${main}`;
  return compileEmu(full, "class-rows-readout");
}

export class RowsChainFakeDevice extends ChainFakeDevice {
  private readonly rowsBuilds = new Map<string, string>();
  /** Every launched entry, in order. */
  readonly entries: string[] = [];
  /** Rewrites a rows readout launch's arguments (pointers, then u32s) before it runs. */
  mutate?: (entry: string, args: KernelArg[]) => KernelArg[];

  /** The module's one-segment kernels built; the runtime's compile of its source runs them. */
  addRows(module: { source: string; kernels: RowsReadoutKernel[] }): void {
    this.rowsBuilds.set(module.source, buildRowsEmu(module.source, module.kernels));
  }

  override async compile(...args: unknown[]) {
    const bin = this.rowsBuilds.get(args[0] as string);
    if (!bin) return super.compile(...args);
    // (typed as the base's module: `build` is what the base's launch reads, `rows` marks this module's functions)
    return { fn: (name: string) => ({ name, rows: bin, build: undefined as never, setMaxDynamicShared() {}, maxActiveBlocksPerSM: () => 1 }), dispose() {} };
  }

  override launch(fn: { name: string; rows?: string }, cfg: LaunchConfig, args: KernelArg[]): void {
    this.entries.push(fn.name);
    if (!fn.rows) return super.launch(fn as never, cfg, args);
    const a = this.mutate ? this.mutate(fn.name, args) : args;
    const mem = (this as unknown as { mem: Map<bigint, Buffer> }).mem;
    const ptrs = a.filter((x): x is { ptr: bigint } => "ptr" in x).map((x) => x.ptr);
    const u32s = a.filter((x): x is { u32: number } => "u32" in x).map((x) => x.u32);
    const uniq = [...new Set(ptrs)];
    const dir = mkdtempSync(join(tmpdir(), "seqc-rows-class-"));
    try {
      uniq.forEach((p, i) => {
        const b = mem.get(p);
        if (!b) throw new Error(`rows fake device: no buffer at ${p.toString(16)}`);
        writeFileSync(join(dir, `buf${i}.bin`), b);
      });
      writeFileSync(join(dir, "launches.txt"), `${uniq.length}\n${fn.name} ${cfg.grid[0]} ${cfg.grid[1] ?? 1} ${cfg.block[0]} ${cfg.sharedBytes ?? 0} ${ptrs.length} ${ptrs.map((p) => uniq.indexOf(p)).join(" ")} ${u32s.length} ${u32s.join(" ")}\n`);
      execFileSync(fn.rows, [dir], { stdio: "pipe" });
      uniq.forEach((p, i) => readFileSync(join(dir, `buf${i}.out`)).copy(mem.get(p)!));
      this.launches++;
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
}
