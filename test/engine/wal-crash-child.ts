/**
 * The process that test/engine/wal.test.ts kills. Run as
 *
 *   node dist/test/engine/wal-crash-child.js DIR loop SEGMENT_BYTES
 *   node dist/test/engine/wal-crash-child.js DIR fill SEGMENT_BYTES      (under `ulimit -f`)
 *
 * Both open the log in DIR, print `ready {"stream": lastSeq, ...} [recovery actions]`, then append records of two
 * streams, continuing each at lastSeq() + 1, with up to 8 appends in flight, and print
 * `ack STREAM SEQ` as soon as an append resolves. stdout is a pipe, which Node writes
 * synchronously on Linux, so every printed ack reached the parent before a SIGKILL can land.
 *   loop: runs until killed (exits by itself after 30 s so that a lost parent leaves no orphan);
 *   fill: runs until an append rejects, prints `nack STREAM SEQ CODE` for each rejected one,
 *         then `after CODE` for one more append, and exits.
 */
import { pathToFileURL } from 'node:url';
import { Wal } from '../../engine/wal.js';
import { SluiceError } from '../../engine/errors.js';
import { mulberry32 } from '../../bench/random.js';

export const CRASH_STREAMS = ['bids', 'asks'] as const;

/**
 * The payload of (stream, seq): the same bytes in every process, sizes from 1 byte to
 * ~200 KiB, some with long zero runs (zeros in a payload must never look like a torn write).
 */
export function crashPayload(stream: string, seq: number): Uint8Array {
  const rng = mulberry32((seq * 2654435761) ^ (stream === 'bids' ? 0x1234567 : 0x7654321));
  const r = rng();
  const size = r < 0.6 ? 1 + Math.floor(rng() * 2048) : r < 0.95 ? 2048 + Math.floor(rng() * 30000) : 60000 + Math.floor(rng() * 150000);
  const out = new Uint8Array(size);
  const words = new Int32Array(out.buffer, 0, size >>> 2);
  for (let i = 0; i < words.length; i++) words[i] = (rng() * 4294967296) | 0;
  for (let i = words.length * 4; i < size; i++) out[i] = (rng() * 256) | 0;
  if (rng() < 0.2) out.fill(0, Math.floor(size / 4), Math.floor((size * 3) / 4));
  out[0] = seq & 255;
  return out;
}

async function main(dir: string, mode: string, segmentBytes: number): Promise<void> {
  const wal = await Wal.open(dir, { segmentBytes, groupCommitMs: 2 });
  const next = new Map<string, number>();
  for (const s of CRASH_STREAMS) next.set(s, (wal.lastSeq().get(s) ?? 0) + 1);
  process.stdout.write(`ready ${JSON.stringify(Object.fromEntries(wal.lastSeq()))} ${JSON.stringify(wal.recovery().events.map((e) => e.action))}\n`);
  if (mode === 'loop') setTimeout(() => process.exit(3), 30_000);

  let inFlight = 0;
  let failed: string | null = null;
  let turn = 0;
  await new Promise<void>((done) => {
    const pump = (): void => {
      while (inFlight < 8 && failed === null) {
        const stream = CRASH_STREAMS[turn++ % CRASH_STREAMS.length]!;
        const seq = next.get(stream)!;
        next.set(stream, seq + 1);
        inFlight++;
        wal.append({ stream, seq, format: 'msgpack', bytes: crashPayload(stream, seq) }).then(
          () => {
            inFlight--;
            process.stdout.write(`ack ${stream} ${seq}\n`);
            if (failed !== null && inFlight === 0) done();
            pump();
          },
          (err: unknown) => {
            inFlight--;
            const code = err instanceof SluiceError ? err.code : 'UNKNOWN';
            process.stdout.write(`nack ${stream} ${seq} ${code}\n`);
            failed = code;
            if (inFlight === 0) done();
          },
        );
      }
    };
    pump();
  });
  const stream = CRASH_STREAMS[0];
  try {
    await wal.append({ stream, seq: next.get(stream)!, format: 'msgpack', bytes: new Uint8Array(8) });
    process.stdout.write('after ok\n');
  } catch (err) {
    process.stdout.write(`after ${err instanceof SluiceError ? err.code : 'UNKNOWN'}\n`);
  }
  await wal.close().catch(() => undefined);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const [dir, mode, segmentBytes] = process.argv.slice(2);
  if (dir === undefined || (mode !== 'loop' && mode !== 'fill')) {
    process.stderr.write('usage: wal-crash-child.js DIR loop|fill SEGMENT_BYTES\n');
    process.exit(2);
  }
  main(dir, mode, Number(segmentBytes ?? 1 << 20)).catch((err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
    process.exit(1);
  });
}
