/**
 * Parquet export of result and archive tables (DESIGN.md A2 `storage.parquet.every`).
 *
 * Time is cut into ranges of `every` milliseconds aligned to the Unix epoch. One range of one
 * table is one file, named after the range, so exporting a range again overwrites the file
 * instead of adding a second copy of its rows:
 *
 *   <storage.dir>/parquet/<table>/2024-05-01T12-00-00Z_1m.parquet     rows with time in [12:00, 12:01)
 *
 * Result tables are cut by `window_start`, archives by the stream's event-time column. Which
 * ranges changed since their last export is bookkeeping in DuckDB (`sluice_exports`, kept by
 * storage.ts in the same transaction as the rows); this module holds the range arithmetic and
 * the write of one file. A file is written under a temporary name in the same directory and
 * renamed over the final one, so a reader never sees a half-written file and a crash mid-write
 * leaves the previous version in place.
 */

import { renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { DuckDBConnection } from '@duckdb/node-api';
import { formatDuration } from './units.js';

/** Start of the range holding `ms` (floored, so times before 1970 fall in the right range). */
export function rangeStartOf(ms: number, every: number): number {
  return Math.floor(ms / every) * every;
}

/**
 * `2024-05-01T12-00-00Z_1m.parquet`: the range start in UTC (milliseconds only when not zero;
 * `:` is not allowed in file names everywhere) and the range length. Names sort by time within
 * years 0000–9999.
 */
export function parquetFileName(rangeStart: number, every: number): string {
  const iso = new Date(rangeStart).toISOString().replace('.000Z', 'Z').replaceAll(':', '-');
  return `${iso}_${formatDuration(every)}.parquet`;
}

/**
 * Add to `out` the start of every range the times [from, to) fall in. Rows of one flush are
 * mostly in one or two ranges, so the set is touched only when the range changes.
 */
export function collectRanges(times: Float64Array, from: number, to: number, every: number, out: Set<number>): void {
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = from; i < to; i++) {
    const t = times[i]!;
    if (t >= lo && t < hi) continue;
    if (!Number.isFinite(t)) continue;
    lo = rangeStartOf(t, every);
    hi = lo + every;
    out.add(lo);
  }
}

export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

export function quoteString(s: string): string {
  return `'${s.replaceAll("'", "''")}'`;
}

/** What one table needs for its export. */
export interface ExportSource {
  /** DuckDB table name, also the folder name under parquet/ */
  readonly table: string;
  /** the TIMESTAMP column that cuts rows into ranges */
  readonly timeColumn: string;
  /** columns of the ORDER BY inside one file (empty: insertion order) */
  readonly orderBy: readonly string[];
}

/**
 * Write the rows of `src` in [rangeStart, rangeStart + every) to `<dir>/<file name>`, replacing
 * the file if it exists. Returns the path and the number of rows written.
 */
export async function exportRange(
  conn: DuckDBConnection,
  src: ExportSource,
  dir: string,
  rangeStart: number,
  every: number,
): Promise<{ path: string; rows: number }> {
  const name = parquetFileName(rangeStart, every);
  const path = join(dir, name);
  // A leading dot keeps the temporary file out of `*.parquet` globs of readers.
  const tmp = join(dir, `.${name}.tmp`);
  const time = quoteIdent(src.timeColumn);
  const order = src.orderBy.length === 0 ? '' : ` ORDER BY ${src.orderBy.map(quoteIdent).join(', ')}`;
  const sql = `COPY (SELECT * FROM ${quoteIdent(src.table)} WHERE ${time} >= epoch_ms($1::BIGINT) AND ${time} < epoch_ms($2::BIGINT)${order}) ` +
    `TO ${quoteString(tmp)} (FORMAT parquet)`;
  try {
    const result = await conn.run(sql, [rangeStart, rangeStart + every]);
    renameSync(tmp, path);
    return { path, rows: result.rowsChanged };
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}
