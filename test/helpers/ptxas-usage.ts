/**
 * What ptxas reports for each entry of a CUDA module: `nvcc -cubin -arch=sm_90 -Xptxas -v` (at low priority), parsed
 * per entry ("Compiling entry function '<e>'", then "N bytes spill stores, M bytes spill loads" and "Used R registers").
 * The kernel tests check the shipped modules with it (no spills, a register cap for their occupancy).
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface PtxasUsage {
  spillStores: number;
  spillLoads: number;
  registers: number;
}

/** Compiles `source` for sm_90 with nvcc (the given binary) and returns each entry's usage; throws with nvcc's output
 * when it fails or an entry is missing from ptxas's report. */
export function ptxasUsage(nvcc: string, source: string, entries: readonly string[]): Map<string, PtxasUsage> {
  const dir = mkdtempSync(join(tmpdir(), "seqc-ptxas-"));
  try {
    writeFileSync(join(dir, "k.cu"), source);
    const r = spawnSync("nice", ["-n", "19", nvcc, "-cubin", "-arch=sm_90", "-std=c++17", "-Xptxas", "-v", "-o", join(dir, "k.cubin"), join(dir, "k.cu")], { encoding: "utf8" });
    if (r.status !== 0) throw new Error(`nvcc -cubin failed (${r.status}):\n${r.stderr}`);
    const out = new Map<string, PtxasUsage>();
    for (const e of entries) {
      const at = r.stderr.indexOf(`entry function '${e}'`);
      if (at < 0) throw new Error(`ptxas reported nothing for ${e}:\n${r.stderr}`);
      const tail = r.stderr.slice(at);
      const spill = /(\d+) bytes spill stores, (\d+) bytes spill loads/.exec(tail), regs = /Used (\d+) registers/.exec(tail);
      if (!spill || !regs) throw new Error(`ptxas -v: no spill or register line for ${e}:\n${tail.slice(0, 400)}`);
      out.set(e, { spillStores: Number(spill[1]), spillLoads: Number(spill[2]), registers: Number(regs[1]) });
    }
    return out;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
