/**
 * The configuration (DESIGN.md A1, A2): one zod schema, layered sources, strict validation,
 * a deeply frozen result. docs/config.md is the reference for users.
 *
 * Loading runs in this order, and every step reports problems with the dotted key path:
 *
 *   text ──parse (YAML | JSON)──► tree ──${VAR} substitution in string values──► tree
 *        ──CLI flag overrides──► ──SLUICE_* environment overrides──► raw
 *        ──zod schema (structure, types, units, embedded defaults)──┐
 *        ──semantic checks (cross-references, names, collisions)───┴► all problems together
 *        ──normalise + deep freeze──► SluiceConfig
 *
 * Defaults live in the schema, so they are the lowest layer: file < flags < environment.
 * Substitution works on parsed string values, never on the YAML text, so a variable's value
 * is always one string and cannot add keys or change the document's structure.
 *
 * Semantic checks run over the raw tree, not over zod's output, so that a structural mistake
 * in one place (a bad duration) does not hide a cross-reference mistake elsewhere (a pipeline
 * reading a missing stream): the user sees every problem in one error.
 */
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { extname } from 'node:path';
import { parse as parseYamlValue, parseDocument } from 'yaml';
import * as z from 'zod';
import { sluiceError } from './errors.js';
import { COLUMN_TYPES, schemaFromRecord, type ColumnType, type StreamSchema } from './schema.js';
import { DURATION_MESSAGE, durationMs, formatDuration, SIZE_MESSAGE, sizeBytes } from './units.js';
import { checkPipelineExpressions } from './plan.js';

export { parseDuration, parseSize, formatDuration, formatSize } from './units.js';

// ---------------------------------------------------------------------------------------------
// Names
// ---------------------------------------------------------------------------------------------

/** Streams, pipelines, columns and select outputs become DuckDB table and column names. */
const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;
export const MAX_NAME_LENGTH = 63;
/** Names Sluice's own DuckDB tables use; user tables may not start with it (case-insensitive). */
export const RESERVED_TABLE_PREFIX = 'sluice_';
/** Columns every result table has; select outputs and groupBy columns may not use them. */
export const RESULT_COLUMNS: readonly string[] = ['window_start', 'window_end', 'partition'];
/** The extra column of a `<pipeline>__late` table next to the stream's raw columns. */
export const LATE_REASON_COLUMN = 'reason';

function nameProblem(name: string): string | undefined {
  if (!IDENTIFIER.test(name) || name.length > MAX_NAME_LENGTH) {
    return `'${name}' is not a valid name: use letters, digits and _, start with a letter or _, at most ${MAX_NAME_LENGTH} characters`;
  }
  // JS objects give `__proto__` a meaning of its own; no config name needs it.
  if (name === '__proto__') return `'${name}' is reserved`;
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Field helpers. Every scalar that may come from an environment variable or a CLI flag also
// accepts its text form ("9000", "true"), converted by the key's type: env values are text,
// and converting by the schema (not by guessing a YAML type) keeps `SLUICE_KAFKA_GROUP=123` a
// string while `SLUICE_PORT=9000` becomes a number.
// ---------------------------------------------------------------------------------------------

/** An error param: `required` when the key is absent, else `message`. */
function orRequired(message: string): (iss: { input?: unknown }) => string {
  return (iss) => (iss.input === undefined ? 'required' : message);
}

function describeValue(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  switch (typeof v) {
    case 'string': return 'a string';
    case 'number': return 'a number';
    case 'boolean': return 'true/false';
    case 'object': return 'a mapping';
    default: return typeof v;
  }
}

const EXPECTED_NAMES: Readonly<Record<string, string>> = {
  string: 'a string', number: 'a number', int: 'an integer', boolean: 'true or false',
  object: 'a mapping', record: 'a mapping', array: 'a list',
};

/**
 * The per-parse error map: messages for issues whose schema gives none of its own. Values are
 * never echoed (a misplaced token must not end up in a log).
 */
const baseErrorMap: z.core.$ZodErrorMap = (iss) => {
  if (iss.code === 'invalid_type') {
    if (iss.input === undefined) return 'required';
    return `expected ${EXPECTED_NAMES[iss.expected] ?? iss.expected}, got ${describeValue(iss.input)}`;
  }
  if (iss.code === 'invalid_value') return `expected one of ${iss.values.map(String).join(', ')}`;
  return undefined;
};

const INTEGER_TEXT = /^\s*[-+]?\d+\s*$/;

function int(min: number, max: number, message = `expected an integer from ${min} to ${max}`) {
  return z.preprocess(
    (v) => (typeof v === 'string' && INTEGER_TEXT.test(v) ? Number(v) : v),
    z.number({ error: orRequired(message) }).int({ error: message }).min(min, { error: message }).max(max, { error: message }),
  );
}

function bool() {
  return z.preprocess(
    (v) => (v === 'true' ? true : v === 'false' ? false : v),
    z.boolean({ error: orRequired('expected true or false') }),
  );
}

function text(what = 'a string') {
  return z.string({ error: orRequired(`expected ${what}`) }).trim().min(1, { error: 'must not be empty' });
}

/** A record key that becomes a DuckDB name. */
function nameKey() {
  return z.string().superRefine((name, ctx) => {
    const problem = nameProblem(name);
    if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem });
  });
}

/** A duration in ms; `min` 1 for intervals that must advance, 0 for slack that may be none. */
function duration(min: 0 | 1) {
  return z.union([z.string(), z.number()], { error: orRequired(DURATION_MESSAGE) }).transform((v, ctx) => {
    const ms = durationMs(v);
    if (ms === undefined) {
      ctx.addIssue({ code: 'custom', message: DURATION_MESSAGE });
      return z.NEVER;
    }
    if (ms < min) {
      ctx.addIssue({ code: 'custom', message: 'must be greater than 0' });
      return z.NEVER;
    }
    return ms;
  });
}

function size(min: number, max: number, range: string): z.ZodPipe<z.ZodUnion<[z.ZodString, z.ZodNumber]>, z.ZodTransform<number, string | number>>;
function size<K extends string>(min: number, max: number, range: string, keyword: K): z.ZodPipe<z.ZodUnion<[z.ZodString, z.ZodNumber]>, z.ZodTransform<number | K, string | number>>;
/** A size in bytes (`16MiB`, or a number of bytes) within [min, max]; `keyword` (e.g. auto) passes through. */
function size(min: number, max: number, range: string, keyword?: string) {
  const message = keyword === undefined ? SIZE_MESSAGE : `expected ${keyword} or a size like 16MiB`;
  return z.union([z.string(), z.number()], { error: orRequired(message) }).transform((v, ctx) => {
    if (keyword !== undefined && v === keyword) return v;
    const bytes = sizeBytes(v);
    if (bytes === undefined) {
      ctx.addIssue({ code: 'custom', message });
      return z.NEVER;
    }
    if (bytes < min || bytes > max) {
      ctx.addIssue({ code: 'custom', message: `must be between ${range}` });
      return z.NEVER;
    }
    return bytes;
  });
}

/**
 * Keys of every strict object, by path pattern (`<stream>` etc. stand for any record key):
 * the source of "did you mean" hints and of the docs test that every key is documented.
 */
const KNOWN_KEYS = new Map<string, readonly string[]>();

function strict<S extends z.core.$ZodLooseShape>(pattern: string, shape: S) {
  KNOWN_KEYS.set(pattern, Object.keys(shape));
  return z.strictObject(shape);
}

// ---------------------------------------------------------------------------------------------
// The schema (DESIGN.md A2). Defaults are embedded here and nowhere else.
// ---------------------------------------------------------------------------------------------

/** uWS closes idle sockets on a 4 s timer and aborts the process for 0 < idleTimeout < 8 s. */
const serverIdleTimeout = duration(0).superRefine((ms, ctx) => {
  if (ms !== 0 && (ms < 8000 || ms % 1000 !== 0)) {
    ctx.addIssue({ code: 'custom', message: 'must be 0 (never) or whole seconds of at least 8s' });
  }
});

const authSchema = strict('server.auth', {
  tokens: z.array(text('a token string'), { error: orRequired('expected a list of token strings') })
    .min(1, { error: 'expected at least one token' })
    .transform((tokens) => [...new Set(tokens)]),
});

const serverSchema = strict('server', {
  host: text('a host name or IP address').default('127.0.0.1'),
  port: int(0, 65535).default(8080),
  maxPayload: size(1024, 2 ** 30, '1KiB and 1GiB').prefault('16MiB'),
  idleTimeout: serverIdleTimeout.prefault('120s'),
  credits: int(1, 1024).default(16),
  auth: authSchema.optional(),
  /** POST /v1/sql and the REST results route */
  sql: strict('server.sql', {
    maxRows: int(1, 100_000_000).default(100_000),
    timeout: duration(1).prefault('30s'),
  }).prefault({}),
  /** WebSocket subscribers: result bytes a subscriber may leave unread before it is closed with 1013 */
  subscribe: strict('server.subscribe', {
    maxBuffered: size(1024, 2 ** 30, '1KiB and 1GiB').prefault('16MiB'),
  }).prefault({}),
});

const THREADS_MESSAGE = 'expected auto or an integer from 1 to 256';
const threadsSchema = z.union([z.string(), z.number()], { error: orRequired(THREADS_MESSAGE) }).transform((v, ctx) => {
  if (v === 'auto') return 'auto' as const;
  const n = typeof v === 'string' && INTEGER_TEXT.test(v) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > 256) {
    ctx.addIssue({ code: 'custom', message: THREADS_MESSAGE });
    return z.NEVER;
  }
  return n;
});

const workersSchema = strict('workers', {
  threads: threadsSchema.default('auto'),
  /** memory for received batches waiting for a worker (the slab arena); full means push back */
  queue: size(1 << 20, 2 ** 40, '1MiB and 1TiB').prefault('256MiB'),
  /** batches smaller than this are coalesced into one worker task */
  coalesce: size(0, 1 << 30, '0 and 1GiB').prefault('1MiB'),
  /** JS heap of each pool worker; a worker that exceeds it dies and only its batches fail */
  heap: size(64 << 20, 2 ** 40, '64MiB and 1TiB').prefault('2GiB'),
});

const storageSchema = strict('storage', {
  dir: text('a directory path').default('./data'),
  parquet: strict('storage.parquet', { every: duration(1).prefault('1m') }).prefault({}),
  checkpoint: strict('storage.checkpoint', { every: duration(1).prefault('5s') }).prefault({}),
  /** a pipeline whose definition changed against its existing table: refuse to start, or drop and recreate its tables */
  onPipelineChange: z.enum(['error', 'recreate'], { error: 'expected error or recreate' }).default('error'),
  /** DuckDB's threads (appends, commits, queries); auto: the cores the worker pool leaves, at least 1 */
  threads: threadsSchema.default('auto'),
  /** DuckDB's WAL size that triggers a checkpoint of the database file (its checkpoint_threshold) */
  walCheckpoint: size(1 << 20, 2 ** 40, '1MiB and 1TiB').prefault('64MiB'),
  /** DuckDB's memory_limit; auto: DuckDB's own default (80 % of the host's memory) */
  memoryLimit: size(16 << 20, 2 ** 50, '16MiB and 1PiB', 'auto').default('auto'),
});

const columnsSchema = z.record(nameKey(), z.enum(COLUMN_TYPES, { error: `expected one of ${COLUMN_TYPES.join(', ')}` }),
  { error: orRequired('expected a mapping of column name to type') })
  .refine((cols) => Object.keys(cols).length > 0, { error: 'must declare at least one column' });

const streamSchema = strict('streams.<stream>', {
  schema: columnsSchema,
  eventTime: strict('streams.<stream>.eventTime', {
    column: text('a column name'),
    maxOutOfOrder: duration(0).prefault('0s'),
    idleTimeout: duration(1).prefault('10s'),
  }),
  archive: bool().default(false),
  ack: z.enum(['accepted', 'durable'], { error: 'expected accepted or durable' }).default('accepted'),
});

export type WindowSpec =
  | { kind: 'tumbling'; size: number }
  | { kind: 'hopping'; size: number; slide: number }
  | { kind: 'session'; gap: number };

const WINDOW_KINDS = ['tumbling', 'hopping', 'session'] as const;
/** the most hopping windows one event may belong to */
export const MAX_HOPS = 100;

const hoppingSchema = strict('pipelines.<pipeline>.window.hopping', { size: duration(1), slide: duration(1) })
  .superRefine((h, ctx) => {
    // Every event then falls in exactly size/slide windows; a kernel can rely on that, and
    // relaxing this later keeps existing configs valid where tightening it would not.
    if (h.slide > h.size) ctx.addIssue({ code: 'custom', path: ['slide'], message: `must be at most size (${formatDuration(h.size)})` });
    else if (h.size % h.slide !== 0) ctx.addIssue({ code: 'custom', path: ['slide'], message: `must divide size (${formatDuration(h.size)}) evenly` });
    // each event is aggregated into size / slide windows: the work and memory per event grow
    // with the ratio (a 1h / 1s window would count every event 3600 times)
    else if (h.size / h.slide > MAX_HOPS) ctx.addIssue({ code: 'custom', path: ['slide'], message: `size / slide must be at most ${MAX_HOPS} (got ${h.size / h.slide}): every event is counted in that many windows` });
  });

const windowSchema = strict('pipelines.<pipeline>.window', {
  tumbling: duration(1).optional(),
  hopping: hoppingSchema.optional(),
  session: strict('pipelines.<pipeline>.window.session', { gap: duration(1) }).optional(),
})
  .superRefine((w, ctx) => {
    const given = WINDOW_KINDS.filter((k) => w[k] !== undefined);
    if (given.length === 0) ctx.addIssue({ code: 'custom', message: 'expected one of tumbling, hopping, session' });
    else if (given.length > 1) ctx.addIssue({ code: 'custom', message: `expected exactly one of tumbling, hopping, session, got ${given.join(' and ')}` });
  })
  .transform((w): WindowSpec => {
    if (w.hopping !== undefined) return { kind: 'hopping', size: w.hopping.size, slide: w.hopping.slide };
    if (w.session !== undefined) return { kind: 'session', gap: w.session.gap };
    // superRefine guarantees exactly one kind, so this is tumbling.
    return { kind: 'tumbling', size: w.tumbling ?? 0 };
  });

const groupBySchema = z.array(text('a column name'), { error: orRequired('expected a list of column names') })
  .superRefine((cols, ctx) => {
    const seen = new Set<string>();
    cols.forEach((c, i) => {
      if (seen.has(c.toLowerCase())) ctx.addIssue({ code: 'custom', path: [i], message: `column '${c}' is listed twice` });
      seen.add(c.toLowerCase());
    });
  });

const selectSchema = z.record(nameKey(), text('an aggregate call like count() or max(price)'),
  { error: orRequired('expected a mapping of output column to aggregate call') })
  .refine((sel) => Object.keys(sel).length > 0, { error: 'must have at least one output column' });

const pipelineSchema = strict('pipelines.<pipeline>', {
  from: text('a stream name'),
  where: text('a filter expression').optional(),
  window: windowSchema,
  groupBy: groupBySchema.default([]),
  select: selectSchema,
  lateness: duration(0).prefault('0s'),
});

const BROKER = /^[^\s:,]+:(\d{1,5})$/;
const TOPIC = /^[A-Za-z0-9._-]{1,249}$/;

const kafkaSchema = strict('kafka', {
  brokers: z.union([z.string(), z.array(z.string())], { error: orRequired('expected host:port, a comma-separated list of them, or a list') })
    .transform((v, ctx) => {
      const list = (typeof v === 'string' ? v.split(',') : v).map((b) => b.trim()).filter((b) => b !== '');
      if (list.length === 0) ctx.addIssue({ code: 'custom', message: 'expected at least one broker host:port' });
      for (const b of list) {
        const m = BROKER.exec(b);
        if (m === null || Number(m[1]) < 1 || Number(m[1]) > 65535) ctx.addIssue({ code: 'custom', message: `'${b}' is not host:port` });
      }
      return list;
    }),
  group: text('a consumer group id').default('sluice'),
  topics: z.record(z.string(), z.string({ error: 'expected a topic name' })
    .regex(TOPIC, { error: 'expected a Kafka topic name (letters, digits, . _ -, at most 249 characters)' })).default({}),
});

/** The zod schema of the whole file: structure, types, units and defaults (see validation below for cross-references). */
export const configSchema = strict('', {
  server: serverSchema.prefault({}),
  storage: storageSchema.prefault({}),
  workers: workersSchema.prefault({}),
  streams: z.record(nameKey(), streamSchema, { error: 'expected a mapping of stream name to stream' }).default({}),
  pipelines: z.record(nameKey(), pipelineSchema, { error: 'expected a mapping of pipeline name to pipeline' }).default({}),
  kafka: kafkaSchema.optional(),
});

type DeepReadonly<T> = T extends readonly (infer U)[]
  ? readonly DeepReadonly<U>[]
  : T extends object ? { readonly [K in keyof T]: DeepReadonly<T[K]> } : T;

/** The validated, normalised configuration: durations in ms, sizes in bytes, deeply frozen. */
export type SluiceConfig = DeepReadonly<z.output<typeof configSchema>>;
export type ServerConfig = SluiceConfig['server'];
export type StorageConfig = SluiceConfig['storage'];
export type StreamConfig = SluiceConfig['streams'][string];
export type PipelineConfig = SluiceConfig['pipelines'][string];
export type KafkaConfig = NonNullable<SluiceConfig['kafka']>;

/** `workers.threads` stays `'auto'` in the config; the runtime sizes the pool with this. */
export function resolveWorkerThreads(threads: SluiceConfig['workers']['threads']): number {
  return threads === 'auto' ? availableParallelism() : threads;
}

/**
 * `storage.threads` stays `'auto'` in the config; DuckDB gets this many: auto is the cores the
 * worker pool leaves, at least one. DuckDB runs its commits and checkpoints on all of its threads,
 * so on a host whose cores the pool already uses, more threads only take them from the workers
 * and the main thread (docs/benchmarks.md, "Optimisation log — end to end").
 */
export function resolveStorageThreads(config: Pick<SluiceConfig, 'storage' | 'workers'>): number {
  const t = config.storage.threads;
  return t === 'auto' ? Math.max(1, availableParallelism() - resolveWorkerThreads(config.workers.threads)) : t;
}

/** Dotted paths of every key of every mapping in the schema (`<stream>` stands for a name). */
export function configKeyPaths(): string[] {
  const out: string[] = [];
  for (const [pattern, keys] of KNOWN_KEYS) for (const k of keys) out.push(pattern === '' ? k : `${pattern}.${k}`);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Problems and their paths
// ---------------------------------------------------------------------------------------------

export type ConfigPath = (string | number)[];
/** How every check reports a problem: the full key path from the root and a message. */
export type ReportIssue = (path: ConfigPath, message: string) => void;

interface Issue {
  readonly path: ConfigPath;
  readonly message: string;
}

/** `['pipelines', 'p', 'groupBy', 0]` → `pipelines.p.groupBy[0]`. */
export function formatPath(path: readonly (string | number)[]): string {
  if (path.length === 0) return '(root)';
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else out += out === '' ? seg : `.${seg}`;
  }
  return out;
}

/** Optimal string alignment distance: Levenshtein plus adjacent transpositions (`prot` → `port` is 1). */
function editDistance(a: string, b: string): number {
  const d: number[][] = [];
  for (let i = 0; i <= a.length; i++) d.push([i]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}

function closest(word: string, candidates: readonly string[]): string | undefined {
  const lower = word.toLowerCase();
  let best: string | undefined;
  let bestDistance = word.length <= 5 ? 1 : 2;
  for (const c of candidates) {
    const dist = c.toLowerCase() === lower ? 0 : editDistance(lower, c.toLowerCase());
    if (dist <= bestDistance) {
      best = c;
      bestDistance = dist;
    }
  }
  return best;
}

function knownKeysAt(path: readonly (string | number)[]): readonly string[] | undefined {
  for (const [pattern, keys] of KNOWN_KEYS) {
    const segs = pattern === '' ? [] : pattern.split('.');
    if (segs.length === path.length && segs.every((s, i) => s.startsWith('<') || s === path[i])) return keys;
  }
  return undefined;
}

function unknownKeyMessage(parent: readonly (string | number)[], key: string): string {
  const known = knownKeysAt(parent);
  const hint = known === undefined ? undefined : closest(key, known);
  return hint === undefined ? 'unknown key' : `unknown key (did you mean ${hint}?)`;
}

function zodIssues(error: z.ZodError, report: ReportIssue): void {
  for (const iss of error.issues) {
    const path = iss.path.map((p) => (typeof p === 'number' ? p : String(p)));
    if (iss.code === 'unrecognized_keys') {
      for (const key of iss.keys) report([...path, key], unknownKeyMessage(path, key));
    } else if (iss.code === 'invalid_key') {
      report(path, iss.issues[0]?.message ?? iss.message);
    } else {
      report(path, iss.message);
    }
  }
}

/** Which override set a key, so a bad value from the environment says where it came from. */
type Origins = Map<string, { path: ConfigPath; label: string }>;

function originOf(path: ConfigPath, origins: Origins): string | undefined {
  let found: { path: ConfigPath; label: string } | undefined;
  for (const o of origins.values()) {
    if (o.path.length <= path.length && o.path.every((s, i) => s === path[i]) && (found === undefined || o.path.length > found.path.length)) found = o;
  }
  return found?.label;
}

function problemsMessage(headline: string, issues: readonly Issue[], origins: Origins): string {
  const lines = new Set<string>();
  for (const iss of issues) {
    const label = originOf(iss.path, origins);
    lines.add(`${formatPath(iss.path)}: ${iss.message}${label === undefined ? '' : ` (from ${label})`}`);
  }
  return `${headline} (${lines.size} problem${lines.size === 1 ? '' : 's'}):\n${[...lines].join('\n')}`;
}

// ---------------------------------------------------------------------------------------------
// Parsing text
// ---------------------------------------------------------------------------------------------

function parseText(text: string, format: 'yaml' | 'json', source: string): unknown {
  const body = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  if (format === 'json') {
    try {
      return JSON.parse(body) as unknown;
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      const pos = /at position (\d+)/.exec(message);
      let where = source;
      if (pos !== null) {
        const before = body.slice(0, Number(pos[1]));
        const line = before.split('\n').length;
        where += `:${line}:${before.length - before.lastIndexOf('\n')}`;
      }
      throw sluiceError('CONFIG_PARSE', `${where}: ${message}`, err);
    }
  }
  const doc = parseDocument(body, { prettyErrors: true, uniqueKeys: true, version: '1.2', merge: false });
  if (doc.errors.length > 0) {
    const lines = doc.errors.map((e) => {
      const pos = e.linePos?.[0];
      const [head = '', ...frame] = e.message.split('\n');
      const where = pos === undefined ? source : `${source}:${pos.line}:${pos.col}`;
      return [`${where}: ${head.replace(/ at line \d+, column \d+:$/, '')}`, ...frame].join('\n').trimEnd();
    });
    throw sluiceError('CONFIG_PARSE', lines.join('\n'));
  }
  try {
    return doc.toJS({ maxAliasCount: 100 }) as unknown;
  } catch (err) {
    // Unresolved aliases and alias bombs surface only when the document is converted.
    throw sluiceError('CONFIG_PARSE', `${source}: ${err instanceof Error ? err.message : String(err)}`, err);
  }
}

type Tree = Record<string, unknown>;

function isTree(v: unknown): v is Tree {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const proto: unknown = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

// ---------------------------------------------------------------------------------------------
// ${VAR} substitution
// ---------------------------------------------------------------------------------------------

const REFERENCE_START = /\$(\$?)\{/g;
const REFERENCE_BODY = /^([A-Za-z_][A-Za-z0-9_]*)(?::-([\s\S]*))?$/;

interface Substitution {
  readonly env: NodeJS.ProcessEnv;
  /** variables the file refers to: never reported as unknown SLUICE_* overrides */
  readonly referenced: Set<string>;
  readonly missing: Issue[];
  readonly report: ReportIssue;
}

function substituteString(s: string, path: ConfigPath, sub: Substitution): string {
  if (!s.includes('${')) return s;
  let out = '';
  let from = 0;
  REFERENCE_START.lastIndex = 0;
  for (let m = REFERENCE_START.exec(s); m !== null; m = REFERENCE_START.exec(s)) {
    out += s.slice(from, m.index);
    if (m[1] === '$') {
      out += '${';
      from = REFERENCE_START.lastIndex;
      continue;
    }
    const close = s.indexOf('}', REFERENCE_START.lastIndex);
    if (close < 0) {
      sub.report(path, 'unterminated ${ (write $${ for a literal ${)');
      return s;
    }
    const body = REFERENCE_BODY.exec(s.slice(REFERENCE_START.lastIndex, close));
    if (body === null) {
      sub.report(path, `'${s.slice(m.index, close + 1)}' is not a variable reference: write \${NAME} or \${NAME:-default}`);
      return s;
    }
    const [, name = '', fallback] = body;
    sub.referenced.add(name);
    const value = sub.env[name];
    // As in the shell: `:-` also replaces a variable that is set but empty.
    if (fallback !== undefined && (value === undefined || value === '')) out += fallback;
    else if (value !== undefined) out += value;
    else sub.missing.push({ path, message: `environment variable ${name} is not set (write \${${name}:-default} to give a default)` });
    from = close + 1;
    REFERENCE_START.lastIndex = from;
  }
  return out + s.slice(from);
}

/** A fresh copy of the tree with every string value substituted (keys are left alone). */
function substituteTree(v: unknown, path: ConfigPath, sub: Substitution): unknown {
  if (typeof v === 'string') return substituteString(v, path, sub);
  if (Array.isArray(v)) return v.map((x, i) => substituteTree(x, [...path, i], sub));
  // Object.fromEntries defines own properties, so a `__proto__` key cannot reach a prototype.
  if (isTree(v)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, substituteTree(x, [...path, k], sub)]));
  return v;
}

// ---------------------------------------------------------------------------------------------
// Overrides: CLI flags, then SLUICE_* environment variables
// ---------------------------------------------------------------------------------------------

/** What the CLI passes from its flags; each one wins over the file and loses to the environment. */
export interface ConfigOverrides {
  host?: string;
  port?: number;
  dataDir?: string;
  maxPayload?: string | number;
  workers?: 'auto' | number;
  kafkaBrokers?: string;
  kafkaGroup?: string;
}

const FLAG_TARGETS: ReadonlyArray<readonly [key: keyof ConfigOverrides, flag: string, path: readonly string[]]> = [
  ['host', '--host', ['server', 'host']],
  ['port', '--port', ['server', 'port']],
  ['dataDir', '--data', ['storage', 'dir']],
  ['maxPayload', '--max-payload', ['server', 'maxPayload']],
  ['workers', '--workers', ['workers', 'threads']],
  ['kafkaBrokers', '--kafka-brokers', ['kafka', 'brokers']],
  ['kafkaGroup', '--kafka-group', ['kafka', 'group']],
];

/** Environment variables that set one key each (DESIGN.md A1). */
export const ENV_OVERRIDES: ReadonlyMap<string, readonly string[]> = new Map([
  ['SLUICE_HOST', ['server', 'host']],
  ['SLUICE_PORT', ['server', 'port']],
  ['SLUICE_DATA', ['storage', 'dir']],
  ['SLUICE_MAX_PAYLOAD', ['server', 'maxPayload']],
  ['SLUICE_WORKERS', ['workers', 'threads']],
  ['SLUICE_KAFKA_BROKERS', ['kafka', 'brokers']],
  ['SLUICE_KAFKA_GROUP', ['kafka', 'group']],
]);
/** Adds one bearer token to server.auth.tokens (and so turns authentication on). */
export const ENV_TOKEN = 'SLUICE_TOKEN';
/** `SLUICE_CONFIG__server__port=9000` sets any key; `__` separates path segments. */
export const ENV_GENERIC_PREFIX = 'SLUICE_CONFIG__';
/**
 * SLUICE_* names that other parts of Sluice read and the config loader must not reject even
 * when they resemble a config variable. Add a name here (and to docs/config.md) when a
 * component introduces one.
 */
export const NON_CONFIG_ENV_VARS: ReadonlySet<string> = new Set(['SLUICE_LOG_LEVEL', 'SLUICE_TEST_FAULTS']);

/** SLUICE_<SECTION>_... is what a user guessing a variable name for a key would write. */
const SECTION_PREFIXES = ['SLUICE_SERVER_', 'SLUICE_AUTH_', 'SLUICE_STORAGE_', 'SLUICE_WORKERS_', 'SLUICE_WORKER_',
  'SLUICE_STREAMS_', 'SLUICE_STREAM_', 'SLUICE_PIPELINES_', 'SLUICE_PIPELINE_', 'SLUICE_KAFKA_', 'SLUICE_CONFIG'];
const FORBIDDEN_SEGMENTS = new Set(['__proto__', 'prototype', 'constructor']);

/** Why `name` looks like a config variable that matches nothing, or undefined if it does not. */
function unknownEnvProblem(name: string): string | undefined {
  if (!name.startsWith('SLUICE_') || ENV_OVERRIDES.has(name) || name === ENV_TOKEN || NON_CONFIG_ENV_VARS.has(name)) return undefined;
  if (name.startsWith(ENV_GENERIC_PREFIX)) return undefined;
  const supported = [...ENV_OVERRIDES.keys(), ENV_TOKEN];
  const suffix = name.slice('SLUICE_'.length);
  const near = closest(suffix, supported.map((s) => s.slice('SLUICE_'.length)));
  const extended = supported.find((s) => name.startsWith(`${s}_`));
  const looksLike = near !== undefined || extended !== undefined || SECTION_PREFIXES.some((p) => name.startsWith(p));
  if (!looksLike) return undefined;
  const hint = near !== undefined ? `did you mean SLUICE_${near}? ` : extended !== undefined ? `did you mean ${extended}? ` : '';
  return `unknown configuration variable; ${hint}set any key with ${ENV_GENERIC_PREFIX}<key>__<key>, e.g. ${ENV_GENERIC_PREFIX}server__port`;
}

interface Layering {
  readonly root: Tree;
  readonly origins: Origins;
  readonly report: ReportIssue;
}

/** Set `path` in the tree, creating mappings on the way; `label` names the override for errors. */
function setPath(lay: Layering, path: readonly string[], value: unknown, label: string): void {
  let node = lay.root;
  for (let i = 0; i < path.length - 1; i++) {
    const key = path[i]!;
    const next = node[key];
    if (next === undefined || next === null) {
      const created: Tree = {};
      node[key] = created;
      node = created;
    } else if (isTree(next)) {
      node = next;
    } else {
      lay.report([label], `cannot set ${formatPath(path)}: ${formatPath(path.slice(0, i + 1))} is not a mapping`);
      return;
    }
  }
  node[path[path.length - 1]!] = value;
  const key = formatPath(path);
  for (const k of lay.origins.keys()) if (k === key || k.startsWith(`${key}.`)) lay.origins.delete(k);
  lay.origins.set(key, { path: [...path], label });
}

function applyFlags(lay: Layering, overrides: ConfigOverrides): void {
  for (const [key, flag, path] of FLAG_TARGETS) {
    const value = overrides[key];
    if (value !== undefined) setPath(lay, path, value, flag);
  }
}

/** A generic override's value: text, or a YAML flow list/mapping when it starts with [ or {. */
function envValue(name: string, text: string, report: ReportIssue): unknown {
  const t = text.trim();
  if (!t.startsWith('[') && !t.startsWith('{')) return text;
  try {
    const v: unknown = parseYamlValue(t, { version: '1.2' });
    if (Array.isArray(v) || isTree(v)) return v;
  } catch {
    // reported below
  }
  report([name], 'a value starting with [ or { must be a YAML flow list or mapping, e.g. [a, b]');
  return undefined;
}

function applyEnv(lay: Layering, env: NodeJS.ProcessEnv, referenced: ReadonlySet<string>): void {
  // Two variables writing the same key (or one inside the other) would make the winner depend on
  // an order nobody sees; that is a mistake to report, not to resolve.
  const written: { path: readonly string[]; name: string }[] = [];
  const write = (name: string, path: readonly string[], value: unknown): void => {
    const clash = written.find((w) => w.path.every((s, i) => i >= path.length || s === path[i]) || path.every((s, i) => i >= w.path.length || s === w.path[i]));
    if (clash !== undefined) {
      lay.report([name], `sets ${formatPath(path)}, which ${clash.name} also sets`);
      return;
    }
    written.push({ path, name });
    setPath(lay, path, value, name);
  };

  for (const name of Object.keys(env).sort()) {
    const value = env[name];
    if (!name.startsWith('SLUICE_') || value === undefined || value === '') continue;
    const target = ENV_OVERRIDES.get(name);
    if (target !== undefined) {
      write(name, target, value);
    } else if (name === ENV_TOKEN) {
      addToken(lay, value);
    } else if (name.startsWith(ENV_GENERIC_PREFIX)) {
      const path = name.slice(ENV_GENERIC_PREFIX.length).split('__');
      if (path.some((s) => s === '' || FORBIDDEN_SEGMENTS.has(s))) {
        lay.report([name], `malformed override: expected ${ENV_GENERIC_PREFIX}<key>__<key>..., e.g. ${ENV_GENERIC_PREFIX}server__port`);
        continue;
      }
      const v = envValue(name, value, lay.report);
      if (v !== undefined) write(name, path, v);
    } else if (!referenced.has(name)) {
      const problem = unknownEnvProblem(name);
      if (problem !== undefined) lay.report([name], problem);
    }
  }
}

function addToken(lay: Layering, token: string): void {
  const server = lay.root['server'];
  const auth = isTree(server) ? server['auth'] : undefined;
  const tokens = isTree(auth) ? auth['tokens'] : undefined;
  if (Array.isArray(tokens)) {
    lay.origins.set(formatPath(['server', 'auth', 'tokens', tokens.length]), { path: ['server', 'auth', 'tokens', tokens.length], label: ENV_TOKEN });
    tokens.push(token);
  } else if (tokens === undefined) {
    setPath(lay, ['server', 'auth', 'tokens'], [token], ENV_TOKEN);
  } else {
    lay.report([ENV_TOKEN], 'cannot add a token: server.auth.tokens is not a list');
  }
}

// ---------------------------------------------------------------------------------------------
// Semantic checks: what one key cannot know alone. They read the raw tree defensively and skip
// anything malformed, which the schema reports.
// ---------------------------------------------------------------------------------------------

function entriesOf(v: unknown): [string, unknown][] {
  return isTree(v) ? Object.entries(v) : [];
}

/** The stream's columns when its `schema` is well formed, else undefined (the schema reports it). */
function streamColumns(stream: unknown): StreamSchema | undefined {
  const parsed = columnsSchema.safeParse(isTree(stream) ? stream['schema'] : undefined);
  return parsed.success ? schemaFromRecord(parsed.data) : undefined;
}

function findColumn(schema: StreamSchema, name: string): { name: string; type: ColumnType } | undefined {
  const exact = schema.index.get(name);
  if (exact !== undefined) return schema.fields[exact];
  return undefined;
}

function checkSemantics(root: Tree, issue: ReportIssue): void {
  const streams = new Map<string, StreamSchema | undefined>();
  const tables = new Map<string, { name: string; owner: string }>();
  const claimTable = (name: string, owner: string, path: ConfigPath): void => {
    const holder = tables.get(name.toLowerCase());
    if (holder === undefined) tables.set(name.toLowerCase(), { name, owner });
    else issue(path, `table name '${name}' is already used by ${holder.owner}${holder.name === name ? '' : ' (DuckDB names are case-insensitive)'}`);
  };
  const checkPrefix = (name: string, path: ConfigPath): void => {
    if (name.toLowerCase().startsWith(RESERVED_TABLE_PREFIX)) issue(path, `names starting with '${RESERVED_TABLE_PREFIX}' are reserved for Sluice's own tables`);
  };

  for (const [name, stream] of entriesOf(root['streams'])) {
    const path = ['streams', name];
    checkPrefix(name, path);
    claimTable(name, `stream '${name}'`, path);
    const schema = streamColumns(stream);
    streams.set(name, schema);
    if (schema === undefined || !isTree(stream)) continue;
    const seen = new Map<string, string>();
    for (const f of schema.fields) {
      const other = seen.get(f.name.toLowerCase());
      if (other !== undefined) issue([...path, 'schema', f.name], `column name collides with '${other}' (DuckDB names are case-insensitive)`);
      seen.set(f.name.toLowerCase(), f.name);
    }
    const eventTime = stream['eventTime'];
    const column = isTree(eventTime) ? eventTime['column'] : undefined;
    if (typeof column === 'string' && column.trim() !== '') {
      const f = findColumn(schema, column.trim());
      if (f === undefined) issue([...path, 'eventTime', 'column'], `column '${column.trim()}' is not in the stream's schema`);
      else if (f.type !== 'timestamp') issue([...path, 'eventTime', 'column'], `column '${f.name}' has type ${f.type}; the event-time column must be a timestamp`);
    }
  }

  for (const [name, pipeline] of entriesOf(root['pipelines'])) {
    const path = ['pipelines', name];
    checkPrefix(name, path);
    claimTable(name, `pipeline '${name}'`, path);
    claimTable(`${name}__late`, `the late-events table of pipeline '${name}'`, path);
    claimTable(`${name}_merged`, `the merged view of pipeline '${name}'`, path);
    if (!isTree(pipeline)) continue;
    checkPipeline(name, pipeline, streams, issue);
  }

  const kafka = root['kafka'];
  if (isTree(kafka)) {
    const topicOf = new Map<string, string>();
    for (const [stream, topic] of entriesOf(kafka['topics'])) {
      if (!streams.has(stream)) issue(['kafka', 'topics', stream], `no stream named '${stream}'`);
      if (typeof topic === 'string') topicOf.set(stream, topic);
    }
    // Streams without an entry use a topic named after the stream; a topic carries one stream's schema.
    const users = new Map<string, string>();
    for (const stream of streams.keys()) {
      const topic = topicOf.get(stream) ?? stream;
      const other = users.get(topic);
      if (other !== undefined) issue(['kafka', 'topics', stream], `topic '${topic}' is already used by stream '${other}'`);
      else users.set(topic, stream);
    }
  }
}

function checkPipeline(name: string, p: Tree, streams: ReadonlyMap<string, StreamSchema | undefined>, issue: ReportIssue): void {
  const path = ['pipelines', name];
  const from = p['from'];
  const streamName = typeof from === 'string' ? from.trim() : undefined;
  let schema: StreamSchema | undefined;
  if (streamName !== undefined && streamName !== '') {
    if (!streams.has(streamName)) {
      const known = [...streams.keys()];
      issue([...path, 'from'], `no stream named '${streamName}'${known.length > 0 ? ` (streams: ${known.join(', ')})` : ''}`);
    } else {
      schema = streams.get(streamName);
    }
  }

  const reserved = new Map(RESULT_COLUMNS.map((c) => [c, 'a result column'] as const));
  const groupBy = p['groupBy'];
  const groupCols = new Map<string, string>();
  if (Array.isArray(groupBy)) {
    groupBy.forEach((col: unknown, i) => {
      if (typeof col !== 'string' || col.trim() === '') return;
      const c = col.trim();
      if (reserved.has(c.toLowerCase())) issue([...path, 'groupBy', i], `column '${c}' collides with the result column of the same name`);
      if (schema !== undefined && findColumn(schema, c) === undefined) issue([...path, 'groupBy', i], `column '${c}' is not in stream '${streamName}'`);
      groupCols.set(c.toLowerCase(), c);
    });
  }

  const outputs = new Map<string, string>();
  for (const [out] of entriesOf(p['select'])) {
    const lower = out.toLowerCase();
    const where: ConfigPath = [...path, 'select', out];
    if (reserved.has(lower)) issue(where, `output name '${out}' is reserved for ${reserved.get(lower)}`);
    else if (groupCols.has(lower)) issue(where, `output name '${out}' collides with groupBy column '${groupCols.get(lower)}'`);
    else if (outputs.has(lower)) issue(where, `output name '${out}' collides with '${outputs.get(lower)}' (DuckDB names are case-insensitive)`);
    outputs.set(lower, out);
  }

  if (schema !== undefined) {
    const reason = schema.fields.find((f) => f.name.toLowerCase() === LATE_REASON_COLUMN);
    if (reason !== undefined) {
      issue([...path, 'from'], `stream '${streamName}' has a column '${reason.name}', which collides with the '${LATE_REASON_COLUMN}' column of the late-events table '${name}__late'`);
    }

    // Expression checks (`where`, and the aggregate calls in `select`) by the pipeline
    // compiler. `parsed` fails only where the structural pass already reported a problem.
    const parsed = pipelineSchema.safeParse(p);
    if (parsed.success) checkPipelineExpressions(name, parsed.data, schema, issue);
  }
}

// ---------------------------------------------------------------------------------------------
// Entry points
// ---------------------------------------------------------------------------------------------

export interface ConfigOptions {
  /** names the input in messages (a file path); default `<config>` */
  source?: string;
  /** for `${VAR}` and SLUICE_* overrides; default process.env (tests pass their own) */
  env?: NodeJS.ProcessEnv;
  overrides?: ConfigOverrides;
}

function deepFreeze<T>(v: T): T {
  if (typeof v === 'object' && v !== null && !Object.isFrozen(v)) {
    Object.freeze(v);
    for (const x of Object.values(v)) deepFreeze(x);
  }
  return v;
}

/** Validate an already-parsed tree (a YAML/JSON document, or an object built in code). */
export function configFromObject(value: unknown, opts: ConfigOptions = {}): SluiceConfig {
  const source = opts.source ?? '<config>';
  const env = opts.env ?? process.env;
  const issues: Issue[] = [];
  const report: ReportIssue = (path, message) => {
    issues.push({ path: [...path], message });
  };
  const origins: Origins = new Map();

  const sub: Substitution = { env, referenced: new Set(), missing: [], report };
  // An empty document is an empty configuration: every default, no streams.
  const tree = substituteTree(value ?? {}, [], sub);
  if (sub.missing.length > 0) {
    throw sluiceError('CONFIG_ENV_MISSING', problemsMessage(`missing environment variables in ${source}`, sub.missing, origins));
  }
  if (!isTree(tree)) {
    report([], `expected a mapping at the top level, got ${describeValue(tree)}`);
    throw sluiceError('CONFIG_INVALID', problemsMessage(`invalid configuration in ${source}`, issues, origins));
  }

  const lay: Layering = { root: tree, origins, report };
  if (opts.overrides !== undefined) applyFlags(lay, opts.overrides);
  applyEnv(lay, env, sub.referenced);

  const parsed = configSchema.safeParse(tree, { error: baseErrorMap });
  if (!parsed.success) zodIssues(parsed.error, report);
  checkSemantics(tree, report);
  if (issues.length > 0 || !parsed.success) {
    throw sluiceError('CONFIG_INVALID', problemsMessage(`invalid configuration in ${source}`, issues, origins));
  }

  const config = parsed.data;
  if (config.kafka !== undefined) {
    const topics: Record<string, string> = {};
    for (const stream of Object.keys(config.streams)) topics[stream] = config.kafka.topics[stream] ?? stream;
    config.kafka.topics = topics;
  }
  return deepFreeze(config);
}

/** Parse and validate configuration text. YAML unless `format: 'json'`. */
export function parseConfig(text: string, opts: ConfigOptions & { format?: 'yaml' | 'json' } = {}): SluiceConfig {
  const source = opts.source ?? '<config>';
  return configFromObject(parseText(text, opts.format ?? 'yaml', source), { ...opts, source });
}

/** Read, parse and validate a config file; `.json` is JSON, anything else YAML. */
export function loadConfig(path: string, opts: ConfigOptions = {}): SluiceConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw sluiceError('CONFIG_NOT_FOUND', `cannot read config file ${path}: ${err instanceof Error ? err.message : String(err)}`, err);
  }
  const format = extname(path).toLowerCase() === '.json' ? 'json' : 'yaml';
  return parseConfig(text, { ...opts, format, source: opts.source ?? path });
}

const schemaCache = new WeakMap<StreamConfig, StreamSchema>();

/** The StreamSchema of a configured stream, columns in file order. */
export function streamSchemaOf(config: SluiceConfig, streamName: string): StreamSchema {
  const stream = Object.hasOwn(config.streams, streamName) ? config.streams[streamName] : undefined;
  if (stream === undefined) throw sluiceError('INTERNAL', `streamSchemaOf: no stream '${streamName}' in the configuration`);
  let schema = schemaCache.get(stream);
  if (schema === undefined) {
    schema = schemaFromRecord(stream.schema);
    schemaCache.set(stream, schema);
  }
  return schema;
}
