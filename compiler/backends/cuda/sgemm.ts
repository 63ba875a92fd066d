/**
 * fp32 SIMT matrix product C[M,N] = A[M,K] * B[N,K]^T (all row-major), used to hoist the
 * state-independent input projections of nonlinear cells (sum(i) W[g,j,i] * x[i]) out of the time loop:
 * one product over all B*T steps instead of T small ones. 128x128 tiles, k-steps of 8, 256 threads with
 * 8x8 results each, the next tile prefetched into registers while the current one is multiplied.
 * fp32 throughout (no TF32), so results stay within ~1e-6 of the float64 oracle.
 */
export const SGEMM_ENTRY = "seqc_sgemm_nt";

export const SGEMM_SOURCE = `
// ==== fp32 C = A * B^T (row-major), 128x128x8 tiles ====
extern "C" __global__ void __launch_bounds__(256) ${SGEMM_ENTRY}(const float* __restrict__ A, const float* __restrict__ Bm, float* __restrict__ C,
    unsigned int M, unsigned int N, unsigned int K, unsigned int lda, unsigned int ldb, unsigned int ldc) {
  __shared__ float As[8][128 + 4];
  __shared__ float Bs[8][128 + 4];
  const unsigned int tid = threadIdx.x;
  const unsigned int m0 = blockIdx.y * 128u, n0 = blockIdx.x * 128u;
  // loader: thread -> (row lr, k offset lk) of the 128x8 tile, 4 consecutive k
  const unsigned int lr = tid >> 1, lk = (tid & 1u) * 4u;
  const size_t arow = (size_t)min(m0 + lr, M - 1u) * lda;
  const size_t brow = (size_t)min(n0 + lr, N - 1u) * ldb;
  const bool aok = m0 + lr < M, bok = n0 + lr < N;
  float ra[4], rb[4];
  auto fetch = [&](unsigned int k0) {
#pragma unroll
    for (int q = 0; q < 4; ++q) {
      const unsigned int k = k0 + lk + q;
      ra[q] = (aok && k < K) ? __ldg(A + arow + k) : 0.f;
      rb[q] = (bok && k < K) ? __ldg(Bm + brow + k) : 0.f;
    }
  };
  const unsigned int tx = tid & 15u, ty = tid >> 4;
  float acc[8][8];
#pragma unroll
  for (int i = 0; i < 8; ++i)
#pragma unroll
    for (int j = 0; j < 8; ++j) acc[i][j] = 0.f;
  fetch(0);
  for (unsigned int k0 = 0; k0 < K; k0 += 8u) {
    __syncthreads();
#pragma unroll
    for (int q = 0; q < 4; ++q) { As[lk + q][lr] = ra[q]; Bs[lk + q][lr] = rb[q]; }
    __syncthreads();
    if (k0 + 8u < K) fetch(k0 + 8u);
#pragma unroll
    for (int kk = 0; kk < 8; ++kk) {
      float a[8], b[8];
      const float4 a0 = *reinterpret_cast<const float4*>(&As[kk][ty * 4u]);
      const float4 a1 = *reinterpret_cast<const float4*>(&As[kk][64u + ty * 4u]);
      const float4 b0 = *reinterpret_cast<const float4*>(&Bs[kk][tx * 4u]);
      const float4 b1 = *reinterpret_cast<const float4*>(&Bs[kk][64u + tx * 4u]);
      a[0] = a0.x; a[1] = a0.y; a[2] = a0.z; a[3] = a0.w; a[4] = a1.x; a[5] = a1.y; a[6] = a1.z; a[7] = a1.w;
      b[0] = b0.x; b[1] = b0.y; b[2] = b0.z; b[3] = b0.w; b[4] = b1.x; b[5] = b1.y; b[6] = b1.z; b[7] = b1.w;
#pragma unroll
      for (int i = 0; i < 8; ++i)
#pragma unroll
        for (int j = 0; j < 8; ++j) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
    }
  }
#pragma unroll
  for (int i = 0; i < 8; ++i) {
    const unsigned int m = m0 + (i < 4 ? ty * 4u + i : 64u + ty * 4u + (i - 4));
    if (m >= M) continue;
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      const unsigned int n = n0 + (j < 4 ? tx * 4u + j : 64u + tx * 4u + (j - 4));
      if (n < N) C[(size_t)m * ldc + n] = acc[i][j];
    }
  }
}
`;
