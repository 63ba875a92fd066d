/**
 * Partition analysis: which axes of the per-step tensors (states, lets, outputs) can be split
 * across independent threads or workgroups for the whole sequence.
 *
 * Axes are tied together when a statement writes one and reads another with the same left-hand
 * index (`S[h,i,j] = ... v[h,j]` ties S's axis 2 to... every per-step tensor read at j). An axis
 * read with anything else (a summed index, a loop index, a literal, an index the target does not
 * bind) is blocked: some element needs its neighbours. Each tied group without a blocked member is
 * a partition class; the product of the class extents is the parallelism the sequential form gets
 * on top of the batch. What is left (the local axes) is computed together by one workgroup or thread.
 *
 * A class only splits lanes where the work it splits outweighs the work it replicates: each lane
 * computes every statement whose target has no axis in the lane's classes, so a class that leaves
 * out a state's update makes every one of its lanes redo that state's whole recurrence (a backward
 * model's x_bar[i] beside h_bar[j]: I lanes, each walking the h_bar recurrence). Such a class shares
 * the lanes of an independent class of the same extent (GLA's backward: q_bar's head axis rides on
 * S_bar's), or its axes stay local. Not weighed where the form runs each step as its own launch
 * (`previousStateReadsFree`): a lane then redoes one step, not the sequence.
 */
import * as I from "../ir/types.ts";

export interface PartitionClass {
  id: number;
  extent: I.Extent;
  /** Members: tensor name -> axis. */
  axes: Map<string, number>;
}

export interface Partition {
  /** Unblocked classes, slowest-varying first. */
  classes: PartitionClass[];
  /** For a per-step tensor axis: its class, or undefined when local. */
  classOf(tensor: string, axis: number): PartitionClass | undefined;
  /** Local (non-partitioned) axes of a per-step tensor. */
  localAxes(tensor: string): number[];
  /** Why each blocked group is blocked (for explain). */
  blocked: { tensor: string; axis: number; reason: string }[];
}

const perStep = (t: I.TensorDecl | undefined) => t !== undefined && (t.kind === "state" || t.kind === "let" || t.kind === "output");

export interface PartitionOptions {
  /**
   * Reads of a state before its update in the step (its value from step t-1) neither tie nor block
   * axes: for a form that runs each step as its own launch, where the previous state is in global
   * memory for every element to read. Ignored in models with micro-step loops.
   */
  previousStateReadsFree?: boolean;
}

export function analyzePartition(model: I.Model, opts: PartitionOptions = {}): Partition {
  let hasLoop = false;
  I.walkStmts(model.body, (s) => void (s.k === "for" && (hasLoop = true)));
  const freeOld = opts.previousStateReadsFree === true && !hasLoop;
  const updated = new Set<string>();
  const key = (t: string, a: number) => `${t}#${a}`;
  const parent = new Map<string, string>();
  const find = (k: string): string => {
    let r = k;
    while (parent.get(r) !== r) r = parent.get(r)!;
    parent.set(k, r);
    return r;
  };
  const extentOf = new Map<string, I.Extent>();
  for (const t of model.tensors) {
    if (!perStep(t)) continue;
    t.shape.forEach((e, a) => {
      parent.set(key(t.name, a), key(t.name, a));
      extentOf.set(key(t.name, a), e);
    });
  }
  const union = (a: string, b: string) => parent.set(find(a), find(b));
  const blockedKeys = new Map<string, string>();

  I.walkStmts(model.body, (s) => {
    if (s.k === "for") return;
    const target = s.target;
    I.walkExpr(s.expr, (e) => {
      if (e.k !== "read") return;
      const t = I.findTensor(model, e.tensor);
      if (!perStep(t)) return;
      if (freeOld && t!.kind === "state" && !updated.has(e.tensor)) return;
      e.idx.forEach((ix, q) => {
        const k = key(e.tensor, q);
        const p = ix.kind === "var" ? s.vars.findIndex((v) => v.id === ix.v.id) : -1;
        if (p < 0) {
          const why = ix.kind === "lit" ? `read at the constant index ${ix.value}` : `read with index '${ix.v.name}' that '${target}' does not bind on its left-hand side`;
          if (!blockedKeys.has(k)) blockedKeys.set(k, `${e.tensor}[axis ${q}] ${why} (in the statement for '${target}')`);
        } else union(k, key(target, p));
      });
    });
    if (s.k === "assign") updated.add(target);
  });

  // group keys by root
  const groups = new Map<string, string[]>();
  for (const k of parent.keys()) {
    const r = find(k);
    if (!groups.has(r)) groups.set(r, []);
    groups.get(r)!.push(k);
  }
  const classes: PartitionClass[] = [];
  const blocked: Partition["blocked"] = [];
  const classByKey = new Map<string, PartitionClass>();
  // the work of each statement (element count x reads, unknown dims counted as SIZE_GUESS): a class
  // whose lanes would replicate more work than they split is not split over on its own; it shares the
  // lanes of a class of the same extent that does split (no tensor in both: the two are independent,
  // so lane l takes index l of each), else its axes stay local
  const work = freeOld ? undefined : statementWork(model);
  const tensorsOf = (members: string[]) => new Set(members.map((k) => splitKey(k)[0]));
  const weigh = (members: string[]) => {
    const inClass = tensorsOf(members);
    let split = 0, replicated = 0;
    for (const w of work ?? []) if (inClass.has(w.target)) split += w.work; else replicated += w.work;
    const top = (work ?? []).filter((w) => !inClass.has(w.target)).sort((a, b) => b.work - a.work)[0];
    return { split, replicated, why: `splitting lanes over it would make every lane redo work it does not split (${replicated} against ${split} per step at dims of ${SIZE_GUESS}: statements whose targets have no axis in it, e.g. '${top?.target}')` };
  };
  const block = (members: string[], reason: string) => {
    for (const k of members) {
      const [t, a] = splitKey(k);
      blocked.push({ tensor: t, axis: a, reason });
    }
  };
  const accepted: string[][] = [];
  const replicating: { members: string[]; why: string }[] = [];
  for (const members of groups.values()) {
    const reason = members.map((k) => blockedKeys.get(k)).find((x) => x !== undefined);
    const ts = tensorsOf(members);
    if (reason || ts.size < members.length) {
      block(members, reason ?? `two axes of '${members.map((k) => splitKey(k)[0]).find((t, i, all) => all.indexOf(t) !== i)}' are tied together`);
      continue;
    }
    const w = work ? weigh(members) : undefined;
    if (w && w.replicated > w.split) replicating.push({ members, why: w.why });
    else accepted.push(members);
  }
  const sameExtent = (a: I.Extent, b: I.Extent) => (a.kind === "lit" ? b.kind === "lit" && b.value === a.value : b.kind === "dim" && b.name === a.name);
  for (const r of replicating) {
    const ts = tensorsOf(r.members);
    const host = accepted.find((m) => sameExtent(extentOf.get(m[0])!, extentOf.get(r.members[0])!) && ![...tensorsOf(m)].some((t) => ts.has(t)));
    if (host) host.push(...r.members);
    else block(r.members, r.why);
  }
  for (const members of accepted) {
    const axes = new Map<string, number>();
    for (const k of members) {
      const [t, a] = splitKey(k);
      axes.set(t, a);
    }
    const c: PartitionClass = { id: classes.length, extent: extentOf.get(members[0])!, axes };
    classes.push(c);
    for (const k of members) classByKey.set(k, c);
  }
  // order: classes that are axes of states, by axis position (later axis = faster); others first
  const rank = (c: PartitionClass): number => {
    for (const t of model.tensors) if (t.kind === "state" && c.axes.has(t.name)) return 1 + c.axes.get(t.name)! + model.tensors.indexOf(t) * 0.001;
    let best = 0;
    for (const [, a] of c.axes) best = Math.max(best, a);
    return best * 0.5;
  };
  classes.sort((a, b) => rank(a) - rank(b));
  classes.forEach((c, i) => (c.id = i));
  return {
    classes,
    classOf: (t, a) => classByKey.get(key(t, a)),
    localAxes: (t) => {
      const decl = I.findTensor(model, t);
      if (!decl) return [];
      return decl.shape.map((_, a) => a).filter((a) => !classByKey.has(key(t, a)));
    },
    blocked,
  };
}

/** Size assumed for a dim whose size is not fixed in the model, when weighing work. */
export const SIZE_GUESS = 64;

const sizeOf = (model: I.Model, e: I.Extent): number => (e.kind === "lit" ? e.value : (model.dims.find((d) => d.name === e.name)?.fixed ?? SIZE_GUESS));

function exprWork(model: I.Model, e: I.Expr): number {
  switch (e.k) {
    case "sum": return e.vars.reduce((a, v) => a * sizeOf(model, v.extent), 1) * exprWork(model, e.body);
    case "neg": return exprWork(model, e.a);
    case "bin": return exprWork(model, e.a) + exprWork(model, e.b) + 1;
    case "call": return e.args.reduce((a, x) => a + exprWork(model, x), 1);
    default: return 1;
  }
}

/** Per statement (loops unrolled by their extents): target and work, elements x operations per element. */
function statementWork(model: I.Model): { target: string; work: number }[] {
  const out: { target: string; work: number }[] = [];
  const walk = (body: I.Stmt[], times: number) => {
    for (const s of body) {
      if (s.k === "for") walk(s.body, times * sizeOf(model, s.v.extent));
      else out.push({ target: s.target, work: times * s.vars.reduce((a, v) => a * sizeOf(model, v.extent), 1) * exprWork(model, s.expr) });
    }
  };
  walk(model.body, 1);
  return out;
}

function splitKey(k: string): [string, number] {
  const i = k.lastIndexOf("#");
  return [k.slice(0, i), Number(k.slice(i + 1))];
}
