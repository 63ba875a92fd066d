/** Valid .seq sources for fuzzing: the analysis fixture and every stdlib model. */
import { readdirSync, readFileSync } from "node:fs";

export const seqCorpus: string[] = [
  readFileSync("test/fixtures/seq/analysis-cases.seq", "utf8"),
  ...readdirSync("stdlib").filter((f) => f.endsWith(".seq")).sort().map((f) => readFileSync(`stdlib/${f}`, "utf8")),
];
