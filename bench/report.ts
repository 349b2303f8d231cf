/**
 * How benchmark results are reported: Markdown tables, millions, nearest-rank percentiles. One
 * definition each, so every suite (and `sluice gen`) prints and ranks the same way.
 */

/** `| a | b |` rows padded to a common width; the first `leftColumns` columns left-aligned, the rest right. */
export function markdownTable(head: readonly string[], body: readonly (readonly string[])[], leftColumns = 1): string {
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: readonly string[]): string => `| ${cells.map((c, i) => (i < leftColumns ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' | ')} |`;
  const rule = `|${widths.map((w, i) => (i < leftColumns ? '-'.repeat(w + 2) : '-'.repeat(w + 1) + ':')).join('|')}|`;
  return [line(head), rule, ...body.map(line)].join('\n');
}

/** 12 345 678 → `12.35 M` */
export function millions(v: number, digits = 2): string {
  return `${(v / 1e6).toFixed(digits)} M`;
}

/** The nearest-rank percentile p (0..100) of ascending `sorted` (not empty). */
export function nearestRank(sorted: ArrayLike<number>, p: number): number {
  const n = sorted.length;
  return sorted[Math.min(n - 1, Math.max(0, Math.ceil((p / 100) * n) - 1))]!;
}
