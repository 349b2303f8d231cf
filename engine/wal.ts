/**
 * The durable ingest log behind `ack: durable` (DESIGN.md A6): a batch is acknowledged only
 * once its raw bytes are in a segment file on local disk and fsync'd. A restart replays the
 * records after the last checkpoint; checkpoints trim the segments they have passed.
 *
 * Why plain files and not a DuckDB table: measured on the development machine (bench/wal.ts,
 * docs/durability.md) the segment files carry 2-5x the throughput of one DuckDB transaction
 * per group commit, with a p99 ack latency in milliseconds where DuckDB's checkpoints stall
 * commits for hundreds of milliseconds.
 *
 * Layout: a directory of segment files `0000000001.wal`, `0000000002.wal`, ... appended in
 * order; only the newest is ever written. All integers little-endian.
 *
 *   segment header (32 bytes)
 *   +-----------------------------------------------+------------+------------+
 *   | magic "SLUICEWL" (8)                          | version u32| segment u32|   0..16
 *   +-----------------------------------------------+------------+------------+
 *   | created ms since epoch f64 (for people only)  | hcrc u32   | 0 u32      |  16..32
 *   +-----------------------------------------------+------------+------------+
 *     hcrc = CRC-32 of bytes 0..24; segment = the number in the file name
 *
 *   frame (starts 8-byte aligned; 32 + name + payload, each padded to 8 with zeros)
 *   +-------------+------------+------------+------------+--------------------------+
 *   | magic "SLFR"| hcrc u32   | length u32 | pcrc u32   | seq u64 (lo u32, hi u32) |   0..24
 *   +-------------+-----------+------+-------------+---------------------+-----+---------+-----+
 *   | synced u32  | format u8 | 0 u8 | nameLen u16 | stream name (UTF-8) | pad | payload | pad |
 *   +-------------+-----------+------+-------------+---------------------+-----+---------+-----+
 *     hcrc   = CRC-32 of bytes 8 .. 32 + pad8(nameLen)  (length, pcrc, seq, synced, format, name)
 *     pcrc   = CRC-32 of the payload (the batch exactly as received)
 *     format = 1 arrow, 2 msgpack, 3 ndjson, 4 json; 0x80 = seq floor (see below)
 *     synced = how many bytes of this segment were already fsync'd when this frame was written
 *
 * The payload starts at an 8-byte aligned file offset, so a replayed Arrow batch can be
 * viewed in place with Float64Array / BigInt64Array views.
 *
 * Every segment begins with a seq-floor frame (format 0x80, empty name, payload JSON
 * `[[stream, seq], ...]`): the highest seq of every stream when the segment was opened. Trim
 * deletes old segments, and without the floor a restart after trimming everything would
 * forget the seqs and hand out 1, 2, 3... again, which replay(after) would then skip.
 *
 * Group commit. Appends copy their frame into the open batch (synchronously: the caller may
 * reuse its slab as soon as append() returns) and share one promise per batch. A batch is
 * written with one pwrite and one fdatasync; the next batch starts no sooner than
 * `groupCommitMs` after the previous one started, and while one is on its way to disk the
 * next one fills. An idle log flushes an append on the next turn of the event loop, so a
 * lone client waits for one fsync, not for a timer. New segments are created with O_EXCL,
 * header and first frames written and fdatasync'd, then the directory fsync'd, before any
 * of their records is acknowledged.
 *
 * Failures. After a failed write or fsync the log is poisoned: the batch and everything
 * queued behind it reject with SLUICE_WAL_IO, and so does every later append. Retrying an
 * fsync is not safe (the kernel may have dropped the dirty pages and report success the
 * second time — "fsyncgate", PostgreSQL 2018); the restart's recovery decides what is on disk.
 * Before rejecting, the failed batch is taken back off the disk when the disk allows it
 * (truncate + fsync), so that a client's retry is not stored twice.
 *
 * Recovery (open). Every segment is read and every frame checked. A bad frame (bad magic,
 * checksum, cut off by the end of the file) is a torn tail — the remains of a write that was
 * never fsync'd, hence never acknowledged — and is truncated away with everything after it,
 * when all three hold:
 *   1. it is in the newest segment (older ones were fsync'd whole before the next began);
 *   2. no later valid frame vouches for it (a frame whose `synced` lies beyond the bad offset
 *      proves the bad bytes had been fsync'd, so they were acknowledged);
 *   3. it looks like a crash: the frame is cut off by the end of the file, its magic is zero,
 *      or it holds a block of zeros — a 512-byte-aligned run of 64 bytes or more, or one from
 *      a 512-byte boundary to the end of the file (ext4 / XFS read never-written blocks as
 *      zeros, and after a crash they start at a commit's first frame or a block boundary).
 * Anything else is corruption: open() rejects with SLUICE_WAL_CORRUPT naming the file and
 * offset, unless `onCorrupt: 'skip'` (or SLUICE_WAL_ON_CORRUPT=skip) moves the bad frame and
 * the rest of its segment aside to `<segment>.corrupt-<offset>` and carries on. What recovery
 * dropped is in `recovery()`.
 */

import zlib from 'node:zlib';
import { mkdir, open, readdir, rename, unlink, type FileHandle } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { SluiceError, sluiceError } from './errors.js';

export type WalFormat = 'arrow' | 'msgpack' | 'ndjson' | 'json';

export interface WalRecord {
  /** the stream's batch sequence number, 1, 2, 3... per stream (strictly increasing per stream) */
  readonly seq: number;
  readonly stream: string;
  readonly format: WalFormat;
  /** the raw batch as received (may be a view over a SharedArrayBuffer); copied by append() */
  readonly bytes: Uint8Array;
}

export interface WalOptions {
  /** least time between the starts of two group commits (default 2) */
  groupCommitMs: number;
  /** a segment is rolled when the next frame would take it past this size (default 64 MiB) */
  segmentBytes: number;
  /**
   * What open() does with a frame that is corrupt rather than torn: 'refuse' (default) rejects
   * with SLUICE_WAL_CORRUPT; 'skip' moves the frame and the rest of its segment aside and goes
   * on. When not given, the environment variable SLUICE_WAL_ON_CORRUPT decides.
   */
  onCorrupt: 'refuse' | 'skip';
}

export interface WalRecoveryEvent {
  readonly action: 'truncated-torn-tail' | 'deleted-torn-segment' | 'skipped-corrupt';
  readonly file: string;
  /** where the dropped bytes began */
  readonly offset: number;
  readonly droppedBytes: number;
  readonly reason: string;
  /** skipped-corrupt only: the file now holding the dropped bytes */
  readonly movedTo?: string;
}

export interface WalRecovery {
  readonly segments: number;
  readonly records: number;
  readonly bytes: number;
  /** empty after a clean shutdown */
  readonly events: readonly WalRecoveryEvent[];
}

export interface WalStats {
  bytes: number;
  segments: number;
  appendedRecords: number;
  syncs: number;
}

// --- format constants --------------------------------------------------------------------------

const SEGMENT_MAGIC = new Uint8Array([0x53, 0x4c, 0x55, 0x49, 0x43, 0x45, 0x57, 0x4c]); // "SLUICEWL"
const SEGMENT_VERSION = 1;
const SEGMENT_HEADER = 32;
const FRAME_MAGIC = 0x52464c53; // "SLFR" read as a little-endian u32
const FRAME_HEADER = 32;
const FORMAT_FLOOR = 0x80;
const FORMAT_CODES: Readonly<Record<WalFormat, number>> = { arrow: 1, msgpack: 2, ndjson: 3, json: 4 };
const FORMAT_NAMES: readonly (WalFormat | undefined)[] = [undefined, 'arrow', 'msgpack', 'ndjson', 'json'];
const SECTOR = 512;
/** a zero run this long inside a bad frame is taken as a block the crash never wrote */
const MIN_ZERO_RUN = 64;
const MAX_RECORD_BYTES = 2 ** 30;
const MAX_NAME_BYTES = 0xffff;
const SEGMENT_NAME = /^(\d{10})\.wal$/;
const INITIAL_BATCH_BYTES = 256 * 1024;
/** batch buffers up to this size are kept for the next batch instead of reallocated */
const SPARE_MAX_BYTES = 16 * 1024 * 1024;
const TWO_32 = 4294967296;

const DEFAULTS: WalOptions = { groupCommitMs: 2, segmentBytes: 64 * 1024 * 1024, onCorrupt: 'refuse' };

const pad8 = (n: number): number => (n + 7) & ~7;
const utf8 = new TextEncoder();
const utf8Decode = new TextDecoder('utf-8', { fatal: true });
const EMPTY = new Uint8Array(0);
const noop = (): void => {};

// --- CRC-32 --------------------------------------------------------------------------------------

/*
 * CRC-32 (IEEE 802.3, zlib's): the same sums from node:zlib's native crc32 (Node >= 20.15) and
 * from the slice-by-8 table below, so either reads the other's files. Measured (bench/wal.ts):
 * slice-by-8 ~1.5 GB/s, zlib.crc32 5-6 GB/s from 4 KiB up but slower than the table below a
 * few hundred bytes, where the call itself dominates.
 */
const CRC_TABLE = ((): Int32Array => {
  const t = new Int32Array(8 * 256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xedb88320 : c >>> 1;
    t[i] = c;
  }
  for (let i = 0; i < 256; i++) {
    for (let s = 1; s < 8; s++) {
      const prev = t[(s - 1) * 256 + i]!;
      t[s * 256 + i] = (prev >>> 8) ^ t[prev & 255]!;
    }
  }
  return t;
})();

/** CRC-32 in TypeScript, slice-by-8. `crc` continues a previous sum (crc32(a ++ b) = crc32(b, crc32(a))). */
export function crc32Portable(bytes: Uint8Array, crc = 0): number {
  const t = CRC_TABLE;
  const n = bytes.length;
  const end8 = n - (n & 7);
  let c = ~crc;
  let i = 0;
  for (; i < end8; i += 8) {
    const a = (bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24)) ^ c;
    c = t[1792 + (a & 255)]! ^ t[1536 + ((a >>> 8) & 255)]! ^ t[1280 + ((a >>> 16) & 255)]! ^ t[1024 + (a >>> 24)]!
      ^ t[768 + bytes[i + 4]!]! ^ t[512 + bytes[i + 5]!]! ^ t[256 + bytes[i + 6]!]! ^ t[bytes[i + 7]!]!;
  }
  for (; i < n; i++) c = t[(c ^ bytes[i]!) & 255]! ^ (c >>> 8);
  return ~c >>> 0;
}

const nativeCrc32: ((data: Uint8Array, value?: number) => number) | null = typeof zlib.crc32 === 'function' ? zlib.crc32 : null;
/** below this many bytes the table beats the native call (bench/wal.ts, "checksum") */
const NATIVE_CRC_MIN = 256;

/** CRC-32 of `bytes`, continuing `crc`; native when Node has it and the input is large enough to gain. */
export function crc32(bytes: Uint8Array, crc = 0): number {
  return nativeCrc32 !== null && bytes.length >= NATIVE_CRC_MIN ? nativeCrc32(bytes, crc) : crc32Portable(bytes, crc);
}

/** Whether crc32() uses node:zlib's native code for large inputs (Node >= 20.15). */
export const nativeCrc32Available = nativeCrc32 !== null;

// --- internals -----------------------------------------------------------------------------------

class Segment {
  fh: FileHandle | null = null;
  /** logical end: bytes on disk plus bytes handed to batches that are not written yet */
  size: number;
  /** bytes written and fsync'd: what replay reads */
  durable: number;
  records = 0;
  /** the file exists (recovered, or its first batch created it) */
  onDisk: boolean;
  /** highest seq per stream among the records assigned to this segment */
  readonly maxSeq = new Map<string, number>();

  constructor(readonly no: number, readonly path: string, size: number, onDisk: boolean) {
    this.size = size;
    this.durable = size;
    this.onDisk = onDisk;
  }
}

/** Frames waiting for one write + fdatasync; every append in it shares `done`. */
class Batch {
  buf: Uint8Array;
  view: DataView;
  len = 0;
  readonly maxSeq = new Map<string, number>();
  readonly done: Promise<void>;
  resolve: () => void = noop;
  reject: (err: SluiceError) => void = noop;

  /** `creates`: this batch creates the segment file (it begins with the header and the floor) */
  constructor(readonly seg: Segment, readonly start: number, readonly creates: boolean, buf: Uint8Array) {
    this.buf = buf;
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    this.done = new Promise<void>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
    // Batches nobody awaits (a segment roll from trim) must not surface as unhandled rejections;
    // appenders still see the rejection through `done`.
    this.done.catch(noop);
  }

  reserve(n: number): void {
    if (this.len + n <= this.buf.length) return;
    const next = new Uint8Array(Math.max(this.buf.length * 2, this.len + n));
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }
}

type Task = { readonly kind: 'batch'; readonly batch: Batch } | { readonly kind: 'op'; readonly run: () => Promise<void> };

function segmentPath(dir: string, no: number): string {
  return join(dir, `${String(no).padStart(10, '0')}.wal`);
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function ioError(what: string, err: unknown): SluiceError {
  return err instanceof SluiceError ? err : sluiceError('WAL_IO', `durable log: ${what}: ${messageOf(err)}`, err);
}

function corruptError(path: string, offset: number, reason: string): SluiceError {
  return sluiceError('WAL_CORRUPT',
    `durable log ${path} at offset ${offset}: ${reason}. Acknowledged batches may be damaged, so Sluice will not start; ` +
    'see docs/durability.md (Corruption) to move the damaged part aside and start anyway');
}

/** Appends one frame to `b`; returns its length. */
function encodeFrame(b: Batch, name: Uint8Array, format: number, seq: number, synced: number, payload: Uint8Array): number {
  const headerLen = FRAME_HEADER + pad8(name.length);
  const frameLen = headerLen + pad8(payload.length);
  b.reserve(frameLen);
  const buf = b.buf;
  const dv = b.view;
  const p = b.len;
  buf.set(payload, p + headerLen);
  buf.fill(0, p + headerLen + payload.length, p + frameLen);
  dv.setUint32(p, FRAME_MAGIC, true);
  dv.setUint32(p + 8, payload.length, true);
  dv.setUint32(p + 12, crc32(buf.subarray(p + headerLen, p + headerLen + payload.length)), true);
  dv.setUint32(p + 16, seq >>> 0, true);
  dv.setUint32(p + 20, Math.floor(seq / TWO_32), true);
  dv.setUint32(p + 24, synced, true);
  buf[p + 28] = format;
  buf[p + 29] = 0;
  dv.setUint16(p + 30, name.length, true);
  buf.set(name, p + FRAME_HEADER);
  buf.fill(0, p + FRAME_HEADER + name.length, p + headerLen);
  dv.setUint32(p + 4, crc32(buf.subarray(p + 8, p + headerLen)), true);
  b.len = p + frameLen;
  return frameLen;
}

function encodeSegmentHeader(b: Batch, no: number): void {
  b.reserve(SEGMENT_HEADER);
  const p = b.len;
  b.buf.set(SEGMENT_MAGIC, p);
  b.view.setUint32(p + 8, SEGMENT_VERSION, true);
  b.view.setUint32(p + 12, no, true);
  b.view.setFloat64(p + 16, Date.now(), true);
  b.view.setUint32(p + 24, crc32(b.buf.subarray(p, p + 24)), true);
  b.view.setUint32(p + 28, 0, true);
  b.len = p + SEGMENT_HEADER;
}

/** null when the header is good, else what is wrong with it. */
function segmentHeaderProblem(bytes: Uint8Array, dv: DataView, no: number): string | null {
  if (bytes.length < SEGMENT_HEADER) return `partial segment header (${bytes.length} bytes)`;
  for (let i = 0; i < SEGMENT_MAGIC.length; i++) if (bytes[i] !== SEGMENT_MAGIC[i]) return 'bad segment magic';
  if (crc32(bytes.subarray(0, 24)) !== dv.getUint32(24, true)) return 'segment header checksum mismatch';
  const found = dv.getUint32(12, true);
  if (found !== no) return `segment header says segment ${found}, the file name says ${no}`;
  return null;
}

/** What readFrame found at an offset. */
interface FrameInfo {
  /** null when the frame is whole and both checksums match */
  reason: string | null;
  /** the frame runs past the end of the file */
  cut: boolean;
  /** magic, name length and header checksum are good (length, seq, synced can be trusted) */
  headerOk: boolean;
  headerLen: number;
  length: number;
  frameLen: number;
  seq: number;
  synced: number;
  format: number;
  nameLen: number;
}

function newFrameInfo(): FrameInfo {
  return { reason: null, cut: false, headerOk: false, headerLen: 0, length: 0, frameLen: 0, seq: 0, synced: 0, format: 0, nameLen: 0 };
}

function readFrame(b: Uint8Array, dv: DataView, p: number, end: number, out: FrameInfo): boolean {
  out.reason = null;
  out.cut = false;
  out.headerOk = false;
  if (end - p < FRAME_HEADER) {
    out.reason = 'partial frame header';
    out.cut = true;
    return false;
  }
  if (dv.getUint32(p, true) !== FRAME_MAGIC) {
    out.reason = 'bad frame magic';
    return false;
  }
  const nameLen = dv.getUint16(p + 30, true);
  const headerLen = FRAME_HEADER + pad8(nameLen);
  if (p + headerLen > end) {
    out.reason = 'partial frame header';
    out.cut = true;
    return false;
  }
  if (crc32(b.subarray(p + 8, p + headerLen)) !== dv.getUint32(p + 4, true)) {
    out.reason = 'frame header checksum mismatch';
    return false;
  }
  const length = dv.getUint32(p + 8, true);
  out.headerOk = true;
  out.headerLen = headerLen;
  out.nameLen = nameLen;
  out.length = length;
  out.frameLen = headerLen + pad8(length);
  out.seq = dv.getUint32(p + 20, true) * TWO_32 + dv.getUint32(p + 16, true);
  out.synced = dv.getUint32(p + 24, true);
  out.format = b[p + 28]!;
  if (p + out.frameLen > end) {
    out.reason = 'partial frame payload';
    out.cut = true;
    return false;
  }
  if (crc32(b.subarray(p + headerLen, p + headerLen + length)) !== dv.getUint32(p + 12, true)) {
    out.reason = 'payload checksum mismatch';
    return false;
  }
  if (out.format !== FORMAT_FLOOR && FORMAT_NAMES[out.format] === undefined) {
    out.reason = `unknown format code ${out.format}`;
    return false;
  }
  return true;
}

/** A frame after `p` whose header is good and which says bytes beyond `p` had been fsync'd. */
function vouchedFor(b: Uint8Array, dv: DataView, p: number, end: number): boolean {
  const info = newFrameInfo();
  for (let q = p + 8; q + FRAME_HEADER <= end; q += 8) {
    if (dv.getUint32(q, true) !== FRAME_MAGIC) continue;
    readFrame(b, dv, q, end, info);
    if (info.headerOk && info.synced > p) return true;
  }
  return false;
}

function anyValidFrameHeader(b: Uint8Array, dv: DataView, from: number): boolean {
  const info = newFrameInfo();
  for (let q = from; q + FRAME_HEADER <= b.length; q += 8) {
    if (dv.getUint32(q, true) !== FRAME_MAGIC) continue;
    readFrame(b, dv, q, b.length, info);
    if (info.headerOk) return true;
  }
  return false;
}

/** Evidence that the bad frame at `p` is a write the crash interrupted (rule 3 in the header). */
function looksTorn(b: Uint8Array, dv: DataView, p: number, end: number, info: FrameInfo): boolean {
  if (info.cut) return true;
  if (end - p >= 4 && dv.getUint32(p, true) === 0) return true;
  const spanEnd = info.headerOk ? Math.min(end, p + info.frameLen) : Math.min(end, p + 8 * SECTOR);
  for (let s = p - (p % SECTOR); s < spanEnd; s += SECTOR) {
    const from = Math.max(s, p);
    const to = Math.min(s + SECTOR, spanEnd);
    // Short runs count only as the start of a zeroed block that the end of the file cuts short.
    if (to - from < MIN_ZERO_RUN && !(from === s && to === end)) continue;
    let zero = true;
    for (let i = from; i < to; i++) {
      if (b[i] !== 0) {
        zero = false;
        break;
      }
    }
    if (zero) return true;
  }
  return false;
}

async function readPrefix(path: string, length: number): Promise<Uint8Array> {
  // A fresh ArrayBuffer per read: payload views stay 8-byte aligned and stay valid for the consumer.
  const out = new Uint8Array(length);
  const fh = await open(path, 'r');
  try {
    let off = 0;
    while (off < length) {
      const { bytesRead } = await fh.read(out, off, length - off, off);
      if (bytesRead === 0) throw new Error(`file ends at ${off} bytes, expected ${length}`);
      off += bytesRead;
    }
  } finally {
    await fh.close();
  }
  return out;
}

async function readWhole(path: string): Promise<Uint8Array> {
  const fh = await open(path, 'r');
  let size: number;
  try {
    size = (await fh.stat()).size;
  } finally {
    await fh.close();
  }
  return readPrefix(path, size);
}

async function writeAll(fh: FileHandle, buf: Uint8Array, length: number, position: number): Promise<void> {
  let off = 0;
  while (off < length) {
    const { bytesWritten } = await fh.write(buf, off, length - off, position + off);
    if (bytesWritten <= 0) throw new Error('write made no progress');
    off += bytesWritten;
  }
}

/** Makes creations, renames and deletions in `dir` durable. */
async function syncDir(dir: string): Promise<void> {
  if (process.platform === 'win32') return; // directories cannot be opened for fsync there; NTFS journals names
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

async function truncateFile(path: string, length: number): Promise<void> {
  const fh = await open(path, 'r+');
  try {
    await fh.truncate(length);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

function resolveOptions(opts: Partial<WalOptions>): WalOptions {
  const envMode = process.env['SLUICE_WAL_ON_CORRUPT'];
  const onCorrupt = opts.onCorrupt ?? (envMode === undefined || envMode === '' ? DEFAULTS.onCorrupt : envMode);
  if (onCorrupt !== 'refuse' && onCorrupt !== 'skip') {
    throw sluiceError('CONFIG_INVALID', `durable log: onCorrupt (SLUICE_WAL_ON_CORRUPT) must be 'refuse' or 'skip', got '${onCorrupt}'`);
  }
  const groupCommitMs = opts.groupCommitMs ?? DEFAULTS.groupCommitMs;
  if (!Number.isFinite(groupCommitMs) || groupCommitMs < 0 || groupCommitMs > 10_000) {
    throw sluiceError('CONFIG_INVALID', `durable log: groupCommitMs must be between 0 and 10000, got ${groupCommitMs}`);
  }
  const segmentBytes = opts.segmentBytes ?? DEFAULTS.segmentBytes;
  if (!Number.isInteger(segmentBytes) || segmentBytes < 4096 || segmentBytes > 2 ** 30) {
    throw sluiceError('CONFIG_INVALID', `durable log: segmentBytes must be an integer from 4096 to 1 GiB, got ${segmentBytes}`);
  }
  return { groupCommitMs, segmentBytes, onCorrupt };
}

function parseFloor(payload: Uint8Array): [string, number][] | null {
  let value: unknown;
  try {
    value = JSON.parse(utf8Decode.decode(payload));
  } catch {
    return null;
  }
  if (!Array.isArray(value)) return null;
  const out: [string, number][] = [];
  for (const entry of value as unknown[]) {
    if (!Array.isArray(entry) || entry.length !== 2) return null;
    const [s, q] = entry as unknown[];
    if (typeof s !== 'string' || typeof q !== 'number' || !Number.isSafeInteger(q) || q < 0) return null;
    out.push([s, q]);
  }
  return out;
}

interface RecoveredSegment {
  seg: Segment | null;
  records: number;
}

/**
 * Checks one segment file and cuts it back to its last good frame where the rules in the file
 * header allow it. `lastSeen` carries the highest seq per stream across segments (for the
 * strictly-increasing check and for lastSeq()).
 */
async function recoverSegment(
  path: string, no: number, isLast: boolean, onCorrupt: 'refuse' | 'skip', dir: string,
  lastSeen: Map<string, number>, events: WalRecoveryEvent[],
): Promise<RecoveredSegment> {
  const bytes = await readWhole(path);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const size = bytes.length;

  const headerProblem = segmentHeaderProblem(bytes, dv, no);
  if (headerProblem !== null) {
    // A crash between creating the file and its first fsync leaves a short or zeroed header,
    // and no frame in it was ever acknowledged.
    if (isLast && !anyValidFrameHeader(bytes, dv, SEGMENT_HEADER)) {
      await unlink(path);
      await syncDir(dir);
      events.push({ action: 'deleted-torn-segment', file: path, offset: 0, droppedBytes: size, reason: headerProblem });
      return { seg: null, records: 0 };
    }
    if (onCorrupt === 'refuse') throw corruptError(path, 0, headerProblem);
    const movedTo = `${path}.corrupt-0`;
    await rename(path, movedTo);
    await syncDir(dir);
    events.push({ action: 'skipped-corrupt', file: path, offset: 0, droppedBytes: size, reason: headerProblem, movedTo });
    return { seg: null, records: 0 };
  }
  const version = dv.getUint32(8, true);
  if (version !== SEGMENT_VERSION) {
    // Not damage: a format this build does not know. Skipping would destroy it, so never skip.
    throw sluiceError('WAL_CORRUPT', `durable log ${path}: segment format version ${version}, this Sluice reads version ${SEGMENT_VERSION}`);
  }

  const seg = new Segment(no, path, 0, true);
  const info = newFrameInfo();
  let p = SEGMENT_HEADER;
  let bad: string | null = null;
  while (p < size) {
    if (!readFrame(bytes, dv, p, size, info)) {
      bad = info.reason;
      break;
    }
    const payload = bytes.subarray(p + info.headerLen, p + info.headerLen + info.length);
    if (info.format === FORMAT_FLOOR) {
      const floor = parseFloor(payload);
      if (floor === null) {
        bad = 'unreadable seq floor';
        break;
      }
      for (const [s, q] of floor) if (q > (lastSeen.get(s) ?? 0)) lastSeen.set(s, q);
    } else {
      let stream: string;
      try {
        stream = utf8Decode.decode(bytes.subarray(p + FRAME_HEADER, p + FRAME_HEADER + info.nameLen));
      } catch {
        bad = 'stream name is not UTF-8';
        break;
      }
      const prev = lastSeen.get(stream) ?? 0;
      if (info.seq <= prev) {
        bad = `seq ${info.seq} of stream '${stream}' does not follow ${prev}`;
        break;
      }
      lastSeen.set(stream, info.seq);
      seg.maxSeq.set(stream, info.seq);
      seg.records++;
    }
    p += info.frameLen;
  }

  if (bad !== null) {
    const torn = isLast && info.reason !== null && !vouchedFor(bytes, dv, p, size) && looksTorn(bytes, dv, p, size, info);
    if (torn) {
      await truncateFile(path, p);
      events.push({ action: 'truncated-torn-tail', file: path, offset: p, droppedBytes: size - p, reason: bad });
    } else if (onCorrupt === 'refuse') {
      throw corruptError(path, p, bad);
    } else {
      const movedTo = `${path}.corrupt-${p}`;
      const fh = await open(movedTo, 'w');
      try {
        await writeAll(fh, bytes.subarray(p), size - p, 0);
        await fh.sync();
      } finally {
        await fh.close();
      }
      await syncDir(dir);
      await truncateFile(path, p);
      events.push({ action: 'skipped-corrupt', file: path, offset: p, droppedBytes: size - p, reason: bad, movedTo });
    }
  }
  seg.size = p;
  seg.durable = p;
  return { seg, records: seg.records };
}

// --- the log ---------------------------------------------------------------------------------------

/**
 * Directories with an open Wal in this process. A second Wal on the same directory would
 * "recover" the first one's in-flight tail and truncate it; across processes the DuckDB file
 * lock on the same data directory keeps a second `sluice serve` out.
 */
const openDirs = new Set<string>();

export class Wal {
  private segments: Segment[];
  /** the segment new appends go to; null until the first append after open */
  private active: Segment | null = null;
  /** the segment whose file handle is open for writing */
  private writing: Segment | null = null;
  private nextNo: number;
  private filling: Batch | null = null;
  private tasks: Task[] = [];
  private pumping = false;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private immediate: ReturnType<typeof setImmediate> | null = null;
  private lastFlushStart = -Infinity;
  /** highest seq per stream handed to append() */
  private readonly appended: Map<string, number>;
  /** highest fsync'd seq per stream */
  private readonly durableSeq: Map<string, number>;
  private failure: SluiceError | null = null;
  private closing: Promise<void> | null = null;
  private readonly names = new Map<string, Uint8Array>();
  private spare: Uint8Array | null = null;
  private appendedRecords = 0;
  private syncs = 0;

  private constructor(
    private readonly dir: string,
    private readonly key: string,
    private readonly opts: WalOptions,
    segments: Segment[],
    nextNo: number,
    lastSeq: Map<string, number>,
    private readonly report: WalRecovery,
  ) {
    this.segments = segments;
    this.nextNo = nextNo;
    this.appended = new Map(lastSeq);
    this.durableSeq = new Map(lastSeq);
  }

  /**
   * Opens (creating `dir` if needed) and recovers the log: torn tails are truncated and reported
   * in recovery(); corruption rejects with SLUICE_WAL_CORRUPT unless onCorrupt is 'skip'.
   * Appends after open go to a new segment; recovered segments are never written again.
   */
  static async open(dir: string, opts: Partial<WalOptions> = {}): Promise<Wal> {
    const options = resolveOptions(opts);
    const key = resolve(dir);
    if (openDirs.has(key)) throw sluiceError('INTERNAL', `durable log: ${dir} is already open in this process`);
    openDirs.add(key);
    try {
      return await Wal.recover(dir, key, options);
    } catch (err) {
      openDirs.delete(key);
      throw err;
    }
  }

  private static async recover(dir: string, key: string, options: WalOptions): Promise<Wal> {
    let files: { no: number; path: string }[];
    try {
      await mkdir(dir, { recursive: true });
      files = (await readdir(dir))
        .map((name) => ({ name, m: SEGMENT_NAME.exec(name) }))
        .filter((f) => f.m !== null)
        .map((f) => ({ no: Number(f.m![1]), path: join(dir, f.name) }))
        .sort((a, b) => a.no - b.no);
    } catch (err) {
      throw ioError(`cannot open ${dir}`, err);
    }
    const lastSeen = new Map<string, number>();
    const events: WalRecoveryEvent[] = [];
    const segments: Segment[] = [];
    let records = 0;
    for (let i = 0; i < files.length; i++) {
      const f = files[i]!;
      let r: RecoveredSegment;
      try {
        r = await recoverSegment(f.path, f.no, i === files.length - 1, options.onCorrupt, dir, lastSeen, events);
      } catch (err) {
        throw ioError(`recovering ${f.path}`, err);
      }
      if (r.seg !== null) segments.push(r.seg);
      records += r.records;
    }
    const bytes = segments.reduce((sum, s) => sum + s.durable, 0);
    const nextNo = files.length > 0 ? files[files.length - 1]!.no + 1 : 1;
    const report: WalRecovery = Object.freeze({ segments: segments.length, records, bytes, events: Object.freeze(events) });
    return new Wal(dir, key, options, segments, nextNo, lastSeen, report);
  }

  /**
   * Resolves once the record is on disk (fsync'd); records are durable in append order. The
   * bytes are copied before append() returns. Rejects with SLUICE_WAL_IO if the disk write
   * fails; after a failed write or fsync the log refuses further appends.
   */
  append(rec: WalRecord): Promise<void> {
    if (this.closing !== null) return Promise.reject(sluiceError('INTERNAL', 'durable log: append after close'));
    if (this.failure !== null) return Promise.reject(this.failure);
    const format = FORMAT_CODES[rec.format];
    if (format === undefined) return Promise.reject(sluiceError('INTERNAL', `durable log: unknown format '${String(rec.format)}'`));
    const name = this.nameBytes(rec.stream);
    if (name === null) return Promise.reject(sluiceError('INTERNAL', `durable log: stream name must be 1 to ${MAX_NAME_BYTES} UTF-8 bytes`));
    const last = this.appended.get(rec.stream) ?? 0;
    if (!Number.isSafeInteger(rec.seq) || rec.seq <= last) {
      return Promise.reject(sluiceError('INTERNAL', `durable log: seq ${rec.seq} of stream '${rec.stream}' is not above ${last}`));
    }
    if (rec.bytes.length > MAX_RECORD_BYTES) {
      return Promise.reject(sluiceError('INTERNAL', `durable log: a record of ${rec.bytes.length} bytes is over the 1 GiB limit`));
    }
    const frameLen = FRAME_HEADER + pad8(name.length) + pad8(rec.bytes.length);
    let seg = this.active;
    // A segment that holds no record yet takes even a frame larger than segmentBytes: that
    // frame gets a segment of its own.
    if (seg === null || (seg.records > 0 && seg.size + frameLen > this.opts.segmentBytes)) seg = this.roll();
    let batch = this.filling;
    if (batch === null) batch = this.filling = new Batch(seg, seg.size, false, this.takeBuffer());
    // Everything before this batch's start is fsync'd by the time it is written (batches go to
    // disk one after the other); a batch that creates its segment vouches for nothing.
    encodeFrame(batch, name, format, rec.seq, batch.creates ? 0 : batch.start, rec.bytes);
    seg.size += frameLen;
    seg.records++;
    seg.maxSeq.set(rec.stream, rec.seq);
    batch.maxSeq.set(rec.stream, rec.seq);
    this.appended.set(rec.stream, rec.seq);
    this.appendedRecords++;
    this.schedule();
    return batch.done;
  }

  /**
   * Every durable record of `stream`s with seq > after[stream] (0 when absent), in append order.
   * Segments are read whole and every checksum is checked again (SLUICE_WAL_CORRUPT if one
   * fails); `bytes` are 8-byte aligned views into the segment's buffer, so copy a record that
   * is kept for long. Do not trim while a replay is running.
   */
  async *replay(after: ReadonlyMap<string, number>): AsyncIterable<WalRecord> {
    const segs = this.segments.filter((s) => s.onDisk && s.durable > SEGMENT_HEADER).map((s) => ({ path: s.path, no: s.no, durable: s.durable, maxSeq: [...s.maxSeq] }));
    const info = newFrameInfo();
    for (const s of segs) {
      if (s.maxSeq.every(([stream, max]) => max <= (after.get(stream) ?? 0))) continue;
      let bytes: Uint8Array;
      try {
        bytes = await readPrefix(s.path, s.durable);
      } catch (err) {
        throw ioError(`replaying ${s.path}`, err);
      }
      const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      const problem = segmentHeaderProblem(bytes, dv, s.no);
      if (problem !== null) throw corruptError(s.path, 0, problem);
      let p = SEGMENT_HEADER;
      while (p < s.durable) {
        // Checked again: the file may have changed under us since open(), and replay must
        // never hand out a record that fails its checksum.
        if (!readFrame(bytes, dv, p, s.durable, info)) throw corruptError(s.path, p, info.reason ?? 'bad frame');
        if (info.format !== FORMAT_FLOOR) {
          const stream = utf8Decode.decode(bytes.subarray(p + FRAME_HEADER, p + FRAME_HEADER + info.nameLen));
          if (info.seq > (after.get(stream) ?? 0)) {
            const start = p + info.headerLen;
            yield { seq: info.seq, stream, format: FORMAT_NAMES[info.format]!, bytes: bytes.subarray(start, start + info.length) };
          }
        }
        p += info.frameLen;
      }
    }
  }

  /**
   * Deletes the segments whose every record has seq <= upTo[stream] (the checkpoint passed
   * them). The newest segment is rolled first when it is passed, so that the floor frame of a
   * new segment keeps the seqs across a restart.
   */
  trim(upTo: ReadonlyMap<string, number>): Promise<void> {
    if (this.closing !== null) return Promise.reject(sluiceError('INTERNAL', 'durable log: trim after close'));
    if (this.failure !== null) return Promise.reject(this.failure);
    const passed = (s: Segment): boolean => {
      for (const [stream, max] of s.maxSeq) if (max > (upTo.get(stream) ?? 0)) return false;
      return true;
    };
    const newest = this.segments[this.segments.length - 1];
    if (newest !== undefined && newest.records > 0 && passed(newest)) {
      this.roll();
      this.seal();
    }
    const keep = this.segments[this.segments.length - 1];
    const doomed = this.segments.filter((s) => s !== keep && (s.records === 0 || passed(s)));
    if (doomed.length === 0) return Promise.resolve();
    this.segments = this.segments.filter((s) => !doomed.includes(s));
    return this.enqueueOp(async () => {
      try {
        for (const s of doomed) {
          if (s.fh !== null) {
            await s.fh.close();
            s.fh = null;
            if (this.writing === s) this.writing = null;
          }
          try {
            await unlink(s.path);
          } catch (err) {
            // never created: the log failed before its first batch reached the disk
            if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
          }
        }
        await syncDir(this.dir);
      } catch (err) {
        // A segment that could not be deleted is only replayed again and filtered out; the
        // log stays usable, so this does not poison it.
        throw ioError('trimming', err);
      }
    });
  }

  /** Highest durable seq per stream (after open: what recovery found). */
  lastSeq(): ReadonlyMap<string, number> {
    return new Map(this.durableSeq);
  }

  /** Bytes currently on disk, segments count — for metrics. */
  stats(): WalStats {
    let bytes = 0;
    let segments = 0;
    for (const s of this.segments) {
      if (!s.onDisk) continue;
      segments++;
      bytes += s.durable;
    }
    return { bytes, segments, appendedRecords: this.appendedRecords, syncs: this.syncs };
  }

  /** What open() found and dropped. */
  recovery(): WalRecovery {
    return this.report;
  }

  /** Flushes what is pending, fsyncs, closes. Rejects with the failure if the log failed. */
  close(): Promise<void> {
    if (this.closing !== null) return this.closing;
    this.seal();
    this.closing = this.enqueueOp(async () => {
      try {
        const w = this.writing;
        if (w !== null && w.fh !== null) {
          await w.fh.close();
          w.fh = null;
        }
        this.writing = null;
      } finally {
        openDirs.delete(this.key);
      }
      if (this.failure !== null) throw this.failure;
    });
    return this.closing;
  }

  // --- group commit ------------------------------------------------------------------------------

  private nameBytes(stream: string): Uint8Array | null {
    let b = this.names.get(stream);
    if (b === undefined) {
      b = utf8.encode(stream);
      if (b.length === 0 || b.length > MAX_NAME_BYTES) return null;
      this.names.set(stream, b);
    }
    return b;
  }

  private takeBuffer(): Uint8Array {
    const b = this.spare;
    if (b === null) return new Uint8Array(INITIAL_BATCH_BYTES);
    this.spare = null;
    return b;
  }

  private recycle(b: Batch): void {
    if (b.buf.length <= SPARE_MAX_BYTES && (this.spare === null || this.spare.length < b.buf.length)) this.spare = b.buf;
  }

  /** Starts a new segment: its first batch carries the header and the seq floor. */
  private roll(): Segment {
    this.seal();
    const no = this.nextNo++;
    const seg = new Segment(no, segmentPath(this.dir, no), 0, false);
    const batch = new Batch(seg, 0, true, this.takeBuffer());
    encodeSegmentHeader(batch, no);
    encodeFrame(batch, EMPTY, FORMAT_FLOOR, 0, 0, utf8.encode(JSON.stringify([...this.appended])));
    seg.size = batch.len;
    this.segments.push(seg);
    this.active = seg;
    this.filling = batch;
    return seg;
  }

  /** Closes the filling batch and queues it for the disk. */
  private seal(): void {
    this.clearTimer();
    const b = this.filling;
    if (b === null) return;
    this.filling = null;
    this.enqueue({ kind: 'batch', batch: b });
  }

  private schedule(): void {
    if (this.filling === null || this.pumping || this.timer !== null || this.immediate !== null) return;
    const wait = this.lastFlushStart + this.opts.groupCommitMs - performance.now();
    if (wait > 0) this.timer = setTimeout(this.onTimer, wait);
    else this.immediate = setImmediate(this.onTimer);
  }

  private readonly onTimer = (): void => {
    this.timer = null;
    this.immediate = null;
    this.seal();
  };

  private clearTimer(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    if (this.immediate !== null) clearImmediate(this.immediate);
    this.timer = null;
    this.immediate = null;
  }

  private enqueue(task: Task): void {
    this.tasks.push(task);
    if (!this.pumping) void this.pump();
  }

  private enqueueOp(run: () => Promise<void>): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.enqueue({
        kind: 'op',
        run: () => run().then(resolve, (err: unknown) => reject(err instanceof SluiceError ? err : ioError('operation', err))),
      });
    });
  }

  /** The one place that touches the disk after open: batches and operations, one at a time, in order. */
  private async pump(): Promise<void> {
    this.pumping = true;
    while (this.tasks.length > 0) {
      const task = this.tasks.shift()!;
      if (task.kind === 'batch') await this.writeBatch(task.batch);
      else await task.run();
    }
    this.pumping = false;
    this.schedule();
  }

  private async writeBatch(b: Batch): Promise<void> {
    if (this.failure !== null) {
      b.reject(this.failure);
      return;
    }
    this.lastFlushStart = performance.now();
    const seg = b.seg;
    try {
      if (b.creates) {
        const prev = this.writing;
        if (prev !== null && prev.fh !== null) {
          await prev.fh.close();
          prev.fh = null;
        }
        this.writing = null;
        seg.fh = await open(seg.path, 'wx');
        seg.onDisk = true;
        this.writing = seg;
      }
      const fh = seg.fh;
      if (fh === null) throw new Error(`segment ${seg.path} is not open for writing`);
      await writeAll(fh, b.buf, b.len, b.start);
      await fh.datasync();
      this.syncs++;
      if (b.creates) await syncDir(this.dir);
    } catch (err) {
      const rolledBack = await this.rollBack(b);
      this.poison(seg.path, err, rolledBack);
      b.reject(this.failure!);
      return;
    }
    seg.durable = b.start + b.len;
    for (const [stream, seq] of b.maxSeq) this.durableSeq.set(stream, seq);
    b.resolve();
    this.recycle(b);
  }

  /**
   * Best effort after a failed write or fsync: take the batch's bytes back off the disk, so that
   * a rejected append does not come back on replay (and count twice once the client retries).
   * That works for ENOSPC and EFBIG; after EIO nothing about the file is certain. Never retries
   * the fsync of the data itself.
   */
  private async rollBack(b: Batch): Promise<boolean> {
    const seg = b.seg;
    try {
      if (seg.fh === null) return !b.creates || !seg.onDisk;
      if (b.creates) {
        await seg.fh.close();
        seg.fh = null;
        this.writing = null;
        await unlink(seg.path);
        seg.onDisk = false;
        await syncDir(this.dir);
      } else {
        await seg.fh.truncate(b.start);
        await seg.fh.sync();
      }
      return true;
    } catch {
      return false;
    }
  }

  private poison(path: string, err: unknown, rolledBack: boolean): void {
    if (this.failure === null) {
      const fate = rolledBack ? 'it was taken back off the disk' : 'it may or may not reappear after a restart';
      this.failure = sluiceError('WAL_IO',
        `durable log ${path}: ${messageOf(err)}; the batch was not acknowledged (${fate}) and the log refuses further batches until restart`, err);
    }
    const f = this.failure;
    this.clearTimer();
    if (this.filling !== null) {
      this.filling.reject(f);
      this.filling = null;
    }
    const rest: Task[] = [];
    for (const t of this.tasks) {
      if (t.kind === 'batch') t.batch.reject(f);
      else rest.push(t);
    }
    this.tasks = rest;
  }
}
