/**
 * Warp-fused twins of the stateless parts' warp-split kernels (stateless-warp.ts; issue 6, session 15 task E2). DeltaNet's
 * prep backward runs q__bar = q4__bar / sqrt(K) and k__bar = beta (kk2__bar - u0__bar) element by element, then
 * beta__bar = sum_i kk2__bar k - sum_i u0__bar k a warp a row: the two float32 adjoints are read twice from memory
 * (0.41 ms against an IO floor of 0.32 at (4, 8192, 16, 128) on the H200, call E15b). Here the elementwise phases before
 * a warp-split phase whose rows hold them are run inside its lanes' walk of the row: the warp of row (g, h) walks
 * i = lane, lane + 32, .. < R (its reduction loops' bound) once, each step adding every reduction's term (the loops
 * merged: each accumulator's terms in the same order) and computing each elementwise phase's element h R + i of row g.
 * The elementwise phases' items (g, e) for e < X_A are the warp phase's (g, h) for h < X_B and i < R exactly once where
 * X_A = X_B * R (checked on the expressions), each computed by the same expression: bitwise the kernel it copies, every
 * output (so the row-major twins' values, stateless-rows.ts). The loads of an element by several phases come in the
 * same step of one thread (the second from L1, not memory). The lanes' elements stay 32 apart (4-byte float loads,
 * 2-byte bf16 ones, coalesced across the warp): 16-byte groups a lane would change which lane sums which terms, so the
 * sums' order, and are not taken.
 *
 * Conditions (else no twin): consecutive phases separated by barriers (and comments) alone, the last a warp-split phase
 * `for (f_w = lid; f_w < (G * X_B) * 32; f_w += WG) { f = f_w / 32; wlane = f_w % 32; .. }` with reduction loops
 * `for (i = wlane; i < R; i += 32) acc = acc + X` (the same R), between which only their accumulators' warp sums and
 * declarations stand, no term reading an accumulator; the others plain phases `for (f = lid; f < G * X_A; f += WG)`
 * with X_A = X_B * R, no inner loop, no shared memory; no buffer one of them stores another loads, no two store one.
 */
import * as K from "../../kernel/ir.ts";
import { mapKExpr } from "../../kernel/map.ts";
import { isPhase } from "./stateless-rows.ts";
import { WARP_SUM_FN } from "./stateless-warp.ts";

/** Suffix of a warp-fused twin's kernels (`<kernel>_rw`) and, with its row multiple, its variants (`<variant>-rw<M>`). */
export const WARP_FUSED = "rw";

const LANE = "wlane";
const isRef = (e: K.KExpr, name: string) => e.k === "ref" && e.name === name;
/** Structural equality (keys in any order). */
const canon = (x: unknown): string =>
  Array.isArray(x) ? `[${x.map(canon).join(",")}]` : x && typeof x === "object" ? `{${Object.keys(x).filter((k) => (x as Record<string, unknown>)[k] !== undefined).sort().map((k) => `${k}:${canon((x as Record<string, unknown>)[k])}`).join(",")}}` : JSON.stringify(x);
const same = (a: K.KExpr, b: K.KExpr) => canon(a) === canon(b);

/** `e` with every ref mapped by f (deep). */
function mapRefs(e: K.KExpr, f: (name: string) => string): K.KExpr {
  const m = (x: K.KExpr) => mapRefs(x, f);
  switch (e.k) {
    case "ref":
      return { ...e, name: f(e.name) };
    case "load":
    case "load4":
      return { ...e, index: m(e.index) };
    case "lane":
    case "neg":
    case "not":
    case "cast":
      return { ...e, a: m(e.a) } as K.KExpr;
    case "bin":
      return { ...e, a: m(e.a), b: m(e.b) };
    case "call":
      return { ...e, args: e.args.map(m) };
    case "select":
      return { ...e, cond: m(e.cond), then: m(e.then), else: m(e.else) };
    default:
      return e;
  }
}

/** `s` with its expressions mapped by mapKExpr(., f) (deep). */
function mapStmtUp(s: K.KStmt, f: (x: K.KExpr) => K.KExpr): K.KStmt {
  const e = (x: K.KExpr) => mapKExpr(x, f);
  switch (s.k) {
    case "decl":
      return s.init ? { ...s, init: e(s.init) } : s;
    case "set":
      return { ...s, value: e(s.value) };
    case "store":
      return { ...s, index: e(s.index), value: e(s.value) };
    case "for":
      return { ...s, from: e(s.from), to: e(s.to), step: e(s.step), body: s.body.map((x) => mapStmtUp(x, f)) };
    case "if":
      return { ...s, cond: e(s.cond), then: s.then.map((x) => mapStmtUp(x, f)), ...(s.else ? { else: s.else.map((x) => mapStmtUp(x, f)) } : {}) };
    default:
      return s;
  }
}

/** `s` with its names (decls, sets, loop variables, refs) mapped by f (deep). */
function renameStmt(s: K.KStmt, f: (name: string) => string): K.KStmt {
  const e = (x: K.KExpr) => mapRefs(x, f);
  switch (s.k) {
    case "decl":
      return { ...s, name: f(s.name), ...(s.init ? { init: e(s.init) } : {}) };
    case "set":
      return { ...s, name: f(s.name), value: e(s.value) };
    case "store":
      return { ...s, index: e(s.index), value: e(s.value) };
    case "for":
      return { ...s, v: f(s.v), from: e(s.from), to: e(s.to), step: e(s.step), body: s.body.map((x) => renameStmt(x, f)) };
    case "if":
      return { ...s, cond: e(s.cond), then: s.then.map((x) => renameStmt(x, f)), ...(s.else ? { else: s.else.map((x) => renameStmt(x, f)) } : {}) };
    default:
      return s;
  }
}

/** The arrays a phase loads and stores; whether it touches shared memory, calls the warp sum or holds an inner loop. */
function accesses(s: K.KStmt, shared: Set<string>) {
  const loads = new Set<string>();
  const stores = new Set<string>();
  let sharedUse = false;
  let warp = false;
  let loops = 0;
  K.walkKStmts([s], (x) => {
    if (x.k === "for") loops++;
    if (x.k === "store") {
      stores.add(x.array);
      if (shared.has(x.array)) sharedUse = true;
    }
    if (x.k === "barrier") sharedUse = true;
    K.stmtExprs(x).forEach((y) =>
      K.walkKExpr(y, (z) => {
        if (z.k === "load" || z.k === "load4") {
          loads.add(z.array);
          if (shared.has(z.array)) sharedUse = true;
        }
        if (z.k === "call" && (z.fn as string) === WARP_SUM_FN) warp = true;
        if (z.k === "lane") warp = true;
      }),
    );
  });
  return { loads, stores, sharedUse, warp, loops };
}

type ForStmt = Extract<K.KStmt, { k: "for" }>;

/** A warp-split phase's parts: its item variable, X_B, and the statement list holding its reduction loops. */
function warpPhase(s: ForStmt): { item: string; XB: K.KExpr } | undefined {
  const [d0, d1] = s.body;
  if (!(s.to.k === "bin" && s.to.op === "*" && s.to.b.k === "u32" && s.to.b.v === 32)) return undefined;
  const gx = s.to.a;
  if (!(gx.k === "bin" && gx.op === "*" && isRef(gx.a, "G"))) return undefined;
  if (d0?.k !== "decl" || !d0.init || !same(d0.init, K.bin("/", K.ref(s.v), K.u32(32)))) return undefined;
  if (d1?.k !== "decl" || d1.name !== LANE || !d1.init || !same(d1.init, K.bin("%", K.ref(s.v), K.u32(32)))) return undefined;
  return { item: d0.name, XB: gx.b };
}

const isReduction = (s: K.KStmt): s is ForStmt =>
  s.k === "for" && isRef(s.from, LANE) && s.step.k === "u32" && s.step.v === 32 && s.body.length === 1 && s.body[0].k === "set" && s.body[0].value.k === "bin" && s.body[0].value.op === "+" && isRef(s.body[0].value.a, s.body[0].name);

/**
 * The statement list `body` (a warp phase's, or its row guard's) with its reduction loops merged into one and the
 * elementwise `extra(iv)` statements in each step, or undefined where the loops do not merge (see the header). Looks
 * into a lone row guard `if (..) { .. }`.
 */
function mergeReductions(body: K.KStmt[], extra: (iv: string, R: K.KExpr) => K.KStmt[] | undefined, used: Set<string>): K.KStmt[] | undefined {
  const idx = body.map((s, i) => (isReduction(s) ? i : -1)).filter((i) => i >= 0);
  if (!idx.length) {
    const gi = body.findIndex((s) => s.k === "if" && !s.else);
    const g = body[gi];
    if (gi < 0 || g.k !== "if" || body.slice(gi + 1).some((s) => s.k !== "comment")) return undefined;
    const inner = mergeReductions(g.then, extra, used);
    return inner ? [...body.slice(0, gi), { ...g, then: inner }, ...body.slice(gi + 1)] : undefined;
  }
  const loops = idx.map((i) => body[i] as ForStmt);
  const R = loops[0].to;
  if (loops.some((l) => !same(l.to, R))) return undefined;
  const accs = loops.map((l) => (l.body[0] as Extract<K.KStmt, { k: "set" }>).name);
  // each accumulator declared (mutable, 0) before its loop; no term reads an accumulator
  for (const [n, l] of loops.entries()) {
    const v = (l.body[0] as Extract<K.KStmt, { k: "set" }>).value as Extract<K.KExpr, { k: "bin" }>;
    let reads = false;
    K.walkKExpr(v.b, (z) => (reads ||= z.k === "ref" && accs.includes(z.name)));
    if (reads) return undefined;
    const d = body.slice(0, idx[n]).find((x) => x.k === "decl" && x.name === accs[n]);
    if (!d || d.k !== "decl" || !d.mutable || d.t !== "f32" || !d.init || !((d.init.k === "f32" || d.init.k === "u32") && d.init.v === 0)) return undefined;
  }
  // between the first and the last loop: the earlier loops' warp sums and the later loops' accumulators' declarations
  const sums: K.KStmt[] = [];
  const decls: K.KStmt[] = [];
  for (let i = idx[0] + 1; i < idx[idx.length - 1]; i++) {
    const s = body[i];
    if (idx.includes(i) || s.k === "comment") continue;
    if (s.k === "set" && accs.includes(s.name) && same(s.value, { k: "call", fn: WARP_SUM_FN as K.KMathFn, args: [K.ref(s.name, "f32")] })) sums.push(s);
    else if (s.k === "decl" && accs.includes(s.name) && accs.indexOf(s.name) > 0) decls.push(s);
    else return undefined;
  }
  const iv = "i_" + WARP_FUSED;
  if (used.has(iv)) return undefined;
  const steps = loops.map((l) => renameStmt(l.body[0], (n) => (n === l.v ? iv : n)));
  const more = extra(iv, R);
  if (!more) return undefined;
  const merged = K.forLoop(iv, K.ref(LANE), R, [...steps, ...more], K.u32(32));
  return [...body.slice(0, idx[0]), ...decls, merged, ...sums, ...body.slice(idx[idx.length - 1] + 1)];
}

/**
 * The warp-fused twin of kernel `k` (a warp-split kernel, stateless-warp.ts), named `name`: each warp-split phase with
 * the elementwise phases before it fused into its walk of the row (see the header). Undefined where none fuses.
 */
export function warpFusedKernel(k: K.Kernel, name: string): K.Kernel | undefined {
  const shared = new Set(k.shared.map((x) => x.name));
  const used = new Set<string>();
  K.walkKStmts(k.body, (s) => {
    if (s.k === "decl") used.add(s.name);
    if (s.k === "for") used.add(s.v);
  });
  let fused = 0;
  const walk = (body: K.KStmt[]): K.KStmt[] => {
    const out: K.KStmt[] = [];
    for (let i = 0; i < body.length; i++) {
      const s = body[i];
      if (s.k === "for" && isPhase(s)) {
        // the group: plain phases, each followed by a barrier (comments between), ending in a warp-split phase
        const group: ForStmt[] = [s];
        let j = i;
        for (;;) {
          if (warpPhase(group[group.length - 1])) break;
          let n = j + 1;
          if (body[n]?.k !== "barrier") break;
          n++;
          while (body[n]?.k === "comment") n++;
          const next = body[n];
          if (!(next && next.k === "for" && isPhase(next))) break;
          group.push(next);
          j = n;
        }
        const w = group.length > 1 ? warpPhase(group[group.length - 1]) : undefined;
        const r = w ? fuseGroup(group, w, shared, used, fused) : undefined;
        if (r) {
          fused++;
          out.push(r);
          i = j;
          continue;
        }
        out.push(s);
        continue;
      }
      if (s.k === "for") out.push({ ...s, body: walk(s.body) });
      else if (s.k === "if") out.push({ ...s, then: walk(s.then), ...(s.else ? { else: walk(s.else) } : {}) });
      else out.push(s);
    }
    return out;
  };
  const body = walk(k.body);
  return fused ? { ...k, name, body } : undefined;
}

/** The group's phases (plain ones, then the warp phase w) as one phase, or undefined where they do not fuse. */
function fuseGroup(group: ForStmt[], w: { item: string; XB: K.KExpr }, shared: Set<string>, used: Set<string>, tag: number): K.KStmt | undefined {
  const plain = group.slice(0, -1);
  const wp = group[group.length - 1];
  const acc = group.map((p) => accesses(p, shared));
  if (acc.some((a) => a.sharedUse)) return undefined;
  if (acc.slice(0, -1).some((a) => a.warp || a.loops !== 1)) return undefined;
  const loads = new Set(acc.flatMap((a) => [...a.loads]));
  const stores = acc.flatMap((a) => [...a.stores]);
  if (stores.some((x) => loads.has(x)) || new Set(stores).size !== stores.length) return undefined;
  for (const p of plain) if (!(p.to.k === "bin" && p.to.op === "*" && isRef(p.to.a, "G"))) return undefined;
  const extra = (iv: string, R: K.KExpr): K.KStmt[] | undefined => {
    const out: K.KStmt[] = [];
    for (const [n, p] of plain.entries()) {
      const XA = (p.to as Extract<K.KExpr, { k: "bin" }>).b;
      if (!same(XA, K.bin("*", w.XB, R))) return undefined;
      const own = new Set<string>([p.v]);
      K.walkKStmts(p.body, (x) => {
        if (x.k === "decl") own.add(x.name);
        if (x.k === "for") own.add(x.v);
      });
      const ren = (nm: string) => (own.has(nm) ? `${nm}_${WARP_FUSED}${tag}p${n}` : nm);
      for (const nm of own) if (used.has(ren(nm))) return undefined;
      // element (g, h R + i) of the phase's rows: its item a = (h R + i) G + g, with g = f % G and h = f / G of the warp's
      // f, i < R: a % G = f % G, a / G = h R + i, (h R + i) % R = i, (h R + i) / R = h (loop-invariant but for i)
      const f = K.ref(w.item);
      const G = K.ref("G");
      const hR = K.bin("+", K.bin("*", K.bin("/", f, G), R), K.ref(iv));
      const item = K.bin("+", K.bin("*", hR, G), K.bin("%", f, G));
      const simplify = (x: K.KExpr): K.KExpr => {
        if (x.k !== "bin" || (x.op !== "%" && x.op !== "/")) return x;
        if (isRef(x.a, p.v) && isRef(x.b, "G")) return x.op === "%" ? K.bin("%", f, G) : hR;
        if (same(x.a, hR) && same(x.b, R)) return x.op === "%" ? K.ref(iv) : K.bin("/", f, G);
        return x;
      };
      out.push(K.decl(ren(p.v), "u32", item), ...p.body.map((x) => renameStmt(mapStmtUp(x, simplify), ren)));
    }
    return out;
  };
  const body = mergeReductions(wp.body, extra, used);
  return body ? { ...wp, body } : undefined;
}
