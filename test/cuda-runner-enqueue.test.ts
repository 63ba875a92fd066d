/**
 * What the CUDA runner enqueues per forward, without a GPU (a recording stand-in for CudaDevice): the copy of the
 * initial states into the written states buffer happens only for forms that need it (chain scans read the initial
 * states from their own buffer and write every final state: `statesCopy: false`), and the dynamic shared-memory
 * limit is raised once per kernel and size, not before every launch.
 */
import { describe, expect, it } from "vitest";
import { loadProgram } from "../compiler/frontend/load.ts";
import { lowerCuda } from "../compiler/backends/cuda/plan.ts";
import { CudaModelRunner } from "../runtime/cuda/runner.ts";
import { CudaFunction, type CudaDevice, type CudaBuffer } from "../runtime/cuda/device.ts";
import { RecordingCudaDevice } from "./cuda-emu/recording-device.ts";

/** Records device-to-device copies and launches. */
class RecordingDevice extends RecordingCudaDevice<string> {
  override copy(_dst: CudaBuffer, _src: CudaBuffer, bytes: number): void {
    this.events.push(`copy ${bytes}`);
  }
  override fill32(): void {
    this.events.push("zero");
  }
  override launch(fn: { name: string }): void {
    this.events.push(`launch ${fn.name}`);
  }
}

describe("CUDA runner: per-forward work", () => {
  const model = loadProgram(["stdlib/hgrn.seq"]).models[0];
  const plan = lowerCuda(model).plan;
  const D = 300, B = 3, T = 40;
  const enqueued = async (form: string, withInit: boolean) => {
    const dev = new RecordingDevice();
    const runner = await CudaModelRunner.create({ ...plan, ptx: { "90": "fake" } }, { dims: { D }, device: dev as unknown as CudaDevice });
    const x = new Float32Array(B * T * D);
    const p = runner.prepare({ x, g: x }, { batch: B, form, initialState: withInit ? { h: new Float32Array(B * D) } : {} });
    dev.events = [];
    p.enqueue(dev.stream() as never);
    return { variant: p.form.variant, events: dev.events };
  };

  it("chain scans enqueue their one launch and no copy of the initial states, with or without them", async () => {
    for (const withInit of [false, true]) {
      const { variant, events } = await enqueued("pointwise-chain", withInit);
      expect(variant).toBe("pointwise-chain");
      expect(events).toEqual(["launch seqc_Hgrn_scan_chain"]);
    }
  });

  it("forms that update the states buffer in place still start from a copy of the initial states", async () => {
    const { events } = await enqueued("thread", true);
    expect(events[0]).toBe(`copy ${B * D * 4}`);
    expect(events.filter((e) => e.startsWith("launch")).length).toBeGreaterThan(0);
  });
});

describe("CudaFunction.setMaxDynamicShared", () => {
  it("calls the driver once per larger size, never for sizes already allowed", () => {
    const calls: number[] = [];
    const dev = { driver: { cuFuncSetAttribute: (_h: bigint, _a: number, v: number) => (calls.push(v), 0) }, check: () => {} };
    const fn = new CudaFunction("k", 1n, dev as unknown as CudaDevice);
    for (const bytes of [100_000, 100_000, 80_000, 100_000, 120_000, 120_000]) fn.setMaxDynamicShared(bytes);
    expect(calls).toEqual([100_000, 120_000]);
  });
});
