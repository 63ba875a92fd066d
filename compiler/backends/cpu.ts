/** The `cpu` backend: the float64 reference interpreter, which defines the semantics (the oracle). */
import { interpret } from "../ir/interpret.ts";
import type { BackendInfo } from "./index.ts";

export const cpuBackend: BackendInfo = {
  name: "cpu",
  description: "float64 reference interpreter (the oracle)",
  forms: ["sequential"],
  run: (model, run) => interpret(model, run),
};
