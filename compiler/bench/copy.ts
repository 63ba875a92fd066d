/** Device-to-device copy bandwidth, measured the two ways a kernel can reach: copyBufferToBuffer and a WGSL vec4 copy kernel. */
export interface CopyResult { bytes: number; copyGBs: number; kernelGBs: number }

const COPY_WGSL = `
@group(0) @binding(0) var<storage, read> src: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> dst: array<vec4<f32>>;
override N: u32;
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i < N) { dst[i] = src[i]; }
}`;

export async function copyBandwidth(device: GPUDevice, want: number): Promise<CopyResult> {
  const bytes = Math.min(want, device.limits.maxStorageBufferBindingSize, device.limits.maxBufferSize) & ~0xffff;
  const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
  const a = device.createBuffer({ size: bytes, usage });
  const b = device.createBuffer({ size: bytes, usage });
  const reps = 10;
  const run = async (encode: (e: GPUCommandEncoder) => void) => {
    const warm = device.createCommandEncoder();
    encode(warm);
    device.queue.submit([warm.finish()]);
    await device.queue.onSubmittedWorkDone();
    const t0 = performance.now();
    for (let i = 0; i < reps; i++) {
      const e = device.createCommandEncoder();
      encode(e);
      device.queue.submit([e.finish()]);
    }
    await device.queue.onSubmittedWorkDone();
    return (performance.now() - t0) / reps;
  };
  const copyMs = await run((e) => e.copyBufferToBuffer(a, 0, b, 0, bytes));
  const n = bytes / 16;
  const pipeline = device.createComputePipeline({ layout: "auto", compute: { module: device.createShaderModule({ code: COPY_WGSL }), entryPoint: "main", constants: { N: n } } });
  const group = device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries: [{ binding: 0, resource: { buffer: a } }, { binding: 1, resource: { buffer: b } }] });
  const wgs = Math.ceil(n / 256);
  const y = Math.ceil(wgs / 65535);
  const x = Math.ceil(wgs / y);
  const kernelMs = await run((e) => {
    const p = e.beginComputePass();
    p.setPipeline(pipeline);
    p.setBindGroup(0, group);
    p.dispatchWorkgroups(x, y);
    p.end();
  });
  a.destroy();
  b.destroy();
  return { bytes, copyGBs: (2 * bytes) / (copyMs * 1e-3) / 1e9, kernelGBs: (2 * bytes) / (kernelMs * 1e-3) / 1e9 };
}
