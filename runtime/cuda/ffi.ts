/**
 * Loading native libraries through koffi (a dynamic C FFI with prebuilt binaries on npm, so no compiler or
 * node-gyp is needed on the user's machine). koffi is imported lazily: nothing here runs unless the CUDA
 * backend is asked for, so the WebGPU path never touches it.
 */
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { CudaUnavailableError } from "./errors.ts";

export type Koffi = typeof import("koffi").default;
export type Lib = ReturnType<Koffi["load"]>;

let koffiPromise: Promise<Koffi> | undefined;

export function loadKoffi(): Promise<Koffi> {
  koffiPromise ??= import("koffi").then(
    (m) => (m.default ?? m) as Koffi,
    () => {
      koffiPromise = undefined;
      throw new CudaUnavailableError("CUDA is not available: the 'koffi' package that seqc uses to call the CUDA driver is not installed (npm install koffi), so use backend 'webgpu' or install it.");
    },
  );
  return koffiPromise;
}

/** Directories where CUDA toolkits and pip wheels put their libraries, searched after the loader's own path. */
function toolkitLibDirs(): string[] {
  const dirs: string[] = [];
  for (const v of ["CUDA_HOME", "CUDA_PATH", "CUDA_ROOT"]) {
    const p = process.env[v];
    if (p) dirs.push(join(p, "lib64"), join(p, "lib"));
  }
  dirs.push("/usr/local/cuda/lib64", "/usr/local/cuda/lib", "/usr/local/cuda/targets/x86_64-linux/lib", "/usr/local/nvidia/lib64", "/usr/lib/x86_64-linux-gnu", "/usr/lib64");
  try {
    for (const d of readdirSync("/usr/local")) if (d.startsWith("cuda-")) dirs.push(join("/usr/local", d, "lib64"), join("/usr/local", d, "lib"));
  } catch {
    /* no /usr/local */
  }
  return dirs;
}

/**
 * Load the first library that opens among `names` (tried by the dynamic loader's search first, then in the
 * toolkit directories). Returns undefined when none opens; `tried` collects the loader's messages.
 */
export function openFirst(koffi: Koffi, names: string[], extraDirs: string[] = [], tried: string[] = []): Lib | undefined {
  const candidates = [...names];
  for (const d of [...extraDirs, ...toolkitLibDirs()]) {
    if (!existsSync(d)) continue;
    let entries: string[] = [];
    try {
      entries = readdirSync(d);
    } catch {
      continue;
    }
    for (const n of names) {
      const stem = n.replace(/\.so.*$/, ".so");
      for (const e of entries) if (e === n || e.startsWith(stem)) candidates.push(join(d, e));
    }
  }
  for (const c of candidates) {
    try {
      return koffi.load(c);
    } catch (e) {
      tried.push(`${c}: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  return undefined;
}
