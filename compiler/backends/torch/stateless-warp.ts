/**
 * Warp-split reductions for the stateless parts' bf16-input twins (stateless-bf16.ts; issue 6). The backend-neutral
 * sequential lowering's workgroup and global forms walk a step's outputs in phases `for (f = lid; f < n; f += WG)`,
 * one thread an output element; an output that sums over a row (Mamba-2's prep backward dt__bar = sum_n kk1__bar B,
 * its post backward D__bar = sum_p y__bar x) then runs on n threads of the block (G of 256 for dt__bar) each walking
 * its row alone, with the row's loads strided between threads. Here such a phase gets a warp an output element: the
 * loop walks n * 32 lanes (lane l = f % 32 of item f / 32, the old loop variable), each reduction `acc = acc + X(r)`
 * over r = 0..R-1 with acc starting at 0 runs over r = l, l + 32, .. (consecutive lanes read consecutive elements),
 * the 32 partial sums are added by a butterfly of warp shuffles (every lane gets the sum), and only lane 0 stores.
 * The sums' order changes (not bitwise the float32 form; within float32 rounding of it). Phases without such a
 * reduction are left as they are. Warp-uniform by construction: WG is a multiple of 32 (sequential.ts), so a warp's
 * lanes share the item, and every branch above the shuffles depends on the item alone.
 */
import * as K from "../../kernel/ir.ts";

/** The CUDA helper the rewritten kernels call (shuffles by source lane: the CUDA emulation has __shfl_sync). */
export const WARP_SUM_FN = "seqc_warp_sum32";
export const WARP_SUM_SOURCE = `#ifndef SEQC_WARP_SUM32
#define SEQC_WARP_SUM32
__device__ __forceinline__ float ${WARP_SUM_FN}(float v) {
  const int l = (int)(threadIdx.x & 31u);
  for (int m = 16; m > 0; m >>= 1) v += __shfl_sync(0xffffffffu, v, l ^ m);
  return v;
}
#endif`;

const LANE = "wlane";
const isRef = (e: K.KExpr, name: string) => e.k === "ref" && e.name === name;
const isU32 = (e: K.KExpr, v: number) => e.k === "u32" && e.v === v;
const isZeroF = (e: K.KExpr | undefined) => !!e && ((e.k === "f32" && e.v === 0) || (e.k === "u32" && e.v === 0));

/** A reduction loop `for (r = 0; r < R; r += 1) acc = acc + X` whose acc is declared (mutable, 0) earlier in `body`. */
function reductionAcc(s: K.KStmt, body: K.KStmt[], i: number): string | undefined {
  if (s.k !== "for" || !isU32(s.from, 0) || !isU32(s.step, 1) || s.body.length !== 1) return undefined;
  const set = s.body[0];
  if (set.k !== "set" || set.value.k !== "bin" || set.value.op !== "+" || !isRef(set.value.a, set.name)) return undefined;
  const acc = set.name;
  const d = body.slice(0, i).find((x) => x.k === "decl" && x.name === acc);
  if (!d || d.k !== "decl" || !d.mutable || !isZeroF(d.init) || d.t !== "f32") return undefined;
  return acc;
}

/** `body` (a phase's statements) with its top-level-or-branch reductions split over the warp's lanes and its stores
 *  on lane 0; the count of reductions split. */
function splitBody(body: K.KStmt[]): { body: K.KStmt[]; n: number } {
  const out: K.KStmt[] = [];
  let n = 0;
  body.forEach((s, i) => {
    const acc = reductionAcc(s, body, i);
    if (acc && s.k === "for") {
      out.push({ ...s, from: K.ref(LANE), step: K.u32(32) });
      out.push(K.set(acc, { k: "call", fn: WARP_SUM_FN as K.KMathFn, args: [K.ref(acc, "f32")] }));
      n++;
    } else if (s.k === "if") {
      const t = splitBody(s.then);
      const e = s.else ? splitBody(s.else) : undefined;
      out.push({ ...s, then: t.body, ...(e ? { else: e.body } : {}) });
      n += t.n + (e?.n ?? 0);
    } else if (s.k === "store") {
      out.push(K.ifThen(K.bin("==", K.ref(LANE), K.u32(0)), [s]));
    } else {
      if (s.k === "for") {
        // a loop that is not a plain reduction: its stores (if any) must still be lane 0's alone
        let stores = false;
        K.walkKStmts(s.body, (x) => (stores ||= x.k === "store"));
        if (stores) throw new Error("stateless-warp: a phase's inner loop stores");
      }
      out.push(s);
    }
  });
  return { body: out, n };
}

/** Is `s` a phase loop `for (f = lid; f < n; f += WG)`? */
const isPhase = (s: K.KStmt): boolean => s.k === "for" && isRef(s.from, "lid") && isRef(s.step, "WG");

/** The kernel with its reducing phases split over warps (see the header), or undefined where no phase reduces. */
export function warpSplitKernel(k: K.Kernel, name: string): K.Kernel | undefined {
  let split = 0;
  const walk = (body: K.KStmt[]): K.KStmt[] =>
    body.map((s) => {
      if (s.k === "for" && isPhase(s)) {
        const b = splitBody(s.body);
        if (!b.n) return s;
        split += b.n;
        const fw = `${s.v}_w`;
        return K.forLoop(fw, s.from, K.bin("*", s.to, K.u32(32)), [K.decl(s.v, "u32", K.bin("/", K.ref(fw), K.u32(32))), K.decl(LANE, "u32", K.bin("%", K.ref(fw), K.u32(32))), ...b.body], s.step);
      }
      if (s.k === "for") return { ...s, body: walk(s.body) };
      if (s.k === "if") return { ...s, then: walk(s.then), ...(s.else ? { else: walk(s.else) } : {}) };
      return s;
    });
  const body = walk(k.body);
  return split ? { ...k, name, body } : undefined;
}
