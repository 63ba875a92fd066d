/// <reference types="@webgpu/types" />
/** seqc's WebGPU runtime: what a generated model module needs, and nothing from the compiler. */
export { ModelRunner, type CreateOptions, type ForwardOptions, type ForwardResult, type FormChoice } from "./runner.ts";
export { defaultDevice, requestDevice, gpuEntry } from "./device.ts";
export { ShapeError, type TensorData, type TensorInput } from "./tensors.ts";
export { evalSize, formEnv, type ModelPlan, type FormPlan, type KernelLaunch, type SizeExpr, type TensorSpec, type Env } from "./plan.ts";
export { rankForms, estimate, NOMINAL_GPU, type DeviceProfile, type Estimate } from "./cost.ts";
export { openRunner, readCudaPlan, type Backend, type BackendRunner, type OpenOptions, type RunnerForwardOptions, type RunnerResult, type IoDtype, type AnyFormChoice, type CudaRuntime, type CudaModelPlan, type CudaDevice } from "./backend-runner.ts";
export { Trainer, type TrainerOptions, type ChunkedTransposedChoice, type TrainingInfo, type CudaTrainingPlans, type SavingOptions, type BackwardChoice, type ChunkedTraining } from "./trainer.ts";
export { planMemory, SAVED_STATE_BUDGET, type Saved, type Gradients, type MemoryChoice, type MemoryPlan, type GradNames } from "./train.ts";
