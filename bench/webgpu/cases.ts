/** Benchmark shapes. The two targets: hgrn's scan at B=8, D=1536, T=16384 and lstm's sequential form at B=64, H=256, T=2048. */
export interface BenchCase {
  model: string;
  label: string;
  dims: Record<string, number>;
  B: number;
  T: number;
  /** Value range per input/param (default [-0.5, 0.5)): keeps decays below one. */
  ranges?: Record<string, [number, number]>;
  /** Variants to time (default: every applicable one). */
  variants?: string[];
  /** Extra runs of a variant with some plan vars fixed (tuning). */
  sweeps?: Record<string, Record<string, number>[]>;
  /** Skipped by --quick. */
  heavy?: boolean;
}

const attn = { H: 4, K: 64, V: 64 };
const neg: [number, number] = [-0.5, -0.02];
const pos: [number, number] = [0.02, 0.5];

export const CASES: BenchCase[] = [
  {
    model: "hgrn", label: "B=8 D=1536 T=16384", dims: { D: 1536 }, B: 8, T: 16384, ranges: { g: neg },
    sweeps: { "scan/tile": [{ $S: 8, $TS: 4 }, { $WGMAX: 512, $S: 16, $TS: 4 }, { $S: 4 }] },
  },
  {
    // the grid variant (one dispatch per step): its hoisted input product and its steps alone, and a sweep of its tile
    model: "lstm", label: "B=64 H=256 I=256 T=2048", dims: { H: 256, I: 256 }, B: 64, T: 2048,
    // sequential/workgroup (576 ms in run 6) is left out to keep a full run inside a device call
    variants: ["sequential/grid", "sequential/stream", "sequential/stream:hoist", "sequential/stream:steps"],
    sweeps: { "sequential/stream": [{ $BB: 2 }] },
  },
  {
    model: "lstm", label: "B=16 H=1024 I=1024 T=1024", dims: { H: 1024, I: 1024 }, B: 16, T: 1024,
    variants: ["sequential/workgroup", "sequential/grid", "sequential/stream", "sequential/stream:steps"],
  },
  {
    model: "gru", label: "B=64 H=256 I=256 T=2048", dims: { H: 256, I: 256 }, B: 64, T: 2048,
    variants: ["sequential/grid", "sequential/stream", "sequential/stream:steps"],
    sweeps: { "sequential/stream": [{ $BB: 2 }] },
  },
  { model: "hgrn", label: "B=8 D=1536 T=2048", dims: { D: 1536 }, B: 8, T: 2048, ranges: { g: neg } },
  { model: "gru", label: "B=64 H=256 I=256 T=512", dims: { H: 256, I: 256 }, B: 64, T: 512 },
  { model: "slstm", label: "B=16 NH=4 DH=64 I=256 T=512", dims: { NH: 4, DH: 64, I: 256 }, B: 16, T: 512 },
  { model: "mamba", label: "B=8 D=1536 N=16 T=2048", dims: { D: 1536, N: 16 }, B: 8, T: 2048, ranges: { A: neg } },
  { model: "mamba2", label: "B=8 H=16 P=64 N=64 T=2048", dims: { H: 16, P: 64, N: 64 }, B: 8, T: 2048, ranges: { A: neg, dt: pos } },
  { model: "s4d", label: "B=8 H=512 N=32 T=2048", dims: { H: 512, N: 32 }, B: 8, T: 2048 },
  { model: "linear_attention", label: "B=8 H=4 K=64 V=64 T=2048", dims: attn, B: 8, T: 2048 },
  { model: "retnet", label: "B=8 H=4 K=64 V=64 T=2048", dims: attn, B: 8, T: 2048 },
  { model: "simple_gla", label: "B=8 H=4 K=64 V=64 T=2048", dims: attn, B: 8, T: 2048, ranges: { g: neg } },
  { model: "gla", label: "B=8 H=4 K=64 V=64 T=2048", dims: attn, B: 8, T: 2048, ranges: { gk: neg } },
  { model: "mlstm", label: "B=8 H=4 K=64 V=64 T=2048", dims: attn, B: 8, T: 2048 },
  { model: "deltanet", label: "B=8 H=4 K=64 V=64 T=2048", dims: attn, B: 8, T: 2048, ranges: { beta: pos } },
  { model: "gated_deltanet", label: "B=8 H=4 K=64 V=64 T=2048", dims: attn, B: 8, T: 2048, ranges: { beta: pos, g: neg } },
  { model: "gated_deltaproduct", label: "B=8 H=4 K=64 V=64 J=2 T=2048", dims: { ...attn, J: 2 }, B: 8, T: 2048, ranges: { beta: pos, g: neg } },
  { model: "rwkv7", label: "B=8 H=4 K=64 V=64 T=2048", dims: attn, B: 8, T: 2048, ranges: { w: neg, a: [-0.05, 0.05], b: [-0.05, 0.05] } },
  { model: "titans", label: "B=8 H=4 K=64 V=64 T=2048", dims: attn, B: 8, T: 2048, ranges: { theta: [0, 0.1], eta: [0.3, 0.8], alpha: [0.05, 0.3] } },
  { model: "softmax_attention", label: "B=4 H=4 K=64 V=64 T=256", dims: attn, B: 4, T: 256, heavy: true },
  // other shapes, to check the cost model outside the shapes it was calibrated on
  { model: "mamba", label: "B=2 D=768 N=16 T=8192", dims: { D: 768, N: 16 }, B: 2, T: 8192, ranges: { A: neg } },
  { model: "gla", label: "B=16 H=8 K=32 V=32 T=1024", dims: { H: 8, K: 32, V: 32 }, B: 16, T: 1024, ranges: { gk: neg } },
  { model: "deltanet", label: "B=2 H=4 K=128 V=128 T=1024", dims: { H: 4, K: 128, V: 128 }, B: 2, T: 1024, ranges: { beta: [0.02, 0.2] } },
  { model: "s4d", label: "B=2 H=256 N=64 T=8192", dims: { H: 256, N: 64 }, B: 2, T: 8192 },
  { model: "hgrn", label: "B=1 D=512 T=65536", dims: { D: 512 }, B: 1, T: 65536, ranges: { g: neg } },
  { model: "lstm", label: "B=8 H=128 I=64 T=1024", dims: { H: 128, I: 64 }, B: 8, T: 1024 },
];
