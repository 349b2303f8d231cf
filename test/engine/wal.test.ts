import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import zlib from 'node:zlib';
import { crc32, crc32Portable, Wal, type WalFormat, type WalRecord } from '../../engine/wal.js';
import { SluiceError } from '../../engine/errors.js';
import { mulberry32, type Rng } from '../helpers/random.js';
import { CRASH_STREAMS, crashPayload } from './wal-crash-child.js';

const root = mkdtempSync(join(tmpdir(), 'sluice-wal-test-'));
after(() => rmSync(root, { recursive: true, force: true }));
let dirCount = 0;
function freshDir(): string {
  const d = join(root, `d${dirCount++}`);
  mkdirSync(d);
  return d;
}

const FORMATS: WalFormat[] = ['arrow', 'msgpack', 'ndjson', 'json'];

function randomBytes(rng: Rng, size: number): Uint8Array {
  const out = new Uint8Array(size);
  for (let i = 0; i < size; i++) out[i] = (rng() * 256) | 0;
  return out;
}

interface Rec {
  seq: number;
  stream: string;
  format: WalFormat;
  bytes: Uint8Array;
}

async function collect(wal: Wal, after: ReadonlyMap<string, number> = new Map()): Promise<Rec[]> {
  const out: Rec[] = [];
  for await (const r of wal.replay(after)) out.push({ seq: r.seq, stream: r.stream, format: r.format, bytes: r.bytes.slice() });
  return out;
}

function assertSameRecords(actual: readonly Rec[], expected: readonly WalRecord[]): void {
  assert.equal(actual.length, expected.length, 'record count');
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i]!;
    const e = expected[i]!;
    assert.equal(a.stream, e.stream, `record ${i} stream`);
    assert.equal(a.seq, e.seq, `record ${i} seq`);
    assert.equal(a.format, e.format, `record ${i} format`);
    assert.deepEqual(a.bytes, e.bytes, `record ${i} bytes`);
  }
}

function segmentFiles(dir: string): string[] {
  return readdirSync(dir).filter((n) => /^\d{10}\.wal$/.test(n)).sort().map((n) => join(dir, n));
}

/**
 * An independent reader of the format documented in engine/wal.ts (checksums through
 * node:zlib), so that the tests also hold the documentation to the bytes.
 */
interface ParsedFrame {
  offset: number;
  frameLen: number;
  payloadOffset: number;
  stream: string;
  seq: number;
  format: number;
  synced: number;
  payload: Uint8Array;
}
function parseSegment(path: string): { no: number; frames: ParsedFrame[]; size: number } {
  const b = new Uint8Array(readFileSync(path));
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  assert.equal(Buffer.from(b.subarray(0, 8)).toString('latin1'), 'SLUICEWL');
  assert.equal(dv.getUint32(8, true), 1, 'version');
  assert.equal(dv.getUint32(24, true), zlib.crc32(b.subarray(0, 24)), 'segment header crc');
  const frames: ParsedFrame[] = [];
  let p = 32;
  while (p < b.length) {
    assert.equal(Buffer.from(b.subarray(p, p + 4)).toString('latin1'), 'SLFR', `frame magic at ${p}`);
    const nameLen = dv.getUint16(p + 30, true);
    const headerLen = 32 + Math.ceil(nameLen / 8) * 8;
    assert.equal(dv.getUint32(p + 4, true), zlib.crc32(b.subarray(p + 8, p + headerLen)), `header crc at ${p}`);
    const length = dv.getUint32(p + 8, true);
    const payload = b.subarray(p + headerLen, p + headerLen + length);
    assert.equal(dv.getUint32(p + 12, true), zlib.crc32(payload), `payload crc at ${p}`);
    const frameLen = headerLen + Math.ceil(length / 8) * 8;
    frames.push({
      offset: p, frameLen, payloadOffset: p + headerLen,
      stream: Buffer.from(b.subarray(p + 32, p + 32 + nameLen)).toString('utf8'),
      seq: dv.getUint32(p + 20, true) * 2 ** 32 + dv.getUint32(p + 16, true),
      format: b[p + 28]!, synced: dv.getUint32(p + 24, true), payload,
    });
    p += frameLen;
  }
  assert.equal(p, b.length, 'frames end at the end of the file');
  return { no: dv.getUint32(12, true), frames, size: b.length };
}

/** Records of a segment, without the seq-floor frame. */
function dataFrames(path: string): ParsedFrame[] {
  return parseSegment(path).frames.filter((f) => f.format !== 0x80);
}

async function rejectsWith(p: Promise<unknown>, code: string, match?: RegExp): Promise<SluiceError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof SluiceError, `expected a SluiceError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    if (match) assert.match(err.message, match);
    return err;
  }
  assert.fail(`expected a rejection with ${code}`);
}

/** Writes `n` records of 3 streams with seeded sizes; returns them in append order. */
async function fill(wal: Wal, rng: Rng, n: number, maxSize: number, firstSeq = new Map<string, number>()): Promise<WalRecord[]> {
  const streams = ['bids', 'asks', 'ünïcode stream'];
  const next = new Map(streams.map((s) => [s, (firstSeq.get(s) ?? 0) + 1]));
  const recs: WalRecord[] = [];
  const pending: Promise<void>[] = [];
  for (let i = 0; i < n; i++) {
    const stream = streams[Math.floor(rng() * streams.length)]!;
    const seq = next.get(stream)!;
    next.set(stream, seq + 1 + (rng() < 0.1 ? 3 : 0)); // seqs increase, with gaps now and then
    const rec: WalRecord = { seq, stream, format: FORMATS[i % 4]!, bytes: randomBytes(rng, Math.floor(rng() * maxSize)) };
    recs.push(rec);
    pending.push(wal.append(rec));
    if (rng() < 0.2) await Promise.all(pending.splice(0)); // mixes lone appends and bursts
  }
  await Promise.all(pending);
  return recs;
}

function lastSeqOf(recs: readonly WalRecord[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const r of recs) m.set(r.stream, Math.max(m.get(r.stream) ?? 0, r.seq));
  return m;
}

// ---------------------------------------------------------------------------------------------

test('crc32: known values, the table and node:zlib agree, sums chain', () => {
  const ascii = new TextEncoder().encode('123456789');
  assert.equal(crc32Portable(ascii), 0xcbf43926);
  assert.equal(crc32(ascii), 0xcbf43926);
  assert.equal(crc32Portable(new Uint8Array(0)), 0);
  const rng = mulberry32(7);
  const big = randomBytes(rng, 70_000);
  for (const len of [0, 1, 7, 8, 9, 63, 255, 256, 257, 4096, 65_537]) {
    for (const off of [0, 1, 3, 5]) {
      const view = big.subarray(off, off + len);
      assert.equal(crc32Portable(view), zlib.crc32(view), `len ${len} off ${off}`);
      assert.equal(crc32(view), zlib.crc32(view), `len ${len} off ${off}`);
    }
  }
  const a = big.subarray(0, 1000);
  const b = big.subarray(1000, 5000);
  assert.equal(crc32Portable(b, crc32Portable(a)), crc32Portable(big.subarray(0, 5000)));
  assert.equal(crc32(b, crc32(a)), crc32(big.subarray(0, 5000)));
  const sab = new Uint8Array(new SharedArrayBuffer(300));
  sab.set(big.subarray(0, 300));
  assert.equal(crc32(sab), zlib.crc32(big.subarray(0, 300)));
});

test('round trip across segment rolls, with a record larger than a segment', async () => {
  const dir = freshDir();
  const rng = mulberry32(1);
  const wal = await Wal.open(dir, { segmentBytes: 64 * 1024 });
  assert.equal(wal.recovery().events.length, 0);
  const recs = await fill(wal, rng, 600, 6000);
  const giant: WalRecord = { seq: 10_000, stream: 'bids', format: 'arrow', bytes: randomBytes(rng, 200_000) };
  await wal.append(giant);
  const tail = await fill(wal, rng, 50, 3000, lastSeqOf([...recs, giant]));
  const all = [...recs, giant, ...tail];
  assertSameRecords(await collect(wal), all); // live, before close
  assert.deepEqual(wal.lastSeq(), lastSeqOf(all));
  const st = wal.stats();
  assert.equal(st.appendedRecords, all.length);
  assert.ok(st.segments >= 10, `segments: ${st.segments}`);
  await wal.close();

  const files = segmentFiles(dir);
  assert.equal(files.length, st.segments);
  assert.equal(st.bytes, files.reduce((s, f) => s + statSync(f).size, 0));
  // the giant record sits alone in its segment (with the seq floor in front of it)
  const own = files.map((f) => dataFrames(f)).filter((fr) => fr.some((x) => x.seq === giant.seq && x.stream === 'bids'));
  assert.equal(own.length, 1);
  assert.equal(own[0]!.length, 1);
  for (const f of files) {
    const size = statSync(f).size;
    if (dataFrames(f).length > 1) assert.ok(size <= 64 * 1024, `${f} is ${size} bytes`);
  }

  const again = await Wal.open(dir, { segmentBytes: 64 * 1024 });
  assert.equal(again.recovery().events.length, 0);
  assert.equal(again.recovery().records, all.length);
  assert.deepEqual(again.lastSeq(), lastSeqOf(all));
  assertSameRecords(await collect(again), all);
  // payloads come back 8-byte aligned, ready for typed-array views
  for await (const r of again.replay(new Map())) assert.equal(r.bytes.byteOffset % 8, 0);
  await again.close();
});

test('replay filters by per-stream seq', async () => {
  const dir = freshDir();
  const wal = await Wal.open(dir, { segmentBytes: 16 * 1024 });
  const recs = await fill(wal, mulberry32(2), 300, 2000);
  const after = new Map([['bids', 40], ['asks', 1_000_000]]); // 'ünïcode stream' absent: everything
  const want = recs.filter((r) => r.seq > (after.get(r.stream) ?? 0));
  assert.ok(want.length > 0 && want.length < recs.length);
  assertSameRecords(await collect(wal, after), want);
  await wal.close();
  const again = await Wal.open(dir);
  assertSameRecords(await collect(again, after), want);
  assertSameRecords(await collect(again, lastSeqOf(recs)), []);
  await again.close();
});

test('trim deletes exactly the passed segments and keeps the seqs across a restart', async () => {
  const dir = freshDir();
  const wal = await Wal.open(dir, { segmentBytes: 8 * 1024 });
  const recs = await fill(wal, mulberry32(3), 200, 1500);
  const before = segmentFiles(dir);
  const content = new Map(before.map((f) => [f, dataFrames(f)]));
  const upTo = new Map([['bids', 30], ['asks', 25], ['ünïcode stream', 20]]);
  const passed = (f: string): boolean => content.get(f)!.every((fr) => fr.seq <= (upTo.get(fr.stream) ?? 0));
  const newest = before[before.length - 1]!;
  const expectGone = before.filter((f) => f !== newest && passed(f));
  assert.ok(expectGone.length >= 2, 'the test needs segments to delete');
  assert.ok(expectGone.length < before.length - 1, 'and segments to keep');
  await wal.trim(upTo);
  assert.deepEqual(segmentFiles(dir), before.filter((f) => !expectGone.includes(f)));
  assert.equal(wal.stats().segments, before.length - expectGone.length);
  // what trim kept still replays
  assertSameRecords(await collect(wal, upTo), recs.filter((r) => r.seq > (upTo.get(r.stream) ?? 0)));
  await wal.close();

  // A checkpoint past everything: the newest segment is rolled, all old ones go, and the seq
  // floor in the new segment keeps lastSeq() across a restart.
  const again = await Wal.open(dir, { segmentBytes: 8 * 1024 });
  const more = await fill(again, mulberry32(4), 20, 500, lastSeqOf(recs));
  const everything = lastSeqOf([...recs, ...more]);
  await again.trim(everything);
  const left = segmentFiles(dir);
  assert.equal(left.length, 1);
  assert.equal(dataFrames(left[0]!).length, 0);
  assertSameRecords(await collect(again), []);
  await again.trim(everything); // nothing to do, and no churn of empty segments
  assert.deepEqual(segmentFiles(dir), left);
  await again.close();
  const third = await Wal.open(dir);
  assert.deepEqual(third.lastSeq(), everything);
  await third.append({ seq: everything.get('bids')! + 1, stream: 'bids', format: 'json', bytes: new Uint8Array([1]) });
  await rejectsWith(third.append({ seq: everything.get('asks')!, stream: 'asks', format: 'json', bytes: new Uint8Array(1) }), 'SLUICE_INTERNAL', /not above/);
  await third.close();
});

test('group commit batches concurrent appends into few fsyncs', async () => {
  const dir = freshDir();
  const wal = await Wal.open(dir);
  const rng = mulberry32(5);
  const burst: Promise<void>[] = [];
  for (let i = 1; i <= 1000; i++) burst.push(wal.append({ seq: i, stream: 's', format: 'ndjson', bytes: randomBytes(rng, 100) }));
  await Promise.all(burst);
  assert.ok(wal.stats().syncs <= 2, `1000 concurrent appends took ${wal.stats().syncs} fsyncs`);
  // appends that arrive while a commit is on its way to disk share the next one
  const s0 = wal.stats().syncs;
  const waves: Promise<void>[] = [];
  for (let w = 0; w < 5; w++) {
    for (let i = 0; i < 100; i++) waves.push(wal.append({ seq: 1001 + w * 100 + i, stream: 's', format: 'ndjson', bytes: randomBytes(rng, 50) }));
    await new Promise((r) => setTimeout(r, 1));
  }
  await Promise.all(waves);
  assert.ok(wal.stats().syncs - s0 <= 8, `500 appends in 5 waves took ${wal.stats().syncs - s0} fsyncs`);
  // one at a time, each append is its own commit: the counter counts real fsyncs
  const s1 = wal.stats().syncs;
  for (let i = 1; i <= 10; i++) await wal.append({ seq: 2000 + i, stream: 's', format: 'ndjson', bytes: new Uint8Array(10) });
  assert.equal(wal.stats().syncs - s1, 10);
  await wal.close();
});

test('groupCommitMs spaces the commits', async () => {
  const wal = await Wal.open(freshDir(), { groupCommitMs: 25 });
  await wal.append({ seq: 1, stream: 's', format: 'json', bytes: new Uint8Array(1) }); // idle log: no wait
  const t0 = performance.now();
  for (let i = 2; i <= 5; i++) await wal.append({ seq: i, stream: 's', format: 'json', bytes: new Uint8Array(1) });
  const elapsed = performance.now() - t0;
  assert.ok(elapsed >= 4 * 25 - 10, `4 sequential commits took ${elapsed.toFixed(1)} ms`);
  await wal.close();
});

/** A closed log of `n` records in one segment whose last record has a `lastSize`-byte payload. */
async function singleSegmentLog(n: number, lastSize: number): Promise<{ bytes: Uint8Array; recs: WalRecord[]; last: ParsedFrame }> {
  const dir = freshDir();
  const wal = await Wal.open(dir);
  const rng = mulberry32(6);
  const recs: WalRecord[] = [];
  for (let i = 1; i <= n; i++) {
    const rec: WalRecord = { seq: i, stream: 'bids', format: 'arrow', bytes: randomBytes(rng, i === n ? lastSize : 100 + i * 37) };
    recs.push(rec);
    await wal.append(rec);
  }
  await wal.close();
  const [file] = segmentFiles(dir);
  const frames = parseSegment(file!).frames;
  return { bytes: new Uint8Array(readFileSync(file!)), recs, last: frames[frames.length - 1]! };
}

/** Puts `bytes` as the only segment of a fresh directory and opens it. */
async function openWith(bytes: Uint8Array, opts: { onCorrupt?: 'refuse' | 'skip' } = {}): Promise<{ wal: Wal; dir: string; file: string }> {
  const dir = freshDir();
  const file = join(dir, '0000000001.wal');
  writeFileSync(file, bytes);
  return { wal: await Wal.open(dir, opts), dir, file };
}

test('a torn tail at every byte offset of the last frame is truncated, leaving exactly the complete records', async () => {
  const { bytes, recs, last } = await singleSegmentLog(12, 300);
  const end = last.offset + last.frameLen;
  assert.equal(end, bytes.length);
  for (let cut = last.offset; cut < end; cut++) {
    const { wal, file } = await openWith(bytes.subarray(0, cut));
    const ev = wal.recovery().events;
    if (cut === last.offset) assert.equal(ev.length, 0, 'a cut between frames is a clean end');
    else {
      assert.equal(ev.length, 1, `cut ${cut}`);
      assert.equal(ev[0]!.action, 'truncated-torn-tail');
      assert.equal(ev[0]!.offset, last.offset);
      assert.equal(ev[0]!.droppedBytes, cut - last.offset);
    }
    assert.equal(statSync(file).size, last.offset);
    assertSameRecords(await collect(wal), recs.slice(0, -1));
    assert.equal(wal.lastSeq().get('bids'), recs.length - 1);
    await wal.close();
  }
  // after recovery the log takes the lost seq again, in a new segment
  const { wal, dir } = await openWith(bytes.subarray(0, end - 5));
  const redo: WalRecord = { ...recs[recs.length - 1]!, format: 'json' };
  await wal.append(redo);
  await wal.close();
  const again = await Wal.open(dir);
  assertSameRecords(await collect(again), [...recs.slice(0, -1), redo]);
  await again.close();
});

test('a zero-filled tail is truncated', async () => {
  const { bytes, recs, last } = await singleSegmentLog(12, 700);
  const end = bytes.length;
  // zeros after a clean end (the file grew, its blocks were never written)
  for (const extra of [1, 7, 8, 100, 4096, 10_000]) {
    const grown = new Uint8Array(end + extra);
    grown.set(bytes);
    const { wal, file } = await openWith(grown);
    assert.deepEqual(wal.recovery().events.map((e) => [e.action, e.offset, e.droppedBytes]), [['truncated-torn-tail', end, extra]]);
    assert.equal(statSync(file).size, end);
    assertSameRecords(await collect(wal), recs);
    await wal.close();
  }
  // The last frame zeroed from offset k on (the file size survived, the data did not). A crash
  // leaves zeros from the start of a commit (a frame start) or from a block boundary on, so
  // those are torn tails; zeros that begin anywhere else are damage and are refused.
  const payloadEnd = last.payloadOffset + last.payload.length;
  assert.ok(Math.floor(last.offset / 512) < Math.floor((payloadEnd - 1) / 512), 'the last frame must cross a sector boundary');
  let tornCases = 0;
  let refusedCases = 0;
  for (let k = last.offset; k < end; k++) {
    const image = bytes.slice();
    image.fill(0, k);
    const torn = k < payloadEnd && (k === last.offset || Math.ceil(k / 512) * 512 < end);
    if (torn) tornCases++;
    else if (k < payloadEnd) refusedCases++;
    if (k >= payloadEnd) {
      const { wal } = await openWith(image); // only padding zeroed: nothing lost
      assert.equal(wal.recovery().events.length, 0, `k ${k}`);
      assertSameRecords(await collect(wal), recs);
      await wal.close();
    } else if (torn) {
      const { wal } = await openWith(image);
      assert.deepEqual(wal.recovery().events.map((e) => [e.action, e.offset]), [['truncated-torn-tail', last.offset]], `k ${k}`);
      assertSameRecords(await collect(wal), recs.slice(0, -1));
      await wal.close();
    } else {
      await rejectsWith(openWith(image), 'SLUICE_WAL_CORRUPT', new RegExp(`at offset ${last.offset}: `));
    }
  }
  assert.ok(tornCases > 100 && refusedCases > 30, `torn ${tornCases}, refused ${refusedCases}`);
  // a block of zeros inside the last frame, the rest of it written (pages persisted out of order)
  const big = await singleSegmentLog(5, 3000);
  const image = big.bytes.slice();
  const s = Math.ceil((big.last.payloadOffset + 1) / 512) * 512;
  image.fill(0, s, s + 512);
  assert.ok(s + 512 < big.bytes.length);
  const { wal } = await openWith(image);
  assert.deepEqual(wal.recovery().events.map((e) => [e.action, e.offset]), [['truncated-torn-tail', big.last.offset]]);
  assertSameRecords(await collect(wal), big.recs.slice(0, -1));
  await wal.close();
});

test('a crash while a segment was being created', async () => {
  const dir = freshDir();
  const wal = await Wal.open(dir);
  const recs = await fill(wal, mulberry32(8), 30, 500);
  await wal.close();
  const [first] = segmentFiles(dir);
  const firstBytes = readFileSync(first!);
  // the next segment: created, but header and floor frame cut at every length
  const fresh = await Wal.open(dir);
  await fresh.append({ seq: 1, stream: 'other', format: 'json', bytes: new Uint8Array([1, 2, 3]) });
  await fresh.close();
  const second = segmentFiles(dir)[1]!;
  const floorEnd = parseSegment(second).frames[0]!.offset + parseSegment(second).frames[0]!.frameLen;
  const secondBytes = readFileSync(second);
  for (let len = 0; len < floorEnd; len++) {
    const d = freshDir();
    writeFileSync(join(d, '0000000001.wal'), firstBytes);
    writeFileSync(join(d, '0000000002.wal'), secondBytes.subarray(0, len));
    const w = await Wal.open(d);
    // a whole header and nothing after it is an empty segment, not damage
    const ev = w.recovery().events;
    assert.equal(ev.length, len === 32 ? 0 : 1, `len ${len}`);
    if (len !== 32) assert.equal(ev[0]!.action, len < 32 ? 'deleted-torn-segment' : 'truncated-torn-tail');
    assert.equal(existsSync(join(d, '0000000002.wal')), len >= 32);
    assertSameRecords(await collect(w), recs);
    assert.deepEqual(w.lastSeq(), lastSeqOf(recs));
    await w.close();
  }
});

test('corruption that is not a torn tail is refused with the file and offset', async () => {
  const dir = freshDir();
  const wal = await Wal.open(dir, { segmentBytes: 8 * 1024 });
  const recs = await fill(wal, mulberry32(9), 120, 1500);
  // three lone commits: the newest segment holds frames of more than one commit
  const next = lastSeqOf(recs).get('bids')!;
  for (let i = 1; i <= 3; i++) await wal.append({ seq: next + i, stream: 'bids', format: 'json', bytes: new Uint8Array(40).fill(i) });
  await wal.close();
  const files = segmentFiles(dir);
  assert.ok(files.length >= 4);
  const pristine = new Map(files.map((f) => [f, readFileSync(f)]));
  const restore = (): void => {
    for (const [f, b] of pristine) writeFileSync(f, b);
  };
  const victim = files[1]!;
  const frame = dataFrames(victim)[1]!;
  const cases: [string, number, RegExp][] = [
    ['payload bit', frame.payloadOffset + 3, /payload checksum mismatch/],
    ['seq byte', frame.offset + 16, /frame header checksum mismatch/],
    ['magic byte', frame.offset + 1, /bad frame magic/],
  ];
  for (const [what, at, reason] of cases) {
    const b = readFileSync(victim);
    b[at]! ^= 0x10;
    writeFileSync(victim, b);
    const err = await rejectsWith(Wal.open(dir), 'SLUICE_WAL_CORRUPT', reason);
    assert.ok(err.message.includes(victim), `${what}: ${err.message}`);
    assert.ok(err.message.includes(`at offset ${frame.offset}`), `${what}: ${err.message}`);
    assert.deepEqual(readFileSync(victim), (() => { const c = Buffer.from(pristine.get(victim)!); c[at]! ^= 0x10; return c; })(), 'a refused open changes nothing');
    restore();
  }
  // a segment header
  const h = readFileSync(files[0]!);
  h[13]! ^= 1;
  writeFileSync(files[0]!, h);
  await rejectsWith(Wal.open(dir), 'SLUICE_WAL_CORRUPT', /offset 0: segment header checksum mismatch/);
  restore();
  // a damaged frame in the newest segment that a later commit vouches for was acknowledged
  const newest = files[files.length - 1]!;
  const frames = dataFrames(newest);
  const vouching = frames.find((f) => f.synced > frames[0]!.offset);
  assert.ok(vouching, 'the newest segment needs frames from two commits');
  const b = readFileSync(newest);
  b[frames[0]!.payloadOffset]! ^= 1;
  writeFileSync(newest, b);
  await rejectsWith(Wal.open(dir), 'SLUICE_WAL_CORRUPT', new RegExp(`at offset ${frames[0]!.offset}`));
  restore();
  // a flipped bit in the very last frame: nothing vouches for it, but nothing about it looks
  // like a crash either (not cut short, no zeroed block), so it is refused too
  const lastFrame = frames[frames.length - 1]!;
  const c = readFileSync(newest);
  c[lastFrame.payloadOffset + 1]! ^= 0x80;
  writeFileSync(newest, c);
  await rejectsWith(Wal.open(dir), 'SLUICE_WAL_CORRUPT', new RegExp(`at offset ${lastFrame.offset}: payload checksum mismatch`));
  restore();
  const ok = await Wal.open(dir);
  assert.equal(ok.recovery().events.length, 0);
  await ok.close();
});

test("onCorrupt 'skip' moves the damaged part aside and replays the rest", async () => {
  const dir = freshDir();
  const wal = await Wal.open(dir, { segmentBytes: 8 * 1024 });
  const recs = await fill(wal, mulberry32(10), 120, 1500);
  await wal.close();
  const files = segmentFiles(dir);
  const victim = files[1]!;
  const frames = dataFrames(victim);
  const bad = frames[2]!;
  const lost = new Set(frames.slice(2).map((f) => `${f.stream}/${f.seq}`));
  const b = readFileSync(victim);
  b[bad.payloadOffset]! ^= 4;
  writeFileSync(victim, b);
  const sizeBefore = b.length;

  const prev = process.env['SLUICE_WAL_ON_CORRUPT'];
  process.env['SLUICE_WAL_ON_CORRUPT'] = 'skip'; // the documented switch for operators
  let w: Wal;
  try {
    w = await Wal.open(dir);
  } finally {
    if (prev === undefined) delete process.env['SLUICE_WAL_ON_CORRUPT'];
    else process.env['SLUICE_WAL_ON_CORRUPT'] = prev;
  }
  const ev = w.recovery().events;
  assert.equal(ev.length, 1);
  assert.equal(ev[0]!.action, 'skipped-corrupt');
  assert.equal(ev[0]!.offset, bad.offset);
  assert.equal(ev[0]!.droppedBytes, sizeBefore - bad.offset);
  assert.equal(ev[0]!.movedTo, `${victim}.corrupt-${bad.offset}`);
  assert.deepEqual(new Uint8Array(readFileSync(ev[0]!.movedTo!)), new Uint8Array(b.subarray(bad.offset)));
  assert.equal(statSync(victim).size, bad.offset);
  assertSameRecords(await collect(w), recs.filter((r) => !lost.has(`${r.stream}/${r.seq}`)));
  // the seqs of the lost records are not handed out again
  assert.deepEqual(w.lastSeq(), lastSeqOf(recs));
  await w.close();
  const clean = await Wal.open(dir);
  assert.equal(clean.recovery().events.length, 0);
  await clean.close();
  process.env['SLUICE_WAL_ON_CORRUPT'] = 'maybe';
  try {
    await rejectsWith(Wal.open(dir), 'SLUICE_CONFIG_INVALID', /SLUICE_WAL_ON_CORRUPT/);
  } finally {
    if (prev === undefined) delete process.env['SLUICE_WAL_ON_CORRUPT'];
    else process.env['SLUICE_WAL_ON_CORRUPT'] = prev;
  }
});

test('replay never yields a record that fails its checksum', async () => {
  const dir = freshDir();
  const wal = await Wal.open(dir);
  await fill(wal, mulberry32(11), 20, 800);
  const [file] = segmentFiles(dir);
  const frame = dataFrames(file!)[5]!;
  const b = readFileSync(file!);
  b[frame.payloadOffset + 2]! ^= 1;
  writeFileSync(file!, b); // damaged after open() checked it
  let yielded = 0;
  await assert.rejects(async () => {
    for await (const r of wal.replay(new Map())) {
      assert.ok(r.seq < frame.seq || r.stream !== frame.stream);
      yielded++;
    }
  }, (err: unknown) => err instanceof SluiceError && err.code === 'SLUICE_WAL_CORRUPT' && err.message.includes(`offset ${frame.offset}`));
  assert.equal(yielded, 5);
  await wal.close();
});

test('append checks its arguments; close flushes and is final', async () => {
  const dir = freshDir();
  const wal = await Wal.open(dir);
  const one = new Uint8Array([1]);
  await wal.append({ seq: 5, stream: 's', format: 'arrow', bytes: one });
  await rejectsWith(wal.append({ seq: 5, stream: 's', format: 'arrow', bytes: one }), 'SLUICE_INTERNAL', /not above 5/);
  await rejectsWith(wal.append({ seq: 4, stream: 's', format: 'arrow', bytes: one }), 'SLUICE_INTERNAL');
  await rejectsWith(wal.append({ seq: 1.5, stream: 't', format: 'arrow', bytes: one }), 'SLUICE_INTERNAL');
  await rejectsWith(wal.append({ seq: 1, stream: '', format: 'arrow', bytes: one }), 'SLUICE_INTERNAL', /stream name/);
  await rejectsWith(wal.append({ seq: 1, stream: 'x'.repeat(70_000), format: 'arrow', bytes: one }), 'SLUICE_INTERNAL', /stream name/);
  await rejectsWith(wal.append({ seq: 1, stream: 't', format: 'csv' as WalFormat, bytes: one }), 'SLUICE_INTERNAL', /format/);
  // the copy is taken synchronously: the caller may reuse its buffer at once
  const buf = new Uint8Array(new SharedArrayBuffer(64));
  buf.fill(7);
  const p = wal.append({ seq: 6, stream: 's', format: 'msgpack', bytes: buf.subarray(8, 40) });
  buf.fill(9);
  const q = wal.append({ seq: 7, stream: 's', format: 'msgpack', bytes: new Uint8Array(0) });
  const closed = wal.close();
  await Promise.all([p, q, closed]);
  assert.equal(wal.close(), closed);
  await rejectsWith(wal.append({ seq: 8, stream: 's', format: 'arrow', bytes: one }), 'SLUICE_INTERNAL', /after close/);
  await rejectsWith(wal.trim(new Map()), 'SLUICE_INTERNAL', /after close/);
  const again = await Wal.open(dir);
  const recs = await collect(again);
  assert.deepEqual(recs.map((r) => r.seq), [5, 6, 7]);
  assert.deepEqual(recs[1]!.bytes, new Uint8Array(32).fill(7));
  assert.equal(recs[2]!.bytes.length, 0);
  await again.close();
});

test('a directory is open at most once in a process', async () => {
  const dir = freshDir();
  const wal = await Wal.open(dir);
  await rejectsWith(Wal.open(join(dir, '.')), 'SLUICE_INTERNAL', /already open/);
  await wal.close();
  const again = await Wal.open(dir);
  await again.close();
});

test('options are checked', async () => {
  const dir = freshDir();
  await rejectsWith(Wal.open(dir, { segmentBytes: 100 }), 'SLUICE_CONFIG_INVALID', /segmentBytes/);
  await rejectsWith(Wal.open(dir, { groupCommitMs: -1 }), 'SLUICE_CONFIG_INVALID', /groupCommitMs/);
  await rejectsWith(Wal.open(dir, { onCorrupt: 'ignore' as 'skip' }), 'SLUICE_CONFIG_INVALID', /onCorrupt/);
});

test('a failed segment creation poisons the log', async () => {
  const dir = freshDir();
  const wal = await Wal.open(dir);
  await wal.append({ seq: 1, stream: 's', format: 'json', bytes: new Uint8Array(10) });
  await wal.close();
  const w = await Wal.open(dir);
  writeFileSync(join(dir, '0000000002.wal'), ''); // the name its next segment needs is taken
  const a = w.append({ seq: 2, stream: 's', format: 'json', bytes: new Uint8Array(10) });
  const b = w.append({ seq: 3, stream: 's', format: 'json', bytes: new Uint8Array(10) });
  await rejectsWith(a, 'SLUICE_WAL_IO', /EEXIST.*refuses further batches/);
  await rejectsWith(b, 'SLUICE_WAL_IO');
  await rejectsWith(w.append({ seq: 4, stream: 's', format: 'json', bytes: new Uint8Array(10) }), 'SLUICE_WAL_IO');
  await rejectsWith(w.trim(new Map()), 'SLUICE_WAL_IO');
  await rejectsWith(w.close(), 'SLUICE_WAL_IO');
  assert.equal(readFileSync(join(dir, '0000000002.wal')).length, 0, 'a file it did not create is left alone');
  assert.deepEqual(w.lastSeq(), new Map([['s', 1]]));
  const again = await Wal.open(dir); // the empty stray file is taken as a torn roll
  assert.deepEqual(again.recovery().events.map((e) => e.action), ['deleted-torn-segment']);
  assert.deepEqual(again.lastSeq(), new Map([['s', 1]]));
  await again.close();
});

// --- child processes ---------------------------------------------------------------------------

const childPath = join(dirname(fileURLToPath(import.meta.url)), 'wal-crash-child.js');

interface ChildRun {
  acks: [string, number][];
  nacks: [string, number, string][];
  ready: Record<string, number> | null;
  /** recovery().events actions of the child's open */
  recovered: string[];
  after: string | null;
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
}

function runChild(args: string[], opts: { killAfterReadyMs?: number; killAfterSpawnMs?: number; ulimitBlocks?: number }): Promise<ChildRun> {
  const cmd = opts.ulimitBlocks !== undefined ? '/bin/sh' : process.execPath;
  const argv = opts.ulimitBlocks !== undefined
    ? ['-c', `ulimit -f ${opts.ulimitBlocks} && exec "$0" "$@"`, process.execPath, childPath, ...args]
    : [childPath, ...args];
  const child = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
  const run: ChildRun = { acks: [], nacks: [], ready: null, recovered: [], after: null, code: null, signal: null, stderr: '' };
  let buffered = '';
  const kill = (): void => void child.kill('SIGKILL');
  if (opts.killAfterSpawnMs !== undefined) setTimeout(kill, opts.killAfterSpawnMs);
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk: string) => {
    buffered += chunk;
    let nl: number;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, nl).split(' ');
      buffered = buffered.slice(nl + 1);
      if (line[0] === 'ready') {
        run.ready = JSON.parse(line[1]!) as Record<string, number>;
        run.recovered = JSON.parse(line.slice(2).join(' ')) as string[];
        if (opts.killAfterReadyMs !== undefined) setTimeout(kill, opts.killAfterReadyMs);
      } else if (line[0] === 'ack') run.acks.push([line[1]!, Number(line[2])]);
      else if (line[0] === 'nack') run.nacks.push([line[1]!, Number(line[2]), line[3]!]);
      else if (line[0] === 'after') run.after = line[1]!;
    }
  });
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk: string) => void (run.stderr += chunk));
  return new Promise((resolve) => child.on('close', (code, signal) => {
    run.code = code;
    run.signal = signal;
    resolve(run);
  }));
}

test('SIGKILL at random moments: every acknowledged record is in the log exactly once, in order', async (t) => {
  const dir = freshDir();
  const rng = mulberry32(12);
  const acked = new Map<string, Set<number>>(CRASH_STREAMS.map((s) => [s, new Set<number>()]));
  const budgetEnd = performance.now() + 18_000;
  let kills = 0;
  let killedWhileWriting = 0;
  const recoveries = new Map<string, number>();
  while (kills < 25 && (kills < 20 || performance.now() < budgetEnd)) {
    // mostly while appending; every fifth kill lands somewhere in start-up and recovery
    const early = kills % 5 === 4;
    const run = await runChild([dir, 'loop', String(256 * 1024)], early
      ? { killAfterSpawnMs: 20 + Math.floor(rng() * 120) }
      : { killAfterReadyMs: 10 + Math.floor(rng() * 250) });
    assert.equal(run.signal, 'SIGKILL', `child ended with ${run.code}: ${run.stderr}`);
    kills++;
    if (run.ready !== null) {
      // what was acknowledged before is durable: the restart found all of it
      for (const [s, seqs] of acked) {
        const max = Math.max(0, ...seqs);
        assert.ok((run.ready[s] ?? 0) >= max, `restart ${kills}: lastSeq ${s} ${run.ready[s]} < acknowledged ${max}`);
      }
    }
    if (run.acks.length > 0) killedWhileWriting++;
    for (const a of run.recovered) recoveries.set(a, (recoveries.get(a) ?? 0) + 1);
    for (const [s, q] of run.acks) {
      assert.ok(!acked.get(s)!.has(q), `seq ${s}/${q} acknowledged twice`);
      acked.get(s)!.add(q);
    }
  }
  t.diagnostic(`${kills} kills, ${killedWhileWriting} while appending; recoveries: ${JSON.stringify(Object.fromEntries(recoveries))}`);
  assert.ok(kills >= 20);
  assert.ok(killedWhileWriting >= 10, `only ${killedWhileWriting} kills landed while appending`);

  const wal = await Wal.open(dir);
  const seen = new Map<string, number>();
  let count = 0;
  for await (const r of wal.replay(new Map())) {
    const prev = seen.get(r.stream) ?? 0;
    assert.equal(r.seq, prev + 1, `${r.stream}: seq ${r.seq} follows ${prev}`);
    seen.set(r.stream, r.seq);
    assert.deepEqual(r.bytes, crashPayload(r.stream, r.seq), `${r.stream}/${r.seq} payload`);
    count++;
  }
  for (const [s, seqs] of acked) {
    assert.ok(seqs.size > 50, `${s}: only ${seqs.size} acknowledged`);
    for (const q of seqs) assert.ok(q <= (seen.get(s) ?? 0), `acknowledged ${s}/${q} is missing`);
  }
  assert.deepEqual(wal.lastSeq(), seen);
  assert.ok(count > 0);
  await wal.close();
});

test('a failed write (file size limit) rejects with SLUICE_WAL_IO, is rolled back, and the log recovers', async () => {
  const dir = freshDir();
  // ulimit -f counts 512- or 1024-byte blocks depending on the shell: 0.5 or 1 MiB
  const run = await runChild([dir, 'fill', String(64 * 1024 * 1024)], { ulimitBlocks: 1024 });
  assert.equal(run.code, 0, run.stderr);
  assert.ok(run.acks.length > 5, `acks: ${run.acks.length}`);
  assert.ok(run.nacks.length > 0);
  for (const [, , code] of run.nacks) assert.equal(code, 'SLUICE_WAL_IO');
  assert.equal(run.after, 'SLUICE_WAL_IO', 'the log refuses appends after a failed write');

  const wal = await Wal.open(dir);
  assert.equal(wal.recovery().events.length, 0, 'the failed batch was taken back off the disk');
  const got = new Set<string>();
  for await (const r of wal.replay(new Map())) {
    assert.deepEqual(r.bytes, crashPayload(r.stream, r.seq));
    got.add(`${r.stream}/${r.seq}`);
  }
  for (const [s, q] of run.acks) assert.ok(got.has(`${s}/${q}`), `acknowledged ${s}/${q} missing`);
  for (const [s, q] of run.nacks) assert.ok(!got.has(`${s}/${q}`), `rejected ${s}/${q} came back`);
  await wal.close();
});
