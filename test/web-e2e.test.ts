/**
 * The browser example end to end: build it, serve it, drive Debian's headless Chromium (WebGPU on
 * SwiftShader) with playwright-core, compare the page's numbers with the reference interpreter,
 * check the T sweep plotted a line per form, and save a screenshot (test-results/web-example.png).
 */
import { describe, expect, it, beforeAll, afterAll } from "vitest";
import { existsSync, mkdirSync, mkdtempSync, readFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { extname, join } from "node:path";
import { chromium, type Browser } from "playwright-core";
import { buildExample } from "../examples/web/build.ts";
import { EXAMPLES, makeData } from "../examples/web/models.ts";
import type {} from "../examples/web/page-state.ts";
import { loadProgram } from "../compiler/frontend/load.ts";
import { interpret } from "../compiler/ir/interpret.ts";
import { relativeError } from "../compiler/io/manifest.ts";

const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium) console.warn(`web e2e skipped: no Chromium at ${CHROMIUM} (.ci/run installs Debian's chromium)`);

describe.skipIf(!haveChromium)("examples/web in headless Chromium", () => {
  let server: Server;
  let browser: Browser;
  let url = "";
  beforeAll(async () => {
    const dir = await buildExample(mkdtempSync(join(tmpdir(), "seqc-web-")));
    const types: Record<string, string> = { ".html": "text/html", ".js": "text/javascript" };
    server = createServer((req, res) => {
      const path = join(dir, (req.url ?? "/").split("?")[0].replace(/^\/$/, "/index.html"));
      if (!existsSync(path)) return void res.writeHead(404).end();
      res.setHeader("content-type", types[extname(path)] ?? "application/octet-stream");
      res.end(readFileSync(path));
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const addr = server.address();
    url = `http://127.0.0.1:${typeof addr === "object" && addr ? addr.port : 0}/`;
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ["--no-sandbox", "--enable-unsafe-webgpu", "--use-webgpu-adapter=swiftshader", "--disable-background-networking", "--disable-component-update", "--no-first-run", "--disable-sync"],
    });
  }, 180_000);
  afterAll(async () => {
    await browser?.close();
    server?.close();
  });

  it.each([
    ["gla", 2, 33, ["chunked", "scan", "sequential"]],
    ["hgrn", 3, 57, ["scan", "sequential"]],
  ])("runs %s (B=%i, T=%i) like the reference interpreter and plots a T sweep", async (file, B, T, forms) => {
    const page = await browser.newPage();
    const logs: string[] = [];
    page.on("console", (m) => logs.push(m.text()));
    await page.goto(`${url}?model=${file}&B=${B}&T=${T}&form=auto&run=1&sweep=1&sweepT=8,32`);
    await page.waitForFunction(() => window.seqc?.done, null, { timeout: 280_000 });
    const state = await page.evaluate(() => window.seqc);
    expect(state.error, logs.join("\n")).toBeUndefined();
    const spec = EXAMPLES.find((e) => e.file === file)!;
    const model = loadProgram([`stdlib/${file}.seq`]).models[0];
    const data = makeData(spec, B, T, 1);
    const f64 = (r: Record<string, Float32Array>) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, Float64Array.from(v)]));
    const ref = interpret(model, { dims: spec.dims, batch: B, time: T, inputs: f64(data.inputs), params: f64(data.params) });
    for (const [name, want] of Object.entries(ref.outputs)) {
      const got = Float64Array.from(state.result!.outputs[name]);
      expect(relativeError(got, want), `${file}.${name}`).toBeLessThanOrEqual(1e-4);
    }
    expect(state.result!.ms).toBeGreaterThan(0);
    expect(await page.textContent("#result")).toMatch(/tokens\/s/);
    // one series per form the model has on WebGPU, each timed at every T
    expect(state.sweep!.map((s) => s.label).sort()).toEqual(forms);
    for (const s of state.sweep!) expect(s.points.map((p) => p.T)).toEqual([8, 32]);
    for (const s of state.sweep!) for (const p of s.points) expect(p.ms).toBeGreaterThan(0);
    expect(await page.locator("#plot polyline.series").count()).toBe(state.sweep!.length);
    mkdirSync("test-results", { recursive: true });
    await page.screenshot({ path: `test-results/web-example-${file}.png`, fullPage: true });
    await page.close();
  }, 300_000); // swiftshader builds every form's pipelines; slow on a loaded machine
});
