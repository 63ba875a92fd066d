/**
 * What the Dawn calls a WGSL forward makes cost on the host, one by one (microseconds a call, mean of 2000 after 50 warm-ups):
 * getBindGroupLayout, createBindGroup, a uniform writeBuffer, an empty submit, an encoder with 3 dispatches in 3 passes vs
 * 1 pass, plus a copy, and one submit + onSubmittedWorkDone round trip. Measured on lavapipe for bench/RESULTS.md ("a
 * forward of a known shape reuses its host work"); a toy kernel, so the numbers are host costs, not kernel times.
 */
import { requestDevice } from "../../runtime/index.ts";
// usage: npx esbuild bench/webgpu/dawn-call-costs.ts --bundle --platform=node --format=esm --external:webgpu --outfile=dist/dawn-call-costs.mjs && node dist/dawn-call-costs.mjs
const device = await requestDevice();
const code = `@group(0) @binding(0) var<storage, read_write> a: array<f32>; @group(0) @binding(1) var<storage, read> b: array<f32>; @group(0) @binding(2) var<uniform> u: vec4<u32>;
@compute @workgroup_size(32) fn main(@builtin(global_invocation_id) g: vec3<u32>) { if (g.x < u.x) { a[g.x] = a[g.x] + b[g.x]; } }`;
const m = device.createShaderModule({ code });
const p = device.createComputePipeline({ layout: "auto", compute: { module: m, entryPoint: "main" } });
const S = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC;
const bufs = Array.from({ length: 8 }, () => device.createBuffer({ size: 4096, usage: S }));
const ub = device.createBuffer({ size: 64, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
const N = 2000;
const time = async (label: string, f: () => void) => { for (let i = 0; i < 50; i++) f(); await device.queue.onSubmittedWorkDone(); const a = performance.now(); for (let i = 0; i < N; i++) f(); const us = (performance.now() - a) / N * 1000; await device.queue.onSubmittedWorkDone(); console.log(label.padEnd(50), us.toFixed(1), "us"); };
const layout = p.getBindGroupLayout(0);
await time("getBindGroupLayout", () => { p.getBindGroupLayout(0); });
const entries = [{ binding: 0, resource: { buffer: bufs[0] } }, { binding: 1, resource: { buffer: bufs[1] } }, { binding: 2, resource: { buffer: ub } }];
await time("createBindGroup (3 entries)", () => { device.createBindGroup({ layout, entries }); });
const g = device.createBindGroup({ layout, entries });
const u = new Uint32Array([32, 0, 0, 0]);
await time("writeBuffer 16 B uniform", () => device.queue.writeBuffer(ub, 0, u));
await time("encoder + finish + submit (empty)", () => device.queue.submit([device.createCommandEncoder().finish()]));
await time("encoder, 3 passes x 1 dispatch, submit", () => { const e = device.createCommandEncoder(); for (let i = 0; i < 3; i++) { const ps = e.beginComputePass(); ps.setPipeline(p); ps.setBindGroup(0, g); ps.dispatchWorkgroups(1); ps.end(); } device.queue.submit([e.finish()]); });
await time("encoder, 1 pass x 3 dispatches, submit", () => { const e = device.createCommandEncoder(); const ps = e.beginComputePass(); for (let i = 0; i < 3; i++) { ps.setPipeline(p); ps.setBindGroup(0, g); ps.dispatchWorkgroups(1); } ps.end(); device.queue.submit([e.finish()]); });
await time("... + 1 copyBufferToBuffer", () => { const e = device.createCommandEncoder(); const ps = e.beginComputePass(); for (let i = 0; i < 3; i++) { ps.setPipeline(p); ps.setBindGroup(0, g); ps.dispatchWorkgroups(1); } ps.end(); e.copyBufferToBuffer(bufs[2], 0, bufs[3], 0, 256); device.queue.submit([e.finish()]); });
// the same encoder + submit with 64 MiB buffers bound instead of 4 KiB (does the host cost follow the buffers' size?)
const bigBufs = [0, 1].map(() => device.createBuffer({ size: 64 << 20, usage: S }));
const gBig = device.createBindGroup({ layout, entries: [{ binding: 0, resource: { buffer: bigBufs[0] } }, { binding: 1, resource: { buffer: bigBufs[1] } }, { binding: 2, resource: { buffer: ub } }] });
await time("1 pass x 3 dispatches, submit, 64 MiB buffers", () => { const e = device.createCommandEncoder(); const ps = e.beginComputePass(); for (let i = 0; i < 3; i++) { ps.setPipeline(p); ps.setBindGroup(0, gBig); ps.dispatchWorkgroups(1); } ps.end(); device.queue.submit([e.finish()]); });
let w = 0; for (let i = 0; i < 200; i++) { const e = device.createCommandEncoder(); const ps = e.beginComputePass(); ps.setPipeline(p); ps.setBindGroup(0, g); ps.dispatchWorkgroups(1); ps.end(); const a = performance.now(); device.queue.submit([e.finish()]); await device.queue.onSubmittedWorkDone(); w += performance.now() - a; }
console.log("submit 1 dispatch + onSubmittedWorkDone".padEnd(50), (w / 200 * 1000).toFixed(1), "us");
device.destroy(); process.exit(0);
