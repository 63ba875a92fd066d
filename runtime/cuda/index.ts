/** The CUDA runtime for Node: driver API through koffi, NVRTC for run-time compilation. Imports nothing of compiler/ or grammar/. */
export { CudaDevice, CudaModule, CudaFunction, CudaStream, cudaAvailability } from "./device.ts";
export type { CudaBuffer, DeviceInfo, KernelArg, LaunchConfig } from "./device.ts";
export { CudaUnavailableError, CudaError, CudaCompileError } from "./errors.ts";
export { nvrtcCompile, nvrtcVersion } from "./nvrtc.ts";
export type { CompiledImage, NvrtcOptions } from "./nvrtc.ts";
export { CudaModelRunner, PreparedForward } from "./runner.ts";
export type { CudaCreateOptions, CudaForwardOptions, CudaForwardResult, CudaFormChoice, CudaTensorInput } from "./runner.ts";
export type { CudaModelPlan, CudaFormPlan, CudaLaunch, CudaGemm, CudaZero } from "./plan.ts";
export { RowsReadoutRunner, pickRowsKernel } from "./rows-readout.ts";
export type { RowsReadoutModulePlan, RowsReadoutKernelInfo } from "./rows-readout.ts";
