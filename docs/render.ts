/**
 * Render docs/*.md to docs/site/*.html, with ```seq blocks highlighted by the TextMate grammar of
 * editors/vscode (the one VS Code uses). `npx tsx docs/render.ts [outDir]`.
 * A small Markdown subset, the one the docs use: headings, paragraphs, `-` lists, tables, fenced
 * code, `code`, **bold**, [links](x.md) (to .html), and <sub> tags.
 */
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { highlightSeqHtml } from "../editors/highlight.ts";

const escape = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to dashes. */
export function slug(heading: string): string {
  return heading.toLowerCase().replace(/[^\w\- ]/g, "").replace(/ /g, "-");
}

const link = (t: string, href: string) => `<a href="${href.replace(/\.md(#|$)/, ".html$1")}">${t}</a>`;

function inline(text: string): string {
  return text
    .split(/(`[^`]+`)/)
    .map((p) => {
      if (p.startsWith("`") && p.endsWith("`") && p.length > 1) return `<code>${escape(p.slice(1, -1))}</code>`;
      return escape(p)
        .replace(/&lt;(\/?)sub&gt;/g, "<$1sub>")
        .replace(/\*\*([^*]+)\*\*/g, "<strong>$1</strong>")
        .replace(/\[([^\]]+)\]\(([^)]+)\)/g, (_m, t: string, href: string) => link(t, href));
    })
    .join("")
    .replace(/\[(<code>[^<]*<\/code>)\]\(([^)]+)\)/g, (_m, t: string, href: string) => link(t, href)); // [`x`](y)
}

export async function renderMarkdown(md: string, title: string): Promise<string> {
  const lines = md.split("\n");
  const out: string[] = [];
  for (let i = 0; i < lines.length; ) {
    const line = lines[i];
    const fence = /^```(\S*)/.exec(line);
    if (fence) {
      const body: string[] = [];
      for (i++; i < lines.length && !/^```\s*$/.test(lines[i]); i++) body.push(lines[i]);
      i++;
      const code = body.join("\n");
      const lang = fence[1] || "text";
      out.push(lang === "seq" ? `<pre class="seq"><code>${await highlightSeqHtml(code)}</code></pre>` : `<pre class="${lang}"><code>${escape(code)}</code></pre>`);
      continue;
    }
    const h = /^(#{1,6})\s+(.*)$/.exec(line);
    if (h) {
      const text = h[2].replace(/`/g, "");
      out.push(`<h${h[1].length} id="${slug(text)}">${inline(h[2])}</h${h[1].length}>`);
      i++;
      continue;
    }
    if (line.startsWith("|")) {
      const rows: string[][] = [];
      for (; i < lines.length && lines[i].startsWith("|"); i++) rows.push(lines[i].replace(/^\||\|$/g, "").split("|").map((c) => c.trim()));
      const [head, , ...body] = rows;
      out.push(`<table><thead><tr>${head.map((c) => `<th>${inline(c)}</th>`).join("")}</tr></thead><tbody>${body.map((r) => `<tr>${r.map((c) => `<td>${inline(c)}</td>`).join("")}</tr>`).join("")}</tbody></table>`);
      continue;
    }
    if (/^\s*- /.test(line)) {
      const items: string[] = [];
      for (; i < lines.length && (/^\s*- /.test(lines[i]) || (/^\s+\S/.test(lines[i]) && items.length)); i++) {
        if (/^\s*- /.test(lines[i])) items.push(lines[i].replace(/^\s*- /, ""));
        else items[items.length - 1] += " " + lines[i].trim();
      }
      out.push(`<ul>${items.map((t) => `<li>${inline(t)}</li>`).join("")}</ul>`);
      continue;
    }
    if (!line.trim()) {
      i++;
      continue;
    }
    const para: string[] = [];
    for (; i < lines.length && lines[i].trim() && !/^(```|#|\||\s*- )/.test(lines[i]); i++) para.push(lines[i]);
    out.push(`<p>${inline(para.join(" "))}</p>`);
  }
  return `<!doctype html>\n<html><head><meta charset="utf-8"><title>${escape(title)}</title><link rel="stylesheet" href="style.css"></head>\n<body>\n${out.join("\n")}\n</body></html>\n`;
}

const STYLE = `body { font: 16px/1.5 system-ui, sans-serif; max-width: 54rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
pre { background: #f6f8fa; padding: .8rem 1rem; overflow-x: auto; border-radius: 6px; }
code { font: 14px/1.45 ui-monospace, monospace; }
table { border-collapse: collapse; } td, th { border: 1px solid #ddd; padding: .2rem .6rem; text-align: left; }
.tm-comment { color: #6a737d; font-style: italic; }
.tm-keyword, .tm-storage { color: #d73a49; }
.tm-keyword.tm-operator { color: #005cc5; }
.tm-entity { color: #6f42c1; }
.tm-support { color: #005cc5; }
.tm-constant { color: #e36209; }
.tm-string { color: #032f62; }
.tm-variable.tm-other { color: #24292e; }
.tm-punctuation { color: #586069; }
`;

export async function renderDocs(docsDir: string, outDir: string): Promise<string[]> {
  mkdirSync(outDir, { recursive: true });
  writeFileSync(join(outDir, "style.css"), STYLE);
  const written: string[] = [];
  for (const f of readdirSync(docsDir).filter((x) => x.endsWith(".md")).sort()) {
    const md = readFileSync(join(docsDir, f), "utf8");
    const title = /^#\s+(.*)$/m.exec(md)?.[1] ?? f;
    const path = join(outDir, f.replace(/\.md$/, ".html"));
    writeFileSync(path, await renderMarkdown(md, title.replace(/`/g, "")));
    written.push(path);
  }
  return written;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const here = dirname(fileURLToPath(import.meta.url));
  const written = await renderDocs(here, process.argv[2] ?? join(here, "site"));
  process.stdout.write(written.map((w) => `wrote ${w}`).join("\n") + "\n");
}
