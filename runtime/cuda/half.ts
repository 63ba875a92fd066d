/** fp32 <-> bf16 / fp16 conversions for 2-byte tensors (round to nearest even, as the GPU's cvt.rn). */
const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

export type IoType = "f32" | "bf16" | "f16";
export const ioBytes = (io: IoType | undefined): number => (io === "bf16" || io === "f16" ? 2 : 4);

export function toBf16(x: number): number {
  f32[0] = x;
  const u = u32[0];
  if ((u & 0x7f800000) === 0x7f800000 && (u & 0x7fffff) !== 0) return 0x7fc0; // NaN
  return ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
}
export function fromBf16(h: number): number {
  u32[0] = h << 16;
  return f32[0];
}
export function toF16(x: number): number {
  f32[0] = x;
  const u = u32[0];
  const sign = (u >>> 16) & 0x8000;
  const exp = (u >>> 23) & 0xff;
  let man = u & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (man ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    man |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    let r = man >>> shift;
    const rem = man & ((1 << shift) - 1);
    if (rem > half || (rem === half && (r & 1))) r++;
    return sign | r;
  }
  let r = man >>> 13;
  const rem = man & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (r & 1))) {
    r++;
    if (r === 0x400) {
      r = 0;
      e++;
      if (e >= 0x1f) return sign | 0x7c00;
    }
  }
  return sign | (e << 10) | r;
}
export function fromF16(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >>> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return sign * m * 2 ** -24;
  if (e === 0x1f) return m ? NaN : sign * Infinity;
  return sign * (1 + m / 1024) * 2 ** (e - 15);
}

/** The device bytes of an fp32 tensor in the given I/O type (a Uint16Array is taken as already encoded bf16/f16). */
export function encodeIo(x: Float32Array | Uint16Array, io: IoType | undefined): ArrayBufferView {
  if (x instanceof Uint16Array) {
    if (io !== "bf16" && io !== "f16") throw new Error("16-bit tensor data given to a form with fp32 inputs");
    return x;
  }
  if (!io || io === "f32") return x;
  const out = new Uint16Array(x.length);
  const f = io === "bf16" ? toBf16 : toF16;
  for (let i = 0; i < x.length; i++) out[i] = f(x[i]);
  return out;
}
export function decodeIo(bytes: Buffer, io: IoType | undefined): Float32Array {
  if (!io || io === "f32") return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  const u = new Uint16Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  const out = new Float32Array(u.length);
  const f = io === "bf16" ? fromBf16 : fromF16;
  for (let i = 0; i < u.length; i++) out[i] = f(u[i]);
  return out;
}
/** A 32-bit fill pattern of NaNs in the given I/O type. */
export const nanBits = (io: IoType | undefined): number => (io === "bf16" ? 0x7fc07fc0 : io === "f16" ? 0x7e007e00 : 0x7fc00000);
