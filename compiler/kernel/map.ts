/**
 * Bottom-up maps over the kernel IR's expressions (compiler/kernel/ir.ts): `f` sees each node after its children were
 * mapped. Shared by the stateless parts' vector and warp-fused twins (compiler/backends/torch/stateless-vec.ts,
 * stateless-wfuse.ts).
 */
import type * as K from "./ir.ts";

/** `e` with every node replaced by f(node), children first (loads' indices, operands, call arguments, selects). */
export function mapKExpr(e: K.KExpr, f: (x: K.KExpr) => K.KExpr): K.KExpr {
  const m = (x: K.KExpr) => mapKExpr(x, f);
  switch (e.k) {
    case "load":
    case "load4":
      return f({ ...e, index: m(e.index) });
    case "lane":
    case "neg":
    case "not":
    case "cast":
      return f({ ...e, a: m(e.a) } as K.KExpr);
    case "bin":
      return f({ ...e, a: m(e.a), b: m(e.b) });
    case "call":
      return f({ ...e, args: e.args.map(m) });
    case "select":
      return f({ ...e, cond: m(e.cond), then: m(e.then), else: m(e.else) });
    default:
      return f(e);
  }
}
