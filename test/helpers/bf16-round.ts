/** x rounded to bf16 (nearest, ties to even) as float64, and its 16-bit words. */
export function bf16(x: Float64Array): { values: Float64Array; words: Buffer } {
  const f = new Float32Array(x), u = new Uint32Array(f.buffer), w = new Uint16Array(x.length);
  for (let i = 0; i < u.length; i++) w[i] = (u[i] + 0x7fff + ((u[i] >> 16) & 1)) >>> 16;
  const back = new Uint32Array(x.length);
  for (let i = 0; i < w.length; i++) back[i] = w[i] << 16;
  return { values: Float64Array.from(new Float32Array(back.buffer)), words: Buffer.from(w.buffer) };
}
