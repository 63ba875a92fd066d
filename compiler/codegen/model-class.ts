/**
 * The TypeScript class of one model, written with ts-morph: typed dims, inputs, params, states
 * and outputs from the declared names and shapes, a static create(), forward(), step(), dispose().
 * The module imports only `seqc/runtime`; the WebGPU launch plan (kernels included) is embedded as
 * data. `create({ backend: "cuda" })` runs the same API on CUDA (Node): the runtime imports
 * seqc/runtime/cuda then, and reads the CUDA plan from <Model>.cuda.json next to the module (or the
 * `cudaPlan` passed in).
 */
import { Project, Scope, type SourceFile, StructureKind, VariableDeclarationKind } from "ts-morph";
import * as I from "../ir/types.ts";
import type { ModelPlan } from "../../runtime/plan.ts";
import type { TrainingInfo } from "../../runtime/trainer.ts";

export interface ClassOptions {
  /** Module the runtime is imported from (default "seqc/runtime"). */
  runtimeImport?: string;
  /** Where the model came from, for the header. */
  source?: string;
  /** WebGPU plans of the recording forward and the backward model (compiler/grad/training.ts), or why there are none. */
  training?: TrainingInfo;
}

const RESERVED_OUTPUTS = new Set(["finalState", "state", "form", "batch", "length"]);

const axesText = (lead: string[], t: I.TensorDecl) => `[${[...lead, ...t.shape.map(I.extentText)].join(", ")}]`;

/** Names a generated member may not take (they are part of the class's own API). */
export function checkNames(model: I.Model): void {
  for (const t of I.tensorsOfKind(model, "output")) {
    if (RESERVED_OUTPUTS.has(t.name)) throw new Error(`output '${t.name}' of ${model.name} clashes with a field of forward()'s result; rename it`);
  }
}

export function modelClassSource(model: I.Model, plan: ModelPlan, opts: ClassOptions = {}): string {
  checkNames(model);
  const project = new Project({ useInMemoryFileSystem: true });
  const file = project.createSourceFile(`${model.name}.ts`, "", { overwrite: true });
  const N = model.name;
  file.addImportDeclaration({
    moduleSpecifier: opts.runtimeImport ?? "seqc/runtime",
    namedImports: ["openRunner", "type AnyFormChoice", "type Backend", "type BackendRunner", "type CudaDevice", "type CudaModelPlan", "type CudaRuntime", "type IoDtype", "type ModelPlan", "type TensorInput", "Trainer", "type TrainingInfo", "type TrainerOptions", "type CudaTrainingPlans", "type ChunkedTransposedChoice", "type Saved", "type MemoryChoice", "type BackwardChoice"],
  });

  const inputs = I.tensorsOfKind(model, "input");
  const params = I.tensorsOfKind(model, "param");
  const states = I.tensorsOfKind(model, "state");
  const outputs = I.tensorsOfKind(model, "output");
  const free = model.dims.filter((d) => d.fixed === undefined);

  addInterface(file, `${N}Dims`, `Sizes of ${N}, bound at create().`, model.dims.map((d) => ({
    name: d.name,
    type: d.fixed !== undefined ? String(d.fixed) : "number",
    optional: d.fixed !== undefined || !!d.sequenceDefault,
    doc: d.fixed !== undefined ? `fixed to ${d.fixed}` : d.sequenceDefault ? "defaults to the sequence length T of each call" : undefined,
  })));
  addInterface(file, `${N}Inputs`, `Inputs of forward(): each [B, T, ...shape], float32 (a Float32Array with \`batch\`, { data, shape }, or a GPUBuffer).`, inputs.map((t) => ({
    name: t.name, type: "TensorInput", optional: !!t.init, doc: `${axesText(["B", "T"], t)}${t.init ? " (optional)" : ""}`,
  })));
  addInterface(file, `${N}StepInputs`, `Inputs of step(): one token, each [B, ...shape].`, inputs.map((t) => ({
    name: t.name, type: "TensorInput", optional: !!t.init, doc: `${axesText(["B"], t)}${t.init ? " (optional)" : ""}`,
  })));
  addInterface(file, `${N}Params`, `Time-invariant weights of ${N}.`, params.map((t) => ({
    name: t.name, type: "TensorInput", optional: !!t.init, doc: `${axesText([], t)}${t.init ? " (optional)" : ""}`,
  })));
  addInterface(file, `${N}State<D = Float32Array>`, `Recurrent state of ${N}, each [B, ...shape].`, states.map((t) => ({ name: t.name, type: "D", doc: axesText(["B"], t) })));
  addInterface(file, `${N}Outputs<D = Float32Array>`, `Outputs of forward(), each [B, T, ...shape].`, outputs.map((t) => ({ name: t.name, type: "D", doc: axesText(["B", "T"], t) })));
  addInterface(file, `${N}StepOutputs<D = Float32Array>`, `Outputs of step(), each [B, ...shape].`, outputs.map((t) => ({ name: t.name, type: "D", doc: axesText(["B"], t) })));
  file.addInterface({
    name: `${N}ForwardOptions`,
    isExported: true,
    docs: ["Options of forward()."],
    properties: [
      { name: "initialState", type: `Partial<${N}State<TensorInput>>`, hasQuestionToken: true, docs: ["Start from these states (each [B, ...shape]); the others start from their declared initial value."] },
      { name: "returnFinalState", type: "boolean", hasQuestionToken: true, docs: ["Also return the state after the last step."] },
      { name: "batch", type: "number", hasQuestionToken: true, docs: ["Batch size when the inputs are bare arrays (default 1)."] },
      { name: "form", type: "AnyFormChoice", hasQuestionToken: true, docs: ["Override the form chosen at create() for this call."] },
      { name: "saveForBackward", type: "boolean", hasQuestionToken: true, docs: ["Keep what backward() needs and return it as `saved` (inputs as Float32Arrays)."] },
      { name: "memory", type: "MemoryChoice", hasQuestionToken: true, docs: ["With saveForBackward, for the step backward: \"auto\" (default: the states of every step while they fit 512 MiB and the device's binding limit, else checkpoints every ceil(sqrt(T)) steps and one more forward), \"store\", \"recompute\" or { every: steps } (these three ask for the step backward)."] },
      { name: "backward", type: "BackwardChoice", hasQuestionToken: true, docs: ["With saveForBackward: which backward the saved handle is for: \"auto\" (default: the chunked backward where the model has one and forward() picks its chunked form at this batch and length, else the step backward), \"step\" (the adjoint recurrence) or \"chunked\" (the chunked backward chain; stores nothing). See backwardFor()."] },
    ],
  });
  addInterface(file, `${N}GradOutputs`, `Gradients of the loss with respect to the outputs of forward() ([B, T, ...shape]) and its final state ([B, ...shape]); absent ones are zero.`, [
    ...outputs.map((t) => ({ name: t.name, type: "TensorInput", optional: true, doc: axesText(["B", "T"], t) })),
    { name: "finalState", type: `Partial<${N}State<TensorInput>>`, optional: true, doc: "dL/d(final state)" },
  ]);
  addInterface(file, `${N}Gradients`, `What backward() returns: dL/d(input) for each input given to forward() ([B, T, ...shape]), dL/d(param) for each param (summed over batch and time), dL/d(initial state) ([B, ...shape]).`, [
    { name: "inputs", type: `{ ${inputs.map((t) => `${t.name}?: Float32Array`).join("; ")} }` },
    { name: "params", type: `{ ${params.map((t) => `${t.name}: Float32Array`).join("; ")} }` },
    { name: "initialState", type: `${N}State` },
  ]);

  const paramsOptional = params.every((t) => !!t.init);
  const dimsOptional = free.length === 0 || free.every((d) => d.sequenceDefault);
  file.addTypeAlias({
    name: `${N}CreateOptions`,
    isExported: true,
    docs: [
      `Options of ${N}.create(). \`backend\`: "webgpu" (default; browsers and Node) or "cuda" (Node with an NVIDIA driver). ` +
        `\`form\`: auto (default), sequential, scan or chunked (where the model has them). ` +
        `WebGPU: \`tune\` (default true) times the variants the cost model cannot separate on the first call of each shape. ` +
        `CUDA: \`dtype\` of inputs and outputs on the device (f32, or bf16 / f16 for the chunked form); \`cudaPlan\`: the plan or the path of ${N}.cuda.json ` +
        `(default: next to this module); \`cudaGradPlan\`: likewise ${N}.grad.cuda.json, for backward(); \`chunkedTransposed\`: how backward() runs a per-key decay's transposed cores, ` +
        `"auto" (default: the rows readout kernel where the training plans carry it, else the chain's plans), "kernel" (that kernel or an error) or "plans"; ` +
        `\`cudaRuntime\`: the seqc/runtime/cuda module, for Node bundles.`,
    ],
    type:
      `{ dims${dimsOptional ? "?" : ""}: ${N}Dims; params${paramsOptional ? "?" : ""}: ${N}Params; form?: AnyFormChoice } & (` +
      `{ backend?: "webgpu"; device?: GPUDevice; tune?: boolean } | ` +
      `{ backend: "cuda"; device?: CudaDevice; dtype?: IoDtype; cudaPlan?: CudaModelPlan | URL | string; cudaGradPlan?: CudaTrainingPlans | URL | string; chunkedTransposed?: ChunkedTransposedChoice; cudaRuntime?: CudaRuntime })`,
  });

  file.addVariableStatement({
    declarationKind: VariableDeclarationKind.Const,
    isExported: true,
    docs: [`Launch plan of ${N}: WGSL kernels and how to run them (data for seqc/runtime).`],
    declarations: [{ name: `${N.toUpperCase()}_PLAN`, type: "ModelPlan", initializer: JSON.stringify(plan, null, 1) }],
  });
  file.addVariableStatement({
    declarationKind: VariableDeclarationKind.Const,
    docs: [`Training plans of ${N} on WebGPU: the recording forward and the backward model (or why there are none).`],
    declarations: [{ name: `${N.toUpperCase()}_TRAINING`, type: "TrainingInfo", initializer: JSON.stringify(opts.training ?? { unavailable: "this module was generated without training plans" }, null, 1) }],
  });

  file.addClass({
    name: N,
    isExported: true,
    docs: [
      `${N} on WebGPU or CUDA. Create once per set of dims and weights (and backend); call forward() on whole sequences or step() token by token.\n` +
        `Inputs: ${inputs.map((t) => `${t.name}${axesText(["B", "T"], t)}`).join(", ")}.\n` +
        `States: ${states.map((t) => `${t.name}${axesText(["B"], t)}`).join(", ") || "none"}. Outputs: ${outputs.map((t) => `${t.name}${axesText(["B", "T"], t)}`).join(", ") || "none"}.`,
    ],
    properties: [
      { name: "plan", isStatic: true, isReadonly: true, initializer: `${N.toUpperCase()}_PLAN`, docs: ["The WebGPU launch plan (kernels, sizes, forms)."] },
      { name: "cudaPlanFile", isStatic: true, isReadonly: true, initializer: JSON.stringify(`${N}.cuda.json`), docs: ["The CUDA plan that backend 'cuda' reads from next to this module unless create() is given cudaPlan."] },
      { name: "cudaGradPlanFile", isStatic: true, isReadonly: true, initializer: JSON.stringify(`${N}.grad.cuda.json`), docs: ["The CUDA training plans that backward() on backend 'cuda' reads from next to this module unless create() is given cudaGradPlan."] },
      { name: "trainer", scope: Scope.Private, type: "Trainer", hasQuestionToken: true },
    ],
    ctors: [{ scope: Scope.Private, parameters: [{ name: "runner", type: "BackendRunner", isReadonly: true, scope: Scope.Private }, { name: "options", type: "TrainerOptions", isReadonly: true, scope: Scope.Private }] }],
    getAccessors: [{ name: "backend", returnType: "Backend", docs: ["Where this instance runs."], statements: ["return this.runner.backend;"] }],
    methods: [
      {
        name: "create",
        isStatic: true,
        isAsync: true,
        docs: ["Compile the kernels for these dims on a device of the backend (by default its shared one) and upload the params. Throws if a name, shape or dtype is wrong, and with one sentence if the backend cannot run here (no WebGPU adapter; no CUDA driver)."],
        parameters: [{ name: "options", type: `${N}CreateOptions`, ...(dimsOptional && paramsOptional ? { initializer: "{}" } : {}) }],
        returnType: `Promise<${N}>`,
        statements: [
          // a variable, so that bundlers do not take the (large) CUDA plan in as an asset
          `const cudaPlan = options.backend === "cuda" && options.cudaPlan === undefined ? new URL(${N}.cudaPlanFile, import.meta.url) : undefined;`,
          `const o = { ...options, dims: { ...(options.dims ?? {}) } as Record<string, number>, params: options.params as unknown as Record<string, TensorInput | undefined> | undefined };`,
          `return new ${N}(await openRunner(${N}.plan, o, cudaPlan), o);`,
        ],
      },
      {
        name: "forward",
        isAsync: true,
        docs: ["Run a whole batch of sequences. Batch B and length T come from the inputs; shapes are checked before any launch. With `saveForBackward: true` the result also holds `saved`, for backward()."],
        overloads: [
          { parameters: [{ name: "inputs", type: `${N}Inputs` }, { name: "options", type: `${N}ForwardOptions & { saveForBackward: true }` }], returnType: `Promise<${N}Outputs & { finalState?: ${N}State; saved: Saved }>` },
          { parameters: [{ name: "inputs", type: `${N}Inputs` }, { name: "options", type: `${N}ForwardOptions`, hasQuestionToken: true }], returnType: `Promise<${N}Outputs & { finalState?: ${N}State }>` },
        ],
        parameters: [{ name: "inputs", type: `${N}Inputs` }, { name: "options", type: `${N}ForwardOptions`, initializer: "{}" }],
        returnType: `Promise<${N}Outputs & { finalState?: ${N}State; saved?: Saved }>`,
        statements: [
          `if (options.saveForBackward) {`,
          `  const s = await this.training().forward(inputs as unknown as Record<string, TensorInput | undefined>, { ...options, initialState: options.initialState as unknown as Record<string, TensorInput | undefined> | undefined });`,
          `  return { ...(s.outputs as unknown as ${N}Outputs), ...(options.returnFinalState ? { finalState: s.finalState as unknown as ${N}State } : {}), saved: s.saved };`,
          `}`,
          `const r = await this.runner.forward(inputs as unknown as Record<string, TensorInput | undefined>, { ...options, initialState: options.initialState as unknown as Record<string, TensorInput | undefined> | undefined });`,
          `return { ...(r.outputs as unknown as ${N}Outputs), ...(r.finalState ? { finalState: r.finalState as unknown as ${N}State } : {}) };`,
        ],
      },
      {
        name: "forwardOnDevice",
        isAsync: true,
        docs: ["Like forward(), but leaves the results on the device: GPUBuffers that stay valid until the next call on this model (backend 'webgpu' only)."],
        parameters: [{ name: "inputs", type: `${N}Inputs` }, { name: "options", type: `${N}ForwardOptions`, initializer: "{}" }],
        returnType: `Promise<${N}Outputs<GPUBuffer> & { finalState?: ${N}State<GPUBuffer> }>`,
        statements: [
          `const r = await this.runner.forward(inputs as unknown as Record<string, TensorInput | undefined>, { ...options, read: false, initialState: options.initialState as unknown as Record<string, TensorInput | undefined> | undefined });`,
          `return { ...(r.outputs as unknown as ${N}Outputs<GPUBuffer>), ...(r.finalState ? { finalState: r.finalState as unknown as ${N}State<GPUBuffer> } : {}) };`,
        ],
      },
      {
        name: "step",
        isAsync: true,
        docs: ["One token for a batch: inputs [B, ...shape], the state from the previous step (omit it to start from the declared initial state). Memory does not grow with the number of steps."],
        parameters: [{ name: "inputs", type: `${N}StepInputs` }, { name: "state", type: `Partial<${N}State<TensorInput>>`, hasQuestionToken: true }, { name: "options", type: "{ batch?: number }", initializer: "{}" }],
        returnType: `Promise<${N}StepOutputs & { state: ${N}State }>`,
        statements: [
          `const r = await this.runner.step(inputs as unknown as Record<string, TensorInput | undefined>, state as unknown as Record<string, TensorInput | undefined> | undefined, options);`,
          `return { ...(r.outputs as unknown as ${N}StepOutputs), state: r.state as unknown as ${N}State };`,
        ],
      },
      {
        name: "backward",
        isAsync: true,
        docs: [
          "Gradients of a loss from forward({ saveForBackward: true }): `gradOutputs` holds dL/d(output) per output and dL/d(final state) (absent: zero). " +
            "Returns dL/d(input) for each input given to that forward, dL/d(param) for every param and dL/d(initial state). Runs the backward model (the adjoint recurrence, derived from the .seq file) on this instance's backend; each saved handle serves one backward().",
        ],
        parameters: [{ name: "gradOutputs", type: `${N}GradOutputs` }, { name: "saved", type: "Saved" }],
        returnType: `Promise<${N}Gradients>`,
        statements: [`return (await this.training().backward(gradOutputs as unknown as Record<string, TensorInput | undefined> & { finalState?: Record<string, TensorInput | undefined> }, saved)) as unknown as ${N}Gradients;`],
      },
      {
        name: "training",
        scope: Scope.Private,
        returnType: "Trainer",
        statements: [
          `const cudaGrad = this.runner.backend === "cuda" && this.options.cudaGradPlan === undefined ? new URL(${N}.cudaGradPlanFile, import.meta.url) : undefined;`,
          `return (this.trainer ??= new Trainer(this.runner, ${N}.plan, ${N.toUpperCase()}_TRAINING, this.options, cudaGrad));`,
        ],
      },
      {
        name: "formFor",
        docs: ["The form variant forward() would run for a batch and length (the cost model's pick, or the forced form)."],
        parameters: [{ name: "batch", type: "number" }, { name: "length", type: "number" }],
        returnType: "string",
        statements: [`return this.runner.formFor(batch, length);`],
      },
      {
        name: "backwardFor",
        docs: ["Which backward forward({ saveForBackward: true, backward, memory }) would save for at this batch and length (\"step\" or \"chunked\"), and why."],
        parameters: [{ name: "batch", type: "number" }, { name: "length", type: "number" }, { name: "options", type: "{ backward?: BackwardChoice; memory?: MemoryChoice }", initializer: "{}" }],
        returnType: `{ form: "step" | "chunked"; why: string }`,
        statements: [`return this.training().backwardFor(batch, length, options.backward, options.memory);`],
      },
      { name: "dispose", docs: ["Free this model's GPU buffers (the device stays)."], returnType: "void", statements: ["this.runner.dispose();", "this.trainer?.dispose();"] },
    ],
  });
  const header = [
    `/// <reference types="@webgpu/types" />`,
    `// Generated by seqc from ${opts.source ?? model.file} (model ${N}). Do not edit: edit the .seq file and run \`seqc compile\`.`,
    ``,
  ].join("\n");
  return header + file.getFullText();
}

interface Prop { name: string; type: string; optional?: boolean; doc?: string }

function addInterface(file: SourceFile, name: string, doc: string, props: Prop[]): void {
  file.addInterface({
    kind: StructureKind.Interface,
    name,
    isExported: true,
    docs: [doc],
    properties: props.map((p) => ({ name: p.name, type: p.type, hasQuestionToken: !!p.optional, docs: p.doc ? [p.doc] : [] })),
  });
}
