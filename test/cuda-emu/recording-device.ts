/**
 * The common part of the CudaDevice stand-ins that record what the Node runner enqueues (no GPU, no emulation):
 * fake device pointers, no-op memory transfers, streams and modules whose functions do nothing. Subclasses
 * record the calls their test looks at by overriding `copy`, `fill32` and `launch`.
 */
import type { CudaBuffer, KernelArg, LaunchConfig } from "../../runtime/cuda/device.ts";

export class RecordingCudaDevice<E> {
  readonly info = { name: "fake", ordinal: 0, sm: 90, multiprocessors: 132, warpSize: 32, maxThreadsPerBlock: 1024, sharedMemPerBlockOptin: 227 * 1024, sharedMemPerMultiprocessor: 228 * 1024, l2CacheBytes: 50 << 20, totalMemBytes: 1 << 30, cooperativeLaunch: true, driverVersion: "fake" };
  private next = 0x1000n;
  events: E[] = [];
  alloc(bytes: number): CudaBuffer {
    const ptr = this.next;
    this.next += BigInt(bytes + 256);
    return { ptr, bytes };
  }
  free(): void {}
  upload(): void {}
  copy(_dst: CudaBuffer, _src: CudaBuffer, _bytes: number): void {}
  fill32(_dst: CudaBuffer): void {}
  stream() {
    return { handle: 0n };
  }
  destroyStream(): void {}
  async synchronize(): Promise<void> {}
  loadModule() {
    return this.module();
  }
  async compile() {
    return this.module();
  }
  protected module() {
    return { fn: (name: string) => ({ name, setMaxDynamicShared() {}, maxActiveBlocksPerSM: () => 4 }), dispose() {} };
  }
  launch(_fn: { name: string }, _cfg: LaunchConfig, _args: KernelArg[]): void {}
}
