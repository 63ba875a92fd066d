/**
 * The shared-memory load and async-copy wrappers (ldmatrix x4, cp.async 16 bytes / commit / wait) that the chunked core
 * (chunked-core.ts) and the low-rank readout's tensor-core prelude (lowrank-readout-mma.ts) both splice into their source.
 * Each piece ends with a newline.
 */
export const SEQC_LDSM4 = String.raw`__device__ __forceinline__ void seqc_ldsm4(u32* r, const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n" : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"((u32)__cvta_generic_to_shared(p)) : "memory");
}`;

export const SEQC_CP_ASYNC = String.raw`__device__ __forceinline__ void seqc_cp16(void* s, const void* g) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" :: "r"((u32)__cvta_generic_to_shared(s)), "l"(g) : "memory");
}
__device__ __forceinline__ void seqc_cp_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
template <int N> __device__ __forceinline__ void seqc_cp_wait() { asm volatile("cp.async.wait_group %0;\n" :: "n"(N) : "memory"); }`;
