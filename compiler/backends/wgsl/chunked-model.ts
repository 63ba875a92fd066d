/**
 * The model-specific half of the WGSL chunked form: WGSL functions generated from a model's rows
 * (compiler/forms/chunk-rows.ts, from the matrix canonical form) that the model-independent core
 * (chunked-core.ts) calls. Every value is lowered from the prep/post IR with the same expression
 * lowering as the other kernels (compiler/kernel/lower-expr.ts), so no model has kernel code of its own:
 *
 *   seqc_row(r)               (row spec, loop index, micro-step) of row slot r of a token; spec -1: padding
 *   seqc_micro_count()        micro-steps per token;  seqc_readout_at(): micro-steps the readout sees
 *   ld_x/ld_w(b,t,h,r,i)      key vectors of row r;   ld_v(b,t,h,r,j): alpha * v;  ld_beta(b,t,h,r)
 *   ld_q(b,t,h,i)             the readout vector;     ld_key(b,t,h,i): per-key log decay
 *   ld_scalar(b,t,h,m)        scalar log decay of micro-step m (0 without one)
 *   s_load(b,h,i,j) / s_store(b,h,i,j,v)   the state (initial value when no initial state is given)
 *   post(b,t,h,j,y)           the outputs from y = S^T q (pointwise over heads and values)
 * `h` is the flat head index over the state's head axes; `i` a key, `j` a value index.
 * A form with value columns (normalisers) has seqc_V() = V + columns: ld_v, s_load and s_store address the
 * column states at j >= V, post(...) stores y into the scratch `ybuf` and post_out(b,t,h,j) computes the
 * outputs from it (a launch after the walk). A stabilised form reads m_t and m_{t-1} from the scratch `stab`
 * (written by the stabiliser launch, chunked-extra.ts, from stab_a / stab_b / stab_init / stab_final), and
 * s_load scales the initial state by exp(m_{-1} - m^) (compiler/forms/stabiliser.ts).
 */
import * as I from "../../ir/types.ts";
import * as K from "../../kernel/ir.ts";
import { lowerConst } from "../../kernel/step.ts";
import { initFlag, outputBuffer, stateOffset, STATES, STATES_IN } from "../../kernel/interface.ts";
import { extentK, flatIndex, productK } from "../../kernel/symbolic.ts";
import type { ChunkRows, RowPart } from "../../forms/chunk-rows.ts";
import { CudaScope } from "../cuda/scope.ts";
import { STAB_PREV, STAB_T } from "../../forms/matrix-form.ts";
import { STAB, YBUF } from "../../forms/chunk-extra.ts";
import { renderWgslFunction } from "./render.ts";

export interface ChunkModelWgsl {
  /** WGSL function definitions (the helpers they need are in `used`). */
  functions: string[];
  used: Set<string>;
  /** The model tensors the functions read or write (buffers to bind), by role. */
  reads: Set<string>;
  writes: Set<string>;
}

class Gen {
  readonly fns: string[] = [];
  readonly used = new Set<string>();
  private hc = 0;
  constructor(readonly model: I.Model, readonly cr: ChunkRows) {}

  get form() {
    return this.cr.form;
  }
  get S(): I.TensorDecl {
    return this.model.tensors.find((t) => t.name === this.form.state)!;
  }

  fn(sig: string, body: K.KStmt[], result?: K.KExpr): void {
    this.fns.push(renderWgslFunction(sig, body, result, this.used));
  }

  /** Head coordinates of the flat head index `h`. */
  headCoords(out: K.KStmt[]): K.KExpr[] {
    const u = this.hc++;
    const hs = this.form.heads.map((p) => this.S.shape[p]);
    const coords: K.KExpr[] = new Array(hs.length);
    let rest: K.KExpr = K.ref("h");
    for (let a = hs.length - 1; a >= 0; a--) {
      if (a === 0) coords[a] = rest;
      else {
        out.push(K.decl(`hc${u}_${a}`, "u32", K.bin("%", rest, extentK(hs[a]))));
        out.push(K.decl(`hr${u}_${a}`, "u32", K.bin("/", rest, extentK(hs[a]))));
        coords[a] = K.ref(`hc${u}_${a}`);
        rest = K.ref(`hr${u}_${a}`);
      }
    }
    return coords;
  }

  /** The value of part p with its variables bound: [loop?] -> n, heads -> h's coordinates, axis -> `axis`. */
  part(p: RowPart, axis: K.KExpr | undefined, pre: K.KStmt[], prefix: string): K.KExpr {
    const heads = this.headCoords(pre);
    const vars = new Map<number, K.KExpr>();
    let k = 0;
    if (p.loop !== undefined) vars.set(p.vars[k++].id, K.ref("n"));
    for (const hk of heads) vars.set(p.vars[k++].id, hk);
    if (axis && k < p.vars.length) vars.set(p.vars[k].id, axis);
    return new CudaScope({ model: this.model, b: K.ref("b"), t: K.ref("t"), vars, prefix, local: (t, idx) => this.stabRead(t, idx) }).lower(p.expr, pre);
  }

  /** Flat head index of head coordinates. */
  flatHead(idx: K.KExpr[]): K.KExpr {
    return flatIndex(idx, this.form.heads.map((p) => this.S.shape[p]));
  }
  /** Reads of the stabiliser's pseudo inputs: the scratch `stab`, [B][H][T + 2] = (log initial scale, m^, m_0 ... m_{T-1}). */
  stabRead(tensor: string, idx: K.KExpr[]): K.KExpr | undefined {
    if (tensor !== STAB_T && tensor !== STAB_PREV) return undefined;
    const base = K.mul(K.add(K.mul(K.ref("b"), K.ref("seqc_H()")), this.flatHead(idx)), K.add(K.uni("T"), K.u32(2)));
    return K.load(STAB, K.add(base, K.add(K.ref("t"), K.u32(tensor === STAB_T ? 2 : 1))));
  }
  /** Index of another state (a value column or the stabiliser) at head h and, for columns, key i. */
  stateIndex(name: string, pre: K.KStmt[], key?: K.KExpr): K.KExpr {
    const d = this.model.tensors.find((t) => t.name === name)!;
    const heads = this.headCoords(pre);
    const idx = key ? [...heads, key] : heads;
    return K.add(K.uni(stateOffset(name)), K.add(K.mul(K.ref("b"), productK(d.shape)), flatIndex(idx, d.shape)));
  }
}

export function chunkModelWgsl(model: I.Model, cr: ChunkRows): ChunkModelWgsl {
  const g = new Gen(model, cr);
  const form = cr.form;
  const Sd = g.S;
  // ---- row decode: rows in micro-step order, per MicroStep entry, per loop index, its rows ----
  {
    const lines: string[] = [`fn seqc_row(r0: u32) -> vec3<i32> {`, `  var r = r0;`, `  var first = 0u;`];
    form.steps.forEach((st, s) => {
      const specs = cr.rows.map((x, i) => ({ x, i })).filter((x) => x.x.step === s);
      const ext = st.loop ? loopExt(st.loop) : "1u";
      if (specs.length) {
        lines.push(`  if (r < ${specs.length}u * ${ext}) {`);
        lines.push(`    let n = r / ${specs.length}u;`);
        lines.push(`    let k = r % ${specs.length}u;`);
        lines.push(`    var spec = ${specs[0].i}i;`);
        specs.slice(1).forEach((x, k) => lines.push(`    if (k == ${k + 1}u) { spec = ${x.i}i; }`));
        lines.push(`    return vec3<i32>(spec, i32(n), i32(first + n));`);
        lines.push(`  }`);
        lines.push(`  r -= ${specs.length}u * ${ext};`);
      }
      lines.push(`  first += ${ext};`);
    });
    lines.push(`  return vec3<i32>(-1i, 0i, -1i);`, `}`);
    g.fns.push(lines.join("\n"));
    const count = form.steps.map((st) => (st.loop ? loopExt(st.loop) : "1u")).join(" + ");
    g.fns.push(`fn seqc_micro_count() -> u32 { return ${count}; }`);
    const at = form.steps.slice(0, form.readouts[0].after).map((st) => (st.loop ? loopExt(st.loop) : "1u"));
    g.fns.push(`fn seqc_readout_at() -> u32 { return ${at.length ? at.join(" + ") : "0u"}; }`);
    const dimW = (e: I.Extent) => (e.kind === "lit" ? `${e.value}u` : `D_${e.name}`);
    g.fns.push(`fn seqc_K() -> u32 { return ${dimW(Sd.shape[form.key])}; }`);
    g.fns.push(`fn seqc_V() -> u32 { return ${dimW(Sd.shape[form.value])}${cr.columns ? ` + ${cr.columns}u` : ""}; }`);
    g.fns.push(`fn seqc_V0() -> u32 { return ${dimW(Sd.shape[form.value])}; }`);
    g.fns.push(`fn seqc_H() -> u32 { return ${form.heads.map((p) => dimW(Sd.shape[p])).join(" * ") || "1u"}; }`);
    g.fns.push(`fn seqc_rows_per_token() -> u32 { var n = 0u; ${cr.rows.map((r) => `n += ${r.loop ? loopExt(form.steps[r.step].loop!) : "1u"};`).join(" ")} return n; }`);
  }
  // ---- per-row vectors and scalars ----
  const rowFn = (name: string, axisArg: string | undefined, part: (i: number) => RowPart | undefined, scale: (i: number) => RowPart | undefined, dflt: number) => {
    const lines: string[] = [];
    const sig = `fn ${name}(b: u32, t: u32, h: u32, r: u32${axisArg ? `, ${axisArg}: u32` : ""}) -> f32`;
    lines.push(`${sig} {`, `  let d = seqc_row(r);`, `  let n = u32(max(d.y, 0i));`);
    cr.rows.forEach((_, i) => {
      const p = part(i);
      if (!p) return;
      const pre: K.KStmt[] = [];
      let v = g.part(p, axisArg ? K.ref(axisArg) : undefined, pre, `${name}${i}`);
      const sc = scale(i);
      if (sc) v = K.bin("*", v, g.part(sc, undefined, pre, `${name}s${i}`), "f32");
      const fname = `${name}_${i}`;
      g.fn(`fn ${fname}(b: u32, t: u32, h: u32, n: u32${axisArg ? `, ${axisArg}: u32` : ""}) -> f32`, pre, v);
      lines.push(`  if (d.x == ${i}i) { return ${fname}(b, t, h, n${axisArg ? `, ${axisArg}` : ""}); }`);
    });
    lines.push(`  return ${dflt.toFixed(1)};`, `}`);
    g.fns.push(lines.join("\n"));
  };
  rowFn("ld_x", "i", (i) => cr.rows[i].x, () => undefined, 0);
  rowFn("ld_w", "i", (i) => cr.rows[i].w, () => undefined, 0);
  if (cr.columns) {
    // value columns: j >= V reads the row's column values (times alpha)
    const lines = [`fn ld_v(b: u32, t: u32, h: u32, r: u32, j: u32) -> f32 {`, `  let d = seqc_row(r);`, `  let n = u32(max(d.y, 0i));`];
    cr.rows.forEach((row, i) => {
      if (!row.v) return;
      const pre: K.KStmt[] = [];
      let v = g.part(row.v, K.ref("j"), pre, `ld_v${i}`);
      if (row.alpha) v = K.bin("*", v, g.part(row.alpha, undefined, pre, `ld_vs${i}`), "f32");
      g.fn(`fn ld_v_${i}(b: u32, t: u32, h: u32, n: u32, j: u32) -> f32`, pre, v);
      const cl = [`fn ld_vc_${i}(b: u32, t: u32, h: u32, n: u32, c: u32) -> f32 {`];
      (row.cols ?? []).forEach((col, c) => {
        const cp: K.KStmt[] = [];
        let cv = g.part(col, undefined, cp, `ld_vc${i}_${c}`);
        if (row.alpha) cv = K.bin("*", cv, g.part(row.alpha, undefined, cp, `ld_vcs${i}_${c}`), "f32");
        g.fn(`fn ld_vc_${i}_${c}(b: u32, t: u32, h: u32, n: u32) -> f32`, cp, cv);
        cl.push(`  if (c == ${c}u) { return ld_vc_${i}_${c}(b, t, h, n); }`);
      });
      cl.push(`  return 0.0;`, `}`);
      g.fns.push(cl.join("\n"));
      lines.push(`  if (d.x == ${i}i) { if (j >= seqc_V0()) { return ld_vc_${i}(b, t, h, n, j - seqc_V0()); } return ld_v_${i}(b, t, h, n, j); }`);
    });
    lines.push(`  return 0.0;`, `}`);
    g.fns.push(lines.join("\n"));
  } else rowFn("ld_v", "j", (i) => cr.rows[i].v, (i) => cr.rows[i].alpha, 0);
  // beta: the coefficient of a row's read (1 when it reads without one, 0 without a read)
  rowFn("ld_beta", undefined, (i) => (cr.rows[i].w ? (cr.rows[i].beta ?? ONE(cr.rows[i].x)) : undefined), () => undefined, 0);
  // readout vector and decays
  {
    const pre: K.KStmt[] = [];
    const v = g.part(cr.q, K.ref("i"), pre, "q");
    g.fn(`fn ld_q(b: u32, t: u32, h: u32, i: u32) -> f32`, [K.decl("n", "u32", K.u32(0)), ...pre], v);
  }
  const keyLd = cr.decay === "key" ? cr.ld.find((x) => x) : undefined;
  if (keyLd) {
    const pre: K.KStmt[] = [];
    const v = g.part(keyLd, K.ref("i"), pre, "ldk");
    g.fn(`fn ld_key(b: u32, t: u32, h: u32, i: u32) -> f32`, [K.decl("n", "u32", K.u32(0)), ...pre], v);
  } else g.fns.push(`fn ld_key(b: u32, t: u32, h: u32, i: u32) -> f32 { return 0.0; }`);
  {
    const lines = [`fn ld_scalar(b: u32, t: u32, h: u32, m: u32) -> f32 {`, `  var first = 0u;`];
    cr.ld.forEach((p, s) => {
      const st = form.steps[s];
      const ext = st.loop ? loopExt(st.loop) : "1u";
      if (p && cr.decay !== "key") {
        const pre: K.KStmt[] = [];
        const v = g.part(p, undefined, pre, `lds${s}`);
        g.fn(`fn ld_scalar_${s}(b: u32, t: u32, h: u32, n: u32) -> f32`, pre, v);
        lines.push(`  if (m >= first && m < first + ${ext}) { return ld_scalar_${s}(b, t, h, m - first); }`);
      }
      lines.push(`  first += ${ext};`);
    });
    lines.push(`  return 0.0;`, `}`);
    g.fns.push(lines.join("\n"));
  }
  // ---- state ----
  {
    const pre: K.KStmt[] = [];
    const heads = g.headCoords(pre);
    const idx: K.KExpr[] = Sd.shape.map((_, p) => {
      const hp = form.heads.indexOf(p);
      return hp >= 0 ? heads[hp] : p === form.key ? K.ref("i") : K.ref("j");
    });
    const off = K.add(K.mul(K.ref("b"), productK(Sd.shape)), flatIndex(idx, Sd.shape));
    const init = Sd.init ? lowerConst(Sd.init, { fresh: (p: string) => `si_${p}` }) : K.f32(0);
    pre.push(K.decl("sidx", "u32", K.add(K.uni(stateOffset(Sd.name)), off)));
    g.fn(`fn s_index(b: u32, h: u32, i: u32, j: u32) -> u32`, pre, K.ref("sidx"));
    g.fn(`fn s_init() -> f32`, [], init);
    const loadOf = (name: string, index: string, initFn: string) => `if (u.${initFlag(name)} != 0u) { return ${STATES_IN}[${index}]; } return ${initFn}();`;
    // value columns at j >= V: states over [heads, key]
    const colLoad = form.columns.map((c, k) => {
      const cpre: K.KStmt[] = [];
      g.fn(`fn s_col_index_${k}(b: u32, h: u32, i: u32) -> u32`, cpre, g.stateIndex(c, cpre, K.ref("i")));
      const cd = model.tensors.find((t) => t.name === c)!;
      g.fn(`fn s_col_init_${k}() -> f32`, [], cd.init ? lowerConst(cd.init, { fresh: (p: string) => `sci${k}_${p}` }) : K.f32(0));
      g.fns.push(`fn s_col_load_${k}(b: u32, h: u32, i: u32) -> f32 { ${loadOf(c, `s_col_index_${k}(b, h, i)`, `s_col_init_${k}`)} }`);
      return k;
    });
    const raw = cr.columns
      ? `if (j >= seqc_V0()) {\n${colLoad.map((k) => `    if (j - seqc_V0() == ${k}u) { return s_col_load_${k}(b, h, i); }`).join("\n")}\n    return 0.0;\n  }\n  ${loadOf(Sd.name, "s_index(b, h, i, j)", "s_init")}`
      : loadOf(Sd.name, "s_index(b, h, i, j)", "s_init");
    g.fns.push(`fn s_load_raw(b: u32, h: u32, i: u32, j: u32) -> f32 {\n  ${raw}\n}`);
    // a stabilised state starts scaled by exp(m_{-1} - m^) (0 for a fresh m = -inf)
    g.fns.push(cr.stab
      ? `fn s_load(b: u32, h: u32, i: u32, j: u32) -> f32 {\n  let sc = exp(${STAB}[(b * seqc_H() + h) * (u.T + 2u)]);\n  if (sc == 0.0) { return 0.0; }\n  return sc * s_load_raw(b, h, i, j);\n}`
      : `fn s_load(b: u32, h: u32, i: u32, j: u32) -> f32 { return s_load_raw(b, h, i, j); }`);
    const colStore = form.columns.map((_, k) => `    if (j - seqc_V0() == ${k}u) { ${STATES}[s_col_index_${k}(b, h, i)] = v; }`);
    g.fns.push(cr.columns
      ? `fn s_store(b: u32, h: u32, i: u32, j: u32, v: f32) {\n  if (j >= seqc_V0()) {\n${colStore.join("\n")}\n    return;\n  }\n  ${STATES}[s_index(b, h, i, j)] = v;\n}`
      : `fn s_store(b: u32, h: u32, i: u32, j: u32, v: f32) { ${STATES}[s_index(b, h, i, j)] = v; }`);
  }
  // ---- the stabiliser: its a and b per token, initial value and final store (the stabiliser launch) ----
  if (cr.stab) {
    const st = form.stabiliser!;
    for (const [fname, p] of [["stab_a", cr.stab.a], ["stab_b", cr.stab.b]] as const) {
      const pre: K.KStmt[] = [];
      const heads = g.headCoords(pre);
      const vars = new Map<number, K.KExpr>(p.vars.map((v, k) => [v.id, heads[k]]));
      const v = new CudaScope({ model: st.prep, b: K.ref("b"), t: K.ref("t"), vars, prefix: fname }).lower(p.expr, pre);
      g.fn(`fn ${fname}(b: u32, t: u32, h: u32) -> f32`, pre, v);
    }
    const md = model.tensors.find((t) => t.name === st.state)!;
    const ipre: K.KStmt[] = [];
    g.fn(`fn stab_index(b: u32, h: u32) -> u32`, ipre, g.stateIndex(st.state, ipre));
    g.fn(`fn stab_init0() -> f32`, [], md.init ? lowerConst(md.init, { fresh: (p: string) => `smi_${p}` }) : K.f32(0));
    g.fns.push(`fn stab_init(b: u32, h: u32) -> f32 { if (u.${initFlag(st.state)} != 0u) { return ${STATES_IN}[stab_index(b, h)]; } return stab_init0(); }`);
    g.fns.push(`fn stab_final(b: u32, h: u32, v: f32) { ${STATES}[stab_index(b, h)] = v; }`);
  }
  // ---- post: outputs pointwise over (heads, value) from y ----
  {
    const outputs = I.tensorsOfKind(model, "output");
    const body: K.KStmt[] = [];
    // with value columns the walk stores y (V + columns values) and post_out runs after it, reading them back
    const ro = form.readouts[0];
    const yAt = (j: K.KExpr) => K.load(YBUF, K.add(K.mul(K.add(K.mul(K.add(K.mul(K.ref("b"), K.uni("T")), K.ref("t")), K.ref("seqc_H()")), K.ref("h")), K.ref("seqc_V()")), j));
    const local = (tensor: string, idx: K.KExpr[]) => {
      if (tensor === ro.y) return cr.columns ? yAt(K.ref("j")) : K.ref("y", "f32");
      const c = ro.cols.indexOf(tensor);
      if (c >= 0) return yAt(K.add(K.ref("seqc_V0()"), K.u32(c)));
      return g.stabRead(tensor, idx);
    };
    form.post.body.forEach((s, k) => {
      if (s.k !== "output") return;
      const pre: K.KStmt[] = [];
      const hk = g.headCoords(pre);
      const vars = new Map<number, K.KExpr>();
      s.vars.forEach((v, p) => vars.set(v.id, p < form.heads.length ? hk[p] : K.ref("j")));
      const sc = new CudaScope({ model: form.post, b: K.ref("b"), t: K.ref("t"), vars, prefix: `po${k}`, local });
      const v = sc.lower(s.expr, pre);
      const o = outputs.find((x) => x.name === s.target)!;
      const idx = K.add(K.mul(K.add(K.mul(K.ref("b"), K.uni("T")), K.ref("t")), productK(o.shape)), flatIndex(s.vars.map((x) => vars.get(x.id)!), o.shape));
      body.push(...pre, K.store(outputBuffer(o.name), idx, v));
    });
    if (cr.columns) {
      g.fns.push(renderWgslFunction(`fn post_out(b: u32, t: u32, h: u32, j: u32)`, body, undefined, g.used));
      g.fns.push(`fn post(b: u32, t: u32, h: u32, j: u32, y: f32) { ${YBUF}[((b * u.T + t) * seqc_H() + h) * seqc_V() + j] = y; }`);
    } else g.fns.push(renderWgslFunction(`fn post(b: u32, t: u32, h: u32, j: u32, y: f32)`, body, undefined, g.used));
  }
  // which model tensors the functions touch
  const text = g.fns.join("\n");
  const reads = new Set<string>();
  const writes = new Set<string>();
  for (const t of model.tensors) {
    if (t.kind === "input" && new RegExp(`\\bin_${t.name}\\[`).test(text)) reads.add(t.name);
    if (t.kind === "output") writes.add(t.name);
  }
  return { functions: g.fns, used: g.used, reads, writes };
}

const ONE = (x: RowPart): RowPart => ({ ...x, expr: { k: "num", value: 1 }, vars: x.vars.slice(0, -1) });

function loopExt(e: I.Extent): string {
  return e.kind === "lit" ? `${e.value}u` : `D_${e.name}`;
}

