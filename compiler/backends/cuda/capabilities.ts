/**
 * What the CUDA backend may assume, as data. The runtime reads the real values off the device
 * (cuDeviceGetAttribute); these are the targets the compiler builds for and the floor it plans with.
 */
export interface CudaCapabilities {
  backend: "cuda";
  /** Architectures the ahead-of-time PTX is built for (nvcc -arch=sm_XX -ptx). */
  smTargets: number[];
  warpSize: number;
  maxThreadsPerBlock: number;
  /** Static shared memory without opt-in, and the opt-in maximum per block on the newest target (sm_90). */
  sharedMemPerBlock: number;
  sharedMemPerBlockOptin: Record<number, number>;
  /** Grid-wide barriers inside a kernel (cooperative launch). */
  cooperativeLaunch: true;
  /** Tensor cores exist (mma.sync sm_80+, wgmma sm_90a); the fp32 kernels here do not use them, to stay at fp32 accuracy. */
  tensorCores: { sm80: "mma.sync"; sm90: "wgmma (sm_90a)"; usedByFp32Kernels: false };
  float: "f32";
}

export const CUDA_CAPABILITIES: CudaCapabilities = {
  backend: "cuda",
  smTargets: [80, 90],
  warpSize: 32,
  maxThreadsPerBlock: 1024,
  sharedMemPerBlock: 48 * 1024,
  sharedMemPerBlockOptin: { 80: 163 * 1024, 90: 227 * 1024 },
  cooperativeLaunch: true,
  tensorCores: { sm80: "mma.sync", sm90: "wgmma (sm_90a)", usedByFp32Kernels: false },
  float: "f32",
};
