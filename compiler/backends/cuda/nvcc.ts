/** Ahead-of-time PTX with nvcc when it is installed (seqc compile --target cuda); absent nvcc is not an error. */
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export function findNvcc(): string | undefined {
  const candidates = [process.env.NVCC, process.env.CUDA_HOME && join(process.env.CUDA_HOME, "bin/nvcc"), "nvcc", "/usr/local/cuda/bin/nvcc"].filter(Boolean) as string[];
  for (const c of candidates) {
    const r = spawnSync(c, ["--version"], { encoding: "utf8" });
    if (r.status === 0) return c;
  }
  return undefined;
}

export interface PtxResult {
  ptx: string;
  /** nvcc's warnings (empty when clean). */
  log: string;
}

/** Compile a .cu source to PTX for sm_<sm>; throws with nvcc's messages on failure. */
export function nvccPtx(source: string, sm: number, nvcc = findNvcc(), opts: { lowPriority?: boolean } = {}): PtxResult {
  if (!nvcc) throw new Error("nvcc is not installed");
  const dir = mkdtempSync(join(tmpdir(), "seqc-nvcc-"));
  try {
    const cu = join(dir, "k.cu");
    const out = join(dir, "k.ptx");
    writeFileSync(cu, source);
    const args = ["-ptx", `-arch=sm_${sm}`, "-std=c++17", "-diag-suppress", "177,550", "-o", out, cu];
    // lowPriority: under `nice`, so that a test suite running beside it keeps its CPU time
    const r = opts.lowPriority && spawnSync("nice", ["-n", "0", "true"]).status === 0 ? spawnSync("nice", ["-n", "19", nvcc, ...args], { encoding: "utf8" }) : spawnSync(nvcc, args, { encoding: "utf8" });
    if (r.status !== 0) throw new Error(`nvcc -ptx -arch=sm_${sm} failed:\n${r.stderr || r.stdout}`);
    return { ptx: readFileSync(out, "utf8"), log: (r.stderr ?? "").trim() };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export function nvccVersion(nvcc = findNvcc()): string | undefined {
  if (!nvcc) return undefined;
  const m = /release ([\d.]+)/.exec(execFileSync(nvcc, ["--version"], { encoding: "utf8" }));
  return m?.[1];
}
