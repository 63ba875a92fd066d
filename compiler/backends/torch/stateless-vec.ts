/**
 * Vector twins of the stateless parts' row-major twins (stateless-rows.ts; issue 6). The row-major twins walk a
 * phase's items row by row, one element an item, so each load and store moves one bf16 word (2 bytes) or one float:
 * DeltaNet's prep at (4, 8192, 16, 128) ran at 0.60 ms against a floor (bytes at ~4.2 TB/s) of 0.16 on the H200. Here
 * a phase whose row guard holds straight-line code (decls and stores) gets each thread VEC consecutive elements of a
 * row a chunk (UNROLL_VEC chunks WG apart a pass): the body copied VEC times (one copy an element, the same
 * arithmetic as the row-major twin, so bitwise its values), and a load or store whose index is the chunk's first
 * element's plus the copy's (proven below) read or written once a chunk as a vector: `seqc_ld4` (a float4, or four
 * bf16 words in 8 bytes widened exactly) and `seqc_st4` (a float4, or four bf16 words each rounded to nearest even as
 * the scalar store: render.ts BF16_STORE). Loads of one value for the whole chunk (beta[h] of a row of K) stay scalar.
 *
 * The proof: item f of the phase is (e G + g) for a row g of the block and the row's element e (stateless-rows.ts),
 * the body reads f only as f % G (= g) and f / G (= e), and with e = 4 w + c (the chunk w, the copy c < 4) each
 * expression is classed "same" (one value for the chunk's four copies) or "lane" (base + c with base a multiple of
 * 4): e is lane; lane % n and lane / n (n a multiple of 4) lane and same; lane + same (same a multiple of 4) lane;
 * anything else of a lane, unknown. "A multiple of 4": a literal, a product with such a factor, a sum of such, or a
 * launch-uniform expression (overrides, uniforms) checked at run time. The vector path runs where every such check
 * holds, the phase's rows per row X are a multiple of 4, the block's rows all exist, and each vector-read or
 * -written array is aligned (16 bytes a float4, 8 a bf16 quad); else the row-major twin's phase as it is. Phases
 * that reduce over a warp (stateless-warp.ts) or hold loops or branches are left row-major.
 */
import * as K from "../../kernel/ir.ts";
import { mapKExpr } from "../../kernel/map.ts";
import { BF16_STORE } from "../cuda/render.ts";
import { isPhase, rowMajorPhase, unguarded } from "./stateless-rows.ts";

/** Suffix of a vector twin's kernels (`<kernel>_rv`) and, with its row multiple, its variants (`<variant>-rv<M>`). */
export const VEC_ROWS = "rv";

/** Elements a chunk (one vector load / store of each lane-indexed array). */
export const VEC = 4;
/** Chunks a thread a pass (WG apart, straight-line where all exist). */
export const UNROLL_VEC = 2;

export const VEC_LOAD_FN = "seqc_ld4";
export const VEC_STORE_FN = "seqc_st4";
export const VEC_ALIGNED_FN = "seqc_al4";
/** The render.ts `fns` entries of a vector twin's helpers. */
export const VEC_FNS: Readonly<Record<string, string>> = { [VEC_LOAD_FN]: VEC_LOAD_FN, [VEC_STORE_FN]: VEC_STORE_FN, [VEC_ALIGNED_FN]: VEC_ALIGNED_FN };

/** The helpers (overloaded on the buffer's type: float, or bf16 words as unsigned short), guarded: one definition per
 *  translation unit. The bf16 quad moves as one 8-byte word (element 4 i + c in bits 16 c .. 16 c + 15). */
export const VEC_SOURCE = `${BF16_STORE}
#ifndef SEQC_VEC4_DEFINED
#define SEQC_VEC4_DEFINED
__device__ __forceinline__ bool ${VEC_ALIGNED_FN}(const float* p) { return (reinterpret_cast<unsigned long long>(p) & 15ull) == 0ull; }
__device__ __forceinline__ bool ${VEC_ALIGNED_FN}(const unsigned short* p) { return (reinterpret_cast<unsigned long long>(p) & 7ull) == 0ull; }
__device__ __forceinline__ float4 ${VEC_LOAD_FN}(const float* p, unsigned int i) { return reinterpret_cast<const float4*>(p)[i]; }
__device__ __forceinline__ float4 ${VEC_LOAD_FN}(const unsigned short* p, unsigned int i) {
  const unsigned long long w = reinterpret_cast<const unsigned long long*>(p)[i];
  const unsigned int a = (unsigned int)w, b = (unsigned int)(w >> 32);
  return make_float4(__uint_as_float(a << 16), __uint_as_float(a & 0xffff0000u), __uint_as_float(b << 16), __uint_as_float(b & 0xffff0000u));
}
__device__ __forceinline__ float ${VEC_STORE_FN}(float* p, unsigned int i, float a, float b, float c, float d) { reinterpret_cast<float4*>(p)[i] = make_float4(a, b, c, d); return 0.0f; }
__device__ __forceinline__ float ${VEC_STORE_FN}(unsigned short* p, unsigned int i, float a, float b, float c, float d) {
  const unsigned long long lo = (unsigned long long)seqc_bf16_store(a) | ((unsigned long long)seqc_bf16_store(b) << 16);
  const unsigned long long hi = (unsigned long long)seqc_bf16_store(c) | ((unsigned long long)seqc_bf16_store(d) << 16);
  reinterpret_cast<unsigned long long*>(p)[i] = lo | (hi << 32);
  return 0.0f;
}
#endif`;

const isRef = (e: K.KExpr, name: string) => e.k === "ref" && e.name === name;

function mapStmt(s: K.KStmt, f: (x: K.KExpr) => K.KExpr): K.KStmt {
  switch (s.k) {
    case "decl":
      return s.init ? { ...s, init: mapKExpr(s.init, f) } : s;
    case "set":
      return { ...s, value: mapKExpr(s.value, f) };
    case "store":
      return { ...s, index: mapKExpr(s.index, f), value: mapKExpr(s.value, f) };
    default:
      return s;
  }
}

/** A body's name in chunk `tag`'s copy c (the lowering's names hold no `_rv`). */
const copyName = (n: string, tag: string, c: number) => `${n}_${VEC_ROWS}${tag}c${c}`;

type Cls = "same" | "lane" | "unknown";

/** The classes of a chunk's copies' expressions (see the header) and the run-time checks they need. */
class Classes {
  readonly checks = new Map<string, K.KExpr>();
  readonly env = new Map<string, { cls: Cls; init?: K.KExpr }>();
  constructor(
    readonly launch: (e: K.KExpr) => boolean,
    lane: string,
  ) {
    this.env.set(lane, { cls: "lane" });
  }
  /** Whether `e` (classed "same") is a multiple of 4, adding the run-time checks that says so (none where it fails). */
  mult4(e: K.KExpr): boolean {
    const saved = new Map(this.checks);
    const ok = this.m4(e);
    if (!ok) {
      this.checks.clear();
      for (const [k, v] of saved) this.checks.set(k, v);
    }
    return ok;
  }
  private m4(e: K.KExpr): boolean {
    if (e.k === "u32") return e.v % VEC === 0;
    if (this.launch(e)) {
      const c = K.bin("==", K.bin("%", e, K.u32(VEC)), K.u32(0));
      this.checks.set(JSON.stringify(c), c);
      return true;
    }
    if (e.k === "bin" && e.op === "*") return this.mult4(e.a) || this.mult4(e.b);
    if (e.k === "bin" && e.op === "+") return this.mult4(e.a) && this.mult4(e.b);
    if (e.k === "ref") {
      const d = this.env.get(e.name);
      return !!d?.init && d.cls === "same" && this.mult4(d.init);
    }
    return false;
  }
  cls(e: K.KExpr): Cls {
    switch (e.k) {
      case "ref":
        return this.env.get(e.name)?.cls ?? "same";
      case "bin": {
        const a = this.cls(e.a);
        const b = this.cls(e.b);
        if (a === "same" && b === "same") return "same";
        if (a === "unknown" || b === "unknown") return "unknown";
        if (e.op === "%" && a === "lane" && b === "same") return this.mult4(e.b) ? "lane" : "unknown";
        if (e.op === "/" && a === "lane" && b === "same") return this.mult4(e.b) ? "same" : "unknown";
        if (e.op === "+" && a === "lane" && b === "same") return this.mult4(e.b) ? "lane" : "unknown";
        if (e.op === "+" && a === "same" && b === "lane") return this.mult4(e.a) ? "lane" : "unknown";
        return "unknown";
      }
      default: {
        let c: Cls = "same";
        const kids: K.KExpr[] = [];
        if (e.k === "load" || e.k === "load4") kids.push(e.index);
        else if (e.k === "lane" || e.k === "neg" || e.k === "not" || e.k === "cast") kids.push(e.a);
        else if (e.k === "call") kids.push(...e.args);
        else if (e.k === "select") kids.push(e.cond, e.then, e.else);
        for (const x of kids) if (this.cls(x) !== "same") c = "unknown";
        return c;
      }
    }
  }
}

/** `f` on each subexpression of `e` that is evaluated whenever `e` is: not a select's branches nor the right operand of
 *  `&&` / `||` (evaluated only under a condition in CUDA C++). */
function walkUnconditional(e: K.KExpr, f: (x: K.KExpr) => void): void {
  f(e);
  const w = (x: K.KExpr) => walkUnconditional(x, f);
  switch (e.k) {
    case "load":
    case "load4":
      return w(e.index);
    case "lane":
    case "neg":
    case "not":
    case "cast":
      return w(e.a);
    case "bin":
      w(e.a);
      if (e.op !== "&&" && e.op !== "||") w(e.b);
      return;
    case "call":
      return (e.fn === "select" ? e.args.slice(0, 1) : e.args).forEach(w);
    case "select":
      return w(e.cond);
    default:
      return;
  }
}

/** Is `e` made of literals, overrides and uniforms alone (one value for the launch)? `tops`: the kernel's top-level decls. */
function launchUniform(e: K.KExpr, overrides: Set<string>, tops: Map<string, K.KExpr | undefined>): boolean {
  switch (e.k) {
    case "u32":
    case "uniform":
      return true;
    case "ref": {
      if (overrides.has(e.name)) return true;
      const init = tops.get(e.name);
      return !!init && launchUniform(init, overrides, tops);
    }
    case "bin":
      return launchUniform(e.a, overrides, tops) && launchUniform(e.b, overrides, tops);
    default:
      return false;
  }
}

/** The vector version of phase `s` of kernel `k` (see the header), or undefined where it has none. `n`: a counter for names. */
function vectorPhase(k: K.Kernel, s: Extract<K.KStmt, { k: "for" }>, rows: boolean, id: string, fused?: { body: K.KStmt[]; fallback: K.KStmt[] }): K.KStmt | undefined {
  // a phase over the block's rows' elements (G * X: "row", each row's elements consecutive), or over its rows alone (G:
  // "item", the item the row g itself, whose row index the body takes apart)
  const item = isRef(s.to, "G");
  if (!item && !(s.to.k === "bin" && s.to.op === "*" && isRef(s.to.a, "G"))) return undefined;
  const X = item ? K.u32(1) : (s.to as { b: K.KExpr }).b;
  const body0 = fused ? fused.body : rows ? unguarded(s.body) : s.body;
  if (!body0 || body0.some((x) => x.k !== "decl" && x.k !== "store" && x.k !== "comment")) return undefined;
  if (body0.some((x) => x.k === "decl" && x.mutable)) return undefined;
  const f = s.v;
  const gRow = `${id}_g`;
  const eLane = item ? f : `${id}_e`;
  // f % G -> the row, f / G -> the element (f = e G + g, g < G)
  const sub = (x: K.KExpr): K.KExpr =>
    x.k === "bin" && isRef(x.a, f) && isRef(x.b, "G") && (x.op === "%" || x.op === "/") ? K.ref(x.op === "%" ? gRow : eLane) : x;
  const body = item ? body0 : body0.map((x) => mapStmt(x, sub));
  let usesF = false;
  for (const x of body) K.stmtExprs(x).forEach((e) => K.walkKExpr(e, (y) => (usesF ||= isRef(y, f))));
  if (usesF && !item) return undefined;
  // an array the phase both reads and stores: left as it is (the stores move to the chunk's end)
  const stored = new Set(body.filter((x) => x.k === "store").map((x) => (x as { array: string }).array));
  let readBack = false;
  for (const x of body) K.stmtExprs(x).forEach((e) => K.walkKExpr(e, (y) => (readBack ||= (y.k === "load" || y.k === "load4") && stored.has(y.array))));
  if (readBack) return undefined;
  const overrides = new Set(k.overrides.map((o) => o.name));
  const tops = new Map<string, K.KExpr | undefined>(k.body.filter((x) => x.k === "decl" && !x.mutable).map((x) => [(x as { name: string }).name, (x as { init?: K.KExpr }).init]));
  const cl = new Classes((e) => launchUniform(e, overrides, tops), eLane);
  cl.env.set(gRow, { cls: "same" });
  for (const x of body) if (x.k === "decl") cl.env.set(x.name, { cls: x.init ? cl.cls(x.init) : "same", init: x.init });
  // the vector loads and stores: by array and index (the copies' index classed "lane")
  const vloads = new Map<string, { array: string; index: K.KExpr; name: string }>();
  const vstores: { array: string; index: K.KExpr; value: K.KExpr }[] = [];
  for (const x of body) {
    // (a load the body evaluates only under a condition is left scalar: the vector load would run unconditionally)
    K.stmtExprs(x).forEach((e) =>
      walkUnconditional(e, (y) => {
        if (y.k === "load" && cl.cls(y.index) === "lane") {
          const key = `${y.array}:${JSON.stringify(y.index)}`;
          if (!vloads.has(key)) vloads.set(key, { array: y.array, index: y.index, name: `${id}_l${vloads.size}` });
        }
      }),
    );
    if (x.k === "store" && cl.cls(x.index) === "lane") vstores.push(x);
  }
  if (!vloads.size && !vstores.length) return undefined;
  // an array stored both as vectors (at the chunk's end) and element by element (in place): left as it is
  const scalarStored = new Set(body.filter((x) => x.k === "store" && !vstores.includes(x)).map((x) => (x as { array: string }).array));
  if (vstores.some((x) => scalarStored.has(x.array))) return undefined;
  const checks = [...cl.checks.values()];
  // the rows per row a multiple of 4 (the chunks split no row)
  checks.unshift(K.bin("==", K.bin("%", item ? K.ref("G") : X, K.u32(VEC)), K.u32(0)));
  const arrays = [...new Set([...[...vloads.values()].map((l) => l.array), ...vstores.map((x) => x.array)])].sort();
  for (const a of arrays) checks.push(K.bin("!=", K.call(VEC_ALIGNED_FN, K.ref(a)), K.u32(0)));
  if (rows) checks.push(K.bin("<=", K.bin("*", K.bin("+", K.ref("wg"), K.u32(1)), K.ref("G")), K.ref("BP")));
  const ok = checks.reduce((a, b) => K.bin("&&", a, b));
  // one chunk w: its row and first element, the VEC copies (names suffixed by copy), the vector loads ahead of the
  // first copy that reads them, the vector stores after the last copy
  const chunk = (w: K.KExpr, tag: string): K.KStmt[] => {
    const out: K.KStmt[] = [];
    const rowBase = `${id}_b${tag}`;
    out.push(K.decl(rowBase, "u32", K.bin("*", w, K.u32(VEC))));
    const e0 = `${id}_e0${tag}`;
    if (item) out.push(K.decl(e0, "u32", K.ref(rowBase)));
    else {
      out.push(K.decl(`${gRow}${tag}`, "u32", K.bin("/", K.ref(rowBase), X)));
      out.push(K.decl(e0, "u32", K.bin("%", K.ref(rowBase), X)));
    }
    const declared = new Set(body.filter((x) => x.k === "decl").map((x) => (x as { name: string }).name));
    const names = (c: number) => (x: K.KExpr): K.KExpr => {
      if (x.k !== "ref") return x;
      if (x.name === gRow) return K.ref(`${gRow}${tag}`);
      if (x.name === eLane) return K.ref(copyName(eLane, tag, c));
      // a decl classed "same" is copy 0's in every copy (declared there alone, below)
      return declared.has(x.name) ? { ...x, name: copyName(x.name, tag, cl.env.get(x.name)?.cls === "same" ? 0 : c) } : x;
    };
    const loaded = new Set<string>();
    const values: K.KExpr[][] = vstores.map(() => []);
    for (let c = 0; c < VEC; c++) {
      out.push(K.decl(copyName(eLane, tag, c), "u32", K.bin("+", K.ref(e0), K.u32(c))));
      for (const x of body) {
        if (x.k === "comment") continue;
        if (c > 0 && x.k === "decl" && cl.env.get(x.name)?.cls === "same") continue;
        // the vector loads this statement reads, declared at copy 0 (their index in copy 0's names: the chunk's base)
        if (c === 0) {
          K.stmtExprs(x).forEach((e) =>
            K.walkKExpr(e, (y) => {
              if (y.k !== "load") return;
              const l = vloads.get(`${y.array}:${JSON.stringify(y.index)}`);
              if (!l || loaded.has(l.name)) return;
              loaded.add(l.name);
              out.push(K.decl(`${l.name}${tag}`, "vec4f", K.call(VEC_LOAD_FN, K.ref(l.array), K.bin("/", mapKExpr(l.index, names(0)), K.u32(VEC)))));
            }),
          );
        }
        const vl = (y: K.KExpr): K.KExpr => {
          if (y.k !== "load") return y;
          const l = vloads.get(`${y.array}:${JSON.stringify(y.index)}`);
          return l ? K.lane(K.ref(`${l.name}${tag}`, "vec4f"), c) : y;
        };
        const si = x.k === "store" ? vstores.indexOf(x) : -1;
        // loads first (their indices in the body's names), then the copy's names
        const y = mapStmt(mapStmt(x, vl), names(c));
        if (si >= 0 && y.k === "store") {
          const v = copyName(`${id}_s${si}`, tag, c);
          out.push(K.decl(v, "f32", y.value));
          values[si].push(K.ref(v, "f32"));
        } else if (y.k === "decl") out.push({ ...y, name: copyName(y.name, tag, c) });
        else out.push(y);
      }
    }
    vstores.forEach((x, si) => out.push(K.decl(`${id}_st${si}${tag}`, "f32", K.call(VEC_STORE_FN, K.ref(x.array), K.bin("/", mapKExpr(x.index, names(0)), K.u32(VEC)), ...values[si]))));
    return out;
  };
  const n4 = K.bin("/", s.to, K.u32(VEC));
  const u = `${id}_u`;
  const j = `${id}_j`;
  const all = K.bin("<", K.bin("+", K.ref(u), K.bin("*", K.u32(UNROLL_VEC - 1), K.ref("WG"))), n4);
  const straight: K.KStmt[] = [];
  for (let i = 0; i < UNROLL_VEC; i++) straight.push(...chunk(K.bin("+", K.ref(u), K.bin("*", K.u32(i), K.ref("WG"))), `_${i}`));
  const w = `${id}_w`;
  const guarded = K.forLoop(j, K.u32(0), K.u32(UNROLL_VEC), [K.decl(w, "u32", K.bin("+", K.ref(u), K.bin("*", K.ref(j), K.ref("WG")))), K.ifThen(K.bin("<", K.ref(w), n4), chunk(K.ref(w), "_t"))]);
  const vec = K.forLoop(u, K.ref("lid"), n4, [K.ifThen(all, straight, [guarded])], K.bin("*", K.ref("WG"), K.u32(UNROLL_VEC)));
  return K.ifThen(ok, [vec], fused ? fused.fallback : [rowMajorPhase(s, rows)]);
}

/**
 * The vector twin of kernel `k` (the global form's bf16-input twin, its warp split, or their "-nz" twins), named
 * `name`: each phase with a vector version (see the header) run as it where its checks hold, else row by row as
 * rowMajorKernel(k); every other phase as rowMajorKernel(k) has it. Undefined where no phase has a vector version.
 */
export function vectorKernel(k: K.Kernel, name: string): K.Kernel | undefined {
  let vectors = 0;
  let phases = 0;
  const rows = k.body.some((s) => s.k === "decl" && s.name === "BP");
  const walk = (body: K.KStmt[]): K.KStmt[] =>
    body.map((s) => {
      if (s.k === "for" && isPhase(s)) {
        const v = vectorPhase(k, s, rows, `${s.v}_${VEC_ROWS}${phases++}`);
        if (v) vectors++;
        return v ?? rowMajorPhase(s, rows);
      }
      if (s.k === "for") return { ...s, body: walk(s.body) };
      if (s.k === "if") return { ...s, then: walk(s.then), ...(s.else ? { else: walk(s.else) } : {}) };
      return s;
    });
  const body = walk(k.body);
  return vectors ? { ...k, name, body } : undefined;
}

/** Suffix of a fused vector twin's kernels (`<kernel>_rf`) and variants (`<variant>-rf<M>`). */
export const VEC_FUSED = "rf";

/**
 * The vector twin of `k` with its phases fused (fusedVectorKernel): consecutive phases over the same items (`G * X` or
 * `G`), between them barriers alone, each with a vector version, none reading a buffer another writes and none touching
 * shared memory, run as one phase: each chunk's copies of every phase's body in turn (the phases' names suffixed), the
 * loads of the same element of the same buffer by several phases one vector load, no barrier between them (they
 * order nothing: no thread reads what another wrote). The same values (bitwise). Where the checks fail: the phases
 * row by row with their barriers, as rowMajorKernel(k). Undefined where no two phases fuse.
 */
export function fusedVectorKernel(k: K.Kernel, name: string): K.Kernel | undefined {
  let groups = 0;
  let phases = 0;
  const rows = k.body.some((s) => s.k === "decl" && s.name === "BP");
  const shared = new Set(k.shared.map((x) => x.name));
  const touches = (s: K.KStmt) => {
    let t = false;
    K.walkKStmts([s], (x) => {
      if (x.k === "store" && shared.has(x.array)) t = true;
      K.stmtExprs(x).forEach((e) => K.walkKExpr(e, (y) => (t ||= (y.k === "load" || y.k === "load4") && shared.has(y.array))));
    });
    return t;
  };
  const fusable = (s: K.KStmt | undefined): s is Extract<K.KStmt, { k: "for" }> => !!s && s.k === "for" && isPhase(s) && !touches(s) && !!vectorPhase(k, s, rows, "probe");
  const walk = (body: K.KStmt[]): K.KStmt[] => {
    const out: K.KStmt[] = [];
    for (let i = 0; i < body.length; i++) {
      const s = body[i];
      if (s.k === "for" && isPhase(s)) {
        // the group: s, then (barrier, phase) pairs over the same items
        // (comments between them kept in the fallback)
        const group = [s];
        let j = i;
        for (;;) {
          let n = j + 2;
          while (body[n]?.k === "comment") n++;
          const next = body[n];
          if (!(fusable(s) && body[j + 1]?.k === "barrier" && fusable(next) && JSON.stringify(next.to) === JSON.stringify(s.to))) break;
          group.push(next);
          j = n;
        }
        if (group.length > 1) {
          // one body: each phase's statements without its row guard, its loop variable s's, its names suffixed
          const merged: K.KStmt[] = [];
          group.forEach((p, n) => {
            const b = rows ? unguarded(p.body)! : p.body;
            const own = new Set(b.filter((x) => x.k === "decl").map((x) => (x as { name: string }).name));
            const ren = (x: K.KExpr): K.KExpr => (x.k === "ref" && own.has(x.name) ? { ...x, name: `${x.name}_${VEC_FUSED}${n}` } : x.k === "ref" && x.name === p.v ? { ...x, name: s.v } : x);
            for (const x of b) {
              const y = mapStmt(x, ren);
              merged.push(y.k === "decl" ? { ...y, name: `${y.name}_${VEC_FUSED}${n}` } : y);
            }
          });
          const fallback = body.slice(i, j + 1).map((x) => (x.k === "for" && isPhase(x) ? rowMajorPhase(x, rows) : x));
          const v = vectorPhase(k, s, rows, `${s.v}_${VEC_FUSED}${phases++}`, { body: merged, fallback });
          if (v) {
            groups++;
            out.push(v);
            i = j;
            continue;
          }
        }
        const v = vectorPhase(k, s, rows, `${s.v}_${VEC_ROWS}${phases++}`);
        out.push(v ?? rowMajorPhase(s, rows));
        continue;
      }
      if (s.k === "for") out.push({ ...s, body: walk(s.body) });
      else if (s.k === "if") out.push({ ...s, then: walk(s.then), ...(s.else ? { else: walk(s.else) } : {}) });
      else out.push(s);
    }
    return out;
  };
  const body = walk(k.body);
  return groups ? { ...k, name, body } : undefined;
}
