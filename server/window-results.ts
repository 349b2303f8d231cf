/**
 * Emitted windows (the engine's 'windows' event) in the shapes subscribers receive (DESIGN.md
 * A5): JSON row objects named like the result table's columns, or an Arrow IPC stream with the
 * table's column types (window bounds Timestamp[ms], counts Int64, other aggregates Float64).
 * Values follow /v1/sql's JSON conventions: timestamps as ISO-8601 UTC text, integers beyond
 * ±(2^53 − 1) and non-finite doubles as strings.
 */

import { streamSchemaOf, type SluiceConfig } from '../engine/config.js';
import { compilePipeline } from '../engine/plan.js';
import { makeSchema, setInt64At, valueAt, type Batch, type Column, type ColumnType, type StreamSchema } from '../engine/schema.js';
import type { WindowResult } from '../engine/window-state.js';
import { encodeArrow } from '../native-free-kernels/encode-arrow.js';

type JsonValue = null | boolean | number | string;

export interface ResultShape {
  readonly pipeline: string;
  readonly keys: readonly { readonly name: string; readonly type: ColumnType }[];
  readonly aggregates: readonly { readonly name: string; readonly integer: boolean }[];
  /** the Arrow / Batch schema: window_start, window_end, keys, aggregates */
  readonly schema: StreamSchema;
}

export function resultShape(config: SluiceConfig, pipeline: string): ResultShape {
  const spec = config.pipelines[pipeline]!;
  const stream = config.streams[spec.from]!;
  const plan = compilePipeline(pipeline, spec, streamSchemaOf(config, spec.from), stream.eventTime.column);
  const keys = plan.keys.map((k) => ({ name: k.name, type: k.type }));
  const aggregates = plan.aggregates.map((a) => ({ name: a.output, integer: a.outputType === 'BIGINT' }));
  const schema = makeSchema([
    { name: 'window_start', type: 'timestamp' },
    { name: 'window_end', type: 'timestamp' },
    ...keys,
    ...aggregates.map((a) => ({ name: a.name, type: a.integer ? 'int64' as const : 'float64' as const })),
  ]);
  return { pipeline, keys, aggregates, schema };
}

function jsonNumber(v: number): JsonValue {
  return Number.isFinite(v) ? v : String(v);
}

/** One object per (window, group), in the engine's order. */
export function windowRows(shape: ResultShape, r: WindowResult): Record<string, JsonValue>[] {
  const out: Record<string, JsonValue>[] = new Array(r.rows);
  for (let i = 0; i < r.rows; i++) {
    const row: Record<string, JsonValue> = {
      window_start: new Date(r.windowStart[i]!).toISOString(),
      window_end: new Date(r.windowEnd[i]!).toISOString(),
    };
    shape.keys.forEach((k, j) => {
      const v = valueAt(r.keys[j]!, i);
      row[k.name] = k.type === 'timestamp' && typeof v === 'number' ? new Date(v).toISOString() : v;
    });
    shape.aggregates.forEach((a, j) => {
      const col = r.values[j]!;
      row[a.name] = col.valid[i] === 0 ? null : jsonNumber(col.values[i]!);
    });
    out[i] = row;
  }
  return out;
}

/** The same rows as a Batch of the shape's schema (for Arrow IPC). */
export function windowBatch(shape: ResultShape, r: WindowResult): Batch {
  const n = r.rows;
  const columns: Column[] = [
    { type: 'timestamp', values: r.windowStart.subarray(0, n), valid: null },
    { type: 'timestamp', values: r.windowEnd.subarray(0, n), valid: null },
    ...r.keys,
  ];
  shape.aggregates.forEach((a, j) => {
    const { values, valid } = r.values[j]!;
    const v = valid.subarray(0, n);
    if (!a.integer) {
      columns.push({ type: 'float64', values: values.subarray(0, n), valid: v });
      return;
    }
    const words = new Int32Array(2 * n);
    for (let i = 0; i < n; i++) setInt64At(words, i, values[i]!);
    columns.push({ type: 'int64', words, valid: v });
  });
  return { schema: shape.schema, length: n, columns };
}

export function windowArrow(shape: ResultShape, r: WindowResult): Uint8Array {
  return encodeArrow(windowBatch(shape, r));
}
