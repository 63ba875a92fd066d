/**
 * A stand-in for runtime/cuda's CudaDevice that runs launches on the CPU emulation (emu.h), so the real
 * CudaModelRunner (buffer bindings, uniform and override structs, bf16/f16 conversions, modules per form)
 * is exercised without a GPU. Memory is host buffers addressed by fake device pointers; a launch writes
 * the buffers it binds to files, runs the emulator executable of an EmuBuild on that one launch, and
 * reads them back. Only what the runner uses is implemented.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { CudaBuffer, KernelArg, LaunchConfig } from "../../runtime/cuda/device.ts";
import type { EmuBuild } from "./harness.ts";

export class FakeCudaDevice {
  readonly info = { name: "CPU emulation", ordinal: 0, sm: 90, multiprocessors: 132, warpSize: 32, maxThreadsPerBlock: 1024, sharedMemPerBlockOptin: 227 * 1024, sharedMemPerMultiprocessor: 228 * 1024, l2CacheBytes: 50 << 20, totalMemBytes: 1 << 30, cooperativeLaunch: true, driverVersion: "emu" };
  private mem = new Map<bigint, Buffer>();
  private next = 0x1000n;
  launches = 0;
  constructor(private readonly build: EmuBuild) {}
  alloc(bytes: number): CudaBuffer {
    const ptr = this.next;
    this.next += BigInt(Math.ceil(bytes / 256) * 256 + 256);
    this.mem.set(ptr, Buffer.alloc(bytes, 0xab));
    return { ptr, bytes };
  }
  free(b: CudaBuffer): void {
    this.mem.delete(b.ptr);
  }
  private buf(ptr: bigint): Buffer {
    const b = this.mem.get(ptr);
    if (!b) throw new Error(`fake device: no buffer at ${ptr.toString(16)}`);
    return b;
  }
  upload(dst: CudaBuffer, src: ArrayBufferView, off = 0): void {
    Buffer.from(src.buffer, src.byteOffset, src.byteLength).copy(this.buf(dst.ptr), off);
  }
  download(src: CudaBuffer, bytes = src.bytes, off = 0): Buffer {
    return Buffer.from(this.buf(src.ptr).subarray(off, off + bytes));
  }
  downloadF32(src: CudaBuffer, count = src.bytes / 4): Float32Array {
    const b = this.download(src, count * 4);
    return new Float32Array(b.buffer, b.byteOffset, count);
  }
  copy(dst: CudaBuffer, src: CudaBuffer, bytes = Math.min(dst.bytes, src.bytes)): void {
    this.buf(src.ptr).copy(this.buf(dst.ptr), 0, 0, bytes);
  }
  fill32(dst: CudaBuffer, bits: number): void {
    const b = this.buf(dst.ptr);
    for (let i = 0; i + 4 <= b.length; i += 4) b.writeUInt32LE(bits >>> 0, i);
  }
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
  private module() {
    return {
      fn: (name: string) => ({ name, setMaxDynamicShared() {}, maxActiveBlocksPerSM: () => 1 }),
      dispose() {},
    };
  }
  launch(fn: { name: string }, cfg: LaunchConfig, args: KernelArg[]): void {
    const ptrs = args.filter((a): a is { ptr: bigint } => "ptr" in a).map((a) => a.ptr);
    const structs = args.filter((a): a is { bytes: Buffer } => "bytes" in a).map((a) => a.bytes);
    const u32s = (b: Buffer) => Array.from({ length: b.length / 4 }, (_, i) => b.readUInt32LE(i * 4));
    const dir = mkdtempSync(join(tmpdir(), "seqc-fake-"));
    try {
      // one file per distinct buffer: a buffer bound twice (the runner binds states and initial states to one) is one memory, as on the GPU
      const uniq = [...new Set(ptrs)];
      uniq.forEach((p, i) => writeFileSync(join(dir, `buf${i}.bin`), this.buf(p)));
      const [u, o] = structs.map(u32s);
      const grid = cfg.grid[0] * (cfg.grid[1] ?? 1);
      // threads per block, for emulator builds that take it (plain.ts); the chunked ones run 256
      writeFileSync(join(dir, "block.txt"), String(cfg.block[0]));
      writeFileSync(join(dir, "launches.txt"), `${uniq.length}\n${fn.name} ${grid} 1 ${cfg.sharedBytes ?? 0} ${ptrs.length} ${ptrs.map((p) => uniq.indexOf(p)).join(" ")} ${u.length} ${u.join(" ")} ${o.length} ${o.join(" ")}\n`);
      execFileSync(this.build.bin, [dir], { stdio: "pipe" });
      uniq.forEach((p, i) => readFileSync(join(dir, `buf${i}.out`)).copy(this.buf(p)));
      this.launches++;
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
}
