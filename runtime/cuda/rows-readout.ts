/**
 * The per-key-decay rows readout kernel (compiler/backends/cuda/rows-readout.ts) on a CudaDevice, for the generated
 * classes' chunked backward: a per-key decay's transposed cores (dq = S dy in forward time, dk = G v in reversed time,
 * runtime/chunked-backward.ts) as one launch each instead of the transposed-core plans (whose key rows run as heads of
 * their own: about C times a core's matmul work). The contract is runtime/torch/seqc_chunked.py rows_readout_kernel's:
 *
 *   S_t = diag(exp(ld_t)) S_{t-1} + sum_p a_p,t b_p,t^T   (S_0 given, or zero),   out_r,t = S_t c_r,t
 *
 * ld, a_p: [B, T, H*K]; b_p, c_r: [B, T, H*V]; S_0: [B, H, K, V] (canonical); out_r: [B, T, H*K]; float32 throughout.
 * One segment (the plain walk of all T tokens per key-row block, the torch target's default ROWS_SEGMENT = 0): grid
 * B H ceil(K / kr) blocks by ceil(V / vs) value slices, one partial sum per slice, added here.
 */
import { loadModuleImages, type CudaBuffer, type CudaDevice, type CudaModule, type KernelArg, type ModuleImages } from "./device.ts";

/** A float32 kernel of the module as the runtime launches it (a subset of compiler/backends/cuda/rows-readout.ts RowsReadoutKernel). */
export interface RowsReadoutKernelInfo {
  entry: string;
  threads: number;
  sharedBytes: number;
  pairs: number;
  readouts: number;
  /** key rows per block, values per block */
  kr: number;
  vs: number;
  /** bf16 operands (such kernels are not launched here) */
  low?: string;
}

/** The module a class's chain carries (<Model>.grad.cuda.json `chunked.rowsReadout`): its source, kernels and, where nvcc was found, images per capability. */
export interface RowsReadoutModulePlan extends ModuleImages {
  kernels: RowsReadoutKernelInfo[];
}

/** The kernel for (pairs, readouts) at value extent V on a device with `smemOptin` bytes of shared memory per block: the
 * first float32 one (module order: the tiles' preference order) whose value slice covers V, else the widest; undefined
 * where none fits (no kernel for that shape, or none within the shared memory). */
export function pickRowsKernel(kernels: readonly RowsReadoutKernelInfo[], pairs: number, readouts: number, V: number, smemOptin: number): RowsReadoutKernelInfo | undefined {
  const cands = kernels.filter((k) => !k.low && k.pairs === pairs && k.readouts === readouts && k.sharedBytes <= smemOptin);
  if (!cands.length) return undefined;
  return cands.find((k) => k.vs >= V) ?? cands.reduce((a, k) => (k.vs > a.vs ? k : a));
}

export class RowsReadoutRunner {
  private constructor(
    readonly device: CudaDevice,
    readonly plan: RowsReadoutModulePlan,
    private readonly module: CudaModule,
  ) {}

  /** Load the module's image for the device's capability, else compile its source (NVRTC). */
  static async create(plan: RowsReadoutModulePlan, device: CudaDevice, name = "rows-readout"): Promise<RowsReadoutRunner> {
    return new RowsReadoutRunner(device, plan, await loadModuleImages(device, plan, `${name}.cu`));
  }

  /** The kernel run() launches for these sizes, or undefined where the module has none that fits. */
  kernelFor(pairs: number, readouts: number, V: number): RowsReadoutKernelInfo | undefined {
    return pickRowsKernel(this.plan.kernels, pairs, readouts, V, this.device.info.sharedMemPerBlockOptin);
  }

  /** out_r for each readout c_r ([B, T, H*K] each), from the pairs (a_p, b_p), the log decays and S0 (undefined: zero). */
  async run(ld: Float32Array, pairs: [Float32Array, Float32Array][], readouts: Float32Array[], S0: Float32Array | undefined, B: number, T: number, H: number, K: number, V: number): Promise<Float32Array[]> {
    const k = this.kernelFor(pairs.length, readouts.length, V);
    if (!k) throw new Error(`the rows readout module has no float32 kernel for ${pairs.length} pairs and ${readouts.length} readouts within ${this.device.info.sharedMemPerBlockOptin} bytes of shared memory (it has ${this.plan.kernels.map((x) => x.entry).join(", ")})`);
    const nk = B * T * H * K, nv = B * T * H * V, nS = B * H * K * V;
    const check = (x: Float32Array, n: number, what: string) => {
      if (x.length !== n) throw new Error(`rows readout: ${what} has ${x.length} elements; expected ${n} (B=${B}, T=${T}, H=${H}, K=${K}, V=${V})`);
      return x;
    };
    const dev = this.device;
    const bufs: CudaBuffer[] = [];
    const up = (x: Float32Array) => {
      const b = dev.alloc(Math.max(16, x.byteLength));
      dev.upload(b, x);
      bufs.push(b);
      return b;
    };
    try {
      const slices = Math.ceil(V / k.vs);
      const ins = [
        up(check(ld, nk, "ld [B, T, H*K]")),
        ...pairs.map(([a], i) => up(check(a, nk, `a${i} [B, T, H*K]`))),
        ...pairs.map(([, b], i) => up(check(b, nv, `b${i} [B, T, H*V]`))),
        ...readouts.map((c, i) => up(check(c, nv, `c${i} [B, T, H*V]`))),
      ];
      const s0 = S0 ? up(check(S0, nS, "S0 [B, H, K, V]")) : up(new Float32Array(4));
      const outs = readouts.map(() => {
        const b = dev.alloc(Math.max(16, slices * nk * 4));
        bufs.push(b);
        return b;
      });
      const fn = this.module.fn(k.entry);
      if (k.sharedBytes > 48 * 1024) fn.setMaxDynamicShared(k.sharedBytes);
      const args: KernelArg[] = [...ins, s0, ...outs].map((b) => ({ ptr: b.ptr }));
      for (const v of [B, T, H, K, V, S0 ? 1 : 0]) args.push({ u32: v });
      const stream = dev.stream();
      dev.launch(fn, { grid: [B * H * Math.ceil(K / k.kr), slices], block: [k.threads], sharedBytes: k.sharedBytes, stream }, args);
      await dev.synchronize(stream);
      dev.destroyStream(stream);
      return outs.map((o) => {
        const all = dev.downloadF32(o, slices * nk);
        if (slices === 1) return Float32Array.from(all);
        const sum = new Float32Array(nk);
        for (let s = 0; s < slices; s++) for (let x = 0; x < nk; x++) sum[x] += all[s * nk + x];
        return sum;
      });
    } finally {
      for (const b of bufs) dev.free(b);
    }
  }

  dispose(): void {
    this.module.dispose();
  }
}
