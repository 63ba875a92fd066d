/** What the page publishes on `window.seqc` for the end-to-end test (test/web-e2e.test.ts) to read. */
import type { Series } from "../../compiler/bench/plot.ts";

export interface Result { model: string; B: number; T: number; form: string; variant: string; ms: number; outputs: Record<string, number[]> }

export interface PageState { done: boolean; error?: string; result?: Result; sweep?: Series[] }

declare global {
  interface Window { seqc: PageState }
}
