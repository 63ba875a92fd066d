// A CPU emulation of the CUDA subset the chunked kernels use, so they run against the float64
// interpreter without a GPU (test/cuda-chunked-emu.test.ts). Each thread of a block is a fiber
// (ucontext); __syncthreads waits for every thread of the block, warp-level operations (shuffles,
// ldmatrix, mma.sync m16n8k16) for the 32 lanes of the warp, and compute their results from all lanes'
// operands as the PTX ISA defines the fragment layouts. cp.async copies at once. Not a general CUDA
// emulator: one block at a time, no atomics, no real concurrency (so it cannot find races).
#pragma once
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ucontext.h>
#include <vector>

#define SEQC_EMU 1
#define __device__
#define __global__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __restrict__ __restrict
#define __align__(n) alignas(n)
#define SEQC_SMEM_DECL(name) char* name = emu::g.smem

struct float2 { float x, y; };
struct alignas(16) float4 { float x, y, z, w; };
struct alignas(16) uint4 { unsigned x, y, z, w; };
inline float2 make_float2(float a, float b) { return {a, b}; }
inline float4 make_float4(float a, float b, float c, float d) { return {a, b, c, d}; }
inline uint4 make_uint4(unsigned a, unsigned b, unsigned c, unsigned d) { return {a, b, c, d}; }
inline float __uint_as_float(unsigned u) { float f; memcpy(&f, &u, 4); return f; }
inline unsigned __float_as_uint(float f) { unsigned u; memcpy(&u, &f, 4); return u; }
inline float __int_as_float(int i) { float f; memcpy(&f, &i, 4); return f; }
inline float __expf(float x) { return expf(x); }
template <class T> inline T __ldg(const T* p) { return *p; }

namespace emu {
struct Dim { unsigned x = 1, y = 1, z = 1; };
enum State { RUN, BLOCK_BAR, WARP_BAR, NAMED_BAR, DONE };
struct Fiber {
  ucontext_t ctx;
  std::vector<char> stack;
  State state = RUN;
  unsigned warpGen = 0;
  int barId = 0, barCount = 0;  // NAMED_BAR: bar.sync barId, barCount
};
struct Globals {
  Dim block, grid, bidx;
  char* smem = nullptr;
  std::vector<Fiber> fibers;
  int cur = 0;
  ucontext_t sched;
  void (*body)() = nullptr;
  // warp exchange slots: [warp][lane][32 words]
  std::vector<unsigned> slots;
  std::vector<unsigned> warpArrive;
};
inline Globals g;
inline Dim tid() { Dim d; d.x = (unsigned)g.cur; return d; }
inline void yield() { swapcontext(&g.fibers[g.cur].ctx, &g.sched); }
inline void syncthreads() {
  g.fibers[g.cur].state = BLOCK_BAR;
  yield();
}
// bar.sync id, count: released when count threads wait at barrier id (named barriers; every waiter names the same count)
inline void namedbar(int id, int count) {
  g.fibers[g.cur].state = NAMED_BAR;
  g.fibers[g.cur].barId = id;
  g.fibers[g.cur].barCount = count;
  yield();
}
// all lanes of the current warp reach this point
inline void warpbar() {
  g.fibers[g.cur].state = WARP_BAR;
  yield();
}
inline unsigned* slot(int lane) { return &g.slots[((g.cur / 32) * 32 + lane) * 32]; }
inline void entry() {
  g.body();
  g.fibers[g.cur].state = DONE;
  yield();
}
// NaN in fp32, bf16 and f16: a read of shared memory nothing wrote shows up in the results
inline void fillNaN(std::vector<char>& smem) {
  for (size_t i = 0; i + 4 <= smem.size(); i += 4) { const unsigned nan = 0x7e007fc0u; memcpy(smem.data() + i, &nan, 4); }
}
// nt fresh fibers at entry(), each with its own stack
inline void initFibers(std::vector<Fiber>& fibers, int nt, size_t stackBytes) {
  fibers.assign(nt, Fiber());
  for (Fiber& f : fibers) {
    f.stack.resize(stackBytes);
    getcontext(&f.ctx);
    f.ctx.uc_stack.ss_sp = f.stack.data();
    f.ctx.uc_stack.ss_size = f.stack.size();
    f.ctx.uc_link = nullptr;
    makecontext(&f.ctx, entry, 0);
  }
}
// run the current block's fibers (g.fibers) until none can go on (finished, or waiting at a barrier that not
// every thread it waits for has reached), releasing warp and block barriers as they fill; returns whether any ran
inline bool runBlock() {
  const int nt = (int)g.fibers.size();
  bool any = false;
  for (;;) {
    bool progress = false;
    for (int t = 0; t < nt; ++t) {
      if (g.fibers[t].state != RUN) continue;
      g.cur = t;
      swapcontext(&g.sched, &g.fibers[t].ctx);
      progress = true;
    }
    // release warp barriers where every live lane of the warp arrived
    for (int w = 0; w < (nt + 31) / 32; ++w) {
      bool all = true, at = false;
      for (int l = w * 32; l < w * 32 + 32 && l < nt; ++l) {
        if (g.fibers[l].state == WARP_BAR) at = true;
        else if (g.fibers[l].state != DONE) all = false;
      }
      if (at && all) {
        for (int l = w * 32; l < w * 32 + 32 && l < nt; ++l)
          if (g.fibers[l].state == WARP_BAR) g.fibers[l].state = RUN;
        progress = true;
      }
    }
    // release named barriers whose count of threads arrived
    for (int id = 1; id < 16; ++id) {
      int at = 0, want = -1;
      for (int t = 0; t < nt; ++t)
        if (g.fibers[t].state == NAMED_BAR && g.fibers[t].barId == id) {
          if (want >= 0 && want != g.fibers[t].barCount) {
            fprintf(stderr, "emu: named barrier %d waited on with counts %d and %d\n", id, want, g.fibers[t].barCount);
            exit(3);
          }
          want = g.fibers[t].barCount;
          at++;
        }
      if (at > 0 && at == want) {
        for (int t = 0; t < nt; ++t)
          if (g.fibers[t].state == NAMED_BAR && g.fibers[t].barId == id) g.fibers[t].state = RUN;
        progress = true;
      }
    }
    int atBar = 0, live = 0;
    for (int t = 0; t < nt; ++t) {
      if (g.fibers[t].state != DONE) live++;
      if (g.fibers[t].state == BLOCK_BAR) atBar++;
    }
    if (live && atBar == live) {
      for (int t = 0; t < nt; ++t)
        if (g.fibers[t].state == BLOCK_BAR) g.fibers[t].state = RUN;
      progress = true;
    }
    if (!progress) return any;
    any = true;
  }
}
// run body() for every thread of every block
inline void launch(void (*body)(), Dim grid, Dim block, size_t smemBytes) {
  g.grid = grid;
  g.block = block;
  g.body = body;
  const int nt = (int)(block.x * block.y * block.z);
  std::vector<char> smem(smemBytes + 16);
  g.slots.assign((size_t)((nt + 31) / 32) * 32 * 32, 0);
  for (unsigned by = 0; by < grid.y; ++by)
    for (unsigned bx = 0; bx < grid.x; ++bx) {
      g.bidx.x = bx;
      g.bidx.y = by;
      fillNaN(smem);
      g.smem = smem.data();
      initFibers(g.fibers, nt, 256 * 1024);
      runBlock();
      for (const Fiber& f : g.fibers)
        if (f.state != DONE) {
          fprintf(stderr, "emu: deadlock in block (%u, %u)\n", bx, by);
          exit(3);
        }
    }
}
}  // namespace emu

#define threadIdx (emu::tid())
#define blockIdx (emu::g.bidx)
#define blockDim (emu::g.block)
#define gridDim (emu::g.grid)
inline void __syncthreads() { emu::syncthreads(); }
// the warp's lanes meet (every lane of the warp calls it, as the kernels do)
inline void __syncwarp(unsigned = 0xffffffffu) { emu::warpbar(); }

inline float __shfl_up_sync(unsigned, float v, int d) {
  const int l = emu::g.cur & 31;
  emu::slot(l)[0] = __float_as_uint(v);
  emu::warpbar();
  const float r = l >= d ? __uint_as_float(emu::slot(l - d)[0]) : v;
  emu::warpbar();
  return r;
}
inline float __shfl_sync(unsigned, float v, int src) {
  const int l = emu::g.cur & 31;
  emu::slot(l)[0] = __float_as_uint(v);
  emu::warpbar();
  const float r = __uint_as_float(emu::slot(src & 31)[0]);
  emu::warpbar();
  return r;
}

// ---- conversions (round to nearest even) ----
typedef unsigned int u32;
struct seqc_bf16;
struct seqc_f16;
inline unsigned short emu_bf16(float x) {
  u32 u = __float_as_uint(x);
  if ((u & 0x7f800000u) == 0x7f800000u && (u & 0x7fffffu)) return 0x7fc0;
  return (unsigned short)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}
inline unsigned short emu_f16(float x) {
  _Float16 h = (_Float16)x;
  unsigned short r;
  memcpy(&r, &h, 2);
  return r;
}
inline float emu_from_f16(unsigned short b) {
  _Float16 h;
  memcpy(&h, &b, 2);
  return (float)h;
}
inline float emu_from_bf16(unsigned short b) { return __uint_as_float(((u32)b) << 16); }

// elements of a packed 16-bit pair as floats, by operand type (0 = bf16, 1 = f16)
inline float emu_half(u32 w, int hi, int type) {
  const unsigned short b = (unsigned short)(hi ? w >> 16 : w & 0xffffu);
  return type ? emu_from_f16(b) : emu_from_bf16(b);
}

// ldmatrix .x4: lane l supplies the address of row (l % 8) of matrix (l / 8)
inline void emu_ldsm(u32* r, const void* p, bool trans) {
  const int l = emu::g.cur & 31;
  const unsigned long long a = (unsigned long long)p;
  emu::slot(l)[0] = (u32)a;
  emu::slot(l)[1] = (u32)(a >> 32);
  emu::warpbar();
  auto rowAddr = [&](int lane) { return (const unsigned short*)(((unsigned long long)emu::slot(lane)[1] << 32) | emu::slot(lane)[0]); };
  for (int i = 0; i < 4; ++i) {
    unsigned short lo, hi;
    if (!trans) {
      const unsigned short* row = rowAddr(8 * i + l / 4);
      lo = row[2 * (l % 4)];
      hi = row[2 * (l % 4) + 1];
    } else {
      lo = rowAddr(8 * i + 2 * (l % 4))[l / 4];
      hi = rowAddr(8 * i + 2 * (l % 4) + 1)[l / 4];
    }
    r[i] = (u32)lo | ((u32)hi << 16);
  }
  emu::warpbar();
}
// an mma's operands: this lane's A (4 words) and B (2 words) into its slot, then the warp's barrier; returns the lane
// (emu_mma here, seqc_mma_tf32 in mma-tf32.h then read every lane's slot)
inline int emu_mma_gather(const u32* a, const u32* b) {
  const int l = emu::g.cur & 31;
  u32* s = emu::slot(l);
  for (int i = 0; i < 4; ++i) s[i] = a[i];
  s[4] = b[0];
  s[5] = b[1];
  emu::warpbar();
  return l;
}
// mma.sync m16n8k16 row.col, fp32 accumulators
inline void emu_mma(int type, float* c, const u32* a, const u32* b) {
  const int l = emu_mma_gather(a, b);
  // A(row, k): lane = (row % 8) * 4 + (k % 8) / 2, reg = (row / 8) + 2 * (k / 8), half = k % 2
  auto A = [&](int row, int k) { return emu_half(emu::slot((row % 8) * 4 + (k % 8) / 2)[(row / 8) + 2 * (k / 8)], k % 2, type); };
  // B(k, col): lane = col * 4 + (k % 8) / 2, reg = k / 8, half = k % 2
  auto B = [&](int k, int col) { return emu_half(emu::slot(col * 4 + (k % 8) / 2)[4 + k / 8], k % 2, type); };
  const int g = l >> 2, q = (l & 3) * 2;
  float d[4];
  for (int e = 0; e < 4; ++e) {
    const int row = g + (e >> 1) * 8, col = q + (e & 1);
    double acc = c[e];
    for (int k = 0; k < 16; ++k) acc += (double)A(row, k) * (double)B(k, col);
    d[e] = (float)acc;
  }
  emu::warpbar();
  for (int e = 0; e < 4; ++e) c[e] = d[e];
}

struct seqc_bf16 { unsigned short x; };
struct seqc_f16 { unsigned short x; };
inline float seqc_f32(seqc_f16 v) { return emu_from_f16(v.x); }
template <typename T> T seqc_cvt(float v);
template <> inline seqc_bf16 seqc_cvt<seqc_bf16>(float v) { return seqc_bf16{emu_bf16(v)}; }
template <> inline seqc_f16 seqc_cvt<seqc_f16>(float v) { return seqc_f16{emu_f16(v)}; }
inline void seqc_unpack2(seqc_f16*, u32 w, float& lo, float& hi) { lo = emu_half(w, 0, 1); hi = emu_half(w, 1, 1); }
inline u32 seqc_pack2(seqc_bf16*, float lo, float hi) { return (u32)emu_bf16(lo) | ((u32)emu_bf16(hi) << 16); }
inline u32 seqc_pack2(seqc_f16*, float lo, float hi) { return (u32)emu_f16(lo) | ((u32)emu_f16(hi) << 16); }
inline void seqc_mma(seqc_bf16*, float* c, const u32* a, const u32* b) { emu_mma(0, c, a, b); }
inline void seqc_mma(seqc_f16*, float* c, const u32* a, const u32* b) { emu_mma(1, c, a, b); }
inline void seqc_ldsm4(u32* r, const void* p) { emu_ldsm(r, p, false); }
inline void seqc_ldsm4t(u32* r, const void* p) { emu_ldsm(r, p, true); }
inline void seqc_cp16(void* s, const void* g) { memcpy(s, g, 16); }
inline void seqc_prefetch_l2(const void*) {}
inline void seqc_cp_commit() {}
template <int N> inline void seqc_cp_wait() {}
