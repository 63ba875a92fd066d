/**
 * The WGSL chunked benchmarks' shared setup (chunked.ts, chunked-tiled.ts, forward-overhead.ts): the models and
 * the issue's three shapes, each input's value range, and the inputs filled on the device (random in range, a
 * seed per tensor) so that no host copy of the large tensors is made.
 */
import type { Model } from "../../compiler/ir/types.ts";
import { fillKernel } from "../../compiler/bench/fill.ts";

export const CHUNKED_MODELS = ["simple_gla", "gla", "deltanet", "gated_deltanet", "rwkv7", "mamba2"];

export interface ChunkedShape { label: string; B: number; T: number; H: number; K: number }
export function chunkedShapes(smoke: boolean): ChunkedShape[] {
  return smoke
    ? [{ label: "B=1 T=100 H=2 K=V=32 (smoke)", B: 1, T: 100, H: 2, K: 32 }]
    : [
        { label: "B=8 T=2048 H=16 K=V=64", B: 8, T: 2048, H: 16, K: 64 },
        { label: "B=4 T=8192 H=16 K=V=128", B: 4, T: 8192, H: 16, K: 128 },
        { label: "B=1 T=32768 H=8 K=V=128", B: 1, T: 32768, H: 8, K: 128 },
      ];
}

/** The value range of input or param `t` of `model`: log decays negative, betas in (0, 1), DeltaNet's keys small. */
export function inputRange(model: string, t: string, kind: string): [number, number] {
  if (kind === "param") return t === "A" ? [-2, -0.5] : [-1, 1];
  if (t === "g" || t === "gk" || t === "w") return [-1, -0.01];
  if (t === "beta") return [0.05, 1];
  if (t === "dt") return [0.01, 0.3];
  if (t === "k" && model.includes("delta")) return [-0.1, 0.1];
  if (t === "a") return [-0.1, 0];
  if (t === "b") return [0, 0.1];
  return [-1, 1];
}

/** Every input ([B, T, ...]) and every param without an initialiser of `model` as a device buffer filled in its range. */
export async function fillChunkedInputs(device: GPUDevice, model: Model, name: string, dims: Record<string, number>, B: number, T: number) {
  const bufs: GPUBuffer[] = [];
  const inputs: Record<string, { data: GPUBuffer; shape: number[] }> = {};
  const params: Record<string, GPUBuffer> = {};
  for (const t of model.tensors) {
    if (t.kind !== "input" && !(t.kind === "param" && !t.init)) continue;
    const shape = t.shape.map((e) => (e.kind === "lit" ? e.value : dims[e.name]));
    const n = shape.reduce((a, b) => a * b, 1) * (t.kind === "input" ? B * T : 1);
    const b = device.createBuffer({ size: Math.max(16, n * 4), usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
    bufs.push(b);
    const [lo, hi] = inputRange(name, t.name, t.kind);
    await fillKernel(device, b, n, lo, hi, t.name.length * 7919 + n);
    if (t.kind === "input") inputs[t.name] = { data: b, shape: [B, T, ...shape] };
    else params[t.name] = b;
  }
  return { bufs, inputs, params };
}
