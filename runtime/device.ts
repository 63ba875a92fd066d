/// <reference types="@webgpu/types" />
/**
 * A WebGPU device: `navigator.gpu` in browsers, the `webgpu` package (Dawn) in Node. The device is
 * asked for the adapter's own limits where they exceed the defaults kernels care about.
 */

let shared: Promise<GPUDevice> | undefined;
/**
 * Dawn's Node binding processes events through its instance: if the GPU object (and adapter) were
 * garbage collected while a device lives, the next callback crashes the process. Keep them alive.
 */
const keepAlive: unknown[] = [];

/** The WebGPU entry point of this environment. */
export async function gpuEntry(): Promise<GPU> {
  const nav = (globalThis as { navigator?: { gpu?: GPU } }).navigator;
  if (nav?.gpu) return nav.gpu;
  let mod: { create: (opts: string[]) => GPU; globals: Record<string, unknown> };
  try {
    const name = "webgpu";
    mod = (await import(/* @vite-ignore */ name)) as typeof mod;
  } catch (e) {
    throw new Error(`no WebGPU here: navigator.gpu is missing and the 'webgpu' package (Dawn for Node) could not be loaded (${(e as Error).message}). Install it with 'npm install webgpu'.`);
  }
  for (const [k, v] of Object.entries(mod.globals)) if (!(k in globalThis)) (globalThis as Record<string, unknown>)[k] = v;
  // SEQC_DAWN_FLAGS: Dawn options, e.g. "enable-dawn-features=dump_shaders"
  const flags = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env?.SEQC_DAWN_FLAGS;
  const gpu = mod.create(flags !== undefined ? flags.split(" ").filter(Boolean) : []);
  keepAlive.push(gpu);
  return gpu;
}

const WANTED_LIMITS = [
  "maxStorageBufferBindingSize",
  "maxBufferSize",
  "maxComputeWorkgroupStorageSize",
  "maxStorageBuffersPerShaderStage",
  "maxComputeInvocationsPerWorkgroup",
  "maxComputeWorkgroupSizeX",
  "maxComputeWorkgroupsPerDimension",
] as const;

/** A new device with the adapter's larger limits. */
export async function requestDevice(powerPreference: GPUPowerPreference = "high-performance"): Promise<GPUDevice> {
  const gpu = await gpuEntry();
  const adapter = await gpu.requestAdapter({ powerPreference });
  keepAlive.push(adapter);
  if (!adapter) throw new Error("WebGPU: no adapter found (no GPU, and no software Vulkan driver such as Mesa's lavapipe)");
  const requiredLimits: Record<string, number> = {};
  for (const k of WANTED_LIMITS) requiredLimits[k] = adapter.limits[k];
  const features: GPUFeatureName[] = [];
  if (adapter.features.has("timestamp-query")) features.push("timestamp-query");
  const device = await adapter.requestDevice({ requiredLimits, requiredFeatures: features });
  return device;
}

/** The device shared by every model that is created without one. */
export function defaultDevice(): Promise<GPUDevice> {
  shared ??= requestDevice().catch((e) => {
    shared = undefined;
    throw e;
  });
  return shared;
}
