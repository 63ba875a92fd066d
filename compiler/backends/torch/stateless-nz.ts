/**
 * A stateless part's kernel without the stores of some outputs (stateless-bf16.ts "-nz" twins; issue 6): the torch
 * glue does not read a running part's zero outputs nor, with seqc_chunked.RUN_COPIES "input", its copies of inputs
 * (chain-copies.ts `zeros`, `copies`), yet the sequential lowering writes them all (Mamba-2's post backward: B__bar,
 * C__bar, dt__bar, A__bar zeros and y0__bar a float32 copy of its cotangent). Here those stores go, and with them every
 * loop or branch left with no effect (no store, barrier or return, and no assignment to a variable declared outside
 * it): the phases that wrote only them. Barriers and every other statement stay, so the thread layout (chosen on the
 * whole model: without its zeros Mamba-2's post backward lowers to a layout ~60x slower) and the other outputs' values
 * are unchanged (bitwise). A kernel that also reads one of those buffers keeps it (undefined).
 */
import * as K from "../../kernel/ir.ts";

/** Whether `body` has an effect beyond its own locals: a store, a barrier, a return, or a `set` of a variable it does not declare. */
function hasEffect(body: K.KStmt[]): boolean {
  const declared = new Set<string>();
  K.walkKStmts(body, (s) => {
    if (s.k === "decl") declared.add(s.name);
    if (s.k === "for") declared.add(s.v);
  });
  let effect = false;
  K.walkKStmts(body, (s) => {
    if (s.k === "store" || s.k === "barrier" || s.k === "return") effect = true;
    if (s.k === "set" && !declared.has(s.name)) effect = true;
  });
  return effect;
}

/** `k` renamed `name` without its stores to the buffers `arrays` (kernel buffer names) and the loops and branches
 *  left without an effect; undefined where it stores none of them or reads one of them. */
export function withoutStores(k: K.Kernel, arrays: Set<string>, name: string): K.Kernel | undefined {
  let reads = false;
  let dropped = 0;
  K.walkKStmts(k.body, (s) => K.stmtExprs(s).forEach((e) => K.walkKExpr(e, (x) => (reads ||= (x.k === "load" || x.k === "load4") && arrays.has(x.array)))));
  if (reads) return undefined;
  const prune = (ss: K.KStmt[]): K.KStmt[] => {
    const out: K.KStmt[] = [];
    for (const s of ss) {
      if (s.k === "store" && arrays.has(s.array)) {
        dropped++;
        continue;
      }
      if (s.k === "for") {
        const body = prune(s.body);
        if (body.length !== s.body.length || body.some((x, i) => x !== s.body[i])) {
          if (!hasEffect(body)) continue;
          out.push({ ...s, body });
        } else out.push(s);
        continue;
      }
      if (s.k === "if") {
        const then = prune(s.then);
        const els = s.else ? prune(s.else) : undefined;
        if (!hasEffect(then) && !(els && hasEffect(els))) continue;
        out.push({ ...s, then, ...(els ? { else: els } : {}) });
        continue;
      }
      out.push(s);
    }
    return out;
  };
  const body = prune(k.body);
  return dropped ? { ...k, name, body } : undefined;
}
