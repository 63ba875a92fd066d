/**
 * bf16-input forms of the chunked backward's stateless parts (prep, prep's and post's backward models) for the torch
 * target (issue 6). bf16 tensors run the chain in float32 (runtime/torch/seqc_chunked.py), and these plans read the
 * forward's inputs and the outputs' cotangents: without a form that reads them as they are, backward_eager made a
 * float32 copy of each one first (one pass over the tensor, ~0.03 ms per [8, 2048, 1024] on an H100).
 *
 * Each backend-neutral form of the plan (thread / workgroup / global) gets a twin whose kernels read the named inputs
 * as bf16 words, widened to float32 in registers (render.ts `bf16Reads`: exact), every other input float32, the
 * arithmetic and the outputs float32: io "bf16", out "f32", `bf16Inputs` the names (runtime/cuda/plan.ts
 * CudaFormPlan.bf16Inputs). The twin's variant is `<variant>-bf16in` and its kernels `<kernel>_bf16in`, so float32
 * tensors pick exactly as before (the twins are appended after every float32 form).
 *
 * With `warpSplit` (chain-plans.ts WARP_SPLIT_MODELS), a form whose kernel has a phase summing over a row also gets a
 * warp-split twin `<variant>-bf16in-wr` (stateless-warp.ts: a warp an output element, the row's sum over its lanes),
 * appended after every other form: the runtime's trial timing (seqc_chunked.TUNE_STATELESS) picks among them, and
 * seqc_chunked.STATELESS_WARP False leaves them out.
 *
 * With `unwritten` (output names: a running part's zero and copied outputs, chain-copies.ts `zeros` / `copies`, which
 * the glue does not read under seqc_chunked.ZERO_STORES "skip"), each twin above whose kernels store one of them also
 * gets a twin `<variant>-nz` without those stores (stateless-nz.ts: the phases left without a store removed; the
 * thread layout, chosen on the whole model, is kept) and `unwritten` naming them (CudaFormPlan.unwritten); these come
 * last. Mamba-2's post backward writes 4 zero outputs (B__bar, C__bar: [B*T, H, N] float32 each) and a float32 copy
 * of its cotangent (y0__bar) beside its two outputs that are read.
 *
 * With `rows`, the global form's twin the glue runs (its warp split where it has one) and that twin's `-nz` twin each
 * get row-major twins `<variant>-rm<M>` (stateless-rows.ts: each phase's items walked row by row, M times the rows a
 * block, M in ROW_GROUPS, UNROLL items a thread a pass; bitwise the form they copy), appended after everything else;
 * the glue's trial picks among them (seqc_chunked.STATELESS_ROWS).
 *
 * With `bf16Out` (output names: the low-rank chain's per-token tensors the delta backward's bf16 kernels read, prep's
 * outputs but the log decays and post's backward's readouts' adjoints, chain-plans-lowrank.ts), every twin above whose
 * kernels store one of them gets a twin `<variant>-bf16out` (kernels `<kernel>_bf16out`) storing those outputs as bf16
 * words rounded to nearest even (render.ts `bf16Writes`: bitwise the float32 output converted by torch afterwards), the
 * rest float32: out "bf16", `bf16Outputs` the names (CudaFormPlan.bf16Outputs), appended last. Only a run that asks for
 * bf16 outputs takes them (seqc_chunked_lowrank.LR_DELTA_GLUE "bf16"); a kernel that reads such an output back gets none.
 */
import * as I from "../../ir/types.ts";
import * as K from "../../kernel/ir.ts";
import { lowerModel } from "../../kernel/compile.ts";
import type { CudaLaunch, CudaModelPlan } from "../../../runtime/cuda/plan.ts";
import { genericForm } from "../cuda/plan.ts";
import { renderKernel } from "../cuda/render.ts";
import { warpSplitKernel, WARP_SUM_FN, WARP_SUM_SOURCE } from "./stateless-warp.ts";
import { withoutStores } from "./stateless-nz.ts";
import { ROW_GROUPS, ROWS, rowMajorKernel, timesRows, UNROLL } from "./stateless-rows.ts";
import { fusedVectorKernel, VEC, VEC_FNS, VEC_FUSED, VEC_ROWS, VEC_SOURCE, vectorKernel } from "./stateless-vec.ts";
import { WARP_FUSED, warpFusedKernel } from "./stateless-wfuse.ts";

/** The chunked backward's stateless parts (both chains': runtime/chunked-backward.ts, runtime/chunked-backward-lowrank.ts). */
export const STATELESS_PARTS: ReadonlySet<string> = new Set(["prep", "postBw", "prepBw"]);

/**
 * A chunked backward's stateless part (prep, prepBw, postBw: `part`, its model `m`) with the twins the torch glue picks
 * among, the same for both chains (chain-plans.ts, chain-plans-lowrank.ts): bf16-input twins reading the forward's
 * inputs as bf16 (`forward`'s inputs; post's backward also the outputs' cotangents `outputBars`, never the adjoints of
 * prep's outputs, which the glue computes in float32), their warp splits, the twins leaving `unwritten` unwritten (outputs
 * the glue does not read: its zeros, and with the GLA chain's copies those too) and the global form's row-major twins.
 */
export function statelessTwins(forward: I.Model, part: string, m: I.Model, kept: CudaModelPlan, outputBars: Iterable<string>, unwritten: Iterable<string>, bf16Out: Iterable<string> = [], bf16Bars: Iterable<string> = []): CudaModelPlan {
  const inputs = I.tensorsOfKind(forward, "input").map((t) => t.name);
  const opts = { warpSplit: true, unwritten, rows: true, bf16Out };
  const plan = withBf16Inputs(m, kept, part === "postBw" ? [...inputs, ...outputBars] : inputs, opts);
  const own = new Set(I.tensorsOfKind(m, "input").map((t) => t.name));
  const bars = [...new Set(bf16Bars)].filter((n) => own.has(n)).sort();
  if (part !== "prepBw" || !bars.length || plan === kept) return plan;
  // prep's backward also reading `bars` (adjoints of prep's outputs) as bf16: every twin above again, as BF16_BAR twins
  // (the source after MARK: their kernels alone; the helpers are the plan's already), appended last
  const MARK = "// seqc: the bf16-bar twins\n";
  const more = withBf16Inputs(m, { ...kept, source: MARK }, [...inputs, ...bars], { ...opts, tag: BF16_BAR });
  const src = more.source.slice(more.source.indexOf(MARK) + MARK.length);
  const forms = more.forms.slice(kept.forms.length).map((f) => ({ ...f, bf16Bars: bars, note: `${f.note}; the adjoints ${bars.join(", ")} read as bf16 too` }));
  return { ...plan, source: plan.source + "\n" + src, forms: [...plan.forms, ...forms] };
}

/** Suffix of prep's backward's twins reading the adjoints of prep's outputs (`bf16Bars`: the delta adjoint's bf16
 * gradients, seqc_delta_bwd LR_DELTA_ADJ_OUT) as bf16 too: `<variant>-bf16bar...`, kernels `<kernel>_bf16bar...`. */
export const BF16_BAR = "bf16bar";

/** Suffix of a twin writing its `bf16Out` outputs as bf16 (`<variant>-bf16out`, `<kernel>_bf16out`). */
export const BF16_OUT = "bf16out";

/** Suffix of a twin without the stores of its unwritten outputs (`<variant>-nz`, `<kernel>_nz`; stateless-nz.ts). */
export const NO_ZEROS = "nz";

/** Suffix of a warp-split twin's variant and kernels (`<variant>-bf16in-wr`, `<kernel>_bf16in_wr`; stateless-warp.ts). */
export const WARP = "wr";

/** Suffix of a bf16-input twin's variant and kernels. */
export const BF16_IN = "bf16in";

/**
 * `plan` (lowerCuda(model)'s float32 plan, kept forms) with a bf16-input twin of each backend-neutral form whose kernels
 * read the inputs in `low` (names of the model's inputs) as bf16. Inputs of `low` the model does not have are ignored;
 * none left: the plan as it is.
 */
export function withBf16Inputs(model: I.Model, plan: CudaModelPlan, low: Iterable<string>, opts: { warpSplit?: boolean; unwritten?: Iterable<string>; rows?: boolean; bf16Out?: Iterable<string>; tag?: string } = {}): CudaModelPlan {
  // the twins' suffix (BF16_IN; statelessTwins' BF16_BAR twins another): a kernel's or launch's name in its twin
  const tag = opts.tag ?? BF16_IN;
  const twin = (n: string) => `${n}_${tag}`;
  const own = new Set(I.tensorsOfKind(model, "input").map((t) => t.name));
  const names = [...new Set(low)].filter((n) => own.has(n)).sort();
  if (!names.length) return plan;
  const lowSet = new Set(names);
  const kept = new Set(plan.forms.filter((f) => !f.module && (f.io ?? "f32") === "f32").map((f) => f.variant));
  const sources: string[] = [];
  const forms: CudaModelPlan["forms"] = [];
  // the warp-split twins (WARP_SPLIT): after every other form, so a pick without a trial run is the one before
  const warpForms: CudaModelPlan["forms"] = [];
  const warpSrc: string[] = [];
  // the twins without the stores of unwritten outputs (NO_ZEROS): after everything else
  const ownOut = new Set(I.tensorsOfKind(model, "output").map((t) => t.name));
  const skipSet = new Set([...(opts.unwritten ?? [])].filter((n) => ownOut.has(n)));
  const nzForms: CudaModelPlan["forms"] = [];
  const nzSrc: string[] = [];
  // the row-major twins (stateless-rows.ts ROWS) of the global form's last twins: after everything else
  const rmForms: CudaModelPlan["forms"] = [];
  const rmSrc: string[] = [];
  // their vector twins (stateless-vec.ts VEC_ROWS): after those; then the fused ones (VEC_FUSED)
  const rvForms: CudaModelPlan["forms"] = [];
  const rvSrc: string[] = [];
  const rfForms: CudaModelPlan["forms"] = [];
  // the warp-fused twins of the warp split (stateless-wfuse.ts WARP_FUSED): after those
  const rwForms: CudaModelPlan["forms"] = [];
  // the bf16-output twins (BF16_OUT): every kernel rendered above by its entry, with its reads and the buffers bound to
  // a bf16Out output
  const outSet = new Set([...(opts.bf16Out ?? [])].filter((n) => ownOut.has(n)));
  const rendered = new Map<string, { k: K.Kernel; opts: Parameters<typeof renderKernel>[1]; outs: Set<string> }>();
  let outBufs = new Set<string>();
  const render = (k: K.Kernel, o: NonNullable<Parameters<typeof renderKernel>[1]>) => {
    rendered.set(k.name, { k, opts: o, outs: outBufs });
    return renderKernel(k, o);
  };
  for (const f of lowerModel(model).forms) {
    if (!kept.has(f.plan.variant)) continue;
    const kernels: K.Kernel[] = [];
    const warp: K.Kernel[] = [];
    const warpSources: string[] = [];
    // the NO_ZEROS twins' kernels of the bf16-input twin and of its warp split (undefined: no store left out)
    const nz: (K.Kernel | undefined)[] = [];
    const nzWarp: (K.Kernel | undefined)[] = [];
    const nzSources: string[] = [];
    const nzWarpSources: string[] = [];
    // the row-major versions (rows: the global form's, one kernel) of the twin the glue runs (its warp split where it has
    // one) and of that twin's NO_ZEROS twin
    const rm: { top?: K.Kernel; nz?: K.Kernel; warp?: boolean; reads?: Set<string>; vtop?: K.Kernel; vnz?: K.Kernel; ftop?: K.Kernel; fnz?: K.Kernel; wtop?: K.Kernel; wnz?: K.Kernel } = {};
    for (const k of f.kernels) {
      // the kernel's buffers bound to a low input, by the launches of this form that run it (and to an unwritten output)
      const reads = new Set<string>();
      const skipped = new Set<string>();
      outBufs = new Set<string>();
      for (const l of f.plan.kernels.filter((l) => l.shader === k.name || l.name === k.name)) {
        for (const b of l.bindings) {
          const kb = k.buffers.find((x) => x.binding === b.binding);
          if (kb && b.buffer.kind === "input" && lowSet.has(b.buffer.name)) reads.add(kb.name);
          if (kb && b.buffer.kind === "output" && skipSet.has(b.buffer.name)) skipped.add(kb.name);
          if (kb && b.buffer.kind === "output" && outSet.has(b.buffer.name)) outBufs.add(kb.name);
        }
      }
      const kk: K.Kernel = { ...k, name: twin(k.name) };
      sources.push(render(kk, { bf16Reads: reads }));
      kernels.push(kk);
      // the warp-split twin (stateless-warp.ts): only where the form's kernel has a reducing phase
      const kw = warpSplitKernel(kk, `${kk.name}_${WARP}`);
      if (kw) warpSources.push(render(kw, { bf16Reads: reads, fns: { [WARP_SUM_FN]: WARP_SUM_FN } }));
      warp.push(kw ?? kk);
      const kn = skipped.size ? withoutStores(kk, skipped, `${kk.name}_${NO_ZEROS}`) : undefined;
      if (kn) nzSources.push(render(kn, { bf16Reads: reads }));
      nz.push(kn);
      const kwn = kw && skipped.size ? withoutStores(kw, skipped, `${kw.name}_${NO_ZEROS}`) : undefined;
      if (kwn) nzWarpSources.push(render(kwn, { bf16Reads: reads, fns: { [WARP_SUM_FN]: WARP_SUM_FN } }));
      nzWarp.push(kwn);
      if (opts.rows && f.plan.variant === "global" && f.kernels.length === 1) {
        const split = opts.warpSplit ? kw : undefined;
        const top = split ?? kk;
        const topNz = split ? kwn : kn;
        Object.assign(rm, { reads, warp: Boolean(split), top: rowMajorKernel(top, `${top.name}_${ROWS}`), nz: topNz ? rowMajorKernel(topNz, `${topNz.name}_${ROWS}`) : undefined });
        Object.assign(rm, { vtop: vectorKernel(top, `${top.name}_${VEC_ROWS}`), vnz: topNz ? vectorKernel(topNz, `${topNz.name}_${VEC_ROWS}`) : undefined });
        Object.assign(rm, { ftop: fusedVectorKernel(top, `${top.name}_${VEC_FUSED}`), fnz: topNz ? fusedVectorKernel(topNz, `${topNz.name}_${VEC_FUSED}`) : undefined });
        if (split) Object.assign(rm, { wtop: warpFusedKernel(top, `${top.name}_${WARP_FUSED}`), wnz: topNz ? warpFusedKernel(topNz, `${topNz.name}_${WARP_FUSED}`) : undefined });
      }
    }
    const renamed = { ...f.plan, kernels: f.plan.kernels.map((l) => ({ ...l, shader: twin(l.shader), name: twin(l.name) })) };
    const g = genericForm(renamed, kernels, model);
    if (g.steps.some((s) => s.kind !== "launch" || !(s as CudaLaunch).entry.endsWith(`_${tag}`))) throw new Error(`${model.name} ${f.plan.variant}: a bf16-input twin launches a float32 kernel`);
    forms.push({ ...g, variant: `${f.plan.variant}-${tag}`, io: "bf16", out: "f32", bf16Inputs: names, note: `${g.note}; inputs ${names.join(", ")} read as bf16 (widened in registers), the rest and the outputs float32` });
    if (warpSources.length && warp.length === 1) {
      // one kernel a form (the stateless parts' sequential forms): its warp-split twin as one more form
      const wname = warp[0].name;
      const wg = genericForm({ ...renamed, kernels: renamed.kernels.map((l) => ({ ...l, shader: wname, name: wname })) }, warp, model);
      warpForms.push({ ...wg, variant: `${f.plan.variant}-${tag}-${WARP}`, io: "bf16", out: "f32", bf16Inputs: names, note: `${wg.note}; inputs ${names.join(", ")} read as bf16 (widened in registers), the rest and the outputs float32; row sums split over a warp (stateless-warp.ts)` });
      warpSrc.push(...warpSources);
    }
    // the NO_ZEROS twins: every kernel of the form in its store-less version where it has one
    const skipNames = [...skipSet].sort();
    const nzForm = (launches: typeof renamed.kernels, base: CudaModelPlan["forms"][number], ks: K.Kernel[], nks: (K.Kernel | undefined)[]) => {
      const byOld = new Map(ks.map((k, i) => [k.name, nks[i] ?? k]));
      const ls = launches.map((l) => {
        const k = byOld.get(l.shader);
        return k && k.name !== l.shader ? { ...l, shader: k.name, name: `${l.name}_${NO_ZEROS}` } : l;
      });
      const g0 = genericForm({ ...renamed, kernels: ls }, [...byOld.values()], model);
      return { ...g0, variant: `${base.variant}-${NO_ZEROS}`, io: "bf16" as const, out: "f32" as const, bf16Inputs: names, unwritten: skipNames, note: `${base.note}; outputs ${skipNames.join(", ")} not written (the glue does not read them)` };
    };
    if (nz.some((k) => k)) {
      nzForms.push(nzForm(renamed.kernels, forms[forms.length - 1], kernels, nz));
      nzSrc.push(...nzSources);
    }
    if (opts.warpSplit && warpSources.length && warp.length === 1 && nzWarp.some((k) => k)) {
      nzForms.push(nzForm(renamed.kernels.map((l) => ({ ...l, shader: warp[0].name, name: warp[0].name })), warpForms[warpForms.length - 1], warp, nzWarp));
      nzSrc.push(...nzWarpSources);
    }
    if (opts.rows && rm.top) {
      // the twins the glue runs: the warp split where there is one, and its NO_ZEROS twin where there is one
      const base = rm.warp ? warpForms[warpForms.length - 1] : forms[forms.length - 1];
      const nzBase = nzForms.find((x) => x.variant === `${base.variant}-${NO_ZEROS}`);
      const pairs: [CudaModelPlan["forms"][number], K.Kernel][] = [[base, rm.top]];
      if (nzBase && rm.nz) pairs.push([nzBase, rm.nz]);
      for (const [b, k] of pairs) {
        rmSrc.push(render(k, { bf16Reads: rm.reads!, ...(rm.warp ? { fns: { [WARP_SUM_FN]: WARP_SUM_FN } } : {}) }));
        for (const M of ROW_GROUPS) {
          const steps = b.steps.map((st) => (st.kind === "launch" ? { ...st, entry: k.name } : st));
          rmForms.push({ ...b, variant: `${b.variant}-${ROWS}${M}`, vars: timesRows(b.vars as [string, unknown][], M) as typeof b.vars, steps, note: `${b.note}; items row by row, ${UNROLL} a thread a pass, ${M} times the rows a block (stateless-rows.ts)` });
        }
      }
      // the vector twins of the row-major twins above (stateless-vec.ts), where a phase has a vector version
      const vpairs: [CudaModelPlan["forms"][number], K.Kernel][] = [];
      if (rm.vtop) vpairs.push([base, rm.vtop]);
      if (nzBase && rm.nz && rm.vnz) vpairs.push([nzBase, rm.vnz]);
      // and their fused twins (stateless-vec.ts fusedVectorKernel), where two phases fuse
      const fpairs: [CudaModelPlan["forms"][number], K.Kernel][] = [];
      if (rm.ftop) fpairs.push([base, rm.ftop]);
      if (nzBase && rm.nz && rm.fnz) fpairs.push([nzBase, rm.fnz]);
      for (const [pairs, list, sfx] of [[vpairs, rvForms, VEC_ROWS], [fpairs, rfForms, VEC_FUSED]] as const) {
        for (const [b, k] of pairs) {
          rvSrc.push(render(k, { bf16Reads: rm.reads!, fns: { ...VEC_FNS, ...(rm.warp ? { [WARP_SUM_FN]: WARP_SUM_FN } : {}) } }));
          for (const M of ROW_GROUPS) {
            const steps = b.steps.map((st) => (st.kind === "launch" ? { ...st, entry: k.name } : st));
            list.push({ ...b, variant: `${b.variant}-${sfx}${M}`, vars: timesRows(b.vars as [string, unknown][], M) as typeof b.vars, steps, note: `${b.note}; items row by row, ${VEC} consecutive a thread as vectors where the checks hold${sfx === VEC_FUSED ? ", phases fused" : ""}, ${M} times the rows a block (stateless-vec.ts)` });
          }
        }
      }
      // the warp-fused twins (stateless-wfuse.ts): the elementwise phases in the warp phase's walk of the row
      const wpairs: [CudaModelPlan["forms"][number], K.Kernel][] = [];
      if (rm.wtop) wpairs.push([base, rm.wtop]);
      if (nzBase && rm.nz && rm.wnz) wpairs.push([nzBase, rm.wnz]);
      for (const [b, k] of wpairs) {
        rmSrc.push(render(k, { bf16Reads: rm.reads!, fns: { [WARP_SUM_FN]: WARP_SUM_FN } }));
        for (const M of ROW_GROUPS) {
          const steps = b.steps.map((st) => (st.kind === "launch" ? { ...st, entry: k.name } : st));
          rwForms.push({ ...b, variant: `${b.variant}-${WARP_FUSED}${M}`, vars: timesRows(b.vars as [string, unknown][], M) as typeof b.vars, steps, note: `${b.note}; the elementwise phases in the warp phase's walk of each row, its sums merged (stateless-wfuse.ts), ${M} times the rows a block` });
        }
      }
    }
  }
  if (!forms.length) return plan;
  // (the warp sum helper ahead of the source, with its other helpers: the kernels follow)
  const ws = opts.warpSplit && warpSrc.length ? "\n" + warpSrc.join("\n\n") + "\n" : "";
  const nzs = nzSrc.length ? "\n" + nzSrc.join("\n\n") + "\n" : "";
  const rms = rmSrc.length ? "\n" + rmSrc.join("\n\n") + "\n" : "";
  const rvs = rvSrc.length ? "\n" + rvSrc.join("\n\n") + "\n" : "";
  const all = [...forms, ...(ws ? warpForms : []), ...nzForms, ...rmForms, ...rvForms, ...rfForms, ...rwForms];
  const out = outSet.size ? bf16OutTwins(all, rendered, [...outSet].sort()) : { forms: [], sources: [] };
  const outs = out.sources.length ? "\n" + out.sources.join("\n\n") + "\n" : "";
  return { ...plan, source: (ws ? WARP_SUM_SOURCE + "\n" : "") + (rvs ? VEC_SOURCE + "\n" : "") + plan.source + "\n" + sources.join("\n\n") + "\n" + ws + nzs + rms + rvs + outs, forms: [...plan.forms, ...all, ...out.forms], ptx: undefined };
}

/** The BF16_OUT twins of `forms` (withBf16Inputs' comment): each form one of whose kernels stores a `names` output gets
 * a twin with every such kernel re-rendered as `<entry>_bf16out` storing those outputs as bf16; a form whose kernel reads
 * one back (render.ts throws) gets none. */
function bf16OutTwins(forms: CudaModelPlan["forms"], rendered: Map<string, { k: K.Kernel; opts: Parameters<typeof renderKernel>[1]; outs: Set<string> }>, names: string[]): { forms: CudaModelPlan["forms"]; sources: string[] } {
  const out: CudaModelPlan["forms"] = [];
  const sources = new Map<string, string>();
  for (const f of forms) {
    const entries = new Map<string, string>();
    let ok = true;
    for (const st of f.steps) {
      if (st.kind !== "launch") continue;
      const e = (st as CudaLaunch).entry;
      const r = rendered.get(e);
      if (!r) {
        ok = false;
        break;
      }
      // the buffers bound to a bf16 output that this kernel still stores to (a "-nz" twin may store none of them)
      const stored = new Set<string>();
      K.walkKStmts(r.k.body, (s) => {
        if (s.k === "store" && r.outs.has(s.array)) stored.add(s.array);
      });
      if (!stored.size) continue;
      const name = `${e}_${BF16_OUT}`;
      if (!sources.has(name)) {
        try {
          sources.set(name, renderKernel({ ...r.k, name }, { ...r.opts, bf16Writes: stored }));
        } catch {
          ok = false;
          break;
        }
      }
      entries.set(e, name);
    }
    if (!ok || !entries.size) continue;
    const steps = f.steps.map((st) => (st.kind === "launch" && entries.has((st as CudaLaunch).entry) ? { ...st, entry: entries.get((st as CudaLaunch).entry)! } : st));
    out.push({ ...f, variant: `${f.variant}-${BF16_OUT}`, out: "bf16", bf16Outputs: names, steps, note: `${f.note}; outputs ${names.join(", ")} written as bf16 (rounded to nearest even)` });
  }
  return { forms: out, sources: [...sources.values()] };
}
