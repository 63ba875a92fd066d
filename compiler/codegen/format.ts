/** Format generated TypeScript with prettier (the project's style for generated code). */
import * as prettier from "prettier";

export async function formatTs(text: string): Promise<string> {
  return prettier.format(text, { parser: "typescript", printWidth: 120, trailingComma: "all" });
}
