/**
 * The process test/engine/runtime-crash.test.ts kills with SIGKILL. Run as
 *
 *   node dist/test/engine/crash-child.js DIR loop     ingest until killed (exits by itself after 60 s)
 *   node dist/test/engine/crash-child.js DIR final    ingest the rest, flush, close, print `done`
 *   node dist/test/engine/crash-child.js DIR term     like loop, but `ack: accepted`, and SIGTERM /
 *                                                      SIGINT stop it gracefully (print `stopped`, exit 0)
 *
 * It opens the engine on DIR (stream `bids` with `ack: durable`), which restores the last
 * checkpoint and replays the durable log past it. Then it asks where the stream is, prints
 * `ready SEQ`, and ingests batches SEQ + 1, SEQ + 2, ... up to CRASH_BATCHES, in order, printing
 * `ack SEQ` as soon as each ingest resolves. stdout is a pipe, which Node writes synchronously on
 * Linux, so every printed ack reached the parent before a SIGKILL can land.
 *
 * The protocol makes the expected result well defined. Batch i (its rows fixed by i alone) is
 * always sent as the stream's i-th batch, so its seq is i (checked: a mismatch exits with an
 * error). A batch that was durably logged but whose ack never got out before a kill is in the
 * log, so the restart replays it and reports it in SEQ — the child continues after it and never
 * sends it again. A batch sent but not yet logged is not in the log, SEQ stops before it, and it
 * is sent again with the same seq. So at the end the state holds every batch 1..CRASH_BATCHES
 * exactly once, and every acknowledged batch is among them.
 */
import { pathToFileURL } from 'node:url';
import { Sluice } from '../../engine/runtime.js';
import { SluiceError } from '../../engine/errors.js';
import { stopOnSignals } from '../../engine/signals.js';
import { mulberry32 } from '../helpers/random.js';
import { bidsConfig, encodeBatches, feed, makeEvents, type PipelineDef, type Payload } from '../helpers/oracle.js';
import type { Batch } from '../../engine/schema.js';
import { sliceBatch } from '../../engine/schema.js';

export const CRASH_BATCHES = 8000;
export const CRASH_MOO = 2000;
export const CRASH_PIPELINES: Record<string, PipelineDef> = {
  tumble: { window: { tumbling: '5s' }, groupBy: ['auction'], select: { n: 'count()', s_qty: 'sum(qty)', mx: 'max(price)', f: 'first(price)', acd: 'approx_count_distinct(bidder)' }, lateness: '1s' },
  sess: { window: { session: { gap: '1s' } }, groupBy: ['bidder'], select: { n: 'count()', s_auction: 'sum(auction)', l: 'last(price)' } },
};

/** Rows of batch i (1-based): 1 to 30, fixed by i. */
export function crashBatchRows(i: number): number {
  return 1 + Math.floor(mulberry32(i * 7919)() * 30);
}

/** Every event of the stream, in order; batch i is the next crashBatchRows(i) of them. */
export function crashEvents(): Batch {
  let n = 0;
  for (let i = 1; i <= CRASH_BATCHES; i++) n += crashBatchRows(i);
  return makeEvents({ seed: 31, n, step: 3, disorder: CRASH_MOO, lateRate: 0.01, lateSpan: 20_000 });
}

export function crashConfig(dir: string, ack: 'durable' | 'accepted' = 'durable'): Record<string, unknown> {
  return bidsConfig({ dir, threads: 2, pipelines: CRASH_PIPELINES, ack, maxOutOfOrder: `${CRASH_MOO}ms`, storage: { checkpoint: { every: '100ms' } } });
}

/** The payloads of batches from..CRASH_BATCHES (1-based), Arrow and MessagePack alternating, encoded as they are sent. */
function* payloadsFrom(events: Batch, from: number): Generator<Payload> {
  let offset = 0;
  for (let i = 1; i <= CRASH_BATCHES; i++) {
    const rows = crashBatchRows(i);
    if (i >= from) yield encodeBatches(sliceBatch(events, offset, offset + rows), rows, i % 2 === 0 ? 'arrow' : 'msgpack-rows')[0]!;
    offset += rows;
  }
}

type Mode = 'loop' | 'final' | 'term';

async function main(dir: string, mode: Mode): Promise<void> {
  if (mode !== 'final') setTimeout(() => process.exit(3), 60_000).unref();
  const events = crashEvents();
  const engine = await Sluice.open(crashConfig(dir, mode === 'term' ? 'accepted' : 'durable'));
  if (mode === 'term') {
    stopOnSignals(() => engine.close(), {
      onStopped: (err) => process.stdout.write(err === null ? 'stopped\n' : `stop failed ${String(err)}\n`),
    });
  }
  // open() replayed the log: the state now holds every logged batch, and a commit reports it
  const positions = await engine.checkpoint();
  const seq = positions['bids']?.seq ?? 0;
  process.stdout.write(`ready ${seq}\n`);
  let mismatch: string | null = null;
  try {
    await feed(engine, 'bids', payloadsFrom(events, seq + 1), {
      maxOutstanding: 16,
      onAck: (r, index) => {
        if (r.seq !== seq + 1 + index) mismatch ??= `batch ${seq + 1 + index} was given seq ${r.seq}`;
        process.stdout.write(`ack ${r.seq}\n`);
      },
    });
  } catch (err) {
    // a signal closed the engine under us: the handler exits when the stop is done
    if (mode === 'term' && err instanceof SluiceError && err.code === 'SLUICE_SHUTTING_DOWN') await new Promise(() => {});
    throw err;
  }
  if (mismatch !== null) throw new Error(mismatch);
  if (mode !== 'final') {
    // everything is in: wait to be killed
    await new Promise(() => {});
  }
  await engine.flush();
  await engine.close();
  process.stdout.write('done\n');
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const [dir, mode] = process.argv.slice(2);
  if (dir === undefined || (mode !== 'loop' && mode !== 'final' && mode !== 'term')) {
    process.stderr.write('usage: crash-child.js DIR loop|final|term\n');
    process.exit(2);
  }
  main(dir, mode).catch((err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
    process.exit(1);
  });
}
