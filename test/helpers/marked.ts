/**
 * Marked batches for the ingest tests (HTTP and WebSocket): every row of a batch carries the
 * batch's own `bidder` value (a marker), so the archive tells which batches landed, each exactly
 * once and whole. `summary` is what a batch must add to the archive, `archived` what the archive
 * holds per marker, both in the same form; `withServer` runs a test on a server with the archive on.
 */
import type { Batch, Column } from '../../engine/schema.js';
import type { SluiceServer } from '../../server/app.js';
import { BIDS_SCHEMA, makeEvents } from './oracle.js';
import { testServer, type TestServerOptions } from './server.js';

export const utf8 = new TextEncoder();
const BIDDER = BIDS_SCHEMA.index.get('bidder')!;

/** `n` seeded events whose bidder is `marker` in every row. */
export function marked(marker: number, n: number, seed = marker): Batch {
  const events = makeEvents({ seed, n, step: 7, disorder: 50 });
  const words = new Int32Array(2 * n);
  for (let i = 0; i < n; i++) words[2 * i] = marker;
  const columns = events.columns.map((c, i): Column => (i === BIDDER ? { type: 'int64', words, valid: null } : c));
  return { ...events, columns };
}

/** Per batch: rows, Σ qty, Σ UTF-8 bytes of channel, Σ event time — the archive query's columns. */
export function summary(b: Batch): string {
  const col = (name: string): Column => b.columns[BIDS_SCHEMA.index.get(name)!]!;
  const qty = col('qty'), channel = col('channel'), ts = col('ts');
  let q = 0n, chars = 0n, t = 0n;
  for (let i = 0; i < b.length; i++) {
    if (qty.type === 'int32' && (qty.valid === null || qty.valid[i] === 1)) q += BigInt(qty.values[i]!);
    if (channel.type === 'string' && (channel.valid === null || channel.valid[i] === 1)) chars += BigInt(utf8.encode(channel.dict[channel.codes[i]!]!).length);
    if (ts.type === 'timestamp') t += BigInt(ts.values[i]!);
  }
  return `${b.length}|${q}|${chars}|${t}`;
}

/** marker → summary of its rows in the archive (after a commit). */
export async function archived(server: SluiceServer): Promise<Map<string, string>> {
  await server.engine.checkpoint();
  const r = await server.engine.query(
    `SELECT bidder::VARCHAR, count(*)::VARCHAR || '|' || coalesce(sum(qty), 0)::VARCHAR || '|' ||
            coalesce(sum(strlen(channel)), 0)::VARCHAR || '|' || sum(epoch_ms(ts))::VARCHAR
     FROM bids GROUP BY bidder`);
  return new Map(r.rows.map((row) => [String(row[0]), String(row[1])]));
}

/** `fn` on a test server with the archive on (and `opts`), closed afterwards. */
export async function withServer(opts: TestServerOptions, fn: (server: SluiceServer) => Promise<void>): Promise<void> {
  const server = await testServer({ archive: true, ...opts });
  try {
    await fn(server);
  } finally {
    await server.close();
  }
}
