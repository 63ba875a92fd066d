/**
 * A Python driver whose model runs the float64 interpreter does: the driver reads its case from the first line of
 * stdin, prints {"run", "dims", "B", "T", "inputs", "initial", "params"?} requests one a line, reads
 * {"outputs", "final"} back, and ends with {"done": true, ...}, which `serve` returns. Tensors travel as
 * {shape, data} or flat lists.
 */
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { interpret, shapeSizes } from "../../compiler/ir/interpret.ts";
import * as I from "../../compiler/ir/types.ts";

export type Wire = { shape: number[]; data: number[] };
export const wire = (a: Float64Array, shape: number[]): Wire => ({ shape, data: Array.from(a) });
export type Request = { run: string; dims?: Record<string, number>; B: number; T: number; inputs: Record<string, Wire | number[]>; params?: Record<string, number[]>; initial: Record<string, Wire | number[]> };

/** Runs `cmd args`, answering each request with `which`'s model on the interpreter (inputs it does not declare dropped). */
export async function serve(cmd: string, args: string[], first: unknown, which: (msg: Request) => { model: I.Model; dims: Record<string, number>; params: Record<string, Float64Array> }) {
  const py = spawn(cmd, args, { stdio: ["pipe", "pipe", "pipe"] });
  let err = "";
  py.stderr.on("data", (d) => (err += d));
  py.stdin.write(JSON.stringify(first) + "\n");
  const f64 = (w: Wire | number[]) => Float64Array.from(Array.isArray(w) ? w : w.data);
  for await (const line of createInterface({ input: py.stdout })) {
    const msg = JSON.parse(line);
    if (msg.done) { py.stdin.end(); return msg; }
    const { model: m, dims: d, params } = which(msg as Request);
    const own = new Set(I.tensorsOfKind(m, "input").map((t) => t.name));
    const r = interpret(m, {
      dims: d, batch: msg.B, time: msg.T,
      inputs: Object.fromEntries(Object.entries(msg.inputs as Record<string, Wire>).filter(([k]) => own.has(k)).map(([k, v]) => [k, f64(v)])),
      params,
      initialState: Object.fromEntries(Object.entries(msg.initial as Record<string, Wire>).map(([k, v]) => [k, f64(v)])),
    });
    const shapeOf = (n: string, lead: number[]) => [...lead, ...shapeSizes(m.tensors.find((t) => t.name === n)!.shape, d)];
    py.stdin.write(JSON.stringify({
      outputs: Object.fromEntries(Object.entries(r.outputs).map(([k, v]) => [k, wire(v, shapeOf(k, [msg.B, msg.T]))])),
      final: Object.fromEntries(Object.entries(r.finalState).map(([k, v]) => [k, wire(v, shapeOf(k, [msg.B]))])),
    }) + "\n");
  }
  throw new Error(`${args[0]} ended without its result: ${err}`);
}
