/**
 * The kernel IR's 16-byte loads (`load4` + `lane`) in both renderers, the error for an array read both
 * ways in one kernel, and `seqc explain`'s note on the variants the WebGPU default limits leave out
 * (LSTM at T=2048: the stream variant needs more than 16 KiB of workgroup memory; the hoisted terms,
 * 512 MiB for all steps, go in blocks of steps within the binding limit).
 */
import { describe, it, expect } from "vitest";
import * as K from "../compiler/kernel/ir.ts";
import { renderWgsl } from "../compiler/backends/wgsl/index.ts";
import { renderKernel } from "../compiler/backends/cuda/render.ts";
import { chooseWebgpuForm } from "../compiler/backends/wgsl/run-backend.ts";
import { stdlibModel } from "./wgsl/support.ts";

function kernel(body: K.KStmt[]): K.Kernel {
  return {
    name: "k",
    workgroupSize: K.u32(64),
    buffers: [{ name: "w", binding: 1, access: "read" }, { name: "o", binding: 2, access: "read_write" }],
    uniformBinding: 0,
    uniforms: ["B"],
    overrides: [],
    shared: [],
    body,
    needs: [],
  };
}

const sumOfLanes: K.KStmt[] = [
  K.decl("v", "vec4f", K.load4("w", K.ref("lid"))),
  K.store("o", K.ref("lid"), K.bin("+", K.bin("+", K.lane(K.ref("v", "vec4f"), 0), K.lane(K.ref("v", "vec4f"), 1)), K.bin("+", K.lane(K.ref("v", "vec4f"), 2), K.lane(K.ref("v", "vec4f"), 3)))),
];

describe("kernel IR: vec4 loads", () => {
  it("WGSL declares the buffer as vec4 and reads lanes", () => {
    const src = renderWgsl(kernel(sumOfLanes));
    expect(src).toContain("var<storage, read> w: array<vec4<f32>>;");
    expect(src).toContain("var<storage, read_write> o: array<f32>;");
    expect(src).toContain("let v = w[lid];");
    expect(src).toMatch(/v\.x \+ v\.y\).*v\.z \+ v\.w/);
  });

  it("CUDA reads a float4", () => {
    const src = renderKernel(kernel(sumOfLanes));
    expect(src).toContain("const float4 v = reinterpret_cast<const float4*>(w)[seqc_lid];");
    expect(src).toContain("v.w");
  });

  it("refuses an array read both as vec4 and element-wise, and lanes outside 0..3", () => {
    const mixed = [...sumOfLanes, K.store("o", K.u32(0), K.load("w", K.u32(1)))];
    expect(() => renderWgsl(kernel(mixed))).toThrow(/w is read with load4 and element-wise/);
    expect(() => K.lane(K.ref("v", "vec4f"), 4)).toThrow(/lane 4/);
  });
});

describe("explain: variants left out by the WebGPU default limits", () => {
  const lstm = stdlibModel("lstm");
  const shape = { B: 64, T: 2048, H: 256, I: 256 };
  it("names them with the limit each needs", () => {
    const c = chooseWebgpuForm(lstm, shape);
    expect(c.ranking.map((r) => r.variant)).not.toContain("sequential/stream");
    // the hoisted terms go in blocks of steps within the binding limit (hoist.ts): the grid variant is
    // ranked, the stream variant needs only more workgroup memory
    expect(c.ranking.map((r) => r.variant)).toContain("sequential/grid");
    expect(c.why).not.toContain("sequential/grid (a larger");
    expect(c.why).toContain("sequential/stream (a larger maxComputeWorkgroupStorageSize)");
    expect(c.why).toContain("seqc explain --device");
  });
  it("ranks them at a device's limits, with no note", () => {
    const c = chooseWebgpuForm(lstm, { ...shape, LIMIT_BINDING: 2147483644, LIMIT_SHARED: 49152, LIMIT_THREADS: 1024 });
    expect(c.ranking[0].variant).toBe("sequential/stream");
    expect(c.why).not.toContain("not ranked");
  });
});
