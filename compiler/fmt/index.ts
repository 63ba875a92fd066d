/**
 * `seqc fmt`'s engine: the canonical layout of a .seq file (see layout.ts and units.ts for the
 * rules). Formatting keeps every comment in order and the meaning (the resolved IR) unchanged;
 * a file with syntax errors is refused with its diagnostics.
 */
import type { Diagnostic } from "../../grammar/index.ts";
import { scanSource } from "./source.ts";
import { buildUnits } from "./units.ts";
import { layout } from "./layout.ts";

export type Formatted = { ok: true; text: string } | { ok: false; diagnostics: Diagnostic[] };

/** Formatted text has \n line endings (\r\n ones are converted, inside comments too) and ends with one newline. */
export function formatSeq(text: string, file: string): Formatted {
  const s = scanSource(text.replace(/\r\n/g, "\n"), file);
  if (!s.ok) return s;
  return { ok: true, text: layout(s.source, buildUnits(s.source)) };
}
