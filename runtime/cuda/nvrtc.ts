/** NVRTC: compile CUDA C++ to a cubin (or PTX) at run time, used when a model ships no prebuilt PTX. */
import { join } from "node:path";
import { existsSync } from "node:fs";
import { CudaCompileError, CudaError, CudaUnavailableError } from "./errors.ts";
import { loadKoffi, openFirst } from "./ffi.ts";

type Fn = (...args: unknown[]) => number;
interface Nvrtc {
  nvrtcVersion: Fn;
  nvrtcCreateProgram: Fn;
  nvrtcCompileProgram: Fn;
  nvrtcDestroyProgram: Fn;
  nvrtcGetProgramLogSize: Fn;
  nvrtcGetProgramLog: Fn;
  nvrtcGetPTXSize: Fn;
  nvrtcGetPTX: Fn;
  nvrtcGetCUBINSize: Fn;
  nvrtcGetCUBIN: Fn;
  nvrtcGetErrorString: (code: number) => string;
}

let nvrtcPromise: Promise<Nvrtc> | undefined;

/** pip wheels (nvidia-cuda-nvrtc) put libnvrtc under site-packages/nvidia/cuda_nvrtc/lib or nvidia/cu13/lib. */
function wheelDirs(): string[] {
  const out: string[] = [];
  for (const root of (process.env.PYTHONPATH ?? "").split(":").concat(["/usr/local/lib/python3/dist-packages"])) {
    if (!root) continue;
    for (const sub of ["nvidia/cuda_nvrtc/lib", "nvidia/cu13/lib", "nvidia/cu12/lib"]) {
      const d = join(root, sub);
      if (existsSync(d)) out.push(d);
    }
  }
  return out;
}

export function loadNvrtc(): Promise<Nvrtc> {
  nvrtcPromise ??= (async () => {
    const koffi = await loadKoffi();
    const names = ["libnvrtc.so"];
    for (const v of [13, 12, 11]) names.push(`libnvrtc.so.${v}`);
    const lib = openFirst(koffi, names, wheelDirs());
    if (!lib)
      throw new CudaUnavailableError(
        "CUDA kernels cannot be compiled here: NVRTC (libnvrtc.so from the CUDA toolkit) was not found and the model ships no prebuilt PTX, so install the CUDA toolkit, set CUDA_HOME, or compile with nvcc present.",
      );
    const f = (decl: string) => lib.func(decl) as unknown as Fn;
    return {
      nvrtcVersion: f("int nvrtcVersion(_Out_ int *major, _Out_ int *minor)"),
      nvrtcCreateProgram: f("int nvrtcCreateProgram(void *prog, const char *src, const char *name, int numHeaders, const char **headers, const char **includeNames)"),
      nvrtcCompileProgram: f("int nvrtcCompileProgram(void *prog, int numOptions, const char **options)"),
      nvrtcDestroyProgram: f("int nvrtcDestroyProgram(void *progPtr)"),
      nvrtcGetProgramLogSize: f("int nvrtcGetProgramLogSize(void *prog, _Out_ size_t *size)"),
      nvrtcGetProgramLog: f("int nvrtcGetProgramLog(void *prog, _Out_ uint8_t *log)"),
      nvrtcGetPTXSize: f("int nvrtcGetPTXSize(void *prog, _Out_ size_t *size)"),
      nvrtcGetPTX: f("int nvrtcGetPTX(void *prog, _Out_ uint8_t *ptx)"),
      nvrtcGetCUBINSize: f("int nvrtcGetCUBINSize(void *prog, _Out_ size_t *size)"),
      nvrtcGetCUBIN: f("int nvrtcGetCUBIN(void *prog, _Out_ uint8_t *cubin)"),
      nvrtcGetErrorString: lib.func("const char *nvrtcGetErrorString(int result)") as unknown as (code: number) => string,
    };
  })().catch((e) => {
    nvrtcPromise = undefined;
    throw e;
  });
  return nvrtcPromise;
}

export interface NvrtcOptions {
  /** Compute capability as a number, e.g. 90 for sm_90. */
  sm: number;
  /** Preprocessor definitions, e.g. { SEQC_DIM_H: 64 }. */
  defines?: Record<string, string | number>;
  /** File name shown in compiler messages. */
  name?: string;
  extraOptions?: string[];
}

export interface CompiledImage {
  /** cubin (binary) or PTX (text, NUL-terminated) ready for cuModuleLoadData. */
  image: Buffer;
  kind: "cubin" | "ptx";
  log: string;
}

/** Compile source for sm_<sm>: a cubin when NVRTC knows the architecture, else PTX for compute_<sm>. */
export async function nvrtcCompile(source: string, opts: NvrtcOptions): Promise<CompiledImage> {
  const n = await loadNvrtc();
  const ok = (code: number, call: string) => {
    if (code !== 0) throw new CudaError(`${call} failed: ${n.nvrtcGetErrorString(code)}`, code, n.nvrtcGetErrorString(code));
  };
  const progSlot = Buffer.alloc(8);
  ok(n.nvrtcCreateProgram(progSlot, source, opts.name ?? "seqc_kernel.cu", 0, null, null), "nvrtcCreateProgram");
  const prog = progSlot.readBigUInt64LE(0);
  try {
    const defs = Object.entries(opts.defines ?? {}).map(([k, v]) => `-D${k}=${v}`);
    const common = ["-std=c++17", "-default-device", ...defs, ...(opts.extraOptions ?? [])];
    let kind: "cubin" | "ptx" = "cubin";
    let code = n.nvrtcCompileProgram(prog, common.length + 1, [`--gpu-architecture=sm_${opts.sm}`, ...common]);
    if (code !== 0 && code !== 6 /* NVRTC_ERROR_COMPILATION */) {
      kind = "ptx";
      code = n.nvrtcCompileProgram(prog, common.length + 1, [`--gpu-architecture=compute_${opts.sm}`, ...common]);
    }
    const logSize = [0];
    ok(n.nvrtcGetProgramLogSize(prog, logSize), "nvrtcGetProgramLogSize");
    const logBuf = Buffer.alloc(Math.max(1, Number(logSize[0])));
    ok(n.nvrtcGetProgramLog(prog, logBuf), "nvrtcGetProgramLog");
    const log = logBuf.toString("utf8").replace(/\0+$/, "").trim();
    if (code !== 0) throw new CudaCompileError(`NVRTC could not compile ${opts.name ?? "the kernel"} for sm_${opts.sm}:\n${log}`, log);
    const size = [0];
    const buf = (get: Fn, getSize: Fn, what: string) => {
      ok(getSize(prog, size), `${what}Size`);
      const b = Buffer.alloc(Number(size[0]));
      ok(get(prog, b), what);
      return b;
    };
    const image = kind === "cubin" ? buf(n.nvrtcGetCUBIN, n.nvrtcGetCUBINSize, "nvrtcGetCUBIN") : buf(n.nvrtcGetPTX, n.nvrtcGetPTXSize, "nvrtcGetPTX");
    return { image, kind, log };
  } finally {
    n.nvrtcDestroyProgram(progSlot);
  }
}

export async function nvrtcVersion(): Promise<string> {
  const n = await loadNvrtc();
  const a = [0];
  const b = [0];
  n.nvrtcVersion(a, b);
  return `${a[0]}.${b[0]}`;
}
