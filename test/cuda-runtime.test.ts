/** The CUDA runtime must explain itself in one sentence on a machine without a GPU, and must not reach into the compiler. */
import { describe, expect, it } from "vitest";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { cudaAvailability, CudaDevice, CudaUnavailableError } from "../runtime/cuda/index.ts";

const libcudaPresent = ["/usr/lib/x86_64-linux-gnu", "/usr/lib64", "/usr/local/nvidia/lib64", "/usr/lib"].some((d) => existsSync(join(d, "libcuda.so.1")));

describe("CUDA runtime on this machine", () => {
  it("reports availability as one clear sentence, never a stack trace", async () => {
    const a = await cudaAvailability();
    if (a.ok) {
      expect(a.info.sm).toBeGreaterThan(0);
      return;
    }
    expect(a.reason).not.toMatch(/\n|\s+at\s+\S+\s+\(/);
    expect(a.reason).toMatch(/^CUDA .*\.$/);
    expect(a.reason.split(/\.\s/).length).toBe(1);
    if (!libcudaPresent) expect(a.reason).toBe("CUDA is not available on this machine: the NVIDIA driver library libcuda.so.1 was not found (no NVIDIA GPU or driver is installed), so use backend 'webgpu' instead.");
  });

  it("throws CudaUnavailableError (not a driver error) when opening a device fails for lack of CUDA", async () => {
    if (libcudaPresent) return;
    await expect(CudaDevice.open(0)).rejects.toBeInstanceOf(CudaUnavailableError);
  });
});

describe("runtime/cuda walls", () => {
  it("imports nothing from compiler/ or grammar/", () => {
    const dir = join(import.meta.dirname, "../runtime/cuda");
    for (const f of readdirSync(dir)) {
      const text = readFileSync(join(dir, f), "utf8");
      expect(text, f).not.toMatch(/from\s+["'][^"']*(compiler|grammar)\//);
    }
  });
});

describe("seqc run --backend cuda", () => {
  it("on a machine without CUDA: exit code 1 and the one sentence, no stack trace", async () => {
    if (libcudaPresent) return;
    const { spawnSync } = await import("node:child_process");
    const root = join(import.meta.dirname, "..");
    const r = spawnSync(process.execPath, [join(root, "bin/seqc.js"), "run", join(root, "stdlib/hgrn.seq"), "--inputs", join(root, "test/fixtures/golden-extra/hgrn.json"), "--backend", "cuda", "--out", "/tmp/seqc-cuda-test-out.json"], { encoding: "utf8" });
    expect(r.status).toBe(1);
    expect(r.stderr.trim()).toBe("seqc: CUDA is not available on this machine: the NVIDIA driver library libcuda.so.1 was not found (no NVIDIA GPU or driver is installed), so use backend 'webgpu' instead.");
  }, 30_000);
});
