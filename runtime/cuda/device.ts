/**
 * A CUDA device for Node: context, device memory, streams, modules, launches and event timing.
 * Everything goes through the driver API (driver.ts); kernels come as cubin/PTX images or as CUDA C++
 * compiled by NVRTC (nvrtc.ts).
 */
import { ATTR, FUNC_ATTR, check, handleOf, loadDriver, slot, errorName, type Driver } from "./driver.ts";
import { CudaUnavailableError } from "./errors.ts";
import { nvrtcCompile, type NvrtcOptions } from "./nvrtc.ts";

export interface DeviceInfo {
  name: string;
  ordinal: number;
  /** compute capability as a number: 90 for 9.0 */
  sm: number;
  multiprocessors: number;
  warpSize: number;
  maxThreadsPerBlock: number;
  sharedMemPerBlockOptin: number;
  sharedMemPerMultiprocessor: number;
  l2CacheBytes: number;
  totalMemBytes: number;
  cooperativeLaunch: boolean;
  driverVersion: string;
}

/** A device allocation. */
export interface CudaBuffer {
  readonly ptr: bigint;
  readonly bytes: number;
}

/** One kernel argument: a device pointer, a 32-bit int / unsigned / float, or a raw byte blob (structs). */
export type KernelArg = { ptr: bigint } | { i32: number } | { u32: number } | { f32: number } | { u64: bigint } | { bytes: Buffer };

export interface LaunchConfig {
  grid: [number, number?, number?];
  block: [number, number?, number?];
  sharedBytes?: number;
  stream?: CudaStream;
  /** Launch with cuLaunchCooperativeKernel: all blocks are guaranteed to be resident at once. */
  cooperative?: boolean;
}

export class CudaStream {
  constructor(readonly handle: bigint) {}
}

export class CudaFunction {
  /** The dynamic shared-memory limit set so far (the driver's default before any call). */
  private maxDynamicShared = 48 * 1024;
  constructor(
    readonly name: string,
    readonly handle: bigint,
    private readonly dev: CudaDevice,
  ) {}
  /** Allow more than 48 KiB of dynamic shared memory for this kernel (one driver call per larger size, not per launch). */
  setMaxDynamicShared(bytes: number): void {
    if (bytes <= this.maxDynamicShared) return;
    this.dev.check(this.dev.driver.cuFuncSetAttribute(this.handle, FUNC_ATTR.maxDynamicSharedSizeBytes, bytes), `cuFuncSetAttribute(${this.name})`);
    this.maxDynamicShared = bytes;
  }
  attribute(attr: keyof typeof FUNC_ATTR): number {
    const out = [0];
    this.dev.check(this.dev.driver.cuFuncGetAttribute(out, FUNC_ATTR[attr], this.handle), `cuFuncGetAttribute(${this.name})`);
    return out[0];
  }
  /** How many blocks of this size fit on one multiprocessor at once. */
  maxActiveBlocksPerSM(blockSize: number, sharedBytes: number): number {
    const out = [0];
    this.dev.check(this.dev.driver.cuOccupancyMaxActiveBlocksPerMultiprocessor(out, this.handle, blockSize, sharedBytes), `cuOccupancyMaxActiveBlocksPerMultiprocessor(${this.name})`);
    return out[0];
  }
}

export class CudaModule {
  private readonly fns = new Map<string, CudaFunction>();
  constructor(
    readonly handle: bigint,
    private readonly dev: CudaDevice,
  ) {}
  fn(name: string): CudaFunction {
    let f = this.fns.get(name);
    if (!f) {
      const s = slot();
      this.dev.check(this.dev.driver.cuModuleGetFunction(s, this.handle, name), `cuModuleGetFunction(${name})`);
      f = new CudaFunction(name, handleOf(s), this.dev);
      this.fns.set(name, f);
    }
    return f;
  }
  dispose(): void {
    this.dev.driver.cuModuleUnload(this.handle);
  }
}

function encodeArg(a: KernelArg): Buffer {
  if ("ptr" in a) {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(a.ptr);
    return b;
  }
  if ("u64" in a) {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(a.u64);
    return b;
  }
  const b = Buffer.alloc(4);
  if ("i32" in a) b.writeInt32LE(a.i32);
  else if ("u32" in a) b.writeUInt32LE(a.u32);
  else if ("f32" in a) b.writeFloatLE(a.f32);
  else return a.bytes;
  return b;
}

const devices = new Map<number, Promise<CudaDevice>>();

/** A translation unit as plans carry it: its source and, where nvcc was found, images per compute capability. */
export interface ModuleImages {
  source: string;
  ptx?: Record<string, string>;
  cubin?: Record<string, string>;
}

/** Load a module's image for the device's capability (a cubin, base64, else PTX), else compile its source with NVRTC. */
export async function loadModuleImages(device: CudaDevice, m: ModuleImages, name: string): Promise<CudaModule> {
  const sm = String(device.info.sm);
  const image = m.cubin?.[sm] ? Buffer.from(m.cubin[sm], "base64") : m.ptx?.[sm];
  return image ? device.loadModule(image) : await device.compile(m.source, { name });
}

export class CudaDevice {
  private disposed = false;
  private constructor(
    readonly driver: Driver,
    readonly info: DeviceInfo,
    private readonly ctx: bigint,
  ) {}

  /** Open (once per process) the device with this ordinal and make its primary context current. */
  static open(ordinal = 0): Promise<CudaDevice> {
    let p = devices.get(ordinal);
    if (!p) {
      p = CudaDevice.create(ordinal).catch((e) => {
        devices.delete(ordinal);
        throw e;
      });
      devices.set(ordinal, p);
    }
    return p;
  }

  private static async create(ordinal: number): Promise<CudaDevice> {
    const d = await loadDriver();
    const init = d.cuInit(0);
    if (init !== 0) {
      const name = errorName(d, init);
      const why = name === "CUDA_ERROR_NO_DEVICE" ? "no CUDA-capable GPU was found" : name === "CUDA_ERROR_INSUFFICIENT_DRIVER" ? "the NVIDIA driver is older than this CUDA runtime needs" : `cuInit returned ${name}`;
      throw new CudaUnavailableError(`CUDA is not available on this machine: the driver loaded but ${why}, so use backend 'webgpu' instead.`);
    }
    const count = [0];
    check(d, d.cuDeviceGetCount(count), "cuDeviceGetCount");
    if (ordinal >= count[0]) throw new CudaUnavailableError(`CUDA device ${ordinal} does not exist: this machine has ${count[0]} CUDA device${count[0] === 1 ? "" : "s"}.`);
    const dev = [0];
    check(d, d.cuDeviceGet(dev, ordinal), "cuDeviceGet");
    const ctxSlot = slot();
    check(d, d.cuDevicePrimaryCtxRetain(ctxSlot, dev[0]), "cuDevicePrimaryCtxRetain");
    const ctx = handleOf(ctxSlot);
    check(d, d.cuCtxSetCurrent(ctx), "cuCtxSetCurrent");
    const attr = (a: number) => {
      const out = [0];
      check(d, d.cuDeviceGetAttribute(out, a, dev[0]), "cuDeviceGetAttribute");
      return out[0];
    };
    const nameBuf = Buffer.alloc(256);
    check(d, d.cuDeviceGetName(nameBuf, 256, dev[0]), "cuDeviceGetName");
    const mem = slot();
    check(d, d.cuDeviceTotalMem(mem, dev[0]), "cuDeviceTotalMem");
    const ver = [0];
    d.cuDriverGetVersion(ver);
    const info: DeviceInfo = {
      name: nameBuf.toString("utf8").replace(/\0.*$/s, ""),
      ordinal,
      sm: attr(ATTR.computeCapabilityMajor) * 10 + attr(ATTR.computeCapabilityMinor),
      multiprocessors: attr(ATTR.multiprocessorCount),
      warpSize: attr(ATTR.warpSize),
      maxThreadsPerBlock: attr(ATTR.maxThreadsPerBlock),
      sharedMemPerBlockOptin: attr(ATTR.maxSharedMemoryPerBlockOptin),
      sharedMemPerMultiprocessor: attr(ATTR.maxSharedMemoryPerMultiprocessor),
      l2CacheBytes: attr(ATTR.l2CacheSize),
      totalMemBytes: Number(mem.readBigUInt64LE(0)),
      cooperativeLaunch: attr(ATTR.cooperativeLaunch) !== 0,
      driverVersion: `${Math.floor(ver[0] / 1000)}.${(ver[0] % 1000) / 10}`,
    };
    return new CudaDevice(d, info, ctx);
  }

  check(code: number, call: string): void {
    check(this.driver, code, call);
  }

  private current(): void {
    if (this.disposed) throw new Error("this CUDA device was disposed");
    this.check(this.driver.cuCtxSetCurrent(this.ctx), "cuCtxSetCurrent");
  }

  // ---- memory ----
  alloc(bytes: number): CudaBuffer {
    this.current();
    const s = slot();
    this.check(this.driver.cuMemAlloc(s, Math.max(4, bytes)), `cuMemAlloc(${bytes} bytes)`);
    return { ptr: handleOf(s), bytes };
  }
  free(b: CudaBuffer): void {
    this.check(this.driver.cuMemFree(b.ptr), "cuMemFree");
  }
  upload(dst: CudaBuffer, src: ArrayBufferView, dstOffsetBytes = 0): void {
    if (src.byteLength + dstOffsetBytes > dst.bytes) throw new RangeError(`upload of ${src.byteLength} bytes does not fit a ${dst.bytes}-byte buffer`);
    const view = Buffer.from(src.buffer, src.byteOffset, src.byteLength);
    this.check(this.driver.cuMemcpyHtoD(dst.ptr + BigInt(dstOffsetBytes), view, src.byteLength), "cuMemcpyHtoD");
  }
  /** Copy a whole buffer (or `bytes` of it) to the host; waits for prior work on the null stream. */
  download(src: CudaBuffer, bytes = src.bytes, srcOffsetBytes = 0): Buffer {
    const out = Buffer.alloc(bytes);
    this.check(this.driver.cuMemcpyDtoH(out, src.ptr + BigInt(srcOffsetBytes), bytes), "cuMemcpyDtoH");
    return out;
  }
  downloadF32(src: CudaBuffer, count = src.bytes / 4): Float32Array {
    const b = this.download(src, count * 4);
    return new Float32Array(b.buffer, b.byteOffset, count);
  }
  copy(dst: CudaBuffer, src: CudaBuffer, bytes = Math.min(dst.bytes, src.bytes), stream?: CudaStream): void {
    this.check(this.driver.cuMemcpyDtoDAsync(dst.ptr, src.ptr, bytes, stream?.handle ?? 0n), "cuMemcpyDtoDAsync");
  }
  /** Fill with a 32-bit pattern, e.g. a NaN to poison outputs before a check. */
  fill32(dst: CudaBuffer, bits: number, stream?: CudaStream): void {
    this.check(this.driver.cuMemsetD32Async(dst.ptr, bits >>> 0, Math.floor(dst.bytes / 4), stream?.handle ?? 0n), "cuMemsetD32Async");
  }

  // ---- streams and timing ----
  stream(): CudaStream {
    this.current();
    const s = slot();
    this.check(this.driver.cuStreamCreate(s, 1 /* CU_STREAM_NON_BLOCKING */), "cuStreamCreate");
    return new CudaStream(handleOf(s));
  }
  destroyStream(s: CudaStream): void {
    this.driver.cuStreamDestroy(s.handle);
  }
  /** Wait for the stream (or the whole context) without blocking Node's event loop. */
  synchronize(stream?: CudaStream): Promise<void> {
    if (!stream) {
      this.check(this.driver.cuCtxSynchronize(), "cuCtxSynchronize");
      return Promise.resolve();
    }
    return new Promise((resolve, reject) =>
      this.driver.cuStreamSynchronize.async(stream.handle, (err: unknown, code: number) => {
        if (err) reject(err);
        else {
          try {
            this.check(code, "cuStreamSynchronize");
            resolve();
          } catch (e) {
            reject(e);
          }
        }
      }),
    );
  }
  /** Time `work` (which enqueues on `stream`) with device events; returns milliseconds. */
  timeMs(stream: CudaStream, work: () => void): number {
    const a = slot();
    const b = slot();
    this.check(this.driver.cuEventCreate(a, 0), "cuEventCreate");
    this.check(this.driver.cuEventCreate(b, 0), "cuEventCreate");
    const ea = handleOf(a);
    const eb = handleOf(b);
    this.check(this.driver.cuEventRecord(ea, stream.handle), "cuEventRecord");
    work();
    this.check(this.driver.cuEventRecord(eb, stream.handle), "cuEventRecord");
    this.check(this.driver.cuEventSynchronize(eb), "cuEventSynchronize");
    const ms = [0];
    this.check(this.driver.cuEventElapsedTime(ms, ea, eb), "cuEventElapsedTime");
    this.driver.cuEventDestroy(ea);
    this.driver.cuEventDestroy(eb);
    return ms[0];
  }

  // ---- modules and launches ----
  /** Load a cubin or PTX image (PTX must be NUL-terminated text). */
  loadModule(image: Buffer | string): CudaModule {
    this.current();
    const img = typeof image === "string" ? Buffer.from(image + "\0", "utf8") : image;
    const s = slot();
    this.check(this.driver.cuModuleLoadData(s, img), "cuModuleLoadData");
    return new CudaModule(handleOf(s), this);
  }
  /** Compile CUDA C++ with NVRTC for this device and load it. */
  async compile(source: string, opts: Omit<NvrtcOptions, "sm"> & { sm?: number } = {}): Promise<CudaModule> {
    const { image } = await nvrtcCompile(source, { ...opts, sm: opts.sm ?? this.info.sm });
    return this.loadModule(image);
  }
  launch(fn: CudaFunction, cfg: LaunchConfig, args: KernelArg[]): void {
    const [gx, gy = 1, gz = 1] = cfg.grid;
    const [bx, by = 1, bz = 1] = cfg.block;
    const params = args.map(encodeArg);
    const stream = cfg.stream?.handle ?? 0n;
    const smem = cfg.sharedBytes ?? 0;
    const code = cfg.cooperative
      ? this.driver.cuLaunchCooperativeKernel(fn.handle, gx, gy, gz, bx, by, bz, smem, stream, params)
      : this.driver.cuLaunchKernel(fn.handle, gx, gy, gz, bx, by, bz, smem, stream, params, null);
    this.check(code, `launch of ${fn.name} (grid ${gx}x${gy}x${gz}, block ${bx}x${by}x${bz}, ${smem} B shared)`);
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    devices.delete(this.info.ordinal);
    this.driver.cuDevicePrimaryCtxRelease(this.info.ordinal);
  }
}

/** One sentence on whether CUDA can run here; never throws. */
export async function cudaAvailability(): Promise<{ ok: true; info: DeviceInfo } | { ok: false; reason: string }> {
  try {
    const d = await CudaDevice.open(0);
    return { ok: true, info: d.info };
  } catch (e) {
    return { ok: false, reason: e instanceof Error ? e.message : String(e) };
  }
}
