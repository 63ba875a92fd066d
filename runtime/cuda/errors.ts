/** Errors of the CUDA runtime: one for "this machine cannot run CUDA at all", one for a failed driver/NVRTC call. */

/** Thrown when CUDA cannot be used here (no driver library, no GPU, no FFI). Its message is one sentence a person can act on. */
export class CudaUnavailableError extends Error {
  override name = "CudaUnavailableError";
}

/** A CUDA driver or NVRTC call returned an error code. */
export class CudaError extends Error {
  override name = "CudaError";
  constructor(
    message: string,
    readonly code: number,
    readonly codeName: string,
  ) {
    super(message);
  }
}

/** NVRTC rejected a kernel source: the message carries NVRTC's log. */
export class CudaCompileError extends Error {
  override name = "CudaCompileError";
  constructor(
    message: string,
    readonly log: string,
  ) {
    super(message);
  }
}
