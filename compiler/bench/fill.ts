/** Fill a device buffer with uniform pseudo-random floats in [lo, hi) on the device (no host transfer). */
const FILL_WGSL = `
@group(0) @binding(0) var<storage, read_write> dst: array<f32>;
override N: u32;
override SEED: u32;
override LO: f32;
override HI: f32;
fn hash(x: u32) -> u32 { var h = x * 747796405u + 2891336453u; h = ((h >> ((h >> 28u) + 4u)) ^ h) * 277803737u; return (h >> 22u) ^ h; }
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i < N) { dst[i] = LO + (HI - LO) * f32(hash(i ^ SEED) >> 8u) / 16777216.0; }
}`;

const pipelines = new WeakMap<GPUDevice, GPUShaderModule>();

export async function fillKernel(device: GPUDevice, buf: GPUBuffer, n: number, lo: number, hi: number, seed: number): Promise<void> {
  let module = pipelines.get(device);
  if (!module) {
    module = device.createShaderModule({ code: FILL_WGSL });
    pipelines.set(device, module);
  }
  const pipeline = device.createComputePipeline({ layout: "auto", compute: { module, entryPoint: "main", constants: { N: n, SEED: seed >>> 0, LO: lo, HI: hi } } });
  const group = device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries: [{ binding: 0, resource: { buffer: buf } }] });
  const wgs = Math.ceil(n / 256);
  const y = Math.ceil(wgs / 65535);
  const x = Math.ceil(wgs / y);
  const e = device.createCommandEncoder();
  const p = e.beginComputePass();
  p.setPipeline(pipeline);
  p.setBindGroup(0, group);
  p.dispatchWorkgroups(x, y);
  p.end();
  device.queue.submit([e.finish()]);
  await device.queue.onSubmittedWorkDone();
}
