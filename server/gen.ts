/**
 * `sluice gen` (DESIGN.md A1): a load generator that pushes Nexmark-style bids (bench/bids.ts)
 * or, with `--workload nexmark`, Nexmark's person / auction / bid mix (bench/nexmark.ts) into a
 * running server over the WebSocket ingest protocol (A5) and measures what it got back.
 *
 *   1. GET /v1/streams: each stream written must exist and have the generated columns (others
 *      are sent null).
 *   2. Open N connections per stream (nexmark: N to bid, one each to person and auction); each
 *      waits for {"credits": C} and never has more than C batches unacknowledged.
 *   3. Build the ring of encoded batches (before the clock starts; its size depends on the
 *      credits, see zeroMask). Step k of the stream is one batch per stream, each sent on the
 *      next connection of its stream with a free credit.
 *   4. Pace: the batch starting at event e is sent at t0 + e / rate (rate 0: whenever a credit
 *      is free). A sender that fell behind (no credits) catches up when acks return; batches
 *      due after --seconds are not sent.
 *   5. Stop at --seconds or --events, wait for every outstanding ack, close with 1000.
 *
 * On stderr: a progress line per second and one summary line; with --json the summary is also
 * one JSON object on stdout (the bench harness reads it). Exit 1 when a batch was nacked, a
 * connection closed abnormally or acks stopped coming; 0 otherwise; 2 on bad usage.
 *
 * Ack latency is send → ack of each batch; a coalesced `{"ack": k}` answers every batch up to k,
 * each with its own send time. `{"nack": k}` answers batch k (and, answers being in seq order,
 * any earlier batch still pending is acknowledged by it).
 */
import { parseArgs } from 'node:util';
import WebSocket from 'ws';
import { schemaFromRecord, type ColumnType, type StreamSchema } from '../engine/schema.js';
import { BID_COLUMNS, BID_FORMATS, BidRing, schemaProblems, type BidFormat, type Payload } from '../bench/bids.js';
import { NEXMARK_STREAM_NAMES, NEXMARK_STREAMS, NexmarkRing, type NexmarkStream } from '../bench/nexmark.js';
import { parseIsoTimestamp } from '../native-free-kernels/iso-time.js';
import { nearestRank } from '../bench/report.js';
import { ClientError, httpBase, requestJson, writeStdout } from './query-cli.js';

export const GEN_USAGE = `usage: sluice gen [--url ws://127.0.0.1:8080] [--stream bids] [--rate EVENTS_PER_S] [--seconds S]
                  [--events N] [--format arrow|msgpack|ndjson] [--connections N] [--batch ROWS]
                  [--seed N] [--disorder MS] [--start TIME] [--ring EVENTS] [--token T]
                  [--warmup S] [--ramp S] [--event-rate N] [--workload bids|nexmark] [--json] [--dry-run]
  --rate 0 sends as fast as the credits allow; --token defaults to $SLUICE_TOKEN;
  --dry-run builds and cycles the batches without a server (the generator's own speed);
  --warmup S leaves the first S seconds out of the summary's events/s and ack latencies;
  --ramp S raises the send rate linearly from 0 to --rate over the first S seconds (S <= --warmup);
  --event-rate N: event time advances at N events per second (default --rate; 1000000
  with --rate 0), e.g. minutes of event time sent in seconds;
  --workload nexmark sends Nexmark's Person / Auction / Bid mix (1:3:46) to the streams
  person, auction and bid (Arrow only; --batch counts events of all three types, --connections
  the bid stream's connections: person and auction get one each; no --stream, no --disorder)
`;

/**
 * When event `n` of a paced stream is due, in ms after the first send: at `rate` events/s, or,
 * with a ramp of `rampMs`, at a rate rising linearly from 0 over the ramp — n(τ) = r·τ² / 2R
 * during it (r in events per ms), r·(τ − R / 2) after it.
 */
export function pacedDueMs(n: number, rate: number, rampMs: number): number {
  const r = rate / 1000;
  if (rampMs <= 0) return n / r;
  const inRamp = (r * rampMs) / 2;
  return n < inRamp ? Math.sqrt((2 * n * rampMs) / r) : n / r + rampMs / 2;
}

const DEFAULTS = {
  url: 'ws://127.0.0.1:8080',
  stream: 'bids',
  rate: 1_000_000,
  seconds: 10,
  format: 'arrow' as BidFormat,
  connections: 1,
  seed: 1,
  disorder: 0,
  workload: 'bids' as Workload,
};

export const WORKLOADS = ['bids', 'nexmark'] as const;
export type Workload = (typeof WORKLOADS)[number];
/** Largest default batch; smaller at low rates so that pacing still sends ~100 batches/s. */
const MAX_DEFAULT_BATCH = 1000;
/** The ring: rate × 2 s of events, within these bounds (ndjson is ~90 bytes an event). */
const MIN_RING = 1 << 16;
const MAX_RING = 1 << 20;
/** the most events the ring grows to past the credits (zeroMask): ~40 bytes each in Arrow */
const MAX_GROWN_RING = 1 << 23;
/** event-time rate when --rate 0: events are stamped as if a million arrived per second */
const RATE_ZERO_EVENT_RATE = 1_000_000;
const OPEN_TIMEOUT_MS = 10_000;
/** after the last send: how long to wait for the outstanding acks before giving up */
const DRAIN_TIMEOUT_MS = 30_000;
const CLOSE_TIMEOUT_MS = 5_000;
const MAX_NACK_LINES = 5;

export interface GenOptions {
  readonly url: string;
  readonly stream: string;
  /** events per second; 0 = as fast as credits allow */
  readonly rate: number;
  /** event-time rate (events per second of event time): --event-rate, else rate, else 1 M */
  readonly eventRate: number;
  /** null: no time limit (only with --events) */
  readonly seconds: number | null;
  readonly events: number | null;
  readonly format: BidFormat;
  readonly connections: number;
  readonly batchRows: number;
  readonly seed: number;
  readonly disorder: number;
  readonly start: number;
  readonly ringEvents: number;
  /** --ring given: the ring keeps that size (else it may grow so that frames need no copy) */
  readonly ringGiven: boolean;
  readonly token: string | undefined;
  /** seconds at the start left out of the summary's rate and latencies (they are still sent) */
  readonly warmup: number;
  /** seconds over which the send rate rises linearly from 0 to `rate` (0: full rate at once) */
  readonly ramp: number;
  readonly workload: Workload;
  readonly json: boolean;
  readonly dryRun: boolean;
}

class GenUsageError extends Error {}

function count(name: string, v: string | undefined, min: number, max = Number.MAX_SAFE_INTEGER): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v) || Number(v) < min || Number(v) > max) throw new GenUsageError(`--${name} takes an integer from ${min} to ${max}, got '${v}'`);
  return Number(v);
}

export function parseGenArgs(argv: string[], env: NodeJS.ProcessEnv = process.env): GenOptions {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        url: { type: 'string' },
        stream: { type: 'string' },
        rate: { type: 'string' },
        seconds: { type: 'string' },
        events: { type: 'string' },
        format: { type: 'string' },
        connections: { type: 'string' },
        batch: { type: 'string' },
        seed: { type: 'string' },
        disorder: { type: 'string' },
        start: { type: 'string' },
        ring: { type: 'string' },
        token: { type: 'string' },
        warmup: { type: 'string' },
        ramp: { type: 'string' },
        workload: { type: 'string' },
        'event-rate': { type: 'string' },
        json: { type: 'boolean' },
        'dry-run': { type: 'boolean' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    throw new GenUsageError(err instanceof Error ? err.message : String(err));
  }
  const format = values.format ?? DEFAULTS.format;
  if (!(BID_FORMATS as readonly string[]).includes(format)) throw new GenUsageError(`--format takes ${BID_FORMATS.join(', ')}, got '${format}'`);
  const rate = count('rate', values.rate, 0) ?? DEFAULTS.rate;
  const eventRate = count('event-rate', values['event-rate'], 1) ?? (rate === 0 ? RATE_ZERO_EVENT_RATE : rate);
  const events = count('events', values.events, 1) ?? null;
  const secondsGiven = values.seconds !== undefined;
  let seconds: number | null = DEFAULTS.seconds;
  if (secondsGiven) {
    if (!/^\d+(\.\d+)?$/.test(values.seconds!) || !(Number(values.seconds) > 0)) throw new GenUsageError(`--seconds takes a number > 0, got '${values.seconds}'`);
    seconds = Number(values.seconds);
  } else if (events !== null) {
    seconds = null;
  }
  // default now, to the second: a second run against the same server must not arrive behind
  // the watermark of the first (all of it late); --start T makes runs byte-for-byte equal
  const startText = values.start ?? 'now';
  let start = startText === 'now' ? Math.floor(Date.now() / 1000) * 1000 : /^\d+$/.test(startText) ? Number(startText) : parseIsoTimestamp(startText);
  // NDJSON re-stamps 13 digits in place (bench/bids.ts)
  if (!Number.isFinite(start) || start < 1e12 || start > 9e12) throw new GenUsageError(`--start takes ms since the epoch, an ISO-8601 time or 'now', from 2001 to 2255, got '${startText}'`);
  start = Math.floor(start);
  const batchRows = count('batch', values.batch, 1, 1 << 24)
    ?? (rate === 0 ? MAX_DEFAULT_BATCH : Math.max(1, Math.min(MAX_DEFAULT_BATCH, Math.round(rate / 100))));
  let ringEvents = count('ring', values.ring, 1, 1 << 26) ?? Math.min(MAX_RING, Math.max(MIN_RING, 2 * (rate === 0 ? RATE_ZERO_EVENT_RATE : rate)));
  // no need for more distinct events than the run sends
  if (events !== null && values.ring === undefined) ringEvents = Math.min(ringEvents, events);
  let warmup = 0;
  if (values.warmup !== undefined) {
    if (!/^\d+(\.\d+)?$/.test(values.warmup)) throw new GenUsageError(`--warmup takes a number of seconds >= 0, got '${values.warmup}'`);
    warmup = Number(values.warmup);
    if (seconds !== null && warmup >= seconds) throw new GenUsageError(`--warmup (${warmup} s) must be shorter than --seconds (${seconds} s)`);
  }
  let ramp = 0;
  if (values.ramp !== undefined) {
    if (!/^\d+(\.\d+)?$/.test(values.ramp)) throw new GenUsageError(`--ramp takes a number of seconds >= 0, got '${values.ramp}'`);
    ramp = Number(values.ramp);
    if (ramp > 0 && rate === 0) throw new GenUsageError('--ramp needs a --rate: --rate 0 sends as fast as the credits allow');
    if (ramp > warmup) throw new GenUsageError(`--ramp (${ramp} s) must not exceed --warmup (${warmup} s): the measured seconds run at --rate`);
  }
  const stream = values.stream ?? DEFAULTS.stream;
  if (stream === '') throw new GenUsageError('--stream must not be empty');
  const workload = values.workload ?? DEFAULTS.workload;
  if (!(WORKLOADS as readonly string[]).includes(workload)) throw new GenUsageError(`--workload takes ${WORKLOADS.join(', ')}, got '${workload}'`);
  if (workload === 'nexmark') {
    // the ring re-stamps ids and times in place: only Arrow keeps them at fixed byte positions
    if (format !== 'arrow') throw new GenUsageError(`--workload nexmark sends Arrow only, got --format ${format}`);
    if (values.stream !== undefined) throw new GenUsageError(`--workload nexmark sends to the streams ${NEXMARK_STREAM_NAMES.join(', ')}: leave out --stream`);
    if (values.disorder !== undefined && values.disorder !== '0') throw new GenUsageError('--workload nexmark sends events in order: leave out --disorder');
  }
  return {
    url: values.url ?? DEFAULTS.url,
    stream,
    rate,
    eventRate,
    seconds,
    events,
    format: format as BidFormat,
    connections: count('connections', values.connections, 1, 1024) ?? DEFAULTS.connections,
    batchRows,
    seed: count('seed', values.seed, 0, 2 ** 32 - 1) ?? DEFAULTS.seed,
    disorder: count('disorder', values.disorder, 0, 86_400_000) ?? DEFAULTS.disorder,
    start,
    ringEvents,
    ringGiven: values.ring !== undefined,
    token: values.token ?? env['SLUICE_TOKEN'],
    warmup,
    ramp,
    workload: workload as Workload,
    json: values.json ?? false,
    dryRun: values['dry-run'] ?? false,
  };
}

// --- acknowledgements -----------------------------------------------------------------------------

/** The batches one answer settled: how many, and their rows. */
export interface Settled {
  batches: number;
  rows: number;
}

/**
 * The batches of one connection that are sent and not answered yet, in seq order (seq counts
 * the connection's batches from 1, as the server does). A FIFO of parallel arrays: the head
 * moves forward and the arrays are compacted when half of them is dead.
 */
export class AckTracker {
  private rows: number[] = [];
  private sentAt: number[] = [];
  private head = 0;
  private lastSeq = 0;

  /** batches sent and not answered */
  get outstanding(): number {
    return this.rows.length - this.head;
  }

  /** seq of the oldest batch not answered (seqs are consecutive) */
  private get headSeq(): number {
    return this.lastSeq - this.outstanding + 1;
  }

  /** Record the next batch; returns its seq. */
  sent(rows: number, at: number): number {
    ++this.lastSeq;
    this.rows.push(rows);
    this.sentAt.push(at);
    return this.lastSeq;
  }

  /** `{"ack": k}`: every pending batch with seq ≤ k is acknowledged. */
  ack(k: number, now: number, latency: (ms: number) => void): Settled {
    return this.settle(k + 1, now, latency);
  }

  /**
   * `{"nack": k}`: batch k is rejected; answers come in seq order, so the pending batches
   * before it were acknowledged. Returns those as `acked` and the rejected batch's rows.
   */
  nack(k: number, now: number, latency: (ms: number) => void): { acked: Settled; rejectedRows: number } {
    const acked = this.settle(k, now, latency);
    let rejectedRows = 0;
    if (this.outstanding > 0 && this.headSeq === k) {
      rejectedRows = this.rows[this.head]!;
      this.head++;
      this.compact();
    }
    return { acked, rejectedRows };
  }

  /** Settle the pending batches with seq < end as acknowledged. */
  private settle(end: number, now: number, latency: (ms: number) => void): Settled {
    const out: Settled = { batches: 0, rows: 0 };
    while (this.outstanding > 0 && this.headSeq < end) {
      out.batches++;
      out.rows += this.rows[this.head]!;
      latency(now - this.sentAt[this.head]!);
      this.head++;
    }
    this.compact();
    return out;
  }

  private compact(): void {
    if (this.head < 1024 || this.head * 2 < this.rows.length) return;
    this.rows = this.rows.slice(this.head);
    this.sentAt = this.sentAt.slice(this.head);
    this.head = 0;
  }
}

/** Latencies in ms, appended; percentiles over all of them or over those since a mark. */
export class Latencies {
  private values = new Float64Array(1024);
  size = 0;

  add(ms: number): void {
    if (this.size === this.values.length) {
      const grown = new Float64Array(this.values.length * 2);
      grown.set(this.values);
      this.values = grown;
    }
    this.values[this.size++] = ms;
  }

  /** Nearest-rank percentiles (p in 0..100) of values [from, size); null when there are none. */
  percentiles(ps: readonly number[], from = 0): (number | null)[] {
    const n = this.size - from;
    if (n <= 0) return ps.map(() => null);
    const sorted = this.values.slice(from, this.size).sort();
    return ps.map((p) => nearestRank(sorted, p));
  }
}

// --- the server side -----------------------------------------------------------------------------

interface StreamInfo {
  readonly name: string;
  readonly schema: Readonly<Record<string, string>>;
  readonly eventTime?: { readonly column?: string };
  /** ISO-8601, or null before the first event */
  readonly watermark?: string | null;
}

/** What gen needs of each stream it writes: its schema on the server and its watermark. */
interface Target {
  readonly name: string;
  readonly schema: StreamSchema;
  readonly watermark: string | null;
}

/** The columns a workload writes to `stream`. */
function columnsFor(o: GenOptions, stream: string): Readonly<Record<string, ColumnType>> {
  return o.workload === 'nexmark' ? NEXMARK_STREAMS[stream as NexmarkStream] : BID_COLUMNS;
}

/** The streams a run writes, in the order of a step's payloads. */
function streamNames(o: GenOptions): readonly string[] {
  return o.workload === 'nexmark' ? NEXMARK_STREAM_NAMES : [o.stream];
}

/** GET /v1/streams → each stream's schema, checked for the generated columns, and its watermark. */
async function streamTargets(base: string, o: GenOptions): Promise<Target[]> {
  const answer = await requestJson(`${base}/v1/streams`, { method: 'GET', token: o.token, timeoutMs: OPEN_TIMEOUT_MS });
  const list = (answer.body as { streams?: unknown }).streams;
  if (!Array.isArray(list)) throw new ClientError(null, `unexpected answer from ${base}/v1/streams: ${answer.text.slice(0, 200)}`);
  const streams = list as StreamInfo[];
  return streamNames(o).map((name) => {
    const s = streams.find((x) => x.name === name);
    if (s === undefined) {
      const names = streams.map((x) => x.name);
      throw new ClientError('SLUICE_UNKNOWN_STREAM', `the server at ${base} has no stream '${name}' (streams: ${names.join(', ') || 'none'})`);
    }
    const columns = columnsFor(o, name);
    const problems = schemaProblems(columns, s.schema);
    if (problems.length > 0) {
      throw new ClientError(null, `stream '${name}' cannot take generated ${o.workload === 'nexmark' ? `Nexmark ${name} events` : 'bids'}: ${problems.join('; ')} (the generator writes ${Object.entries(columns).map(([k, t]) => `${k} ${t}`).join(', ')})`);
    }
    const eventTime = s.eventTime?.column ?? 'ts';
    if (eventTime !== 'ts') throw new ClientError(null, `stream '${name}' takes its event time from '${eventTime}', which the generator does not write (it writes ts)`);
    return { name, schema: schemaFromRecord(s.schema as Record<string, ColumnType>), watermark: s.watermark ?? null };
  });
}

interface Closed {
  readonly connection: number;
  readonly code: number;
  readonly reason: string;
}

/** One ingest WebSocket: its credits, its outstanding batches, how it ended. */
class Connection {
  readonly tracker = new AckTracker();
  credits = 0;
  /** set when the socket closed; `byUs` when we closed it after draining */
  closed: Closed | null = null;
  byUs = false;
  readonly done: Promise<void>;

  /** `stream`: the index of the connection's stream in the step's payloads */
  constructor(readonly id: number, readonly stream: number, readonly ws: WebSocket) {
    this.done = new Promise((resolve) => ws.once('close', () => resolve()));
  }

  get free(): number {
    return this.closed !== null || this.ws.readyState !== WebSocket.OPEN ? 0 : this.credits - this.tracker.outstanding;
  }
}

function wsBase(url: string): string {
  const http = httpBase(url);
  return http.replace(/^http/, 'ws');
}

/**
 * Client frames go without a copy. A client must mask every frame (RFC 6455 5.3) and ws masks
 * into a fresh copy of the payload — at 10 M events/s a few hundred MB/s of copies, and the
 * garbage collections they cause stall gen's event loop (measured: ~10 mark-compacts a second,
 * event-loop delay max 60–160 ms at 5 M events/s, all of it added to the ack latencies gen
 * reports). With the all-zero key (a valid key; masking with it changes no byte) ws hands the
 * ring's payload itself to the socket. The ring must then not re-stamp a payload the socket may
 * still hold: the pump counts each ring slot's writes in flight (ws's send callback runs once the
 * socket has written the frame) and does not begin a step whose slots are still being written.
 */
function zeroMask(mask: Buffer): void {
  mask.fill(0);
}

/** Open one connection and wait for its credits; rejects with the server's reason. */
function openConnection(id: number, stream: number, url: string, token: string | undefined): Promise<Connection> {
  const headers: Record<string, string> = token !== undefined && token !== '' ? { authorization: `Bearer ${token}` } : {};
  // perMessageDeflate off: compressing would cost the generator far more than encoding, and
  // a deflating sender would queue the buffer by reference too (see zeroMask)
  const ws = new WebSocket(url, { headers, perMessageDeflate: false, handshakeTimeout: OPEN_TIMEOUT_MS, generateMask: zeroMask });
  const conn = new Connection(id, stream, ws);
  return new Promise((resolve, reject) => {
    let settled = false;
    const fail = (message: string, code: string | null = null): void => {
      if (settled) return;
      settled = true;
      ws.terminate();
      reject(new ClientError(code, message));
    };
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString('utf8')));
      res.on('end', () => {
        try {
          const e = (JSON.parse(body) as { error: { code: string; message: string } }).error;
          fail(e.message, e.code);
        } catch {
          fail(`${url}: the server refused the WebSocket upgrade with HTTP ${res.statusCode ?? '?'}`);
        }
      });
    });
    // also the run's error listener later: ws throws on an 'error' nobody listens to
    ws.on('error', (e) => fail(`cannot connect to ${url}: ${e.message}`));
    ws.once('message', (data: Buffer, isBinary: boolean) => {
      let credits: unknown;
      try {
        credits = isBinary ? undefined : (JSON.parse(data.toString('utf8')) as { credits?: unknown }).credits;
      } catch {
        credits = undefined;
      }
      if (typeof credits !== 'number' || !Number.isInteger(credits) || credits < 1) {
        fail(`${url}: expected {"credits": N} as the server's first message, got ${isBinary ? 'a binary message' : data.toString('utf8').slice(0, 100)}`);
        return;
      }
      conn.credits = credits;
      settled = true;
      resolve(conn);
    });
    ws.once('close', (code, reason) => fail(`${url}: closed before sending credits: ${code} ${reason.toString('utf8')}`));
  });
}

// --- the run ---------------------------------------------------------------------------------------

export interface GenSummary {
  url: string;
  workload: Workload;
  /** the streams written (nexmark: person,auction,bid) */
  stream: string;
  format: BidFormat;
  connections: number;
  batchRows: number;
  rate: number;
  /** events per second of event time */
  eventRate: number;
  seed: number;
  disorder: number;
  /** event time of the first event (ISO-8601) */
  start: string;
  /** server credits per connection (null in a dry run) */
  credits: number | null;
  eventsSent: number;
  eventsAcked: number;
  batchesSent: number;
  batchesAcked: number;
  nacks: number;
  eventsNacked: number;
  bytesSent: number;
  /** from the first send (or the end of --warmup) to the last ack (dry run: to the last batch made) */
  seconds: number;
  /** acked events per second over `seconds` (dry run: events made per second) */
  eventsPerSecond: number;
  /** --warmup: seconds left out of `seconds`, `eventsPerSecond` and `ackLatencyMs` */
  warmupSeconds: number;
  /** --ramp: seconds over which the send rate rose from 0 to `rate` */
  rampSeconds: number;
  /**
   * wall clock (ms since the epoch) of the first send. Paced, event k of the stream is due at
   * firstSendAt + k / rate; its event time is start + k / (generator.ringEvents / generator.spanMs),
   * which is `rate` only up to spanMs being whole ms
   */
  firstSendAt: number | null;
  ackLatencyMs: { p50: number | null; p99: number | null; max: number | null };
  /** connections the server closed, or that closed with a code other than 1000 */
  closes: Closed[];
  /** batches never answered (the drain timed out or their connection closed) */
  unanswered: number;
  /** ringBatches: steps in the ring (a nexmark step is up to three batches, one per stream) */
  generator: { ringEvents: number; ringBatches: number; buildMs: number; bytesPerEvent: number; spanMs: number };
  dryRun: boolean;
  ok: boolean;
}

const round = (v: number, digits = 3): number => Math.round(v * 10 ** digits) / 10 ** digits;
const ms = (v: number | null): string => (v === null ? '-' : `${v < 10 ? v.toFixed(2) : v.toFixed(1)} ms`);

function summaryLine(s: GenSummary): string {
  const how = `${s.format}, ${s.connections} connection${s.connections === 1 ? '' : 's'}, ${s.batchRows}-row batches`;
  if (s.dryRun) {
    return `gen (dry run): made ${s.eventsSent} events (${s.batchesSent} batches, ${round(s.bytesSent / 1e6, 1)} MB) in ${s.seconds.toFixed(2)} s: ${Math.round(s.eventsPerSecond)} events/s (${how})`;
  }
  const problems: string[] = [];
  if (s.closes.length > 0) problems.push(`${s.closes.length} connection${s.closes.length === 1 ? '' : 's'} closed abnormally`);
  if (s.unanswered > 0) problems.push(`${s.unanswered} batch${s.unanswered === 1 ? '' : 'es'} unanswered`);
  return `gen: sent ${s.eventsSent} events (${s.batchesSent} batch${s.batchesSent === 1 ? '' : 'es'}), acked ${s.eventsAcked} in ${s.seconds.toFixed(2)} s: `
    + `${Math.round(s.eventsPerSecond)} events/s; ack latency p50 ${ms(s.ackLatencyMs.p50)}, p99 ${ms(s.ackLatencyMs.p99)}; `
    + `${s.nacks} nack${s.nacks === 1 ? '' : 's'}${problems.length > 0 ? `; ${problems.join(', ')}` : ''} (${how})`;
}

function err(line: string): void {
  process.stderr.write(`${line}\n`);
}

export async function runGen(argv: string[]): Promise<number> {
  let o: GenOptions;
  if (argv.includes('--help') || argv.includes('-h')) {
    await writeStdout(GEN_USAGE);
    return 0;
  }
  try {
    o = parseGenArgs(argv);
  } catch (e) {
    if (!(e instanceof GenUsageError)) throw e;
    process.stderr.write(`sluice gen: ${e.message}\n\n${GEN_USAGE}`);
    return 2;
  }
  try {
    const summary = o.dryRun ? dryRun(o) : await generate(o);
    err(summaryLine(summary));
    if (o.json) await writeStdout(`${JSON.stringify(summary)}\n`);
    return summary.ok ? 0 : 1;
  } catch (e) {
    if (!(e instanceof ClientError)) throw e;
    err(e.line);
    return 1;
  }
}

/**
 * The stream a run sends, step by step: step k holds the run's events [k·B, (k+1)·B) as one
 * payload per stream (bids: one stream; nexmark: person, auction, bid; null when a step has no
 * event for a stream). Payloads are shared with the ring: step k + K re-stamps them in place, so
 * the pump begins it only when the socket wrote them (zeroMask).
 */
export interface Steps {
  readonly streams: readonly string[];
  readonly ringEvents: number;
  /** steps in the ring */
  readonly size: number;
  readonly buildMs: number;
  readonly bytes: number;
  readonly spanMs: number;
  step(k: number, rows: number): readonly (Payload | null)[];
}

function emptySummary(o: GenOptions, ring: Steps): GenSummary {
  return {
    url: o.url, workload: o.workload, stream: ring.streams.join(','), format: o.format, connections: o.connections, batchRows: o.batchRows, rate: o.rate, eventRate: o.eventRate,
    seed: o.seed, disorder: o.disorder, start: new Date(o.start).toISOString(), credits: null,
    eventsSent: 0, eventsAcked: 0, batchesSent: 0, batchesAcked: 0, nacks: 0, eventsNacked: 0, bytesSent: 0,
    seconds: 0, eventsPerSecond: 0, warmupSeconds: o.warmup, rampSeconds: o.ramp, firstSendAt: null, ackLatencyMs: { p50: null, p99: null, max: null }, closes: [], unanswered: 0,
    generator: {
      ringEvents: ring.ringEvents, ringBatches: ring.size, buildMs: round(ring.buildMs, 1),
      bytesPerEvent: round(ring.bytes / ring.ringEvents, 1), spanMs: ring.spanMs,
    },
    dryRun: o.dryRun, ok: true,
  };
}

/** The bid generator a run of `o` uses (tests rebuild it to know what was sent). */
export function makeRing(o: GenOptions, schema?: StreamSchema): BidRing {
  return new BidRing({
    seed: o.seed, eventsPerSecond: o.eventRate, start: o.start, disorder: o.disorder,
    format: o.format, batchRows: o.batchRows, ringEvents: o.ringEvents, ...(schema === undefined ? {} : { schema }),
  });
}

/** The Nexmark generator a run of `o` uses, for the streams' schemas on the server. */
export function makeNexmarkRing(o: GenOptions, schemas?: Partial<Record<NexmarkStream, StreamSchema>>): NexmarkRing {
  return new NexmarkRing({
    seed: o.seed, eventsPerSecond: o.eventRate, start: o.start, batchRows: o.batchRows, ringEvents: o.ringEvents,
    ...(schemas === undefined ? {} : { schemas }),
  });
}

/** The steps of a run of `o`; `targets` are the streams on the server (none in a dry run). */
function makeSteps(o: GenOptions, targets?: readonly Target[]): Steps {
  const streams = streamNames(o);
  if (o.workload === 'nexmark') {
    const schemas = targets === undefined ? undefined : Object.fromEntries(targets.map((t) => [t.name, t.schema]));
    const ring = makeNexmarkRing(o, schemas);
    return { streams, ringEvents: ring.ringEvents, size: ring.size, buildMs: ring.buildMs, bytes: ring.bytes, spanMs: ring.spanMs, step: (k, rows) => ring.step(k, rows) };
  }
  const ring = makeRing(o, targets?.[0]?.schema);
  return { streams, ringEvents: ring.ringEvents, size: ring.size, buildMs: ring.buildMs, bytes: ring.bytes, spanMs: ring.spanMs, step: (k, rows) => [ring.batch(k, rows)] };
}

/** A batch made (dry run) or sent, in the summary's counts. */
function countBatch(s: GenSummary, p: Payload): void {
  s.eventsSent += p.rows;
  s.bytesSent += p.data.length;
  s.batchesSent++;
}

/** `p`, or nothing after `ms`: a bounded wait that never rejects for the time. */
async function settleWithin(p: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([p, new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}

/** The generator alone: every batch made (and re-stamped) as for a server, none sent. */
function dryRun(o: GenOptions): GenSummary {
  const ring = makeSteps(o);
  const s = emptySummary(o, ring);
  const limit = o.events ?? Infinity;
  const deadline = o.seconds === null ? Infinity : o.seconds * 1000;
  const t0 = performance.now();
  let k = 0;
  let now = t0;
  while (s.eventsSent < limit && now - t0 < deadline) {
    // 64 batches between clock reads
    for (let j = 0; j < 64 && s.eventsSent < limit; j++, k++) {
      const rows = Math.min(o.batchRows, limit - s.eventsSent);
      for (const p of ring.step(k, rows)) if (p !== null) countBatch(s, p);
    }
    now = performance.now();
  }
  s.seconds = round((now - t0) / 1000);
  s.eventsPerSecond = Math.round(s.eventsSent / Math.max(1e-9, (now - t0) / 1000));
  return s;
}

async function generate(o: GenOptions): Promise<GenSummary> {
  const base = httpBase(o.url);
  const targets = await streamTargets(base, o);
  for (const { name, watermark } of targets) {
    if (watermark !== null && parseIsoTimestamp(watermark) > o.start - o.disorder) {
      err(`sluice gen: warning: stream '${name}' has its watermark at ${watermark}, after the first generated event time `
        + `(${new Date(o.start - o.disorder).toISOString()}): events in windows that already closed will be late (pass a later --start)`);
    }
  }
  // --connections to the stream of the bids workload; nexmark: to bid, and one each to person and auction
  const plan = streamNames(o).flatMap((name, stream) => {
    const url = `${wsBase(o.url)}/v1/streams/${encodeURIComponent(name)}/ingest`;
    return Array.from({ length: o.workload === 'nexmark' && name !== 'bid' ? 1 : o.connections }, () => ({ stream, url }));
  });

  const opened = await Promise.allSettled(plan.map((p, i) => openConnection(i + 1, p.stream, p.url, o.token)));
  const conns: Connection[] = [];
  for (const r of opened) if (r.status === 'fulfilled') conns.push(r.value);
  const refused = opened.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (refused !== undefined) {
    for (const c of conns) c.ws.terminate();
    throw refused.reason instanceof ClientError ? refused.reason : new ClientError(null, String(refused.reason));
  }
  // the ring is built once the credits are known: more steps than batches may be outstanding,
  // so that a step's slots are rarely still being written when the ring comes round to them
  // (zeroMask), unless --ring fixed its size
  const credits = conns.reduce((n, c) => n + c.credits, 0);
  const wraps = o.events === null || o.events > o.ringEvents;
  const ringEvents = !o.ringGiven && wraps && Math.ceil(o.ringEvents / o.batchRows) <= credits
    ? Math.max(o.ringEvents, Math.min(MAX_GROWN_RING, (credits + 1) * o.batchRows))
    : o.ringEvents;
  const ring = makeSteps({ ...o, ringEvents }, targets);
  const s = emptySummary(o, ring);
  s.credits = conns[0]!.credits;
  /** per ring step and stream: frames handed to ws whose write has not completed */
  const writing = new Int32Array(ring.size * ring.streams.length);
  let waitingForWrites = false;

  const latencies = new Latencies();
  const addLatency = (v: number): void => latencies.add(v);
  const limit = o.events ?? Infinity;
  let nackLines = 0;
  let stopped = false;
  let lastAckAt = 0;
  let timer: NodeJS.Timeout | null = null;
  const pools = ring.streams.map((_, i) => conns.filter((c) => c.stream === i));
  const rr = ring.streams.map(() => 0);
  let k = 0;
  /** the step being sent (null: the next is not begun), its next payload, events of the steps begun */
  let parts: readonly (Payload | null)[] | null = null;
  let part = 0;
  /** the step begun holds the ring's own payloads (not a partial step encoded afresh) */
  let partShared = false;
  let stepped = 0;
  let t0 = 0;
  let endAt: number | null = null;
  let drained: () => void = () => undefined;
  const drainedP = new Promise<void>((resolve) => (drained = resolve));
  let stoppedNow: () => void = () => undefined;
  const stoppedP = new Promise<void>((resolve) => (stoppedNow = resolve));

  const checkDrained = (): void => {
    if (stopped && conns.every((c) => c.closed !== null || c.tracker.outstanding === 0)) drained();
  };
  const stop = (): void => {
    if (stopped) return;
    stopped = true;
    if (timer !== null) clearTimeout(timer);
    timer = null;
    stoppedNow();
    checkDrained();
  };

  /** A connection of `stream` with a free credit, round robin. */
  const next = (stream: number): Connection | null => {
    const pool = pools[stream]!;
    for (let i = 0; i < pool.length; i++) {
      const c = pool[(rr[stream]! + i) % pool.length]!;
      if (c.free > 0) {
        rr[stream] = (rr[stream]! + i + 1) % pool.length;
        return c;
      }
    }
    return null;
  };

  /** Send `p`; `slot` is its ring slot (its writes are counted), or -1 for a payload of its own. */
  const send = (c: Connection, p: Payload, slot: number): void => {
    const at = performance.now();
    c.tracker.sent(p.rows, at);
    // the bytes go by reference (zeroMask): the slot is busy until the socket wrote them
    if (slot >= 0) writing[slot]!++;
    c.ws.send(p.data, { binary: p.binary }, () => {
      if (slot < 0) return;
      writing[slot]!--;
      if (waitingForWrites && writing[slot] === 0) {
        waitingForWrites = false;
        setImmediate(pump);
      }
    });
    countBatch(s, p);
  };

  /** Is any payload of ring step k (a full step: the ring's own payloads) still being written? */
  const stepBusy = (step: number): boolean => {
    const base = (step % ring.size) * ring.streams.length;
    for (let t = 0; t < ring.streams.length; t++) if (writing[base + t] !== 0) return true;
    return false;
  };

  /** Send every batch that is due and has a credit; then wait for an ack or the next due time. */
  const pump = (): void => {
    // called by its timer and by every ack: one pending timer at most, or each ack would start
    // another chain of timers
    if (timer !== null) clearTimeout(timer);
    timer = null;
    if (stopped) return;
    const now = performance.now();
    for (;;) {
      if (parts !== null) {
        // finish the step begun: each payload on a connection of its stream
        for (; part < parts.length; part++) {
          const p = parts[part] ?? null;
          if (p === null) continue;
          const c = next(part);
          if (c === null) return; // an ack calls pump again
          send(c, p, partShared ? (k % ring.size) * ring.streams.length + part : -1);
        }
        parts = null;
        k++;
      }
      if (stepped >= limit) break;
      if (o.rate > 0) {
        const dueAt = t0 + pacedDueMs(stepped, o.rate, o.ramp * 1000);
        // a batch due at or after the end is not sent, however late this timer fired: a paced
        // run sends exactly rate × (seconds − ramp / 2) events when the server keeps up
        if (endAt !== null && dueAt >= endAt) break;
        if (dueAt > now) {
          timer = setTimeout(pump, Math.max(0, Math.floor(dueAt - now)));
          return;
        }
      }
      const rows = Math.min(o.batchRows, limit - stepped);
      // a full step re-stamps the ring's payloads in place: not while the socket holds them
      partShared = rows === o.batchRows;
      if (partShared && stepBusy(k)) {
        waitingForWrites = true; // a completed write calls pump again
        return;
      }
      parts = ring.step(k, rows);
      part = 0;
      stepped += rows;
    }
    stop();
  };

  for (const c of conns) {
    c.ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (isBinary) return;
      let m: { ack?: unknown; nack?: unknown; error?: { code?: unknown; message?: unknown } };
      try {
        m = JSON.parse(data.toString('utf8')) as typeof m;
      } catch {
        return;
      }
      const now = performance.now();
      if (typeof m.ack === 'number') {
        const done = c.tracker.ack(m.ack, now, addLatency);
        s.batchesAcked += done.batches;
        s.eventsAcked += done.rows;
        lastAckAt = now;
      } else if (typeof m.nack === 'number') {
        const r = c.tracker.nack(m.nack, now, addLatency);
        s.batchesAcked += r.acked.batches;
        s.eventsAcked += r.acked.rows;
        s.nacks++;
        s.eventsNacked += r.rejectedRows;
        lastAckAt = now;
        if (nackLines++ < MAX_NACK_LINES) {
          err(`sluice gen: connection ${c.id} batch ${m.nack} nacked: ${String(m.error?.code ?? '?')}: ${String(m.error?.message ?? '')}`);
          if (nackLines === MAX_NACK_LINES) err('sluice gen: (further nacks are counted, not shown)');
        }
      } else {
        return;
      }
      if (stopped) checkDrained();
      else pump();
    });
    c.ws.on('close', (code, reason) => {
      c.closed = { connection: c.id, code, reason: reason.toString('utf8') };
      if (!c.byUs || code !== 1000) {
        s.closes.push(c.closed);
        err(`sluice gen: connection ${c.id} closed${c.byUs ? '' : ' by the server'}: ${code}${c.closed.reason === '' ? '' : ` ${c.closed.reason}`}`);
        // the run is no longer what was asked for: stop sending, let the others drain
        stop();
      }
      checkDrained();
    });
    c.ws.on('error', (e) => err(`sluice gen: connection ${c.id}: ${e.message}`));
  }

  // progress, once a second
  let lastAcked = 0;
  let lastLatency = 0;
  let tick = 0;
  const progress = setInterval(() => {
    tick++;
    const [p50, p99] = latencies.percentiles([50, 99], lastLatency);
    err(`gen ${String(tick).padStart(4)}s: sent ${s.eventsSent}  acked ${s.eventsAcked}  ${s.eventsAcked - lastAcked} events/s  `
      + `ack p50 ${ms(p50 ?? null)}  p99 ${ms(p99 ?? null)}  nacks ${s.nacks}`);
    lastAcked = s.eventsAcked;
    lastLatency = latencies.size;
  }, 1000);

  // after --warmup: the rate and latencies count from here
  let measureFrom = 0;
  let ackedBefore = 0;
  let latencyMark = 0;
  const warmupTimer = o.warmup > 0 ? setTimeout(() => {
    measureFrom = performance.now();
    ackedBefore = s.eventsAcked;
    latencyMark = latencies.size;
  }, o.warmup * 1000) : null;

  t0 = performance.now();
  measureFrom = t0;
  s.firstSendAt = Date.now();
  endAt = o.seconds === null ? null : t0 + o.seconds * 1000;
  const deadline = o.seconds === null ? null : setTimeout(stop, o.seconds * 1000);
  pump();
  await stoppedP;
  if (deadline !== null) clearTimeout(deadline);
  if (warmupTimer !== null) clearTimeout(warmupTimer);
  // the outstanding acks, within a bound: a server that stopped answering must not hang us
  await settleWithin(drainedP, DRAIN_TIMEOUT_MS);
  clearInterval(progress);
  const end = lastAckAt > 0 ? lastAckAt : performance.now();

  s.unanswered = conns.reduce((n, c) => n + c.tracker.outstanding, 0);
  if (s.unanswered > 0 && conns.every((c) => c.closed === null)) err(`sluice gen: ${s.unanswered} batches not answered within ${DRAIN_TIMEOUT_MS / 1000} s of the last send`);
  for (const c of conns) {
    if (c.closed !== null) continue;
    c.byUs = true;
    c.ws.close(1000, 'done');
  }
  await settleWithin(Promise.all(conns.map((c) => c.done)), CLOSE_TIMEOUT_MS);
  for (const c of conns) if (c.closed === null) c.ws.terminate();

  const [p50, p99, max] = latencies.percentiles([50, 99, 100], latencyMark);
  s.ackLatencyMs = { p50: p50 === null ? null : round(p50!), p99: p99 === null ? null : round(p99!), max: max === null ? null : round(max!) };
  s.seconds = round(Math.max(0, end - measureFrom) / 1000);
  s.eventsPerSecond = s.seconds > 0 ? Math.round((s.eventsAcked - ackedBefore) / s.seconds) : 0;
  s.ok = s.nacks === 0 && s.closes.length === 0 && s.unanswered === 0;
  return s;
}
