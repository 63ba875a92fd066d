/**
 * The chunked backward's stateless parts without their copies and zeros, as the torch target runs them
 * (runtime/torch/seqc_chunked.py does the rest in its glue):
 *   - prep's copies of inputs (`kk1[h,i] = k[h,i]`): the glue takes the input itself for the output and adds the
 *     output's adjoint to the input's (the copy's backward is the identity); prep's backward is built from the prep
 *     that is left;
 *   - a backward model of prep or post whose outputs are all 0 (`q__bar = 0`: post reads q only through the core) or
 *     copies of its inputs (`y0__bar = o__bar`) does not run: the glue takes the copies (zeros contribute nothing).
 * Why: these parts run the backend-neutral sequential lowering over [B*T, 1], whose threads are the elements of one
 * axis set (H*K for SimpleGLA), so an output over other axes (vv2[h,j]) is written by every thread of its head. On the
 * H100 at B=8 T=2048 H=16 K=V=64 SimpleGLA's prep and prep's backward took 0.54 and 0.53 ms, post's backward 0.18 ms
 * plus the glue's adds of its four zero tensors, for three copies and a scaling (q3 = q K^-0.5), and zeros and a copy.
 */
import * as I from "../../ir/types.ts";
import { buildBackward } from "../../grad/backward.ts";
import type { Chain } from "../../grad/chunked-chain.ts";
import type { ChainBarNames, ChainNames } from "../../../runtime/chunked-backward.ts";

/** {output: input} for each output that is, element for element, one of the model's inputs: a top-level
 * `out[a,b,..] = x[a,b,..]`, the same index variables in the same order over the same shape, x a required input (an
 * absent optional input reads its default), out assigned nowhere else. */
export function copiedOutputs(m: I.Model): Record<string, string> {
  const count = assignCounts(m);
  const out: Record<string, string> = {};
  for (const s of m.body) {
    if (s.k !== "output" || count.get(s.target) !== 1 || s.expr.k !== "read") continue;
    const src = I.findTensor(m, s.expr.tensor);
    const dst = I.findTensor(m, s.target);
    if (!src || !dst || src.kind !== "input" || src.init !== undefined) continue;
    const idx = s.expr.idx;
    if (idx.length !== s.vars.length || src.shape.length !== dst.shape.length) continue;
    if (!idx.every((x, i) => x.kind === "var" && x.v.id === s.vars[i].id)) continue;
    if (!src.shape.every((e, i) => I.sameExtent(e, dst.shape[i], m.dims))) continue;
    out[s.target] = src.name;
  }
  return out;
}

/** Outputs assigned the literal 0 once, at the top level. */
export function zeroOutputs(m: I.Model): string[] {
  const count = assignCounts(m);
  return m.body.filter((s) => s.k === "output" && count.get(s.target) === 1 && s.expr.k === "num" && s.expr.value === 0).map((s) => (s as { target: string }).target);
}

function assignCounts(m: I.Model): Map<string, number> {
  const count = new Map<string, number>();
  const walk = (ss: I.Stmt[]) => {
    for (const s of ss) {
      if (s.k === "for") walk(s.body);
      else count.set(s.target, (count.get(s.target) ?? 0) + 1);
    }
  };
  walk(m.body);
  return count;
}

function reads(e: I.Expr, into: Set<string>): void {
  switch (e.k) {
    case "read":
    case "has":
      into.add(e.tensor);
      return;
    case "call":
      for (const a of e.args) reads(a, into);
      return;
    case "bin":
      reads(e.a, into);
      reads(e.b, into);
      return;
    case "neg":
      reads(e.a, into);
      return;
    case "sum":
      reads(e.body, into);
      return;
    default:
      return;
  }
}

/** The model without the outputs `drop` and without the inputs nothing else reads. */
export function withoutOutputs(m: I.Model, drop: Set<string>): I.Model {
  const keep = (ss: I.Stmt[]): I.Stmt[] => ss.filter((s) => s.k === "for" || !drop.has(s.target)).map((s) => (s.k === "for" ? { ...s, body: keep(s.body) } : s));
  const body = keep(m.body);
  const used = new Set<string>();
  const walk = (ss: I.Stmt[]) => {
    for (const s of ss) {
      if (s.k === "for") walk(s.body);
      else reads(s.expr, used);
    }
  };
  walk(body);
  for (const t of m.tensors) if (t.init) reads(t.init, used);
  const tensors = m.tensors.filter((t) => !drop.has(t.name) && (t.kind !== "input" || used.has(t.name)));
  return { ...m, tensors, body };
}

/** prep without its copies of inputs (unchanged where it has none, or nothing else). */
export function withoutAliases(prep: I.Model, aliases: Record<string, string>): I.Model {
  return withoutOutputs(prep, new Set(Object.keys(aliases)));
}

/** A backward model's names in a torch module; with `skip` the model does not run: `copies` {bar output: the model's
 * input it equals} the glue takes from its inputs, zero outputs are in none of the maps (no contribution). */
/** `zeros`: (a part that runs) its outputs that are the literal 0 (still in inputBar / paramBar: the plan's float32
 * forms write them; seqc_chunked.py ZERO_STORES "skip" leaves them out of the sums and may run forms that do not write
 * them, stateless-bf16.ts "-nz"). */
export type TorchBarNames = ChainBarNames & { copies?: Record<string, string>; skip?: boolean; zeros?: string[] };

/** The chain's names in a torch module: `prepAliases` {prep output: input} are prep's copies of inputs, which prep and
 * its backward leave out (prepOutputs and prepBw name the rest); prepBw and postBw as TorchBarNames. */
export type TorchChainNames = Omit<ChainNames, "prepBw" | "postBw"> & { prepAliases?: Record<string, string>; prepBw: TorchBarNames; postBw: TorchBarNames };

/** A stateless backward model whose outputs are all zeros or copies: none (`skip`), the glue takes the copies. Others
 * stay whole: without some of its outputs the sequential lowering may pick a worse thread layout for the rest (Mamba-2's
 * post backward without its zeros, x__bar = y__bar D and D__bar = sum(p) y__bar x left, took 31 ms on the H100 at
 * B*T = 16384 against 0.47 ms whole); their copies are named all the same (`copies` without `skip`: Mamba-2's
 * y0__bar = y__bar), so the glue may take the input for the plan's output (seqc_chunked.py RUN_COPIES: the bf16
 * cotangent as it is, where the plan wrote a float32 copy of it). */
function trimBar(model: I.Model, names: ChainBarNames): { model: I.Model | undefined; names: TorchBarNames } {
  const zeros = new Set(zeroOutputs(model));
  const copies = copiedOutputs(model);
  const left = I.tensorsOfKind(model, "output").filter((o) => !zeros.has(o.name) && !(o.name in copies));
  if (left.length > 0) return { model, names: { ...names, ...(Object.keys(copies).length ? { copies } : {}), ...(zeros.size ? { zeros: [...zeros].sort() } : {}) } };
  const keep = (m: Record<string, string>) => Object.fromEntries(Object.entries(m).filter(([, bar]) => bar in copies));
  return { model: undefined, names: { outputBar: names.outputBar, inputBar: keep(names.inputBar), paramBar: keep(names.paramBar), copies, skip: true } };
}

/** The chain as a torch module runs it (see the file's comment); `dims` as the chain's. A stabilised chain or one with
 * value columns (mLSTM) stays as compiler/grad builds it: runtime/torch/seqc_chunked_stab.py runs every part whole. */
export function torchChain(chain: Chain, dims: Record<string, number>): { names: TorchChainNames; models: Chain["models"] } {
  let names: TorchChainNames = chain.names;
  let models = chain.models;
  if (chain.names.stab || chain.names.columns?.states.length) return { names, models };
  const prep = chain.models.prep;
  const aliases = prep ? copiedOutputs(prep) : {};
  const n = Object.keys(aliases).length;
  if (prep && n > 0 && n < chain.names.prepOutputs.length) {
    const reduced = withoutAliases(prep, aliases);
    const bw = buildBackward(reduced, dims, { paramAdjoints: "output" });
    names = { ...names, prepOutputs: names.prepOutputs.filter((o) => !(o in aliases)), prepBw: { outputBar: bw.outputBar, inputBar: bw.inputBar, paramBar: bw.paramBar }, prepAliases: aliases };
    models = { ...models, prep: reduced, prepBw: bw.model };
  }
  for (const part of ["prepBw", "postBw"] as const) {
    const m = models[part];
    if (!m) continue;
    const t = trimBar(m, names[part]);
    names = { ...names, [part]: t.names };
    models = { ...models, [part]: t.model };
  }
  return { names, models };
}
