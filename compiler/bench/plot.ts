/**
 * A small SVG line plot against sequence length T (log-log): one line per form, and optionally a
 * dashed reference line (e.g. the time a copy of the forward's minimum bytes takes at the device's
 * copy bandwidth). Used by `seqc bench --plot` and the web example. `ms` is whatever is plotted.
 */
export interface Series { label: string; points: { T: number; ms: number }[]; reference?: boolean }
export interface PlotOptions { width?: number; height?: number; yLabel?: string }

const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e"];

export function plotSvg(series: Series[], opts: PlotOptions = {}): string {
  const { width = 560, height = 320, yLabel = "ms per forward" } = opts;
  const pts = series.flatMap((s) => s.points).filter((p) => p.ms > 0);
  if (!pts.length) return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}"></svg>`;
  const m = { l: 56, r: 150, t: 16, b: 40 };
  const lx = (T: number) => Math.log10(T);
  const [x0, x1] = [Math.min(...pts.map((p) => lx(p.T))), Math.max(...pts.map((p) => lx(p.T)))];
  const [y0, y1] = [Math.log10(Math.min(...pts.map((p) => p.ms))), Math.log10(Math.max(...pts.map((p) => p.ms)))];
  const sx = (T: number) => m.l + ((lx(T) - x0) / Math.max(1e-9, x1 - x0)) * (width - m.l - m.r);
  const sy = (ms: number) => height - m.b - ((Math.log10(ms) - y0) / Math.max(1e-9, y1 - y0)) * (height - m.t - m.b);
  const parts: string[] = [];
  parts.push(`<line x1="${m.l}" y1="${height - m.b}" x2="${width - m.r}" y2="${height - m.b}" stroke="#444"/>`);
  parts.push(`<line x1="${m.l}" y1="${m.t}" x2="${m.l}" y2="${height - m.b}" stroke="#444"/>`);
  const Ts = [...new Set(pts.map((p) => p.T))].sort((a, b) => a - b);
  for (const T of Ts) parts.push(`<text x="${sx(T)}" y="${height - m.b + 16}" font-size="11" text-anchor="middle">${T}</text>`);
  parts.push(`<text x="${(m.l + width - m.r) / 2}" y="${height - 6}" font-size="12" text-anchor="middle">sequence length T</text>`);
  for (const ms of [Math.min(...pts.map((p) => p.ms)), Math.max(...pts.map((p) => p.ms))]) {
    parts.push(`<text x="${m.l - 6}" y="${sy(ms) + 4}" font-size="11" text-anchor="end">${ms.toPrecision(3)}</text>`);
  }
  parts.push(`<text x="14" y="${(m.t + height - m.b) / 2}" font-size="12" transform="rotate(-90 14 ${(m.t + height - m.b) / 2})" text-anchor="middle">${yLabel}</text>`);
  series.forEach((s, i) => {
    const c = COLORS[i % COLORS.length];
    const p = s.points.filter((q) => q.ms > 0).sort((a, b) => a.T - b.T);
    const dash = s.reference ? ` stroke-dasharray="6 4"` : "";
    parts.push(`<polyline class="${s.reference ? "reference" : "series"}" data-label="${s.label}" fill="none" stroke="${s.reference ? "#777" : c}"${dash} stroke-width="2" points="${p.map((q) => `${sx(q.T).toFixed(1)},${sy(q.ms).toFixed(1)}`).join(" ")}"/>`);
    if (!s.reference) for (const q of p) parts.push(`<circle cx="${sx(q.T).toFixed(1)}" cy="${sy(q.ms).toFixed(1)}" r="3" fill="${c}"/>`);
    parts.push(`<text x="${width - m.r + 10}" y="${m.t + 14 + i * 16}" font-size="12" fill="${s.reference ? "#777" : c}">${s.label}</text>`);
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" role="img" aria-label="time against T per form">${parts.join("")}</svg>`;
}
