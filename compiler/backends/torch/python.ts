/**
 * The Python source of one model's torch module: a functional entry, a torch.autograd.Function
 * subclass and an nn.Module over runtime/torch/seqc_torch.py (which runs the plans in
 * <Model>.torch.json). Everything model-specific (names, shapes, defaults, the signature) is spelled
 * out here so the module reads as documentation of the model.
 */
import * as I from "../../ir/types.ts";

const PY_KEYWORDS = new Set(
  "False None True and as assert async await break class continue def del elif else except finally for from global if import in is lambda nonlocal not or pass raise return try while with yield".split(" "),
);
/** A Python identifier for a tensor name (keywords get a trailing underscore). */
export const pyName = (n: string): string => (PY_KEYWORDS.has(n) ? `${n}_` : n);

const shapeOf = (t: I.TensorDecl, lead: string[] = []) => `[${[...lead, ...t.shape.map((e) => (e.kind === "lit" ? String(e.value) : e.name))].join(", ")}]`;

/** A constant default as a Python literal, when the default is a plain number. */
function constDefault(e: I.Expr | undefined): string | undefined {
  if (!e) return undefined;
  if (e.k === "num") return Number.isFinite(e.value) ? (Number.isInteger(e.value) ? `${e.value}.0` : String(e.value)) : e.value > 0 ? "float('inf')" : "float('-inf')";
  if (e.k === "neg" && e.a.k === "num") return constDefault({ k: "num", value: -e.a.value });
  return undefined;
}

export interface PythonModuleInfo {
  irText: string;
  /** Forms (sequential, scan, chunked) of the forward and backward plans. */
  forwardForms: string[];
  backwardForms: string[];
  bakedDims: Record<string, number>;
  sms: number[];
  /** The chunked backward's chain parts (a phrase), where the model has one. */
  chunked?: string;
}

export function pythonModule(model: I.Model, info: PythonModuleInfo): string {
  const inputs = I.tensorsOfKind(model, "input");
  const params = I.tensorsOfKind(model, "param");
  const states = I.tensorsOfKind(model, "state");
  const outputs = I.tensorsOfKind(model, "output");
  const N = model.name;
  const fn = N.replace(/([a-z0-9])([A-Z])/g, "$1_$2").toLowerCase();
  const sigArgs: string[] = [];
  for (const t of inputs) sigArgs.push(t.init || sigArgs.some((a) => a.endsWith("=None")) ? `${pyName(t.name)}=None` : pyName(t.name));
  const sig = sigArgs.join(", ");
  const inDict = `{${inputs.map((t) => `"${t.name}": ${pyName(t.name)}`).join(", ")}}`;
  const indent = (s: string, n: number) => s.split("\n").map((l) => (l ? " ".repeat(n) + l : l)).join("\n");
  const retOutputs = outputs.length === 1 ? "outs[0]" : `tuple(outs[:${outputs.length}])`;
  const finalDict = `{${states.map((s, i) => `"${s.name}": outs[${outputs.length + i}]`).join(", ")}}`;
  // positional arguments of the Function: required inputs, then the optional ones, params and initial states default to None
  // (after the first default every argument defaults to None; a missing required one is reported by name)
  const fnArgs: string[] = [];
  for (const t of [...inputs, ...params, ...states]) {
    const name = t.kind === "state" ? `${t.name}0` : pyName(t.name);
    fnArgs.push(t.init || fnArgs.some((a) => a.endsWith("=None")) ? `${name}=None` : name);
  }
  const docTensors = [
    ...inputs.map((t) => `        ${t.name}: ${shapeOf(t, ["B", "T"])}${t.init ? " (optional)" : ""}`),
    ...params.map((t) => `        param ${t.name}: ${shapeOf(t)}${t.init ? " (optional)" : ""}`),
    ...states.map((t) => `        initial state ${t.name}: ${shapeOf(t, ["B"])}`),
    ...outputs.map((t) => `        -> output ${t.name}: ${shapeOf(t, ["B", "T"])}`),
    ...states.map((t) => `        -> final state ${t.name}: ${shapeOf(t, ["B"])}`),
  ].join("\n");

  const paramLines: string[] = [];
  for (const p of params) {
    const dimsNeeded = p.shape.filter((e) => e.kind === "dim").map((e) => (e as { name: string }).name);
    const shape = `[${p.shape.map((e) => (e.kind === "lit" ? String(e.value) : `self._dim("${e.name}", "${p.name}")`)).join(", ")}]`;
    const def = constDefault(p.init);
    if (p.init && def === undefined) {
      paramLines.push(`# ${p.name}: optional with a computed default; not a Parameter (pass params={"${p.name}": ...} to forward to set it)`);
      continue;
    }
    void dimsNeeded;
    if (def !== undefined) paramLines.push(`self.${pyName(p.name)} = torch.nn.Parameter(torch.full(${shape}, ${def}, device=device))  # optional; the model's default`);
    else {
      const last = p.shape.length ? p.shape[p.shape.length - 1] : undefined;
      const fan = last ? (last.kind === "lit" ? String(last.value) : `self._dim("${last.name}", "${p.name}")`) : "1";
      paramLines.push(`self.${pyName(p.name)} = torch.nn.Parameter(torch.empty(${shape}, device=device).uniform_(-1.0 / math.sqrt(${fan}), 1.0 / math.sqrt(${fan})))`);
    }
  }
  const paramNames = params.filter((p) => !p.init || constDefault(p.init) !== undefined).map((p) => p.name);
  const paramDict = `{${paramNames.map((n) => `"${n}": self.${pyName(n)}`).join(", ")}}`;

  return `"""${N}: seqc's CUDA kernels as a torch.autograd.Function and an nn.Module.

Generated by \`seqc compile --target torch\`; do not edit. Needs ${N}.torch.json, seqc_torch.py and
seqc_cuda.py beside it (the plans, the autograd glue, the ctypes runner over libcuda).

The model, as seqc resolved it:

${indent(info.irText.trimEnd(), 4)}

Tensors (B = batch, T = time; dims come from the shapes):
${docTensors.replace(/^ {8}/gm, "    ")}

Forward without gradients: the CUDA backend's ${info.forwardForms.join(" or ")} form (its choice for the shape,
or form=...). Forward with gradients, the step backward: the recording forward (keeps every state before
every step, B*T*|state| floats per state), then the backward model compiled by the same backend (its
${info.backwardForms.join(" or ")} form; it recomputes each step from the saved state).${info.chunked ? `
The chunked backward (backward="chunked"; "auto" picks it where the forward picks its chunked form): the
forward keeps only its inputs; the backward runs the chain of ${info.chunked} on the chunked kernels
with torch ops between them.` : ""}
float32 on all forms; float64 on the backend-neutral sequential kernels (for torch.autograd.gradcheck).
PTX for ${info.sms.map((s) => `sm_${s}`).join(", ")}.${Object.keys(info.bakedDims).length ? `\nCompiled for ${Object.entries(info.bakedDims).map(([k, v]) => `${k}=${v}`).join(", ")} (the backward unrolls loops over ${Object.keys(info.bakedDims).join(", ")}).` : ""}
"""

import math

import torch

try:
    from . import seqc_torch as _seqc
except ImportError:  # the output directory is on sys.path
    import seqc_torch as _seqc

_PLANS = _seqc.default_path(__file__, "${N}")
_MODELS = {}


def _model(dims, form, backward="auto"):
    key = (tuple(sorted((dims or {}).items())), form, backward)
    if key not in _MODELS:
        _MODELS[key] = _seqc.SeqcModel(_PLANS, dims, form, backward)
    return _MODELS[key]


class ${N}Function(torch.autograd.Function):
    """torch.autograd.Function over seqc's ${N} kernels (dims from the shapes).

    ${N}Function.apply(${fnArgs.join(", ")})
      -> (${[...outputs.map((t) => t.name), ...states.map((t) => `${t.name}_final`)].join(", ")})
    Inputs [B, T, ...], params, then initial states [B, ...] (None: the model's default); see the shapes above.
    """

    @staticmethod
    def forward(ctx, ${fnArgs.join(", ")}):
        return _seqc.forward(ctx, _model(None, "auto"), "auto", (${fnArgs.map((a) => a.replace(/=None$/, "")).join(", ")},))

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, *grads):
        return _seqc.backward(ctx, grads)


def ${fn}(${sig}${sig ? ", " : ""}*, params=None, initial_state=None, dims=None, form="auto", backward="auto"):
    """Functional form: returns (${outputs.length === 1 ? outputs[0].name : `(${outputs.map((t) => t.name).join(", ")})`}, final_state dict).

${docTensors}
    """
    m = _model(dims, form, backward)
    outs = m.apply(${inDict}, dict(params or {}), dict(initial_state or {}))
    return ${retOutputs}, ${finalDict}


class ${N}(torch.nn.Module):
    """nn.Module over seqc's ${N} kernels${params.length ? "; params are nn.Parameters (required ones U(-1/sqrt(n), 1/sqrt(n)) with n the last axis, optional ones the model's default)" : ""}.

    ${N}(dims=None, form="auto", backward="auto"${params.length ? ", device=None" : ""}): dims not fixed by the tensors' shapes${params.length ? " (and those of the params)" : ""} go in \`dims\`.
    forward(${sig}${sig ? ", " : ""}initial_state=None, return_final_state=False)
    """

    def __init__(self, dims=None, form="auto", backward="auto"${params.length ? ", device=None" : ""}):
        super().__init__()
        self.dims = dict(dims or {})
        self.form = form
        self.seqc = _model(self.dims, form, backward)
${params.length ? indent(paramLines.join("\n"), 8) + "\n" : ""}
    def _dim(self, name, tensor):
        if name not in self.dims:
            raise ValueError("${N}(dims=...) needs %s to create param '%s'" % (name, tensor))
        return self.dims[name]

    def forward(self, ${sig}${sig ? ", " : ""}initial_state=None, return_final_state=False):
        outs = self.seqc.apply(${inDict}, ${paramDict}, dict(initial_state or {}))
        result = ${retOutputs}
        return (result, ${finalDict}) if return_final_state else result
`;
}
