/**
 * `seqc bench <file>`: time a model's forms on this machine's GPU (WebGPU) over sequence lengths,
 * with a progress bar, a table at the end, `--json`, and `--plot out.svg` (time or tokens/s
 * against T per form, with the IO floor at the measured copy bandwidth as a reference line).
 */
import { writeFileSync } from "node:fs";
import type { Command } from "./command.ts";
import { loadOrFail, parseShape } from "./load-or-fail.ts";
import { pickModel } from "./run.ts";
import { UserError } from "./errors.ts";
import type { BenchRow } from "../bench/run-bench.ts";
import { plotSvg, type Series } from "../bench/plot.ts";

interface Args { file: string; model?: string; dims?: string; batch: number; lengths: string; form: string; json?: boolean; plot?: string; metric: string; range?: string[] }

function progress(done: number, total: number, what: string, finished: boolean): void {
  const width = 24;
  const bar = "#".repeat(Math.round((done / total) * width)).padEnd(width, "-");
  const line = `[${bar}] ${done}/${total} ${what}`;
  if (process.stderr.isTTY) process.stderr.write(`\r${line.padEnd(72)}${done === total ? "\n" : ""}`);
  else if (finished) process.stderr.write(`${line}\n`);
}

const fmt = (x: number, d: number) => (Number.isFinite(x) ? x.toFixed(d) : "-");

export function benchTable(rows: BenchRow[]): string {
  const head = ["form", "B", "T", "ms", "tokens/s", "GB/s", "% copy", "floor ms", "auto"];
  const body = rows.map((r) => [r.form, String(r.B), String(r.T), fmt(r.ms, 3), Number.isFinite(r.tokensPerS) ? r.tokensPerS.toExponential(2) : "-", fmt(r.GBs, 1), fmt(r.pctCopy, 0), r.floorMs.toPrecision(3), r.auto ? "*" : r.error ? `error: ${r.error.slice(0, 60)}` : ""]);
  const w = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(w[i])).join("  ").trimEnd();
  return [line(head), line(w.map((n) => "-".repeat(n))), ...body.map(line)].join("\n");
}

export const benchCommand: Command<Args> = {
  command: "bench <file>",
  describe: "time a model's WebGPU forms over sequence lengths (table, --json, --plot)",
  builder: (y) =>
    y
      .positional("file", { type: "string", demandOption: true })
      .option("model", { type: "string", describe: "model name (when the file has several)" })
      .option("dims", { type: "string", describe: "sizes, e.g. H=4,K=64,V=64 (every dim without a default)" })
      .option("batch", { type: "number", default: 4, describe: "batch size B" })
      .option("lengths", { type: "string", default: "256,1024,4096", describe: "sequence lengths T, comma-separated" })
      .option("form", { type: "string", default: "all", describe: "all, sequential, scan, or a variant such as scan/tile" })
      .option("range", { type: "string", array: true, describe: "value range of an input or param, e.g. --range g=-0.5:-0.01 (default -0.5:0.5)" })
      .option("json", { type: "boolean", describe: "print the results as JSON" })
      .option("plot", { type: "string", describe: "write an SVG plot against T per form" })
      .option("metric", { type: "string", default: "time", choices: ["time", "tokens"], describe: "what --plot shows" }) as never,
  handler: async (a) => {
    const p = loadOrFail([a.file], { warnings: false });
    const model = pickModel(p.models, a.model, a.file);
    const lengths = a.lengths.split(",").map((s) => Number(s.trim()));
    if (!lengths.length || lengths.some((n) => !Number.isInteger(n) || n < 1)) throw new UserError(`--lengths: expected positive integers separated by commas, got '${a.lengths}'`);
    if (!Number.isInteger(a.batch) || a.batch < 1) throw new UserError(`--batch must be a positive integer, got ${a.batch}`);
    const ranges: Record<string, [number, number]> = {};
    for (const r of a.range ?? []) {
      const m = /^([A-Za-z_]\w*)=(-?[\d.eE+-]+):(-?[\d.eE+-]+)$/.exec(r);
      if (!m) throw new UserError(`--range: expected NAME=LO:HI, got '${r}'`);
      ranges[m[1]] = [Number(m[2]), Number(m[3])];
    }
    // loaded here, not at startup: the WebGPU backend and Dawn are only needed by this command
    const { benchModel } = await import("../bench/run-bench.ts");
    const { requestDevice } = await import("../../runtime/index.ts");
    let device: GPUDevice;
    try {
      device = await requestDevice();
    } catch (e) {
      throw new UserError(`no WebGPU device: ${(e as Error).message}`);
    }
    let result;
    try {
      result = await benchModel(model, { device, dims: parseShape(a.dims) ?? {}, batch: a.batch, lengths, form: a.form, ranges, onProgress: progress });
    } catch (e) {
      throw new UserError((e as Error).message);
    } finally {
      device.destroy();
    }
    if (a.plot) {
      const forms = [...new Set(result.rows.map((r) => r.form))];
      const value = (r: BenchRow, ms: number) => (a.metric === "tokens" ? (r.B * r.T) / (ms * 1e-3) : ms);
      const series: Series[] = forms.map((f) => ({ label: f, points: result.rows.filter((r) => r.form === f && Number.isFinite(r.ms)).map((r) => ({ T: r.T, ms: value(r, r.ms) })) }));
      const floor = lengths.map((T) => result.rows.find((r) => r.T === T)!).filter(Boolean);
      series.push({ label: `copy bandwidth (${result.copy.copyGBs.toFixed(0)} GB/s)`, reference: true, points: floor.map((r) => ({ T: r.T, ms: value(r, r.floorMs) })) });
      writeFileSync(a.plot, plotSvg(series, { yLabel: a.metric === "tokens" ? "tokens/s" : "ms per forward" }));
    }
    if (a.json) process.stdout.write(JSON.stringify({ model: result.model, copyGBs: result.copy.copyGBs, rows: result.rows }, null, 2) + "\n");
    else process.stdout.write(`${result.model} on WebGPU; copy bandwidth ${result.copy.copyGBs.toFixed(1)} GB/s measured in this run\n${benchTable(result.rows)}\n(* = the form the cost model picks; floor = the forward's minimum bytes at the copy bandwidth)\n`);
    return result.rows.every((r) => !r.error) ? 0 : 1;
  },
};
