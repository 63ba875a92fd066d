// Cooperative launches on the CPU emulation (emu.h): every block of the grid is resident at once, as a
// cooperative launch guarantees on the GPU, so a grid-wide barrier (gridsync, what the persistent matvec
// cell's seqc_grid_sync_* calls under SEQC_EMU) can wait for all of them. Each block keeps its own fibers,
// shared memory and warp exchange slots; the scheduler runs one block until none of its threads can go on
// (finished, or waiting at __syncthreads, a warp operation or the grid barrier), then the next, and releases
// the grid barrier when every live thread of every block waits at it. Plus the few intrinsics those kernels
// use beyond the chunked ones (__shfl_xor_sync, __ldcg, static __shared__ arrays, integer min).
#pragma once
#include "emu.h"

inline unsigned min(unsigned a, unsigned b) { return a < b ? a : b; }
inline int min(int a, int b) { return a < b ? a : b; }
inline float min(float a, float b) { return a < b ? a : b; }
inline unsigned max(unsigned a, unsigned b) { return a > b ? a : b; }
inline int max(int a, int b) { return a > b ? a : b; }
inline float max(float a, float b) { return a > b ? a : b; }
template <class T> inline T __ldcg(const T* p) { return *p; }
// static shared arrays (the fp32 GEMM): shared by the fibers of a block; its launches run block after block
#define __shared__ alignas(16) static

inline float __shfl_xor_sync(unsigned, float v, int mask) {
  const int l = emu::g.cur & 31;
  emu::slot(l)[0] = __float_as_uint(v);
  emu::warpbar();
  const float r = __uint_as_float(emu::slot(l ^ mask)[0]);
  emu::warpbar();
  return r;
}

namespace emu_coop {
const emu::State GRID_BAR = (emu::State)(emu::DONE + 1);

struct Block {
  std::vector<emu::Fiber> fibers;
  std::vector<char> smem;
  std::vector<unsigned> slots;
  emu::Dim idx;
};

// this thread waits until every thread of the grid arrives
inline void gridsync() {
  emu::g.fibers[emu::g.cur].state = GRID_BAR;
  emu::yield();
}

inline void launch(void (*body)(), emu::Dim grid, emu::Dim block, size_t smemBytes) {
  using namespace emu;
  g.grid = grid;
  g.block = block;
  g.body = body;
  const int nt = (int)(block.x * block.y * block.z);
  std::vector<Block> blocks(grid.x * grid.y);
  for (unsigned k = 0; k < blocks.size(); ++k) {
    Block& b = blocks[k];
    b.idx.x = k % grid.x;
    b.idx.y = k / grid.x;
    b.idx.z = 0;
    b.smem.resize(smemBytes + 16);
    fillNaN(b.smem);
    b.slots.assign((size_t)((nt + 31) / 32) * 32 * 32, 0);
    initFibers(b.fibers, nt, 64 * 1024);
  }
  for (;;) {
    bool progress = false;
    int live = 0, atGrid = 0;
    for (Block& b : blocks) {
      std::swap(g.fibers, b.fibers);
      std::swap(g.slots, b.slots);
      g.smem = b.smem.data();
      g.bidx = b.idx;
      if (runBlock()) progress = true;
      for (const Fiber& f : g.fibers) {
        if (f.state != DONE) live++;
        if (f.state == GRID_BAR) atGrid++;
      }
      std::swap(g.fibers, b.fibers);
      std::swap(g.slots, b.slots);
    }
    if (!live) break;
    if (atGrid == live) {
      for (Block& b : blocks)
        for (Fiber& f : b.fibers)
          if (f.state == GRID_BAR) f.state = RUN;
      progress = true;
    }
    if (!progress) {
      fprintf(stderr, "emu: deadlock in a cooperative launch (%d live threads, %d at the grid barrier)\n", live, atGrid);
      exit(3);
    }
  }
}
}  // namespace emu_coop
