/**
 * What WGSL on WebGPU offers, as data: the limits every WebGPU device guarantees (the floor a
 * kernel may assume without asking) and the optional features a kernel can use when present.
 * The runtime asks the adapter for its real limits; these are the defaults for planning and explain.
 */
export interface Capabilities {
  backend: "wgsl";
  /** Guaranteed by the WebGPU spec (a device may offer more; the runtime requests the adapter's). */
  limits: {
    maxComputeWorkgroupStorageSize: number;
    maxComputeInvocationsPerWorkgroup: number;
    maxComputeWorkgroupsPerDimension: number;
    maxStorageBuffersPerShaderStage: number;
    maxStorageBufferBindingSize: number;
    maxUniformBufferBindingSize: number;
  };
  /** Optional features and whether kernels may rely on them when the adapter has them. */
  features: { subgroups: "optional"; "shader-f16": "optional"; "timestamp-query": "optional" };
  /** Arithmetic: float64 IR math runs as f32 on the device. */
  float: "f32";
}

export const WGSL_CAPABILITIES: Capabilities = {
  backend: "wgsl",
  limits: {
    maxComputeWorkgroupStorageSize: 16384,
    maxComputeInvocationsPerWorkgroup: 256,
    maxComputeWorkgroupsPerDimension: 65535,
    maxStorageBuffersPerShaderStage: 8,
    maxStorageBufferBindingSize: 134217728,
    maxUniformBufferBindingSize: 65536,
  },
  features: { subgroups: "optional", "shader-f16": "optional", "timestamp-query": "optional" },
  float: "f32",
};
