// The TF32 tensor-core helpers of compiler/backends/cuda/lowrank-readout-mma.ts on the CPU emulation (include after
// emu.h): cvt.rna.tf32.f32 (round to 10 explicit mantissa bits, ties away from zero) and mma.sync m16n8k8 row.col with
// TF32 operands and fp32 accumulators, its fragments gathered from the warp's 32 lanes as the PTX ISA lays them out:
//   A (16 x 8): a0 (g, t), a1 (g + 8, t), a2 (g, t + 4), a3 (g + 8, t + 4); B (8 x 8): b0 (k t, n g), b1 (k t + 4, n g);
//   C (16 x 8): c0 (g, 2t), c1 (g, 2t + 1), c2 (g + 8, 2t), c3 (g + 8, 2t + 1)   (g = lane / 4, t = lane % 4).
// The products of two TF32 values are exact in double; the sum is rounded to float once.
#pragma once
#define SEQC_TF32_MMA_EMU 1
inline u32 seqc_tf32(float x) {
  u32 u = __float_as_uint(x);
  if ((u & 0x7f800000u) == 0x7f800000u) return u;  // inf / nan as they are
  return (u + 0x1000u) & 0xffffe000u;
}
inline void seqc_mma_tf32(float* c, const u32* a, const u32* b) {
  const int l = emu_mma_gather(a, b);
  // the hardware reads a TF32 operand's top 19 bits
  auto f = [](u32 w) { return (double)__uint_as_float(w & 0xffffe000u); };
  auto A = [&](int row, int k) { return f(emu::slot((row % 8) * 4 + k % 4)[(row / 8) + 2 * (k / 4)]); };
  auto B = [&](int k, int col) { return f(emu::slot(col * 4 + k % 4)[4 + k / 4]); };
  const int g = l >> 2, t = l & 3;
  float d[4];
  for (int e = 0; e < 4; ++e) {
    const int row = g + (e >> 1) * 8, col = 2 * t + (e & 1);
    double acc = c[e];
    for (int k = 0; k < 8; ++k) acc += A(row, k) * B(k, col);
    d[e] = (float)acc;
  }
  emu::warpbar();
  for (int e = 0; e < 4; ++e) c[e] = d[e];
}
