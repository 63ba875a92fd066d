/**
 * The CUDA driver API (libcuda) through koffi. Handles and device pointers travel as bigint; out-parameters
 * are 8-byte Buffers. Only the calls the runtime needs are declared.
 */
import { CudaError, CudaUnavailableError } from "./errors.ts";
import { loadKoffi, openFirst, type Koffi } from "./ffi.ts";

/** CUdevice_attribute values used by the runtime (cuda.h). */
export const ATTR = {
  maxThreadsPerBlock: 1,
  warpSize: 10,
  maxRegistersPerBlock: 12,
  clockRateKHz: 13,
  multiprocessorCount: 16,
  memoryClockRateKHz: 36,
  globalMemoryBusWidth: 37,
  l2CacheSize: 38,
  computeCapabilityMajor: 75,
  computeCapabilityMinor: 76,
  maxSharedMemoryPerMultiprocessor: 81,
  cooperativeLaunch: 95,
  maxSharedMemoryPerBlockOptin: 97,
} as const;

/** CUfunction_attribute values. */
export const FUNC_ATTR = { maxThreadsPerBlock: 0, sharedSizeBytes: 1, numRegs: 4, maxDynamicSharedSizeBytes: 8 } as const;

type Fn = (...args: unknown[]) => number;

export interface Driver {
  koffi: Koffi;
  cuInit: Fn;
  cuDriverGetVersion: Fn;
  cuDeviceGetCount: Fn;
  cuDeviceGet: Fn;
  cuDeviceGetName: Fn;
  cuDeviceGetAttribute: Fn;
  cuDeviceTotalMem: Fn;
  cuDevicePrimaryCtxRetain: Fn;
  cuDevicePrimaryCtxRelease: Fn;
  cuCtxSetCurrent: Fn;
  cuCtxSynchronize: Fn;
  cuMemAlloc: Fn;
  cuMemFree: Fn;
  cuMemcpyHtoD: Fn;
  cuMemcpyDtoH: Fn;
  cuMemcpyDtoD: Fn;
  cuMemcpyDtoDAsync: Fn;
  cuMemsetD8: Fn;
  cuMemsetD32Async: Fn;
  cuModuleLoadData: Fn;
  cuModuleUnload: Fn;
  cuModuleGetFunction: Fn;
  cuFuncSetAttribute: Fn;
  cuFuncGetAttribute: Fn;
  cuOccupancyMaxActiveBlocksPerMultiprocessor: Fn;
  cuLaunchKernel: Fn;
  cuLaunchCooperativeKernel: Fn;
  cuStreamCreate: Fn;
  cuStreamDestroy: Fn;
  cuStreamSynchronize: Fn & { async: (...args: unknown[]) => void };
  cuEventCreate: Fn;
  cuEventDestroy: Fn;
  cuEventRecord: Fn;
  cuEventSynchronize: Fn;
  cuEventElapsedTime: Fn;
  cuGetErrorName: Fn;
  cuGetErrorString: Fn;
}

let driverPromise: Promise<Driver> | undefined;

/** Load libcuda and bind the driver API, or throw CudaUnavailableError with one sentence saying why not. */
export function loadDriver(): Promise<Driver> {
  driverPromise ??= (async () => {
    const koffi = await loadKoffi();
    const tried: string[] = [];
    const lib = openFirst(koffi, ["libcuda.so.1", "libcuda.so"], [], tried);
    if (!lib)
      throw new CudaUnavailableError(
        "CUDA is not available on this machine: the NVIDIA driver library libcuda.so.1 was not found (no NVIDIA GPU or driver is installed), so use backend 'webgpu' instead.",
      );
    const f = (decl: string) => lib.func(decl) as unknown as Fn;
    // Prefer the versioned symbols (the unversioned ones are kept for old binaries with 32-bit pointers).
    const v2 = (name: string, rest: string, ret = "int") => {
      try {
        return lib.func(`${ret} ${name}_v2${rest}`) as unknown as Fn;
      } catch {
        return lib.func(`${ret} ${name}${rest}`) as unknown as Fn;
      }
    };
    const d: Driver = {
      koffi,
      cuInit: f("int cuInit(unsigned int flags)"),
      cuDriverGetVersion: f("int cuDriverGetVersion(_Out_ int *version)"),
      cuDeviceGetCount: f("int cuDeviceGetCount(_Out_ int *count)"),
      cuDeviceGet: f("int cuDeviceGet(_Out_ int *device, int ordinal)"),
      cuDeviceGetName: f("int cuDeviceGetName(_Out_ uint8_t *name, int len, int dev)"),
      cuDeviceGetAttribute: f("int cuDeviceGetAttribute(_Out_ int *pi, int attrib, int dev)"),
      cuDeviceTotalMem: v2("cuDeviceTotalMem", "(void *bytes, int dev)"),
      cuDevicePrimaryCtxRetain: f("int cuDevicePrimaryCtxRetain(void *pctx, int dev)"),
      cuDevicePrimaryCtxRelease: v2("cuDevicePrimaryCtxRelease", "(int dev)"),
      cuCtxSetCurrent: f("int cuCtxSetCurrent(void *ctx)"),
      cuCtxSynchronize: f("int cuCtxSynchronize()"),
      cuMemAlloc: v2("cuMemAlloc", "(void *dptr, size_t bytes)"),
      cuMemFree: v2("cuMemFree", "(uint64_t dptr)"),
      cuMemcpyHtoD: v2("cuMemcpyHtoD", "(uint64_t dst, const void *src, size_t bytes)"),
      cuMemcpyDtoH: v2("cuMemcpyDtoH", "(_Out_ void *dst, uint64_t src, size_t bytes)"),
      cuMemcpyDtoD: v2("cuMemcpyDtoD", "(uint64_t dst, uint64_t src, size_t bytes)"),
      cuMemcpyDtoDAsync: v2("cuMemcpyDtoDAsync", "(uint64_t dst, uint64_t src, size_t bytes, void *stream)"),
      cuMemsetD8: v2("cuMemsetD8", "(uint64_t dst, uint8_t value, size_t n)"),
      cuMemsetD32Async: f("int cuMemsetD32Async(uint64_t dst, uint32_t value, size_t n, void *stream)"),
      cuModuleLoadData: f("int cuModuleLoadData(void *module, const void *image)"),
      cuModuleUnload: f("int cuModuleUnload(void *module)"),
      cuModuleGetFunction: f("int cuModuleGetFunction(void *fn, void *module, const char *name)"),
      cuFuncSetAttribute: f("int cuFuncSetAttribute(void *fn, int attrib, int value)"),
      cuFuncGetAttribute: f("int cuFuncGetAttribute(_Out_ int *pi, int attrib, void *fn)"),
      cuOccupancyMaxActiveBlocksPerMultiprocessor: f("int cuOccupancyMaxActiveBlocksPerMultiprocessor(_Out_ int *numBlocks, void *fn, int blockSize, size_t dynamicSmem)"),
      cuLaunchKernel: f("int cuLaunchKernel(void *fn, unsigned int gx, unsigned int gy, unsigned int gz, unsigned int bx, unsigned int by, unsigned int bz, unsigned int smem, void *stream, void **params, void **extra)"),
      cuLaunchCooperativeKernel: f("int cuLaunchCooperativeKernel(void *fn, unsigned int gx, unsigned int gy, unsigned int gz, unsigned int bx, unsigned int by, unsigned int bz, unsigned int smem, void *stream, void **params)"),
      cuStreamCreate: f("int cuStreamCreate(void *stream, unsigned int flags)"),
      cuStreamDestroy: v2("cuStreamDestroy", "(void *stream)"),
      cuStreamSynchronize: f("int cuStreamSynchronize(void *stream)") as Driver["cuStreamSynchronize"],
      cuEventCreate: f("int cuEventCreate(void *event, unsigned int flags)"),
      cuEventDestroy: v2("cuEventDestroy", "(void *event)"),
      cuEventRecord: f("int cuEventRecord(void *event, void *stream)"),
      cuEventSynchronize: f("int cuEventSynchronize(void *event)"),
      cuEventElapsedTime: f("int cuEventElapsedTime(_Out_ float *ms, void *start, void *end)"),
      cuGetErrorName: f("int cuGetErrorName(int error, _Out_ const char **name)"),
      cuGetErrorString: f("int cuGetErrorString(int error, _Out_ const char **str)"),
    };
    return d;
  })().catch((e) => {
    driverPromise = undefined;
    throw e;
  });
  return driverPromise;
}

/** Name of a CUresult, e.g. CUDA_ERROR_NO_DEVICE. */
export function errorName(d: Driver, code: number): string {
  const out: (string | null)[] = [null];
  return d.cuGetErrorName(code, out) === 0 && out[0] ? out[0] : `CUresult ${code}`;
}

export function errorText(d: Driver, code: number): string {
  const out: (string | null)[] = [null];
  return d.cuGetErrorString(code, out) === 0 && out[0] ? out[0] : "unknown error";
}

/** Throw a CudaError naming the call when `code` is not CUDA_SUCCESS. */
export function check(d: Driver, code: number, call: string): void {
  if (code === 0) return;
  const name = errorName(d, code);
  throw new CudaError(`${call} failed: ${name} (${errorText(d, code)})`, code, name);
}

/** An 8-byte out-parameter slot for a handle or device pointer. */
export const slot = (): Buffer => Buffer.alloc(8);
export const handleOf = (b: Buffer): bigint => b.readBigUInt64LE(0);
