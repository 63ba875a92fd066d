/**
 * The chunked backward's host glue alone (runtime/chunked-backward.ts, runtime/chunked-backward-lowrank.ts) at the
 * shape of bench/cuda/class-chunked.ts's timings (B = 4, T = 1024, H = 4, K = V = 64): every model of the chain
 * replaced by zero outputs of its sizes, the time outside them reported (third of three calls). No GPU needed.
 *   npx tsx bench/cuda/class-chunked-glue.ts
 */
import { loadProgram } from "../../compiler/frontend/load.ts";
import { trainingModels } from "../../compiler/grad/training.ts";
import { tensorSpecs } from "../../compiler/kernel/interface.ts";
import { evalSize } from "../../runtime/plan.ts";
import { chainBackward } from "../../runtime/chunked-backward.ts";
import { lowRankChainBackward, LR_CHUNK } from "../../runtime/chunked-backward-lowrank.ts";
for (const [name, dims] of [["simple_gla", { H: 4, K: 64, V: 64 }], ["mamba2", { H: 4, P: 64, N: 64 }], ["deltanet", { H: 4, K: 64, V: 64 }]] as const) {
  const model = loadProgram([`stdlib/${name}.seq`]).models[0];
  const t = trainingModels(model) as any;
  const chain = t.lowRankChain ?? t.chain;
  const B = 4, T = 1024;
  let modelMs = 0;
  const run = async (part: string, pd: Record<string, number> | undefined, inputs: any, init: any, batch: number, time: number) => {
    const t0 = performance.now();
    const specs = tensorSpecs(chain.models[part]);
    const env: Record<string, number> = { ...(pd ?? dims), B: batch, T: time };
    const size = (s: any) => s.shape.reduce((a: number, e: any) => a * evalSize(e, env), 1);
    const outputs: Record<string, Float32Array> = {}, finalState: Record<string, Float32Array> = {};
    for (const s of specs) { if (s.role === "output") outputs[s.name] = new Float32Array(batch * time * size(s)); if (s.role === "state") finalState[s.name] = new Float32Array(batch * size(s)); }
    modelMs += performance.now() - t0;
    return { outputs, finalState };
  };
  const sz = (role: string) => model.tensors.filter((x) => x.kind === role).map((x) => ({ name: x.name, size: x.shape.reduce((a, e) => a * (e.kind === "lit" ? e.value : (dims as any)[e.name]), 1) }));
  const inputs = sz("input"), params = sz("param"), outputs = sz("output");
  const given = Object.fromEntries(inputs.map((i) => [i.name, new Float32Array(B * T * i.size).fill(0.1)]));
  const S = model.tensors.find((x) => x.kind === "state")!;
  const problem = { batch: B, time: T, stateShape: S.shape.map((e: any) => (e.kind === "lit" ? e.value : (dims as any)[e.name])), inputs, params, outputs, given, alloc: (n: number) => new Float32Array(n) };
  for (let i = 0; i < 3; i++) {
    modelMs = 0;
    const t0 = performance.now();
    if (t.lowRankChain) await lowRankChainBackward(chain.names, run as any, problem as any, LR_CHUNK); else await chainBackward(chain.names, run as any, problem as any);
    if (i === 2) console.log(name, "glue ms", (performance.now() - t0 - modelMs).toFixed(1));
  }
}
