/** Render one kernel of the lowered kernel IR as a WGSL compute shader. */
import * as K from "../../kernel/ir.ts";
import { WGSL_MATH } from "./math.ts";

/** A `need(fn)` that checks `fn` has a WGSL spelling and records it (and its dependencies) in `used` when it is a helper. */
function mathNeeds(used: Set<string>): (fn: string) => void {
  const need = (fn: string) => {
    const m = WGSL_MATH[fn];
    if (!m) throw new Error(`no WGSL spelling for function '${fn}'`);
    if (m.helper && !used.has(fn)) {
      used.add(fn);
      m.deps?.forEach(need);
    }
  };
  return need;
}

export function renderWgsl(kernel: K.Kernel, header: string[] = []): string {
  const used = new Set<string>();
  const need = mathNeeds(used);
  const r = new Renderer(need);
  const body = r.stmts(kernel.body, "  ");
  for (const s of kernel.shared) r.expr(s.length);
  const vec4 = K.vec4Arrays(kernel.body);
  for (const s of kernel.shared) if (vec4.has(s.name)) throw new Error(`kernel ${kernel.name}: load4 of workgroup array ${s.name} (only storage buffers)`);
  const lines: string[] = header.map((h) => `// ${h}`);
  if (kernel.needs.includes("subgroups")) lines.push("enable subgroups;");
  lines.push(`struct Uniforms {`);
  const fields = [...kernel.uniforms];
  while (fields.length % 4 !== 0) fields.push(`_pad${fields.length}`);
  for (const f of fields) lines.push(`  ${f}: u32,`);
  lines.push(`}`);
  lines.push(`@group(0) @binding(${kernel.uniformBinding}) var<uniform> u: Uniforms;`);
  for (const b of kernel.buffers) lines.push(`@group(0) @binding(${b.binding}) var<storage, ${b.access}> ${b.name}: array<${vec4.has(b.name) ? "vec4<f32>" : "f32"}>;`);
  if (kernel.stepUniform !== undefined) lines.push(`struct StepIndex {`, `  t: u32,`, `  t0: u32,`, `  t1: u32,`, `  tc: u32,`, `}`, `@group(0) @binding(${kernel.stepUniform}) var<uniform> seq_step: StepIndex;`);
  for (const o of kernel.overrides) lines.push(`override ${o.name}: u32${o.init !== undefined ? ` = ${o.init}u` : ""};`);
  for (const s of kernel.shared) lines.push(`var<workgroup> ${s.name}: array<f32, ${r.expr(s.length)}>;`);
  if (used.has("inf") || used.has("nan") || r.usesInf) {
    need("inf");
    lines.push(`var<private> seq_inf_bits: u32 = 0x7f800000u;`);
  }
  for (const fn of ["log1p", ...Object.keys(WGSL_MATH)]) {
    if (used.has(fn) && WGSL_MATH[fn].helper && !lines.includes(WGSL_MATH[fn].helper!)) lines.push(WGSL_MATH[fn].helper!);
  }
  lines.push(``);
  lines.push(`@compute @workgroup_size(${r.expr(kernel.workgroupSize)})`);
  lines.push(`fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wgid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {`);
  lines.push(`  let wg = wgid.x + nwg.x * (wgid.y + nwg.y * wgid.z);`);
  if (kernel.stepUniform !== undefined) {
    lines.push(`  let ${K.STEP_INDEX} = seq_step.t;`);
    // the block of steps: declared where the body reads it
    for (const [v, f] of [[K.BLOCK_T0, "t0"], [K.BLOCK_T1, "t1"], [K.BLOCK_TC, "tc"]]) if (new RegExp(`\\b${v}\\b`).test(body)) lines.push(`  let ${v} = seq_step.${f};`);
  }
  lines.push(body);
  lines.push(`}`);
  return lines.join("\n") + "\n";
}

class Renderer {
  usesInf = false;
  constructor(private readonly need: (fn: string) => void) {}

  stmts(ss: K.KStmt[], ind: string): string {
    return ss.map((s) => this.stmt(s, ind)).filter((x) => x !== "").join("\n");
  }

  stmt(s: K.KStmt, ind: string): string {
    switch (s.k) {
      case "decl":
        return `${ind}${s.mutable ? "var" : "let"} ${s.name}${s.mutable && !s.init ? `: ${s.t === "vec4f" ? "vec4<f32>" : s.t}` : ""}${s.init ? ` = ${this.expr(s.init)}` : ""};`;
      case "set":
        return `${ind}${s.name} = ${this.expr(s.value)};`;
      case "store":
        return `${ind}${s.array}[${this.expr(s.index)}] = ${this.expr(s.value)};`;
      case "for":
        return `${ind}for (var ${s.v}: u32 = ${this.expr(s.from)}; ${s.v} < ${this.expr(s.to)}; ${s.v} += ${this.expr(s.step)}) {\n${this.stmts(s.body, ind + "  ")}\n${ind}}`;
      case "if":
        return `${ind}if (${this.expr(s.cond)}) {\n${this.stmts(s.then, ind + "  ")}\n${ind}}${s.else ? ` else {\n${this.stmts(s.else, ind + "  ")}\n${ind}}` : ""}`;
      case "barrier":
        // storage: storage-buffer writes of the workgroup become visible to its other invocations too
        return s.storage ? `${ind}storageBarrier();\n${ind}workgroupBarrier();` : `${ind}workgroupBarrier();`;
      case "return":
        return `${ind}return;`;
      case "comment":
        return `${ind}// ${s.text}`;
    }
  }

  expr(e: K.KExpr): string {
    switch (e.k) {
      case "f32":
        return f32Literal(e.v, this);
      case "u32":
        return `${e.v}u`;
      case "bool":
        return String(e.v);
      case "ref":
        return e.name;
      case "uniform":
        return `u.${e.name}`;
      case "load":
      case "load4":
        return `${e.array}[${this.expr(e.index)}]`;
      case "lane":
        return `${this.expr(e.a)}.${"xyzw"[e.i]}`;
      case "bin":
        if (e.op === "min" || e.op === "max") return `${e.op}(${this.expr(e.a)}, ${this.expr(e.b)})`;
        return `(${this.expr(e.a)} ${e.op} ${this.expr(e.b)})`;
      case "neg":
        return `(-${this.expr(e.a)})`;
      case "not":
        return `(!${this.expr(e.a)})`;
      case "cast":
        if (e.to === "vec4f") throw new Error("no cast to vec4f");
        return `${e.to}(${this.expr(e.a)})`;
      case "select":
        return `select(${this.expr(e.else)}, ${this.expr(e.then)}, ${this.expr(e.cond)})`;
      case "inf":
        this.need("inf");
        this.usesInf = true;
        return `seq_inf()`;
      case "call": {
        const m = WGSL_MATH[e.fn];
        if (!m) throw new Error(`no WGSL spelling for function '${e.fn}'`);
        this.need(e.fn);
        return `${m.name}(${e.args.map((a) => this.expr(a)).join(", ")})`;
      }
    }
  }
}

const F32_MAX = 3.4028234663852886e38;

function f32Literal(v: number, r: Renderer): string {
  if (Number.isNaN(v)) {
    r.expr({ k: "call", fn: "nan", args: [] });
    return "seq_nan()";
  }
  const f = Math.fround(v);
  if (!Number.isFinite(f) || Math.abs(v) > F32_MAX) return v > 0 ? r.expr({ k: "inf" }) : `(-${r.expr({ k: "inf" })})`;
  if (Number.isInteger(f) && Math.abs(f) < 1e15) return `${f}.0f`.replace("-", "-");
  let s = f.toPrecision(9);
  if (!s.includes(".") && !s.includes("e")) s += ".0";
  if (s.includes("e") && !s.includes(".")) s = s.replace("e", ".0e");
  return `${s}f`;
}

/**
 * Kernel-IR statements and a result as the body of a WGSL helper function, for hand-written cores that
 * call generated per-model code (the chunked form). `used` collects the math helpers it needs;
 * `wgslMathHelpers(used)` returns their definitions.
 */
export function renderWgslFunction(signature: string, body: K.KStmt[], result: K.KExpr | undefined, used: Set<string>): string {
  const need = mathNeeds(used);
  const r = new Renderer(need);
  const lines = [`${signature} {`, r.stmts(body, "  ")];
  if (result) lines.push(`  return ${r.expr(result)};`);
  lines.push(`}`);
  if (r.usesInf) need("inf");
  return lines.filter((x) => x !== "").join("\n");
}

/** Definitions of the math helpers in `used` (and the private the infinity helpers read). */
export function wgslMathHelpers(used: Set<string>): string[] {
  const out: string[] = [];
  if (used.has("inf") || used.has("nan")) out.push(`var<private> seq_inf_bits: u32 = 0x7f800000u;`);
  for (const fn of ["log1p", ...Object.keys(WGSL_MATH)]) {
    const h = WGSL_MATH[fn].helper;
    if (used.has(fn) && h && !out.includes(h)) out.push(h);
  }
  return out;
}
