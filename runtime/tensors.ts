/// <reference types="@webgpu/types" />
/** Tensor values the runtime accepts, and the checks it runs before any launch. */

/** Float32 data on the host, or a GPUBuffer holding float32 values (used in place, no copy). */
export type TensorData = Float32Array | GPUBuffer;
/** A tensor: bare data, or data with its shape (then batch and length come from it). */
export type TensorInput = TensorData | { data: TensorData; shape: readonly number[] };

export class ShapeError extends Error {
  override name = "ShapeError";
}

export const isGpuBuffer = (x: unknown): x is GPUBuffer =>
  typeof x === "object" && x !== null && typeof (x as GPUBuffer).mapAsync === "function" && typeof (x as GPUBuffer).size === "number";

export function dataOf(x: TensorInput): TensorData {
  return isGpuBuffer(x) || x instanceof Float32Array ? x : x.data;
}

export function shapeOf(x: TensorInput): readonly number[] | undefined {
  return isGpuBuffer(x) || x instanceof Float32Array ? undefined : x.shape;
}

/** Element count of data (a GPUBuffer counts its bytes / 4). */
export function elementsOf(d: TensorData): number {
  return isGpuBuffer(d) ? Math.floor(d.size / 4) : d.length;
}

export function describe(x: unknown): string {
  if (x === undefined) return "undefined";
  if (x === null) return "null";
  if (Array.isArray(x)) return `an array of ${x.length}`;
  if (ArrayBuffer.isView(x)) return `a ${x.constructor.name} of ${(x as unknown as { length: number }).length}`;
  return typeof x === "object" ? `an object (${Object.keys(x as object).slice(0, 4).join(", ")})` : `a ${typeof x}`;
}

/** Check that a value is float32 data; `what` names it in the error. */
export function checkData(x: unknown, what: string, expected: string): TensorData {
  const d = typeof x === "object" && x !== null && !ArrayBuffer.isView(x) && !isGpuBuffer(x) && "data" in (x as object) ? (x as { data: unknown }).data : x;
  if (d instanceof Float32Array) return d;
  if (isGpuBuffer(d)) {
    if ((d.usage & GPUBufferUsage.STORAGE) === 0) throw new ShapeError(`${what}: the GPUBuffer lacks STORAGE usage; create it with GPUBufferUsage.STORAGE`);
    return d;
  }
  throw new ShapeError(`${what} must be a Float32Array or a GPUBuffer of float32, shape ${expected}; got ${describe(d)}`);
}

export const shapeText = (s: readonly (number | string)[]) => `[${s.join(", ")}]`;
