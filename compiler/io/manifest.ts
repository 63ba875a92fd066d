/**
 * Golden-manifest I/O and binding (format: /work/shared/golden/README.md, copied in test/fixtures/golden/).
 *
 * A case is `<case>.json` (manifest) + `<case>.bin` (little-endian values, row-major). Every tensor has a
 * `role` (input, param, initial_state, output, final_state), a stored `shape` and a `layout` naming each
 * axis: `batch`, `time`, `_` (a size-1 axis to drop) or a model dim label.
 *
 * This module turns a manifest into the interpreter's canonical layouts (inputs [B,T,...shape], params
 * [...shape], states [B,...shape], outputs [B,T,...shape]) and back. Plain functions, no I/O except in
 * readCase/writeCase, so that every backend (cpu, webgpu, cuda) binds tensors the same way.
 */
import { readFileSync, writeFileSync } from "node:fs";
import type { Model, TensorDecl, Extent } from "../ir/types.ts";
import type { RunInputs, RunResult } from "../ir/interpret.ts";
import { UserError } from "../cli/errors.ts";

export type Role = "input" | "param" | "initial_state" | "output" | "final_state";
const ROLES: Role[] = ["input", "param", "initial_state", "output", "final_state"];

export interface ManifestTensor {
  shape: number[];
  role: Role;
  offset: number;
  length: number;
  layout?: string[];
  /** initial_state / final_state: the name of the model state. */
  state?: string;
}

export interface Manifest {
  case: string;
  dtype: string;
  tensors: Record<string, ManifestTensor>;
  [extra: string]: unknown;
}

export interface Case {
  manifest: Manifest;
  /** Every tensor of the manifest, as stored (float64). */
  data: Record<string, Float64Array>;
}

/** The `.bin` that goes with a manifest path. */
export const binPathOf = (jsonPath: string): string => jsonPath.replace(/\.json$/i, "") + ".bin";

const product = (xs: number[]): number => xs.reduce((a, b) => a * b, 1);

/** Read `<case>.json` and its `.bin`. */
export function readCase(jsonPath: string): Case {
  let manifest: Manifest;
  try {
    manifest = JSON.parse(readFileSync(jsonPath, "utf8")) as Manifest;
  } catch (e) {
    throw new UserError(`cannot read manifest '${jsonPath}': ${(e as Error).message}`);
  }
  let raw: Buffer;
  const bin = binPathOf(jsonPath);
  try {
    raw = readFileSync(bin);
  } catch (e) {
    throw new UserError(`cannot read tensor data '${bin}': ${(e as Error).message}`);
  }
  return { manifest, data: decodeTensors(manifest, raw) };
}

/** Validate a manifest's structure and cut its tensors out of the raw `.bin` bytes. */
export function decodeTensors(manifest: Manifest, raw: Uint8Array): Record<string, Float64Array> {
  if (!manifest || typeof manifest !== "object" || !manifest.tensors || typeof manifest.tensors !== "object") {
    throw new UserError(`manifest has no 'tensors' object`);
  }
  const dtype = manifest.dtype ?? "float64";
  const width = dtype === "float64" ? 8 : dtype === "float32" ? 4 : 0;
  if (!width) throw new UserError(`manifest dtype '${dtype}' is not supported (float64 or float32)`);
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const data: Record<string, Float64Array> = {};
  for (const [name, t] of Object.entries(manifest.tensors)) {
    if (!ROLES.includes(t.role)) throw new UserError(`tensor '${name}': unknown role '${t.role}' (one of ${ROLES.join(", ")})`);
    if (!Array.isArray(t.shape) || t.shape.some((s) => !Number.isInteger(s) || s < 0)) throw new UserError(`tensor '${name}': 'shape' must be a list of sizes`);
    if (t.layout && (!Array.isArray(t.layout) || t.layout.length !== t.shape.length)) {
      throw new UserError(`tensor '${name}': layout [${t.layout}] has ${t.layout?.length} axes but shape [${t.shape.join(", ")}] has ${t.shape.length}`);
    }
    const n = product(t.shape);
    const length = t.length ?? n;
    if (length !== n) throw new UserError(`tensor '${name}': length ${length} does not match shape [${t.shape.join(", ")}] (${n} elements)`);
    const offset = t.offset ?? 0;
    if (offset < 0 || offset + n * width > raw.byteLength) {
      throw new UserError(`tensor '${name}': bytes ${offset}..${offset + n * width} lie outside the .bin file (${raw.byteLength} bytes)`);
    }
    const out = new Float64Array(n);
    for (let i = 0; i < n; i++) out[i] = width === 8 ? view.getFloat64(offset + 8 * i, true) : view.getFloat32(offset + 4 * i, true);
    data[name] = out;
  }
  return data;
}

/** One tensor to write into a result case. */
export interface OutTensor {
  name: string;
  role: Role;
  shape: number[];
  layout: string[];
  state?: string;
  data: Float64Array;
}

/** Write `<case>.json` + `<case>.bin` (float64 little-endian), tensors in the given order. */
export function writeCase(jsonPath: string, caseName: string, tensors: OutTensor[], extra: Record<string, unknown> = {}): void {
  const total = tensors.reduce((a, t) => a + t.data.length, 0);
  const buf = Buffer.alloc(total * 8);
  const entries: Record<string, unknown> = {};
  let offset = 0;
  for (const t of tensors) {
    for (let i = 0; i < t.data.length; i++) buf.writeDoubleLE(t.data[i], offset + 8 * i);
    entries[t.name] = { shape: t.shape, role: t.role, layout: t.layout, ...(t.state !== undefined ? { state: t.state } : {}), offset, length: t.data.length };
    offset += t.data.length * 8;
  }
  const manifest = { case: caseName, ...extra, dtype: "float64", byte_order: "little-endian", memory_order: "row-major (C order)", tensors: entries };
  writeFileSync(binPathOf(jsonPath), buf);
  writeFileSync(jsonPath, JSON.stringify(manifest, null, 1) + "\n");
}

// ---------------------------------------------------------------------------------------------
// Binding a manifest to a model

/** How one stored tensor maps onto the canonical layout of the model tensor it is bound to. */
export interface TensorPlan {
  name: string;
  role: Role;
  /** The model tensor (input, param, state or output). */
  decl: TensorDecl;
  shape: number[];
  layout: string[];
  /** 'axes': each model axis of the stored tensor is one declared axis (`perm[k]` = declared axis of stored model axis k); 'reshape': row-major reshape. */
  mode: "axes" | "reshape";
  perm: number[];
}

export interface Binding {
  model: Model;
  dims: Record<string, number>;
  batch: number;
  time: number;
  plans: TensorPlan[];
  /** Ready for interpret() and the other backends. */
  run: RunInputs;
}

const hasBatch = (r: Role) => r !== "param";
const hasTime = (r: Role) => r === "input" || r === "output";
const kindOfRole: Record<Role, TensorDecl["kind"]> = { input: "input", param: "param", initial_state: "state", final_state: "state", output: "output" };

/** The layout a tensor is assumed to have when the manifest gives none: the canonical one. */
function defaultLayout(role: Role, decl: TensorDecl): string[] {
  const axes = decl.shape.map((e) => (e.kind === "dim" ? e.name : String(e.value)));
  return [...(hasBatch(role) ? ["batch"] : []), ...(hasTime(role) ? ["time"] : []), ...axes];
}

function modelTensor(model: Model, name: string, t: ManifestTensor): TensorDecl {
  const kind = kindOfRole[t.role];
  const target = t.role === "initial_state" || t.role === "final_state" ? (t.state ?? name) : name;
  const decl = model.tensors.find((d) => d.name === target && d.kind === kind);
  if (decl) return decl;
  const names = model.tensors.filter((d) => d.kind === kind).map((d) => d.name);
  const what = kind === "state" ? `state '${target}' (of ${t.role.replace("_", " ")} '${name}')` : `${kind} '${name}'`;
  throw new UserError(`${what} is not ${kind === "input" ? "an" : "a"} ${kind} of model ${model.name} (${kind}s: ${names.join(", ") || "none"})`);
}

/** Decide how the stored axes map onto the declared shape. */
function planTensor(model: Model, name: string, t: ManifestTensor): TensorPlan {
  const decl = modelTensor(model, name, t);
  const layout = t.layout ?? defaultLayout(t.role, decl);
  const count = (label: string) => layout.filter((l) => l === label).length;
  const where = `${t.role.replace("_", " ")} '${name}'`;
  for (const [label, want] of [["batch", hasBatch(t.role)], ["time", hasTime(t.role)]] as const) {
    if (count(label) > 1) throw new UserError(`${where}: layout [${layout}] has more than one '${label}' axis`);
    if (count(label) !== (want ? 1 : 0)) throw new UserError(`${where}: layout [${layout}] must ${want ? "have" : "not have"} a '${label}' axis`);
  }
  layout.forEach((l, i) => {
    if (l === "_" && t.shape[i] !== 1) throw new UserError(`${where}: axis ${i} is '_' (size 1 to drop) but has size ${t.shape[i]}`);
  });
  const labels = layout.filter((l) => l !== "batch" && l !== "time" && l !== "_");
  const declNames = decl.shape.map((e) => (e.kind === "dim" ? e.name : undefined));
  if (labels.length !== decl.shape.length) return { name, role: t.role, decl, shape: t.shape, layout, mode: "reshape", perm: [] };
  // Labels that are exactly a permutation of the declared dims: bind by label; otherwise axes map in order.
  const byLabel = new Set(labels).size === labels.length && declNames.every((n) => n !== undefined) && labels.every((l) => declNames.includes(l));
  const perm = labels.map((l, k) => (byLabel ? declNames.indexOf(l) : k));
  return { name, role: t.role, decl, shape: t.shape, layout, mode: "axes", perm };
}

/** The expected shape of a stored tensor, in its own layout, for error messages: `[B, T, H=2, K=16] (layout ...)`. */
function expectedText(p: TensorPlan, dims: Record<string, number>): string {
  const ext = (e: Extent) => (e.kind === "lit" ? String(e.value) : dims[e.name] !== undefined ? `${e.name}=${dims[e.name]}` : e.name);
  if (p.mode === "reshape") {
    const parts: string[] = [];
    for (const l of p.layout) if (l === "batch") parts.push("B"); else if (l === "time") parts.push("T"); else if (l === "_") parts.push("1");
    const declared = `[${p.decl.shape.map(ext).join(", ")}]`;
    const known = p.decl.shape.every((e) => e.kind === "lit" || dims[e.name] !== undefined);
    const n = known ? ` = ${product(p.decl.shape.map((e) => (e.kind === "lit" ? e.value : dims[e.name])))} elements` : "";
    return `${parts.length ? `[${parts.join(", ")}] and ` : ""}axes holding ${declared}${n} (layout ${p.layout.join(",")})`;
  }
  let k = 0;
  const parts = p.layout.map((l) => (l === "batch" ? "B" : l === "time" ? "T" : l === "_" ? "1" : ext(p.decl.shape[p.perm[k++]])));
  return `[${parts.join(", ")}] (layout ${p.layout.join(",")})`;
}

function shapeError(p: TensorPlan, dims: Record<string, number>, extra = ""): UserError {
  return new UserError(`${p.role.replace("_", " ")} '${p.name}': expected ${expectedText(p, dims)}, got [${p.shape.join(", ")}]${extra}`);
}

/** Parse `K=16,V=24`. */
export function parseDims(text: string | undefined): Record<string, number> {
  const dims: Record<string, number> = {};
  if (!text) return dims;
  for (const part of text.split(",").map((s) => s.trim()).filter(Boolean)) {
    const m = /^([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(\d+)$/.exec(part);
    if (!m || Number(m[2]) < 1) throw new UserError(`--dims: '${part}' is not NAME=SIZE (e.g. --dims K=16,V=24)`);
    dims[m[1]] = Number(m[2]);
  }
  return dims;
}

/** A vote for a dim's (or B/T's) size, remembered to pick the majority value. */
type Votes = Map<string, Map<number, number>>;
function vote(votes: Votes, key: string, size: number): void {
  const m = votes.get(key) ?? new Map<number, number>();
  m.set(size, (m.get(size) ?? 0) + 1);
  votes.set(key, m);
}
function winner(m: Map<number, number>): number {
  let best = -1, n = -1;
  for (const [v, c] of m) if (c > n) { best = v; n = c; }
  return best;
}

/**
 * Bind a case to a model: match tensors by name and role, infer dims, B and T, check every shape
 * (UserError naming the tensor, the expected and the given shape), and permute/reshape the fed
 * tensors to canonical layouts.
 */
export function bindCase(model: Model, c: Case, givenDims: Record<string, number> = {}): Binding {
  const plans = Object.entries(c.manifest.tensors).map(([name, t]) => planTensor(model, name, t));
  const dims: Record<string, number> = {};
  for (const [k, v] of Object.entries(givenDims)) {
    const d = model.dims.find((x) => x.name === k);
    if (!d) throw new UserError(`--dims ${k}=${v}: model ${model.name} has no dim '${k}' (dims: ${model.dims.map((x) => x.name).join(", ") || "none"})`);
    if (d.fixed !== undefined && d.fixed !== v) throw new UserError(`--dims ${k}=${v}: dim ${k} of model ${model.name} is fixed to ${d.fixed}`);
    dims[k] = v;
  }
  for (const d of model.dims) if (d.fixed !== undefined) dims[d.name] = d.fixed;

  // Votes: B and T from every tensor, dims from axis-mapped tensors, then from reshaped tensors' labels.
  const votes: Votes = new Map();
  const labelVotes: Votes = new Map();
  for (const p of plans) {
    let k = 0;
    p.layout.forEach((l, i) => {
      if (l === "batch") vote(votes, "#B", p.shape[i]);
      else if (l === "time") vote(votes, "#T", p.shape[i]);
      else if (l !== "_") {
        if (p.mode === "axes") {
          const e = p.decl.shape[p.perm[k]];
          if (e.kind === "dim") vote(votes, e.name, p.shape[i]);
        } else if (model.dims.some((d) => d.name === l)) vote(labelVotes, l, p.shape[i]);
        k++;
      }
    });
  }
  for (const [key, m] of votes) if (!key.startsWith("#") && dims[key] === undefined) dims[key] = winner(m);
  for (const [key, m] of labelVotes) if (dims[key] === undefined) dims[key] = winner(m);
  const batch = votes.has("#B") ? winner(votes.get("#B")!) : 1;
  const time = votes.has("#T") ? winner(votes.get("#T")!) : 1;
  for (const d of model.dims) if (d.sequenceDefault && dims[d.name] === undefined) dims[d.name] = time;

  // A reshaped tensor with exactly one unknown dim determines it by its element count.
  for (const p of plans) {
    if (p.mode !== "reshape") continue;
    const unknown = [...new Set(p.decl.shape.filter((e) => e.kind === "dim" && dims[e.name] === undefined).map((e) => (e as { name: string }).name))];
    if (unknown.length !== 1) continue;
    const mult = p.decl.shape.filter((e) => e.kind === "dim" && e.name === unknown[0]).length;
    const rest = product(p.decl.shape.map((e) => (e.kind === "lit" ? e.value : dims[e.name] ?? 1)));
    const modelCount = product(p.layout.map((l, i) => (l === "batch" || l === "time" || l === "_" ? 1 : p.shape[i])));
    const v = Math.round(Math.pow(modelCount / rest, 1 / mult));
    if (v >= 1 && rest * Math.pow(v, mult) === modelCount) dims[unknown[0]] = v;
  }

  // Check every tensor against the decided sizes.
  for (const p of plans) {
    let k = 0;
    let ok = true;
    p.layout.forEach((l, i) => {
      if (l === "batch") ok &&= p.shape[i] === batch;
      else if (l === "time") ok &&= p.shape[i] === time;
      else if (l !== "_") {
        if (p.mode === "axes") {
          const e = p.decl.shape[p.perm[k]];
          ok &&= p.shape[i] === (e.kind === "lit" ? e.value : dims[e.name]);
        }
        k++;
      }
    });
    if (!ok) throw shapeError(p, dims, batchTimeNote(p, batch, time));
    if (p.mode === "reshape") {
      const unknown = p.decl.shape.find((e) => e.kind === "dim" && dims[e.name] === undefined);
      if (unknown) continue; // reported below as an unbound dim
      const want = product(p.decl.shape.map((e) => (e.kind === "lit" ? e.value : dims[e.name])));
      const have = product(p.layout.map((l, i) => (l === "batch" || l === "time" || l === "_" ? 1 : p.shape[i])));
      if (want !== have) throw shapeError(p, dims, ` (${have} elements per ${hasTime(p.role) ? "step" : hasBatch(p.role) ? "sequence" : "tensor"})`);
    }
  }
  const unbound = model.dims.filter((d) => dims[d.name] === undefined).map((d) => d.name);
  if (unbound.length) throw new UserError(`cannot infer the size of dim${unbound.length > 1 ? "s" : ""} ${unbound.join(", ")} of model ${model.name} from the tensors; give ${unbound.length > 1 ? "them" : "it"} with --dims ${unbound.map((n) => `${n}=...`).join(",")}`);

  // Required tensors.
  const fed = new Set(plans.filter((p) => p.role === "input" || p.role === "param").map((p) => p.decl.name));
  for (const d of model.tensors) {
    if ((d.kind === "input" || d.kind === "param") && !d.init && !fed.has(d.name)) {
      const canon = d.shape.map((e) => (e.kind === "lit" ? String(e.value) : `${e.name}=${dims[e.name]}`));
      const shape = d.kind === "input" ? ["B", "T", ...canon] : canon;
      throw new UserError(`missing ${d.kind} '${d.name}' of shape [${shape.join(", ")}] (layout ${d.kind === "input" ? "batch,time," : ""}${d.shape.map((e) => (e.kind === "dim" ? e.name : e.value)).join(",")}): model ${model.name} requires it`);
    }
  }
  const seen = new Map<string, string>();
  for (const p of plans) {
    if (p.role === "output") continue;
    const key = `${p.role}:${p.decl.name}`;
    if (seen.has(key)) throw new UserError(`${p.role.replace("_", " ")} '${p.name}' and '${seen.get(key)}' both bind ${p.decl.kind} '${p.decl.name}'`);
    seen.set(key, p.name);
  }

  const run: RunInputs = { dims, batch, time, inputs: {}, params: {}, initialState: {} };
  for (const p of plans) {
    const canonical = toCanonical(p, c.data[p.name], dims, batch, time);
    if (p.role === "input") run.inputs[p.decl.name] = canonical;
    else if (p.role === "param") run.params![p.decl.name] = canonical;
    else if (p.role === "initial_state") run.initialState![p.decl.name] = canonical;
  }
  return { model, dims, batch, time, plans, run };
}

function batchTimeNote(p: TensorPlan, batch: number, time: number): string {
  const i = p.layout.indexOf("batch");
  const j = p.layout.indexOf("time");
  const notes: string[] = [];
  if (i >= 0 && p.shape[i] !== batch) notes.push(`B=${batch}`);
  if (j >= 0 && p.shape[j] !== time) notes.push(`T=${time}`);
  return notes.length ? ` (the other tensors have ${notes.join(", ")})` : "";
}

/** Canonical strides of the stored axes: for each stored axis, the stride it has in the canonical array. */
function canonicalStrides(p: TensorPlan, dims: Record<string, number>, time: number): number[] {
  const declSizes = p.decl.shape.map((e) => (e.kind === "lit" ? e.value : dims[e.name]));
  const inner = product(declSizes);
  const declStrides = declSizes.map((_, i) => product(declSizes.slice(i + 1)));
  const tStride = inner;
  const bStride = hasTime(p.role) ? time * inner : inner;
  // reshape: the stored model axes flatten row-major (in stored order) into the declared block
  const modelAxes = p.layout.map((l, i) => ({ l, i })).filter(({ l }) => l !== "batch" && l !== "time" && l !== "_");
  const flatStride = new Map<number, number>();
  modelAxes.forEach(({ i }, k) => flatStride.set(i, product(modelAxes.slice(k + 1).map(({ i: j }) => p.shape[j]))));
  let k = 0;
  return p.layout.map((l, i) => {
    if (l === "batch") return bStride;
    if (l === "time") return tStride;
    if (l === "_") return 0;
    const s = p.mode === "axes" ? declStrides[p.perm[k]] : flatStride.get(i)!;
    k++;
    return s;
  });
}

/** Visit every element of a row-major array of `shape`, giving its flat index and its offset under `strides`. */
function eachOffset(shape: number[], strides: number[], f: (flat: number, off: number) => void): void {
  const n = product(shape);
  const idx = new Array<number>(shape.length).fill(0);
  let off = 0;
  for (let flat = 0; flat < n; flat++) {
    f(flat, off);
    for (let a = shape.length - 1; a >= 0; a--) {
      idx[a]++;
      off += strides[a];
      if (idx[a] < shape[a]) break;
      off -= strides[a] * shape[a];
      idx[a] = 0;
    }
  }
}

/** Stored layout -> canonical layout of the bound model tensor. */
export function toCanonical(p: TensorPlan, stored: Float64Array, dims: Record<string, number>, batch: number, time: number): Float64Array {
  const out = new Float64Array(stored.length);
  eachOffset(p.shape, canonicalStrides(p, dims, time), (flat, off) => {
    out[off] = stored[flat];
  });
  return out;
}

/** Canonical layout -> the stored layout of plan `p`. */
export function fromCanonical(p: TensorPlan, canonical: Float64Array, dims: Record<string, number>, batch: number, time: number): Float64Array {
  const out = new Float64Array(product(p.shape));
  eachOffset(p.shape, canonicalStrides(p, dims, time), (flat, off) => {
    out[flat] = canonical[off];
  });
  return out;
}

/**
 * The result tensors of a run, in the manifest's layouts: every `output` and `final_state` tensor of the
 * case, with the same names. A case that lists none gets every model output and final state in
 * canonical layout.
 */
export function resultTensors(b: Binding, result: RunResult): OutTensor[] {
  const wanted = b.plans.filter((p) => p.role === "output" || p.role === "final_state");
  if (wanted.length) {
    return wanted.map((p) => {
      const canonical = p.role === "output" ? result.outputs[p.decl.name] : result.finalState[p.decl.name];
      const out: OutTensor = { name: p.name, role: p.role, shape: p.shape, layout: p.layout, data: fromCanonical(p, canonical, b.dims, b.batch, b.time) };
      if (p.role === "final_state") out.state = p.decl.name;
      return out;
    });
  }
  const size = (d: TensorDecl) => d.shape.map((e) => (e.kind === "lit" ? e.value : b.dims[e.name]));
  const axes = (d: TensorDecl) => d.shape.map((e) => (e.kind === "dim" ? e.name : String(e.value)));
  const outs: OutTensor[] = [];
  for (const d of b.model.tensors) {
    if (d.kind === "output") outs.push({ name: d.name, role: "output", shape: [b.batch, b.time, ...size(d)], layout: ["batch", "time", ...axes(d)], data: result.outputs[d.name] });
  }
  for (const d of b.model.tensors) {
    if (d.kind === "state") outs.push({ name: `final_${d.name}`, role: "final_state", state: d.name, shape: [b.batch, ...size(d)], layout: ["batch", ...axes(d)], data: result.finalState[d.name] });
  }
  return outs;
}

/** ||a - b|| / ||b|| (0 when both are zero). */
export function relativeError(a: Float64Array, b: Float64Array): number {
  if (a.length !== b.length) return Infinity;
  let num = 0, den = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i] - b[i]) ** 2;
    den += b[i] ** 2;
  }
  if (den === 0) return num === 0 ? 0 : Infinity;
  return Math.sqrt(num / den);
}
