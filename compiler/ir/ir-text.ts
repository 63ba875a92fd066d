/** The IR as readable text (used by the ir target's .ir.txt and the torch target's module docstrings). */
import type { Model } from "./types.ts";
import { printExpr, printStmt } from "./print.ts";
import { shapeText } from "./types.ts";

/** The IR as readable .seq-like text (declarations + statements after resolution). */
export function irText(m: Model): string {
  const dims = m.dims.map((d) => (d.fixed !== undefined ? `${d.name} = ${d.fixed}` : d.name)).join(", ");
  const decls = m.tensors.filter((t) => t.kind === "input" || t.kind === "param" || t.kind === "state").map((t) => `${t.kind} ${t.name}${shapeText(t.shape)}${t.init ? ` = ${printExpr(t.init)}` : ""}`);
  return [`model ${m.name} {`, `  dims ${dims}`, ...decls.map((d) => `  ${d}`), ...m.body.map((s) => printStmt(s, "  ")), "}", ""].join("\n");
}
