/**
 * Fenced code blocks of the docs, as the docs test runs them. A block's info string is its
 * language then `key=value` attributes:
 *   ```seq [file=name.seq] [error=SEQ3002,...] [warning=SEQ4101,...]
 *   ```sh [exit=1]        commands run in the doc's working folder, `seqc` on the PATH
 *   ```ts [file=name.ts]  run with tsx in the same folder
 * A block with no language (or `text`) right after an sh or ts block is that block's expected output
 * (`text match=prefix`: the output begins with it).
 */
export interface DocBlock {
  lang: string;
  attrs: Record<string, string>;
  code: string;
  /** 1-based line of the opening fence. */
  line: number;
  output?: DocBlock;
}

export function docBlocks(markdown: string): DocBlock[] {
  const lines = markdown.split("\n");
  const blocks: DocBlock[] = [];
  let last: DocBlock | undefined;
  let sinceLast = 0;
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\S*)\s*(.*)$/.exec(lines[i]);
    if (!open) {
      if (lines[i].trim()) sinceLast++;
      continue;
    }
    const body: string[] = [];
    let j = i + 1;
    while (j < lines.length && !/^```\s*$/.test(lines[j])) body.push(lines[j++]);
    if (j >= lines.length) throw new Error(`line ${i + 1}: code block is not closed`);
    const attrs: Record<string, string> = {};
    for (const a of open[2].split(/\s+/).filter(Boolean)) {
      const m = /^([\w-]+)=(.*)$/.exec(a);
      if (!m) throw new Error(`line ${i + 1}: attribute '${a}' is not key=value`);
      attrs[m[1]] = m[2];
    }
    const b: DocBlock = { lang: open[1], attrs, code: body.join("\n") + "\n", line: i + 1 };
    if ((b.lang === "" || b.lang === "text") && last && (last.lang === "sh" || last.lang === "ts") && !last.output && sinceLast === 0) last.output = b;
    else blocks.push(b);
    last = b;
    sinceLast = 0;
    i = j;
  }
  return blocks;
}
