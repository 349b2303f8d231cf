/**
 * A self-contained SVG line chart of benchmark runs: events/s over time above, RSS over time
 * below, one line per run, a legend on the right. No dependencies, no scripts, no external
 * fonts — the file renders the same in a browser, an image viewer or a GitHub README.
 */

export interface Series {
  readonly name: string;
  /** drawn thicker */
  readonly emphasis: boolean;
  /** [seconds, events per second] */
  readonly throughput: readonly (readonly [number, number])[];
  /** [seconds, MiB] */
  readonly rss: readonly (readonly [number, number])[];
}

const PALETTE = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];

const W = 1250;
const PLOT_W = 700;
const LEFT = 80;
const PANEL_H = 230;
const TOP = 50;
const GAP = 70;

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** 1, 2 or 5 × 10^k at or above v / 5: about five gridlines. */
function step(max: number): number {
  const raw = max / 5;
  if (!(raw > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 5, 10]) if (m * p >= raw) return m * p;
  return 10 * p;
}

/** The line style of series i, the same in the plots and the legend. */
function stroke(s: Series, i: number): string {
  return `stroke="${PALETTE[i % PALETTE.length]}" stroke-width="${s.emphasis ? 2.5 : 1.2}"${i >= PALETTE.length && !s.emphasis ? ' stroke-dasharray="4 2"' : ''}`;
}

function panel(
  out: string[], series: readonly Series[], pick: (s: Series) => readonly (readonly [number, number])[],
  y0: number, label: string, fmt: (v: number) => string, maxT: number,
): void {
  let maxV = 0;
  for (const s of series) for (const [, v] of pick(s)) maxV = Math.max(maxV, v);
  const vStep = step(maxV || 1);
  const vTop = Math.max(vStep, Math.ceil((maxV || 1) / vStep) * vStep);
  const tStep = step(maxT);
  const x = (t: number): number => LEFT + (t / maxT) * PLOT_W;
  const y = (v: number): number => y0 + PANEL_H - (v / vTop) * PANEL_H;
  out.push(`<text x="${LEFT}" y="${y0 - 10}" font-size="13" font-weight="bold">${esc(label)}</text>`);
  for (let v = 0; v <= vTop + 1e-9; v += vStep) {
    out.push(`<line x1="${LEFT}" x2="${LEFT + PLOT_W}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}" stroke="#ddd"/>`);
    out.push(`<text x="${LEFT - 6}" y="${(y(v) + 4).toFixed(1)}" font-size="11" text-anchor="end">${esc(fmt(v))}</text>`);
  }
  for (let t = 0; t <= maxT + 1e-9; t += tStep) {
    out.push(`<line x1="${x(t).toFixed(1)}" x2="${x(t).toFixed(1)}" y1="${y0}" y2="${y0 + PANEL_H}" stroke="#eee"/>`);
    out.push(`<text x="${x(t).toFixed(1)}" y="${y0 + PANEL_H + 15}" font-size="11" text-anchor="middle">${t} s</text>`);
  }
  out.push(`<rect x="${LEFT}" y="${y0}" width="${PLOT_W}" height="${PANEL_H}" fill="none" stroke="#999"/>`);
  series.forEach((s, i) => {
    const pts = pick(s);
    if (pts.length === 0) return;
    const d = pts.map(([t, v]) => `${x(t).toFixed(1)},${y(v).toFixed(1)}`).join(' ');
    out.push(`<polyline points="${d}" fill="none" ${stroke(s, i)}/>`);
  });
}

export function renderChart(series: readonly Series[], o: { title: string }): string {
  let maxT = 1;
  for (const s of series) for (const [t] of [...s.throughput, ...s.rss]) maxT = Math.max(maxT, t);
  const height = TOP + 2 * PANEL_H + GAP + 50;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${height}" viewBox="0 0 ${W} ${height}" font-family="sans-serif">`,
    `<rect width="${W}" height="${height}" fill="white"/>`,
    `<text x="${LEFT}" y="22" font-size="16" font-weight="bold">${esc(o.title)}</text>`,
  ];
  panel(out, series, (s) => s.throughput, TOP, 'events/s acknowledged by the server (every 0.5 s)', (v) => `${(v / 1e6).toFixed(v < 1e6 && v > 0 ? 1 : 0)} M`, maxT);
  panel(out, series, (s) => s.rss, TOP + PANEL_H + GAP, 'server RSS', (v) => `${Math.round(v)} MiB`, maxT);
  series.forEach((s, i) => {
    const ly = TOP + i * 16;
    const lx = LEFT + PLOT_W + 20;
    out.push(`<line x1="${lx}" x2="${lx + 18}" y1="${ly}" y2="${ly}" ${stroke(s, i)}/>`);
    out.push(`<text x="${lx + 24}" y="${ly + 4}" font-size="11">${esc(s.name)}</text>`);
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
