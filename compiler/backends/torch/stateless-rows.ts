/**
 * Row-major twins of the stateless parts' global forms (stateless-bf16.ts; issue 6). The backend-neutral sequential
 * lowering's global form gives a block G rows and walks each output in a phase `for (f = lid; f < G * X; f += WG)`
 * with the row g = f % G and the row's element i = f / G: neighbouring threads take neighbouring ROWS. A row of X
 * elements is contiguous in memory, so a warp's loads land X elements apart, G rows at a time: Mamba-2's prep backward
 * (G = 4 rows of N = 64) reads 8 elements of 4 rows a warp, and a larger G, which would give each thread more loads in
 * flight, would read 32 rows an element each. Here each such phase walks its items row by row: item f is the
 * permuted index (f % X) G + f / X, so g = f / X and i = f % X (neighbouring threads take neighbouring elements of
 * one row), the same items in all, each computed the same way by one thread or, in a warp-split phase
 * (stateless-warp.ts: the item is the warp's), the same lanes: bitwise the form it copies. A phase whose bound is
 * not `G * X` (or is G: one element a row, nothing to permute) is left as it is.
 *
 * The twin's forms (`<variant>-rm<M>`, ROW_GROUPS) take M times the form's G rows a block (the kernel reads G from its
 * overrides: one kernel for every M), WG unchanged: each thread walks M times the items of a phase, the loads of
 * neighbouring items independent (more bytes in flight per thread, fewer barriers per row). The glue's trial timing
 * picks among them (runtime/torch/seqc_chunked.py STATELESS_ROWS).
 */
import * as K from "../../kernel/ir.ts";

/** Suffix of a row-major twin's kernels (`<kernel>_rm`) and, with its row multiple, its variants (`<variant>-rm<M>`). */
export const ROWS = "rm";

/** The multiples of the global form's rows a block the row-major twins take (one form each). */
export const ROW_GROUPS = [1, 4, 16];

const isRef = (e: K.KExpr, name: string) => e.k === "ref" && e.name === name;

/** Is `s` a phase loop `for (f = lid; f < n; f += WG)`? */
export const isPhase = (s: K.KStmt): boolean => s.k === "for" && isRef(s.from, "lid") && isRef(s.step, "WG");

/** X where `to` is `G * X` (the phase's elements per row), else undefined. */
function perRow(to: K.KExpr): K.KExpr | undefined {
  return to.k === "bin" && to.op === "*" && isRef(to.a, "G") ? to.b : undefined;
}

/** The item's permuted index (f % X) G + f / X for the row-major index r. */
const permuted = (r: string, X: K.KExpr): K.KExpr => K.bin("+", K.bin("*", K.bin("%", K.ref(r), X), K.ref("G")), K.bin("/", K.ref(r), X));

/** A phase's body with its item `v` taken row by row (from `${v}_rm`), or undefined where the phase has one element a row. */
function permuteItems(loop: Extract<K.KStmt, { k: "for" }>): { v: string; body: K.KStmt[] } | undefined {
  // a warp-split phase (stateless-warp.ts): for (f_w ..; f_w < (G * X) * 32; ..) { f = f_w / 32; wlane = f_w % 32; .. }
  const [d0] = loop.body;
  const warp = loop.to.k === "bin" && loop.to.op === "*" && loop.to.b.k === "u32" && loop.to.b.v === 32 && d0?.k === "decl" && d0.init?.k === "bin" && d0.init.op === "/" && isRef(d0.init.a, loop.v);
  if (warp && loop.to.k === "bin" && d0.k === "decl") {
    const X = perRow(loop.to.a);
    if (!X) return undefined;
    const r = `${d0.name}_${ROWS}`;
    return { v: loop.v, body: [K.decl(r, "u32", d0.init), K.decl(d0.name, "u32", permuted(r, X)), ...loop.body.slice(1)] };
  }
  const X = perRow(loop.to);
  if (!X) return undefined;
  const r = `${loop.v}_${ROWS}`;
  return { v: r, body: [K.decl(loop.v, "u32", permuted(r, X)), ...loop.body] };
}

/** Copies of a phase's body per thread in one pass of its loop (UNROLL items WG apart, each behind its own bound check). */
export const UNROLL = 4;

/** `body` without its row guard `if (q < BP) { .. }` (the guard's statements in its place), or undefined where it has none. */
export function unguarded(body: K.KStmt[]): K.KStmt[] | undefined {
  const i = body.findIndex((s) => s.k === "if" && !s.else && s.cond.k === "bin" && s.cond.op === "<" && isRef(s.cond.a, "q") && isRef(s.cond.b, "BP"));
  const s = body[i];
  return s?.k === "if" ? [...body.slice(0, i), ...s.then, ...body.slice(i + 1)] : undefined;
}

/**
 * The kernel with its phases walked row by row and UNROLL items a thread a pass (see the header):
 * `for (f_u = lid; f_u < n; f_u += WG * UNROLL)`, in a block whose G rows all exist ((wg + 1) G <= BP) and a pass
 * whose UNROLL items all do (f_u + (UNROLL - 1) WG < n) the UNROLL copies of the body without their bound checks
 * (straight-line code: their loads can be issued together), else each copy behind its checks; the inner loops'
 * constant bound lets nvcc unroll them. A warp-split phase's items stay a warp's (WG is a multiple of 32, n of 32
 * lanes: the checks are the same for a warp's lanes). Undefined where the kernel has no phase.
 */
export function rowMajorKernel(k: K.Kernel, name: string): K.Kernel | undefined {
  let phases = 0;
  const rows = k.body.some((s) => s.k === "decl" && s.name === "BP");
  const walk = (body: K.KStmt[]): K.KStmt[] =>
    body.map((s) => {
      if (s.k === "for" && isPhase(s)) {
        phases++;
        return rowMajorPhase(s, rows);
      }
      if (s.k === "for") return { ...s, body: walk(s.body) };
      if (s.k === "if") return { ...s, then: walk(s.then), ...(s.else ? { else: walk(s.else) } : {}) };
      return s;
    });
  const body = walk(k.body);
  return phases ? { ...k, name, body } : undefined;
}

/** One phase `s` (isPhase) of rowMajorKernel: walked row by row, UNROLL items a thread a pass; `rows`: the kernel
 *  declares BP (its blocks' rows may run past the last: the body's row guard). */
export function rowMajorPhase(s: Extract<K.KStmt, { k: "for" }>, rows: boolean): K.KStmt {
  const p = permuteItems(s) ?? { v: s.v, body: s.body };
  const u = `${p.v}_u`;
  const j = `${p.v}_j`;
  const item = K.decl(p.v, "u32", K.bin("+", K.ref(u), K.bin("*", K.ref(j), K.ref("WG"))));
  const guarded = K.forLoop(j, K.u32(0), K.u32(UNROLL), [item, K.ifThen(K.bin("<", K.ref(p.v), s.to), p.body)]);
  const free = rows ? unguarded(p.body) : undefined;
  const pass = free
    ? K.ifThen(
        K.bin("&&", K.bin("<=", K.bin("*", K.bin("+", K.ref("wg"), K.u32(1)), K.ref("G")), K.ref("BP")), K.bin("<", K.bin("+", K.ref(u), K.bin("*", K.u32(UNROLL - 1), K.ref("WG"))), s.to)),
        [K.forLoop(j, K.u32(0), K.u32(UNROLL), [item, ...free])],
        [guarded],
      )
    : guarded;
  return K.forLoop(u, s.from, s.to, [pass], K.bin("*", K.ref("WG"), K.u32(UNROLL)));
}

/** A form's vars with its G (`$G`) M times as large, at most the rows there are (`$BP`); the vars after it (WG) follow it. */
export function timesRows(vars: [string, unknown][], M: number): [string, unknown][] {
  if (!vars.some(([k]) => k === "$G") || !vars.some(([k]) => k === "$BP")) throw new Error("stateless-rows: a form without $G and $BP");
  return vars.map(([k, e]) => (k === "$G" && M !== 1 ? [k, ["max", 1, ["min", ["*", M, e], "$BP"]]] : [k, e]));
}
