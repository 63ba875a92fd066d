/**
 * Unrolls the counted loops of generated WGSL whose trip count is a small literal:
 *   for (var r = 0u; r < 4u; r++) { BODY }   ->   { const r = 0u; BODY } { const r = 1u; BODY } ...
 * so that register arrays indexed by the loop variable (a thread's state keys, prefetched record rows, vec4
 * components) are indexed by constants; a driver that keeps an array indexed at run time in local memory then
 * keeps it in registers. Only loops of exactly that shape are touched (start 0u, bound a literal <= maxTrips,
 * step ++, a body in braces with no break or continue that does not assign the variable); others stay as they are.
 */
const HEAD = /for \(var (\w+) = 0u; \1 < (\d+)u; \1\+\+\) \{/g;

/** The index just past the brace that closes the one opened at `open`. */
function closing(code: string, open: number): number {
  let depth = 0;
  for (let i = open; i < code.length; i++) {
    if (code[i] === "{") depth++;
    else if (code[i] === "}" && --depth === 0) return i + 1;
  }
  throw new Error("unroll: unbalanced braces in generated WGSL");
}

export function unrollConstLoops(code: string, maxTrips = 16): string {
  for (;;) {
    HEAD.lastIndex = 0;
    let m: RegExpExecArray | null;
    let done = true;
    while ((m = HEAD.exec(code))) {
      const [head, v, n] = m;
      const trips = Number(n);
      const open = m.index + head.length - 1;
      const end = closing(code, open);
      const body = code.slice(open + 1, end - 1);
      if (trips > maxTrips || /\b(break|continue)\b/.test(body) || new RegExp(`\\b${v}\\s*(\\+\\+|--|[-+*/]?=(?!=))`).test(body)) continue;
      const copies = Array.from({ length: trips }, (_, i) => `{ const ${v} = ${i}u;${body}}`).join(" ");
      code = code.slice(0, m.index) + copies + code.slice(end);
      done = false;
      break;
    }
    if (done) return code;
  }
}
