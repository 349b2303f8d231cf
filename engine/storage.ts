/**
 * The DuckDB sink (DESIGN.md A3, A6, B1, B3): one DuckDB file under `storage.dir` holding the
 * result, late and archive tables, Sluice's own bookkeeping tables, and the checkpoints.
 *
 *   commit(request) ──BEGIN──► ChunkWriter → appender per table (data chunks, never INSERT)
 *                              ranges touched  → sluice_touches (what Parquet must re-export)
 *                              checkpoint row  → sluice_checkpoints (older ones deleted)
 *                   ──COMMIT── all of it, or (ROLLBACK) none of it
 *
 * Parquet bookkeeping is append-only on the commit path: each commit appends (table, range,
 * commit id) for the ranges it wrote to, and an export compares the newest touch of a range
 * with the commit it last exported (`sluice_exports`), then deletes the touches it covered.
 * An upsert of a keyed row per range would cost every commit ~5 ms of index maintenance.
 *
 * Tables are created from the config at open. Each pipeline and archived stream has its
 * definition stored in `sluice_meta`; a definition that changed against an existing table is a
 * start-up error (SLUICE_STORAGE_PIPELINE_CHANGED), never rows of a new shape appended to a
 * table of an old one. docs/storage.md describes the layout for users.
 *
 * Connections: one for commits and bookkeeping writes (every write is serialized through it,
 * so the bookkeeping never conflicts with a commit), one for Parquet exports (a long COPY of an
 * archive must not hold commits back; DuckDB's MVCC gives it a consistent snapshot), and a
 * short-lived one per query(). The class is thread-agnostic: the runtime calls it from its
 * state worker, tests from the main thread.
 */

import { mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import {
  DuckDBBlobValue,
  DuckDBDecimalValue,
  DuckDBInstance,
  DuckDBTimestampMillisecondsValue,
  DuckDBTimestampNanosecondsValue,
  DuckDBTimestampSecondsValue,
  DuckDBTimestampTZValue,
  DuckDBTimestampValue,
  DuckDBTypeId,
  JsonDuckDBValueConverter,
  blobValue,
  type DuckDBAppender,
  type DuckDBConnection,
  type DuckDBPreparedStatement,
  type DuckDBResultReader,
  type DuckDBValue,
  type DuckDBValueConverter,
  type Json,
} from '@duckdb/node-api';
import type { SluiceConfig, WindowSpec } from './config.js';
import { resolveStorageThreads, streamSchemaOf } from './config.js';
import { SluiceError, sluiceError } from './errors.js';
import { compilePipeline } from './plan.js';
import type { Batch, Column, ColumnType, StreamSchema, StringColumn } from './schema.js';
import type { WindowResult } from './window-state.js';
import { ChunkWriter, SQL_TYPE_OF, type AppendColumn, type SqlType } from './duckdb-append.js';
import { collectRanges, exportRange, quoteIdent, quoteString, type ExportSource } from './parquet-export.js';
import { formatDuration } from './units.js';
import {
  DENIED_FUNCTIONS, explainedStatement, firstKeyword, inCatalog, isPlainName, isPlainTable, READ_ONLY_FORMS, READ_ONLY_KEYWORDS,
  READ_ONLY_STATEMENT_TYPES, referencesOf, statementTypeName, TABLE_FUNCTIONS, tableLabel, type SerializedSql, type SqlReferences,
} from './sql-guard.js';
import { parseExpression } from '../native-free-kernels/expression/index.js';

// ---------------------------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------------------------

export interface LateRows {
  pipeline: string;
  /** raw columns, stream schema */
  rows: Batch;
  /** one per row, dictionary-encoded (the rows of a late window share one), no nulls */
  reasons: StringColumn;
}

export interface ArchiveRows {
  stream: string;
  rows: Batch;
}

export interface CheckpointData {
  /** opaque serialized open window state (the runtime's format) */
  state: Uint8Array;
  /** JSON-able positions: per stream the last applied batch seq and max event time etc. */
  positions: Record<string, unknown>;
  /**
   * The state parts this checkpoint references (incremental checkpoints, sluice_state_parts):
   * a new part carries its bytes and an id from allocatePartId(); a part stored by an earlier
   * checkpoint only its id. Parts no kept checkpoint references are deleted.
   */
  parts?: readonly CheckpointPart[];
}

export interface CheckpointPart {
  readonly id: number;
  /** null: the part is already stored */
  readonly bytes: Uint8Array | null;
}

export interface CommitRequest {
  results: readonly { pipeline: string; result: WindowResult }[];
  late: readonly LateRows[];
  archive: readonly ArchiveRows[];
  checkpoint: CheckpointData | null;
}

export interface StoredCheckpoint {
  id: number;
  /** ms since the epoch */
  createdAt: number;
  state: Uint8Array;
  positions: Record<string, unknown>;
  /** the state parts it references; readParts() reads them */
  partIds: readonly number[];
}

export interface QueryResult {
  readonly columns: { name: string; type: string }[];
  readonly rows: Json[][];
  /** set when QueryOptions.maxRows cut the result short */
  readonly truncated?: boolean;
}

/** How query() runs a statement. Without options it runs whatever it is given. */
export interface QueryOptions {
  /**
   * Refuse anything but one statement that only reads the database's tables: the text must start
   * with SELECT / WITH / FROM / VALUES / TABLE / EXPLAIN / DESCRIBE / SHOW / SUMMARIZE / PIVOT,
   * parse as one SELECT that calls no table function but generators and catalog listings, names
   * no file as a table and nothing the catalog lacks, and prepare as SELECT or EXPLAIN; it runs
   * inside a READ ONLY transaction that is rolled back (engine/sql-guard.ts).
   * SLUICE_SQL_NOT_READ_ONLY otherwise.
   */
  readonly readOnly?: boolean;
  /** stop reading after this many rows and set `truncated` */
  readonly maxRows?: number;
  /** interrupt the query after this many ms (SLUICE_SQL_TIMEOUT) */
  readonly timeoutMs?: number;
}

/** Where storage reports what it did at open (pino's logger fits). */
export interface StorageLogger {
  info(msg: string): void;
  warn(msg: string): void;
}

export type OnPipelineChange = 'error' | 'recreate';

export interface StorageOptions {
  /** default `<storage.dir>/sluice.duckdb`; `:memory:` for tests */
  file?: string;
  logger?: StorageLogger;
  /**
   * What to do when a pipeline's (or archive's) definition differs from its existing table:
   * `error` (default) refuses to start; `recreate` drops the old tables, moves their Parquet
   * folder aside and starts them empty.
   */
  onPipelineChange?: OnPipelineChange;
  /** how many checkpoints to keep (default 3) */
  keepCheckpoints?: number;
}

/** The file name inside storage.dir. */
export const DUCKDB_FILE = 'sluice.duckdb';
/** The Parquet folder inside storage.dir. */
export const PARQUET_DIR = 'parquet';
/**
 * Version of the layout of Sluice's own tables; a newer file is refused, not misread.
 * 2: incremental checkpoints (sluice_state_parts, sluice_checkpoint_parts, SLC2 manifests).
 * A format-1 file is read and upgraded at open (its SLC1 checkpoint still restores).
 */
export const STORAGE_FORMAT_VERSION = 2;
const UPGRADABLE_FORMATS: readonly number[] = [1];

const DEFAULT_KEEP_CHECKPOINTS = 3;
const NO_LOG: StorageLogger = { info() {}, warn() {} };

// ---------------------------------------------------------------------------------------------
// Table layouts and definitions
// ---------------------------------------------------------------------------------------------

interface ColumnDef {
  readonly name: string;
  readonly type: SqlType;
}

/**
 * One table as Sluice writes it. `columns` are in the table's order (an adopted table may order
 * them differently from the config); `source[j]` is the index, in the "natural" column list the
 * commit builds, of table column j. Appends go by position, so this is what keeps a reordered
 * `select` or `groupBy` from writing values into the wrong columns.
 */
interface TableSpec {
  readonly name: string;
  readonly natural: readonly ColumnDef[];
  columns: readonly ColumnDef[];
  source: Int32Array;
  writer: ChunkWriter | null;
}

/** The stored definition of a pipeline: everything that gives its rows their meaning. */
interface PipelineDefinition {
  readonly kind: 'pipeline';
  readonly from: string;
  readonly eventTime: string;
  readonly window: WindowSpec;
  /** the text as configured, for messages; `whereCanon` is what is compared */
  readonly where: string | null;
  readonly whereCanon: string | null;
  readonly groupBy: readonly ColumnDef[];
  readonly select: readonly { readonly name: string; readonly text: string; readonly canon: string; readonly type: SqlType }[];
  /** the raw stream columns in the late table */
  readonly streamColumns: readonly ColumnDef[];
}

interface ArchiveDefinition {
  readonly kind: 'archive';
  readonly eventTime: string;
  readonly columns: readonly ColumnDef[];
}

type Definition = PipelineDefinition | ArchiveDefinition;

interface PipelineTarget {
  readonly kind: 'pipeline';
  readonly name: string;
  readonly definition: PipelineDefinition;
  readonly schema: StreamSchema;
  readonly keyTypes: readonly ColumnType[];
  readonly aggregates: number;
  readonly result: TableSpec;
  readonly late: TableSpec;
}

interface ArchiveTarget {
  readonly kind: 'archive';
  readonly name: string;
  readonly definition: ArchiveDefinition;
  readonly schema: StreamSchema;
  readonly eventTime: number;
  readonly table: TableSpec;
}

type Target = PipelineTarget | ArchiveTarget;

function tablesOf(t: Target): TableSpec[] {
  return t.kind === 'pipeline' ? [t.result, t.late] : [t.table];
}

function tableSpec(name: string, natural: ColumnDef[]): TableSpec {
  return { name, natural, columns: natural, source: Int32Array.from(natural.keys()), writer: null };
}

function streamColumnDefs(schema: StreamSchema): ColumnDef[] {
  return schema.fields.map((f) => ({ name: f.name, type: SQL_TYPE_OF[f.type] }));
}

/** An expression's parse tree without positions or spelling: `max( price )` equals `max(price)`. */
function canonical(text: string): string {
  try {
    return JSON.stringify(parseExpression(text), (k, v: unknown) => (k === 'line' || k === 'col' || k === 'text' ? undefined : v));
  } catch {
    return text.trim();
  }
}

function targetsOf(config: SluiceConfig): Target[] {
  const out: Target[] = [];
  for (const [name, p] of Object.entries(config.pipelines)) {
    const stream = config.streams[p.from]!;
    const schema = streamSchemaOf(config, p.from);
    const plan = compilePipeline(name, p, schema, stream.eventTime.column);
    const groupBy = plan.keys.map((k) => ({ name: k.name, type: SQL_TYPE_OF[k.type] }));
    const select = plan.aggregates.map((a) => ({ name: a.output, text: a.text, canon: canonical(a.text), type: a.outputType }));
    const streamColumns = streamColumnDefs(schema);
    const definition: PipelineDefinition = {
      kind: 'pipeline',
      from: p.from,
      eventTime: stream.eventTime.column,
      window: p.window,
      where: p.where ?? null,
      whereCanon: p.where === undefined ? null : canonical(p.where),
      groupBy,
      select,
      streamColumns,
    };
    const resultNatural: ColumnDef[] = [
      { name: 'window_start', type: 'TIMESTAMP' },
      { name: 'window_end', type: 'TIMESTAMP' },
      ...groupBy,
      ...select.map((s) => ({ name: s.name, type: s.type })),
    ];
    out.push({
      kind: 'pipeline',
      name,
      definition,
      schema,
      keyTypes: plan.keys.map((k) => k.type),
      aggregates: plan.aggregates.length,
      result: tableSpec(name, resultNatural),
      late: tableSpec(`${name}__late`, [...streamColumns, { name: 'reason', type: 'VARCHAR' }]),
    });
  }
  for (const [name, s] of Object.entries(config.streams)) {
    if (!s.archive) continue;
    const schema = streamSchemaOf(config, name);
    const columns = streamColumnDefs(schema);
    out.push({
      kind: 'archive',
      name,
      definition: { kind: 'archive', eventTime: s.eventTime.column, columns },
      schema,
      eventTime: schema.index.get(s.eventTime.column)!,
      table: tableSpec(name, columns),
    });
  }
  return out;
}

function formatWindow(w: WindowSpec): string {
  switch (w.kind) {
    case 'tumbling': return `tumbling ${formatDuration(w.size)}`;
    case 'hopping': return `hopping size ${formatDuration(w.size)} slide ${formatDuration(w.slide)}`;
    case 'session': return `session gap ${formatDuration(w.gap)}`;
  }
}

function formatColumns(cols: readonly ColumnDef[]): string {
  return cols.length === 0 ? '(none)' : cols.map((c) => `${c.name} ${c.type}`).join(', ');
}

/** Order-insensitive comparison of column lists (by lower-cased name and type). */
function sameColumnSet(a: readonly ColumnDef[], b: readonly ColumnDef[]): boolean {
  if (a.length !== b.length) return false;
  const m = new Map(a.map((c) => [c.name.toLowerCase(), c.type]));
  return b.every((c) => m.get(c.name.toLowerCase()) === c.type);
}

/** Lines saying what differs between the stored definition and the configured one (none: equal). */
function definitionChanges(old: Definition, now: Definition): string[] {
  const out: string[] = [];
  if (old.kind !== now.kind) return [`kind: ${old.kind} → ${now.kind}`];
  if (old.eventTime !== now.eventTime) out.push(`event-time column: ${old.eventTime} → ${now.eventTime}`);
  if (old.kind === 'archive' && now.kind === 'archive') {
    if (!sameColumnSet(old.columns, now.columns)) out.push(`columns: ${formatColumns(old.columns)} → ${formatColumns(now.columns)}`);
    return out;
  }
  if (old.kind !== 'pipeline' || now.kind !== 'pipeline') return out;
  if (old.from !== now.from) out.push(`from: ${old.from} → ${now.from}`);
  if (JSON.stringify(old.window) !== JSON.stringify(now.window)) out.push(`window: ${formatWindow(old.window)} → ${formatWindow(now.window)}`);
  if (old.whereCanon !== now.whereCanon) out.push(`where: ${old.where === null ? '(none)' : JSON.stringify(old.where)} → ${now.where === null ? '(none)' : JSON.stringify(now.where)}`);
  if (!sameColumnSet(old.groupBy, now.groupBy)) out.push(`groupBy: ${formatColumns(old.groupBy)} → ${formatColumns(now.groupBy)}`);
  const oldSel = new Map(old.select.map((s) => [s.name.toLowerCase(), s]));
  const nowSel = new Map(now.select.map((s) => [s.name.toLowerCase(), s]));
  for (const s of now.select) {
    const o = oldSel.get(s.name.toLowerCase());
    if (o === undefined) out.push(`select.${s.name}: added ${s.text}`);
    else if (o.canon !== s.canon || o.type !== s.type) out.push(`select.${s.name}: ${o.text} → ${s.text}`);
  }
  for (const o of old.select) if (!nowSel.has(o.name.toLowerCase())) out.push(`select.${o.name}: removed (was ${o.text})`);
  if (!sameColumnSet(old.streamColumns, now.streamColumns)) {
    out.push(`columns of stream '${now.from}' (the late table): ${formatColumns(old.streamColumns)} → ${formatColumns(now.streamColumns)}`);
  }
  return out;
}

/** Lines saying how an existing table's columns differ from what Sluice would write (none: equal). */
function columnChanges(table: string, actual: readonly ColumnDef[], expected: readonly ColumnDef[]): string[] {
  if (sameColumnSet(actual, expected)) return [];
  return [`table ${table} has columns ${formatColumns(actual)}; this configuration writes ${formatColumns(expected)}`];
}

/** Table column order → natural order, by name. Only called when the column sets are equal. */
function adoptColumns(spec: TableSpec, actual: readonly ColumnDef[]): void {
  const index = new Map(spec.natural.map((c, i) => [c.name.toLowerCase(), i]));
  spec.columns = actual.map((c) => spec.natural[index.get(c.name.toLowerCase())!]!);
  spec.source = Int32Array.from(actual, (c) => index.get(c.name.toLowerCase())!);
}

function createTableSql(spec: TableSpec): string {
  return `CREATE TABLE ${quoteIdent(spec.name)} (${spec.natural.map((c) => `${quoteIdent(c.name)} ${c.type}`).join(', ')})`;
}

// ---------------------------------------------------------------------------------------------
// The lock against a second opener in this process (DuckDB's own file lock is per process)
// ---------------------------------------------------------------------------------------------

/**
 * Identifies this process across its threads, and differs for a later process that reuses the
 * pid (a container's pid 1 after a restart): the pid plus the process start time — from
 * /proc on Linux (exact), else from the uptime clock (to the second).
 */
function processToken(): string {
  try {
    const stat = readFileSync('/proc/self/stat', 'utf8');
    // field 22 (starttime) counts from the end of the command name, which may contain spaces
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return `${process.pid} proc:${fields[19]}`;
  } catch {
    return `${process.pid} up:${Math.round(Date.now() / 1000 - process.uptime())}`;
  }
}

function sameProcess(held: string, mine: string): boolean {
  if (held === mine) return true;
  const [hp, hs] = held.split(' ');
  const [mp, ms] = mine.split(' ');
  if (hp !== mp || hs === undefined || ms === undefined || !hs.startsWith('up:') || !ms.startsWith('up:')) return false;
  return Math.abs(Number(hs.slice(3)) - Number(ms.slice(3))) <= 2;
}

/**
 * `<file>.lock` holds the token of the process that has the file open. Another process is kept
 * out by DuckDB's own lock; this file only catches a second open inside this process (another
 * worker thread or Storage instance), which DuckDB would allow and which would corrupt the file.
 * A lock left by a killed process carries another token and is taken over.
 */
function takeProcessLock(file: string): () => void {
  const path = `${file}.lock`;
  const token = processToken();
  let held: string | null = null;
  try {
    held = readFileSync(path, 'utf8').trim();
  } catch {
    // no lock file: nobody in this process has the database open
  }
  if (held !== null && sameProcess(held, token)) {
    throw sluiceError('STORAGE_LOCKED', `${file} is already open in this process (another Storage instance or worker thread); close it first`);
  }
  return () => {
    try {
      if (readFileSync(path, 'utf8').trim() === token) rmSync(path, { force: true });
    } catch {
      // already gone
    }
  };
}

function writeProcessLock(file: string): void {
  writeFileSync(`${file}.lock`, `${processToken()}\n`);
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** A DuckDB failure while opening: the lock of another process, or an I/O problem. */
function openError(file: string, err: unknown): SluiceError {
  const msg = messageOf(err);
  if (/could not set lock on file/i.test(msg)) {
    const pid = /PID (\d+)/.exec(msg);
    return sluiceError('STORAGE_LOCKED',
      `${file} is in use by another process${pid === null ? '' : ` (PID ${pid[1]})`}: stop it, or give this instance its own storage.dir. DuckDB: ${msg}`, err);
  }
  return sluiceError('STORAGE_IO', `cannot open ${file}: ${msg}`, err);
}

/**
 * Per database, texts that passed the parser and reference checks below. A dashboard polls the same few
 * queries: those skip the checks' two DuckDB round trips (measured: a `max(window_end)` poll
 * 2.0 → 1.2 ms of CPU). What the checks depend on does not change while Sluice runs: the
 * statement is the same text, the catalog's tables are created at open only (the endpoint
 * cannot create any), and functions are looked up in DuckDB's catalog, which only grows. The
 * statement type is still checked on every prepare. Oldest first out beyond the limit; texts
 * longer than VETTED_MAX_CHARS are checked every time (the cache holds at most 256 × 4 K chars).
 */
const VETTED = new WeakMap<DuckDBInstance, Set<string>>();
const VETTED_LIMIT = 256;
const VETTED_MAX_CHARS = 4096;

/**
 * Prepare the one statement of `sql` if it only reads the database (engine/sql-guard.ts explains
 * the checks and their order); SLUICE_SQL_NOT_READ_ONLY otherwise.
 */
async function prepareReadOnly(instance: DuckDBInstance, conn: DuckDBConnection, sql: string): Promise<DuckDBPreparedStatement> {
  const keyword = firstKeyword(sql);
  const notAllowed = (): SluiceError => sluiceError('SQL_NOT_READ_ONLY', keyword === ''
    ? `no SQL statement in the request: only ${READ_ONLY_FORMS} are allowed`
    : `${keyword} statements are not allowed: only ${READ_ONLY_FORMS}`);
  let vetted = VETTED.get(instance);
  if (vetted === undefined) VETTED.set(instance, (vetted = new Set()));
  if (!vetted.has(sql)) {
    const body = keyword === 'EXPLAIN' ? explainedStatement(sql) : sql;
    if (body === null) throw sluiceError('SQL_NOT_READ_ONLY', `cannot tell which statement this EXPLAIN explains: only ${READ_ONLY_FORMS} are allowed`);
    // the parser first, for its message on a typo; it reads nothing whatever the text
    const refs = await parseOnly(conn, body, READ_ONLY_KEYWORDS.has(keyword) ? null : notAllowed(),
      keyword === 'PIVOT' || keyword === 'UNPIVOT' ? ' (a PIVOT needs an explicit IN (...) list)' : '');
    if (!READ_ONLY_KEYWORDS.has(keyword)) throw notAllowed();
    await checkReferences(instance, conn, refs);
    if (sql.length <= VETTED_MAX_CHARS) {
      if (vetted.size >= VETTED_LIMIT) vetted.delete(vetted.keys().next().value!);
      vetted.add(sql);
    }
  }
  const extracted = await conn.extractStatements(sql).catch((err: unknown) => {
    throw queryError(err);
  });
  if (extracted.count !== 1) {
    // the parser saw one statement: DuckDB expanded it (a PIVOT without IN (...) runs a query first)
    throw sluiceError('SQL_NOT_READ_ONLY', `DuckDB runs this text as ${extracted.count} statements (a PIVOT needs an explicit IN (...) list): one read-only statement per request`);
  }
  const prepared = await extracted.prepare(0).catch((err: unknown) => {
    throw queryError(err);
  });
  const type = prepared.statementType;
  if (!READ_ONLY_STATEMENT_TYPES.has(type)) {
    throw sluiceError('SQL_NOT_READ_ONLY', `${statementTypeName(type)} statements are not allowed: only ${READ_ONLY_FORMS}`);
  }
  return prepared;
}

/**
 * DuckDB's parser alone (no binding: nothing is read, loaded or expanded) over one statement.
 * `refusal` is the answer for a statement that parses but is not a SELECT, when the first
 * keyword already tells which (`INSERT statements are not allowed`).
 */
async function parseOnly(conn: DuckDBConnection, sql: string, refusal: SluiceError | null, hint: string): Promise<SqlReferences> {
  let tree: SerializedSql;
  try {
    const reader = await conn.runAndReadAll('SELECT json_serialize_sql($1::VARCHAR)', [sql]);
    tree = JSON.parse(String(reader.getRows()[0]?.[0])) as SerializedSql;
  } catch (err) {
    throw queryError(err);
  }
  if (tree.error) {
    if (tree.error_type === 'parser') throw sluiceError('STORAGE_QUERY', `Parser Error: ${tree.error_message ?? 'syntax error'}`);
    // "not implemented": json_serialize_sql serializes SELECT statements only
    throw refusal ?? sluiceError('SQL_NOT_READ_ONLY', `one read-only statement per request${hint}: only ${READ_ONLY_FORMS} are allowed`);
  }
  const refs = referencesOf(tree);
  if (refs.statements !== 1) {
    throw sluiceError('SQL_NOT_READ_ONLY', refs.statements === 0 ? `no SQL statement in the request: only ${READ_ONLY_FORMS} are allowed` : `one statement per request, got ${refs.statements}`);
  }
  return refs;
}

const SOURCES_NOT_ALLOWED = 'the SQL endpoint reads the tables and views of the database, not files, URLs or other sources';

/** Refuse what the statement names beyond the database's tables and loaded functions (sql-guard.ts). */
async function checkReferences(instance: DuckDBInstance, conn: DuckDBConnection, refs: SqlReferences): Promise<void> {
  for (const f of refs.tableFunctions) {
    if (!TABLE_FUNCTIONS.has(f)) throw sluiceError('SQL_NOT_READ_ONLY', `the table function ${f}() is not allowed: ${SOURCES_NOT_ALLOWED}`);
  }
  for (const name of refs.showNames) {
    if (!isPlainName(name.replace(/^"(.*)"$/, '$1'))) throw sluiceError('SQL_NOT_READ_ONLY', `SHOW ${name} is not allowed: ${SOURCES_NOT_ALLOWED}`);
  }
  for (const f of refs.functions) {
    if (DENIED_FUNCTIONS.has(f)) throw sluiceError('SQL_NOT_READ_ONLY', `the function ${f}() is not allowed: it has effects outside the query`);
  }
  const lookUp = refs.tables.filter((t) => !isPlainTable(t));
  if (lookUp.length > 0) {
    const catalog = (await catalogRows(conn,
      'SELECT database_name, schema_name, table_name FROM duckdb_tables() UNION ALL SELECT database_name, schema_name, view_name FROM duckdb_views()'))
      .map(([database, schema, name]) => ({ database: database!, schema: schema!, name: name! }));
    const outside = lookUp.find((t) => !inCatalog(t, catalog));
    if (outside !== undefined) throw sluiceError('SQL_NOT_READ_ONLY', `'${tableLabel(outside)}' is not a table or view of the database: ${SOURCES_NOT_ALLOWED}`);
  }
  // Names the catalog does not have would make DuckDB install and load the extension that has
  // them (a download, native code): answer as DuckDB would, without trying.
  await refuseUnknown(instance, conn, refs.functions, CATALOG_FUNCTIONS);
  await refuseUnknown(instance, conn, refs.types, CATALOG_TYPES);
}

/** Names of one kind the catalog has: functions (of any kind, macros too) or types. */
interface CatalogNames {
  readonly what: string;
  readonly sql: string;
  readonly cache: WeakMap<DuckDBInstance, Promise<ReadonlySet<string>>>;
}

// duckdb_functions() takes ~15 ms: the names are read once per database and read again only
// when a name is missing (an extension loaded since), so a query pays for it at most once.
const CATALOG_FUNCTIONS: CatalogNames = { what: 'Scalar Function', sql: 'SELECT DISTINCT lower(function_name) FROM duckdb_functions()', cache: new WeakMap() };
const CATALOG_TYPES: CatalogNames = { what: 'Type', sql: 'SELECT DISTINCT lower(type_name) FROM duckdb_types()', cache: new WeakMap() };

async function refuseUnknown(instance: DuckDBInstance, conn: DuckDBConnection, names: readonly string[], catalog: CatalogNames): Promise<void> {
  if (names.length === 0) return;
  const read = (): Promise<ReadonlySet<string>> => {
    const p = catalogRows(conn, catalog.sql).then((rows) => new Set(rows.map((r) => r[0]!)));
    catalog.cache.set(instance, p);
    // a failed read (this query's timeout, say) is not kept for the next query
    p.catch(() => catalog.cache.get(instance) === p && catalog.cache.delete(instance));
    return p;
  };
  // another query's read may fail (its timeout): then read on this connection
  let known = await (catalog.cache.get(instance) ?? read()).catch(() => read());
  if (names.some((n) => !known.has(n))) known = await read();
  const missing = names.find((n) => !known.has(n));
  if (missing !== undefined) {
    throw sluiceError('STORAGE_QUERY', `Catalog Error: ${catalog.what} with name ${missing} does not exist (extensions are not installed or loaded by queries)`);
  }
}

async function catalogRows(conn: DuckDBConnection, sql: string): Promise<(string | null)[][]> {
  try {
    const reader = await conn.runAndReadAll(sql);
    return reader.getRows().map((r) => r.map((v) => (v === null ? null : String(v))));
  } catch (err) {
    throw queryError(err);
  }
}

/** A DuckDB error from a user query: the query's fault unless DuckDB says I/O or memory. */
function queryError(err: unknown): SluiceError {
  if (err instanceof SluiceError) return err;
  const msg = messageOf(err);
  if (/^(IO|Out of Memory|FATAL|Permission) Error/i.test(msg)) return sluiceError('STORAGE_IO', msg, err);
  if (/^INTERNAL Error/.test(msg)) return sluiceError('INTERNAL', msg, err);
  return sluiceError('STORAGE_QUERY', msg, err);
}

// ---------------------------------------------------------------------------------------------
// Query results as JSON values
// ---------------------------------------------------------------------------------------------

/**
 * @duckdb/node-api 1.5 decodes every VARCHAR with one shared `new TextDecoder()`, which drops a
 * leading U+FEFF: a string stored as "\uFEFFx" would read back as "x". The decoder is an
 * exported binding the accessors read at each call, so swapping in one that keeps the BOM fixes
 * reads for this thread. If a later version moves it, nothing is patched and the test
 * "results and late rows read back exactly" shows it.
 */
function keepByteOrderMarks(): void {
  try {
    const accessors = createRequire(import.meta.url)('@duckdb/node-api/lib/vectors/dataAccessors.js') as { textDecoder?: unknown };
    if (accessors.textDecoder instanceof TextDecoder && !accessors.textDecoder.ignoreBOM) {
      accessors.textDecoder = new TextDecoder('utf-8', { ignoreBOM: true });
    }
  } catch {
    // layout of the package changed: see above
  }
}
keepByteOrderMarks();

const TWO_53 = BigInt(Number.MAX_SAFE_INTEGER);

function integerJson(v: bigint): Json {
  return v <= TWO_53 && v >= -TWO_53 ? Number(v) : v.toString();
}

/** Floor division of bigints (BigInt `/` truncates toward zero). */
function floorDiv(a: bigint, b: bigint): bigint {
  const q = a / b;
  return a % b !== 0n && (a < 0n) !== (b < 0n) ? q - 1n : q;
}

/**
 * ISO-8601 UTC text of a timestamp in nanoseconds: `2024-05-01T12:00:00.000Z`, with micro- or
 * nanosecond digits only when they are not zero. Years outside 0000–9999 get Date's ±YYYYYY
 * form; values beyond what Date can show fall back to DuckDB's own text.
 */
function isoFromNanos(nanos: bigint, fallback: string): string {
  const ms = floorDiv(nanos, 1_000_000n);
  const sub = nanos - ms * 1_000_000n;
  const n = Number(ms);
  if (Math.abs(n) > 8.64e15) return fallback;
  const iso = new Date(n).toISOString();
  if (sub === 0n) return iso;
  const digits = sub.toString().padStart(6, '0');
  return `${iso.slice(0, -1)}${digits.endsWith('000') ? digits.slice(0, 3) : digits}Z`;
}

const jsonValue: DuckDBValueConverter<Json> = (value, type, self) => {
  if (value === null) return null;
  switch (type.typeId) {
    case DuckDBTypeId.BIGINT:
    case DuckDBTypeId.UBIGINT:
    case DuckDBTypeId.HUGEINT:
    case DuckDBTypeId.UHUGEINT:
    case DuckDBTypeId.BIGNUM:
      if (typeof value === 'bigint') return integerJson(value);
      break;
    case DuckDBTypeId.DOUBLE:
    case DuckDBTypeId.FLOAT:
      // JSON has no NaN or infinities: those become the strings "NaN", "Infinity", "-Infinity"
      if (typeof value === 'number') return Number.isFinite(value) ? value : String(value);
      break;
    case DuckDBTypeId.DECIMAL:
      // up to 15 digits every decimal round-trips through a double
      if (value instanceof DuckDBDecimalValue) return value.width <= 15 ? value.toDouble() : value.toString();
      break;
    case DuckDBTypeId.TIMESTAMP:
      if (value instanceof DuckDBTimestampValue) return value.isFinite ? isoFromNanos(value.micros * 1000n, value.toString()) : value.toString();
      break;
    case DuckDBTypeId.TIMESTAMP_TZ:
      if (value instanceof DuckDBTimestampTZValue) return value.isFinite ? isoFromNanos(value.micros * 1000n, value.toString()) : value.toString();
      break;
    case DuckDBTypeId.TIMESTAMP_MS:
      if (value instanceof DuckDBTimestampMillisecondsValue) return value.isFinite ? isoFromNanos(value.millis * 1_000_000n, value.toString()) : value.toString();
      break;
    case DuckDBTypeId.TIMESTAMP_S:
      if (value instanceof DuckDBTimestampSecondsValue) return value.isFinite ? isoFromNanos(value.seconds * 1_000_000_000n, value.toString()) : value.toString();
      break;
    case DuckDBTypeId.TIMESTAMP_NS:
      if (value instanceof DuckDBTimestampNanosecondsValue) return value.isFinite ? isoFromNanos(value.nanos, value.toString()) : value.toString();
      break;
    default:
      break;
  }
  return JsonDuckDBValueConverter(value, type, self);
};

function paramValue(v: unknown, i: number): DuckDBValue {
  if (v === null || v === undefined) return null;
  switch (typeof v) {
    case 'boolean':
    case 'string':
    case 'bigint':
    case 'number':
      return v;
    default:
      throw sluiceError('STORAGE_QUERY', `parameter $${i + 1}: expected null, a boolean, a number or a string, got ${Array.isArray(v) ? 'a list' : typeof v}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Commit input checks: a malformed request is a bug of the caller (SLUICE_INTERNAL), found
// before its rows reach an appender.
// ---------------------------------------------------------------------------------------------

function columnRows(c: Column): number {
  switch (c.type) {
    case 'int64': return c.words.length >> 1;
    case 'string': return c.codes.length;
    default: return c.values.length;
  }
}

function badInput(message: string): SluiceError {
  return sluiceError('INTERNAL', `commit: ${message}`);
}

function checkColumn(what: string, c: Column | undefined, type: ColumnType, rows: number): void {
  if (c === undefined) throw badInput(`${what} is missing`);
  if (c.type !== type) throw badInput(`${what} is ${c.type}, the table needs ${type}`);
  if (columnRows(c) < rows || (c.valid !== null && c.valid.length < rows)) throw badInput(`${what} has fewer than ${rows} rows`);
  if (c.type === 'string') {
    const n = c.dict.length;
    const codes = c.codes;
    const valid = c.valid;
    for (let i = 0; i < rows; i++) {
      const code = codes[i]!;
      if ((code < 0 || code >= n) && (valid === null || valid[i] !== 0)) throw badInput(`${what} row ${i} has dictionary code ${code} of ${n}`);
    }
  }
}

function checkBatch(what: string, rows: Batch, schema: StreamSchema): void {
  if (rows.columns.length !== schema.fields.length) throw badInput(`${what} has ${rows.columns.length} columns, the stream has ${schema.fields.length}`);
  schema.fields.forEach((f, j) => {
    const given = rows.schema.fields[j]?.name;
    if (given !== undefined && given !== f.name) throw badInput(`${what} column ${j} is '${given}', the stream's is '${f.name}'`);
    checkColumn(`${what} column '${f.name}'`, rows.columns[j], f.type, rows.length);
  });
}

function checkResult(t: PipelineTarget, r: WindowResult): void {
  const what = `result of pipeline '${t.name}'`;
  const n = r.rows;
  if (!Number.isInteger(n) || n < 0) throw badInput(`${what} has ${n} rows`);
  if (r.windowStart.length < n || r.windowEnd.length < n) throw badInput(`${what}: window bounds have fewer than ${n} rows`);
  if (r.keys.length !== t.keyTypes.length) throw badInput(`${what} has ${r.keys.length} key columns, the pipeline ${t.keyTypes.length}`);
  t.keyTypes.forEach((type, j) => checkColumn(`${what} key ${j}`, r.keys[j], type, n));
  if (r.values.length !== t.aggregates) throw badInput(`${what} has ${r.values.length} value columns, the pipeline ${t.aggregates}`);
  r.values.forEach((v, k) => {
    if (v.values.length < n || v.valid.length < n) throw badInput(`${what} value column ${k} has fewer than ${n} rows`);
  });
}

// ---------------------------------------------------------------------------------------------
// Storage
// ---------------------------------------------------------------------------------------------

interface MetaRow {
  readonly name: string;
  readonly definition: Definition;
  readonly createdAt: string;
}

/**
 * `storage.onPipelineChange` once the config schema has it (docs/storage.md); read through an
 * `in` check so this file does not depend on when that key lands in config.ts.
 */
function configuredOnChange(storage: SluiceConfig['storage']): OnPipelineChange | undefined {
  if (!('onPipelineChange' in storage)) return undefined;
  const v = storage.onPipelineChange;
  return v === 'error' || v === 'recreate' ? v : undefined;
}

interface OpenContext {
  readonly file: string;
  readonly parquetDir: string;
  readonly every: number;
  readonly log: StorageLogger;
  readonly mode: OnPipelineChange;
}

export class Storage {
  /**
   * Pipelines and archived streams whose tables this open created — new ones, and ones
   * recreated after a definition change. Open window state the checkpoint holds for one of
   * these belongs to an earlier definition and must not be restored.
   */
  readonly fresh: ReadonlySet<string>;
  /** the DuckDB file (or `:memory:`) */
  readonly file: string;
  /** the folder Parquet files go to: `<storage.dir>/parquet` */
  readonly parquetDir: string;

  private readonly instance: DuckDBInstance;
  private readonly writeConn: DuckDBConnection;
  private readonly exportConn: DuckDBConnection;
  private readonly pipelines: ReadonlyMap<string, PipelineTarget>;
  private readonly archives: ReadonlyMap<string, ArchiveTarget>;
  private readonly every: number;
  private readonly keep: number;
  private readonly touchesWriter = new ChunkWriter(['VARCHAR', 'BIGINT', 'BIGINT', 'BIGINT']);
  /** id of the next commit that touches a Parquet range (see sluice_touches) */
  private nextCommitId: number;
  private readonly releaseLock: () => void;
  private lastCheckpoint: StoredCheckpoint | null;
  private nextCheckpointId: number;
  /** the part ids each kept checkpoint references */
  private readonly partRefs: Map<number, readonly number[]>;
  /** per stored part (sluice_state_parts), how many kept checkpoints reference it */
  private readonly partUses: Map<number, number>;
  private nextPartId: number;
  /** queries running on their own connections; close() waits for them */
  private readonly queries = new Set<Promise<unknown>>();
  /** the commit's checkpoint inserts, prepared on writeConn at the first checkpoint (DuckDB re-binds them after a rebuild) */
  private insertCheckpoint: DuckDBPreparedStatement | null = null;
  private insertPart: DuckDBPreparedStatement | null = null;
  /** every write on writeConn runs in this chain, one at a time */
  private writes: Promise<unknown> = Promise.resolve();
  private exports: Promise<unknown> = Promise.resolve();
  private closed = false;

  private constructor(init: {
    instance: DuckDBInstance;
    writeConn: DuckDBConnection;
    exportConn: DuckDBConnection;
    targets: readonly Target[];
    ctx: OpenContext;
    keep: number;
    checkpoints: LoadedCheckpoints;
    fresh: ReadonlySet<string>;
    nextCommitId: number;
    releaseLock: () => void;
  }) {
    this.instance = init.instance;
    this.writeConn = init.writeConn;
    this.exportConn = init.exportConn;
    this.pipelines = new Map(init.targets.filter((t): t is PipelineTarget => t.kind === 'pipeline').map((t) => [t.name, t]));
    this.archives = new Map(init.targets.filter((t): t is ArchiveTarget => t.kind === 'archive').map((t) => [t.name, t]));
    this.every = init.ctx.every;
    this.keep = init.keep;
    this.file = init.ctx.file;
    this.parquetDir = init.ctx.parquetDir;
    this.lastCheckpoint = init.checkpoints.latest;
    this.nextCheckpointId = (init.checkpoints.latest?.id ?? 0) + 1;
    this.partRefs = init.checkpoints.refs;
    this.partUses = new Map();
    for (const refs of this.partRefs.values()) for (const r of refs) this.partUses.set(r, (this.partUses.get(r) ?? 0) + 1);
    this.nextPartId = Math.max(0, ...this.partUses.keys()) + 1;
    this.nextCommitId = init.nextCommitId;
    this.fresh = init.fresh;
    this.releaseLock = init.releaseLock;
    for (const t of init.targets) for (const spec of tablesOf(t)) spec.writer = new ChunkWriter(spec.columns.map((c) => c.type));
  }

  static async open(config: SluiceConfig, opts: StorageOptions = {}): Promise<Storage> {
    const dir = resolve(config.storage.dir);
    const file = opts.file === undefined ? join(dir, DUCKDB_FILE) : opts.file === ':memory:' ? ':memory:' : resolve(opts.file);
    const ctx: OpenContext = {
      file,
      parquetDir: join(dir, PARQUET_DIR),
      every: config.storage.parquet.every,
      log: opts.logger ?? NO_LOG,
      mode: opts.onPipelineChange ?? configuredOnChange(config.storage) ?? 'error',
    };
    const keep = opts.keepCheckpoints ?? DEFAULT_KEEP_CHECKPOINTS;
    if (!Number.isInteger(keep) || keep < 1) throw sluiceError('INTERNAL', `keepCheckpoints must be a positive integer, got ${keep}`);
    // Compile before touching the disk: a config that does not compile is not a storage problem.
    const targets = targetsOf(config);

    let releaseLock = (): void => {};
    if (file !== ':memory:') {
      try {
        mkdirSync(dirname(file), { recursive: true });
      } catch (err) {
        throw sluiceError('STORAGE_IO', `cannot create ${dirname(file)}: ${messageOf(err)}`, err);
      }
      releaseLock = takeProcessLock(file);
    }
    let instance: DuckDBInstance;
    try {
      // never fetch or load an extension behind the user's back (a query naming an unknown
      // function must fail, not download code); parquet, json and icu are built in
      instance = await DuckDBInstance.create(file, {
        autoinstall_known_extensions: 'false', autoload_known_extensions: 'false',
        threads: String(resolveStorageThreads(config)),
        checkpoint_threshold: `${config.storage.walCheckpoint}b`,
        ...(config.storage.memoryLimit === 'auto' ? {} : { memory_limit: `${config.storage.memoryLimit}b` }),
      });
    } catch (err) {
      releaseLock();
      throw openError(file, err);
    }
    if (file !== ':memory:') writeProcessLock(file);
    const conns: DuckDBConnection[] = [];
    try {
      const writeConn = await instance.connect();
      conns.push(writeConn);
      const exportConn = await instance.connect();
      conns.push(exportConn);
      const { fresh, moveAside, deleteFiles, nextCommitId } = await reconcile(writeConn, targets, ctx);
      // Files after the transaction: a failed open must not have moved anything.
      for (const table of moveAside) moveParquetAside(ctx, table);
      for (const path of deleteFiles) rmSync(path, { force: true });
      const checkpoints = await loadCheckpoints(writeConn);
      return new Storage({ instance, writeConn, exportConn, targets, ctx, keep, checkpoints, fresh, nextCommitId, releaseLock });
    } catch (err) {
      for (const c of conns) c.closeSync();
      instance.closeSync();
      releaseLock();
      if (err instanceof SluiceError) throw err;
      throw sluiceError('STORAGE_IO', `cannot prepare the tables in ${file}: ${messageOf(err)}`, err);
    }
  }

  /**
   * The last committed checkpoint, or null on a fresh database: the one found at open, then the
   * one each commit stored (its `state` is the caller's array, not a copy).
   */
  get checkpoint(): StoredCheckpoint | null {
    return this.lastCheckpoint;
  }

  /** A new state part id, for CheckpointData.parts (never handed out twice by this Storage). */
  allocatePartId(): number {
    return this.nextPartId++;
  }

  /** The stored state parts with these ids (for restoring a checkpoint). */
  async readParts(ids: readonly number[]): Promise<Map<number, Uint8Array>> {
    this.assertOpen();
    return this.write(async () => {
      const out = new Map<number, Uint8Array>();
      if (ids.length === 0) return out;
      const rows = (await this.writeConn.runAndReadAll(`SELECT id, bytes FROM sluice_state_parts WHERE id IN (${idList(ids)})`)).getRows();
      for (const [id, bytes] of rows) {
        if (!(bytes instanceof DuckDBBlobValue)) throw sluiceError('STORAGE_IO', 'sluice_state_parts.bytes is not a BLOB');
        // already a copy independent of DuckDB's result buffers (the blob vector's Buffer.from)
        out.set(Number(id), bytes.bytes);
      }
      for (const id of ids) if (!out.has(id)) throw sluiceError('STORAGE_IO', `checkpoint state part ${id} is missing from sluice_state_parts`);
      return out;
    });
  }

  /**
   * DuckDB's own memory in bytes (`duckdb_memory()`: its buffer pool — cached blocks of the
   * tables, rows not yet checkpointed into the file, query state). Memory DuckDB allocates
   * outside its buffer manager is not in it. ~0.7 ms; runs between commits.
   */
  async memoryBytes(): Promise<number> {
    this.assertOpen();
    return this.write(async () => {
      const reader = await this.writeConn.runAndReadAll('SELECT coalesce(sum(memory_usage_bytes), 0)::DOUBLE FROM duckdb_memory()');
      return Number(reader.getRows()[0]?.[0] ?? 0);
    });
  }

  /** ONE explicit transaction: every row of the request, and the checkpoint row. All or nothing. */
  async commit(req: CommitRequest): Promise<{ rows: number; ms: number }> {
    this.assertOpen();
    return this.write(() => this.commitNow(req));
  }

  private async commitNow(req: CommitRequest): Promise<{ rows: number; ms: number }> {
    const t0 = performance.now();
    // Serialize before BEGIN: positions that are not JSON are the caller's bug, not a rollback.
    let positions: string | null = null;
    if (req.checkpoint !== null) {
      try {
        positions = JSON.stringify(req.checkpoint.positions);
      } catch (err) {
        throw badInput(`checkpoint positions are not JSON: ${messageOf(err)}`);
      }
      if (typeof positions !== 'string') throw badInput('checkpoint positions are not a JSON object');
      this.checkParts(req.checkpoint.parts ?? []);
    }
    const conn = this.writeConn;
    const appenders = new Map<TableSpec, DuckDBAppender>();
    const touched = new Map<string, Set<number>>();
    const every = this.every;
    let rows = 0;
    await conn.run('BEGIN TRANSACTION');
    try {
      const append = async (spec: TableSpec, natural: readonly AppendColumn[], n: number): Promise<void> => {
        if (n === 0) return;
        let app = appenders.get(spec);
        if (app === undefined) {
          app = await conn.createAppender(spec.name);
          appenders.set(spec, app);
        }
        const cols: AppendColumn[] = [];
        for (let j = 0; j < spec.source.length; j++) cols.push(natural[spec.source[j]!]!);
        spec.writer!.append(app, cols, 0, n);
        rows += n;
      };
      const rangesOf = (table: string): Set<number> => {
        let set = touched.get(table);
        if (set === undefined) touched.set(table, (set = new Set()));
        return set;
      };

      for (const { pipeline, result } of req.results) {
        const t = this.pipelines.get(pipeline);
        if (t === undefined) throw badInput(`results for unknown pipeline '${pipeline}'`);
        checkResult(t, result);
        const n = result.rows;
        await append(t.result, [
          { type: 'values', values: result.windowStart, valid: null },
          { type: 'values', values: result.windowEnd, valid: null },
          ...result.keys,
          ...result.values.map((v) => ({ type: 'values' as const, values: v.values, valid: v.valid })),
        ], n);
        if (n > 0) collectRanges(result.windowStart, 0, n, every, rangesOf(t.result.name));
      }
      for (const late of req.late) {
        const t = this.pipelines.get(late.pipeline);
        if (t === undefined) throw badInput(`late rows for unknown pipeline '${late.pipeline}'`);
        checkBatch(`late rows of pipeline '${late.pipeline}'`, late.rows, t.schema);
        if (late.reasons.codes.length !== late.rows.length) throw badInput(`late rows of pipeline '${late.pipeline}': ${late.reasons.codes.length} reasons for ${late.rows.length} rows`);
        await append(t.late, [...late.rows.columns, late.reasons], late.rows.length);
      }
      for (const a of req.archive) {
        const t = this.archives.get(a.stream);
        if (t === undefined) throw badInput(`archive rows for stream '${a.stream}', which is not archived`);
        checkBatch(`archive rows of stream '${a.stream}'`, a.rows, t.schema);
        await append(t.table, a.rows.columns, a.rows.length);
        const time = a.rows.columns[t.eventTime]!;
        if (time.type === 'timestamp' && a.rows.length > 0) collectRanges(time.values, 0, a.rows.length, every, rangesOf(t.table.name));
      }
      // Closing flushes the appenders' buffered chunks into the open transaction.
      for (const [spec, app] of appenders) {
        appenders.delete(spec);
        app.closeSync();
      }
      const commitId = this.nextCommitId;
      if (touched.size > 0) await this.appendTouches(touched, commitId);
      if (req.checkpoint !== null && positions !== null) {
        const id = this.nextCheckpointId;
        const createdAt = Date.now();
        const parts = req.checkpoint.parts ?? [];
        // Round trips to DuckDB's thread are what a commit waits on under load (2-25 ms each,
        // measured with the cores busy): the inserts reuse statements prepared once, and the
        // rest of the transaction, COMMIT included, goes in one call.
        const insertCheckpoint = this.insertCheckpoint ??= await conn.prepare('INSERT INTO sluice_checkpoints VALUES ($1, epoch_ms($2::BIGINT), $3, $4)');
        insertCheckpoint.bind([id, createdAt, positions, blobValue(req.checkpoint.state)]);
        await insertCheckpoint.run();
        const fresh = parts.filter((p) => p.bytes !== null);
        if (fresh.length > 0) {
          const insertPart = this.insertPart ??= await conn.prepare('INSERT INTO sluice_state_parts VALUES ($1, $2)');
          for (const part of fresh) {
            insertPart.bind([part.id, blobValue(part.bytes!)]);
            await insertPart.run();
          }
        }
        const partIds = parts.map((p) => p.id);
        // the checkpoints that fall out of the kept window, and the parts no kept one references then
        const dropped = [...this.partRefs.keys()].filter((c) => c <= id - this.keep);
        const uses = new Map<number, number>();
        for (const r of partIds) uses.set(r, (uses.get(r) ?? this.partUses.get(r) ?? 0) + 1);
        for (const c of dropped) for (const r of this.partRefs.get(c)!) uses.set(r, (uses.get(r) ?? this.partUses.get(r)!) - 1);
        const unused = [...uses].filter(([, n]) => n === 0).map(([r]) => r);
        const tail: string[] = [];
        if (partIds.length > 0) tail.push(`INSERT INTO sluice_checkpoint_parts SELECT ${id}, unnest([${idList(partIds)}])`);
        tail.push(`DELETE FROM sluice_checkpoints WHERE id <= ${id - this.keep}`);
        if (dropped.length > 0) tail.push(`DELETE FROM sluice_checkpoint_parts WHERE checkpoint_id <= ${id - this.keep}`);
        if (unused.length > 0) tail.push(`DELETE FROM sluice_state_parts WHERE id IN (${idList(unused)})`);
        if (id % CHECKPOINT_TABLE_REBUILD === 0) tail.push(...REBUILD_CHECKPOINT_TABLES);
        tail.push('COMMIT');
        await conn.run(tail.join(';\n'));
        this.nextCheckpointId = id + 1;
        this.lastCheckpoint = { id, createdAt, state: req.checkpoint.state, positions: req.checkpoint.positions, partIds };
        for (const c of dropped) this.partRefs.delete(c);
        this.partRefs.set(id, partIds);
        for (const [r, n] of uses) {
          if (n === 0) this.partUses.delete(r);
          else this.partUses.set(r, n);
        }
      } else {
        await conn.run('COMMIT');
      }
      if (touched.size > 0) this.nextCommitId = commitId + 1;
    } catch (err) {
      for (const app of appenders.values()) {
        try {
          app.clear();
          app.closeSync();
        } catch {
          // the appender dies with the transaction
        }
      }
      try {
        await conn.run('ROLLBACK');
      } catch {
        // a failed COMMIT has already ended the transaction
      }
      if (err instanceof SluiceError) throw err;
      throw sluiceError('STORAGE_IO', `commit failed, nothing of it was stored: ${messageOf(err)}`, err);
    }
    return { rows, ms: performance.now() - t0 };
  }

  /** A checkpoint's parts: new ones with ids never stored, stored ones that still exist; no id twice. */
  private checkParts(parts: readonly CheckpointPart[]): void {
    const seen = new Set<number>();
    for (const part of parts) {
      if (!Number.isSafeInteger(part.id) || part.id < 1) throw badInput(`checkpoint part id ${part.id} is not a positive integer`);
      if (seen.has(part.id)) throw badInput(`checkpoint part ${part.id} is listed twice`);
      seen.add(part.id);
      if (part.bytes === null && !this.partUses.has(part.id)) throw badInput(`checkpoint references state part ${part.id}, which is not stored`);
      if (part.bytes !== null && (this.partUses.has(part.id) || part.id >= this.nextPartId)) {
        throw badInput(`checkpoint part ${part.id} was not allocated by allocatePartId() or is already stored`);
      }
    }
  }

  /** Record the Parquet ranges that received rows, inside the commit's transaction. */
  private async appendTouches(touched: ReadonlyMap<string, ReadonlySet<number>>, commitId: number): Promise<void> {
    let n = 0;
    for (const set of touched.values()) n += set.size;
    const codes = new Int32Array(n);
    const starts = new Float64Array(n);
    const dict: string[] = [];
    let i = 0;
    for (const [table, set] of touched) {
      const code = dict.length;
      dict.push(table);
      for (const start of set) {
        codes[i] = code;
        starts[i++] = start;
      }
    }
    const app = await this.writeConn.createAppender('sluice_touches');
    try {
      this.touchesWriter.append(app, [
        { type: 'string', codes, dict, valid: null },
        { type: 'values', values: new Float64Array(n).fill(this.every), valid: null },
        { type: 'values', values: starts, valid: null },
        { type: 'values', values: new Float64Array(n).fill(commitId), valid: null },
      ], 0, n);
      app.closeSync();
    } catch (err) {
      app.clear();
      app.closeSync();
      throw err;
    }
  }

  /**
   * Run SQL on its own connection (it sees committed data only). Positional parameters `$1`…
   * Values come back JSON-ready: integers beyond ±(2^53 − 1) as strings, TIMESTAMP as ISO-8601
   * UTC text, NaN and infinities as strings (docs/storage.md). Without options it runs whatever it
   * is given; the server passes `readOnly`, `maxRows` and `timeoutMs` (QueryOptions).
   */
  async query(sql: string, params: readonly unknown[] = [], opts: QueryOptions = {}): Promise<QueryResult> {
    this.assertOpen();
    const run = this.queryNow(sql, params, opts);
    const tracked = run.catch(() => undefined);
    this.queries.add(tracked);
    void tracked.then(() => this.queries.delete(tracked));
    return run;
  }

  private async queryNow(sql: string, params: readonly unknown[], opts: QueryOptions): Promise<QueryResult> {
    const values = params.map(paramValue);
    const conn = await this.instance.connect();
    let timedOut = false;
    const timer = opts.timeoutMs === undefined ? null : setTimeout(() => {
      timedOut = true;
      conn.interrupt();
    }, opts.timeoutMs);
    let inTransaction = false;
    try {
      let reader: DuckDBResultReader;
      if (opts.readOnly === true) {
        const prepared = await prepareReadOnly(this.instance, conn, sql);
        prepared.bind(values);
        await conn.run('BEGIN TRANSACTION READ ONLY');
        inTransaction = true;
        reader = opts.maxRows === undefined ? await prepared.streamAndReadAll() : await prepared.streamAndReadUntil(opts.maxRows + 1);
      } else {
        reader = opts.maxRows === undefined ? await conn.runAndReadAll(sql, values) : await conn.streamAndReadUntil(sql, opts.maxRows + 1, values);
      }
      const columns: { name: string; type: string }[] = [];
      for (let i = 0; i < reader.columnCount; i++) columns.push({ name: reader.columnName(i), type: String(reader.columnType(i)) });
      const rows = reader.convertRows(jsonValue);
      if (opts.maxRows !== undefined && rows.length > opts.maxRows) return { columns, rows: rows.slice(0, opts.maxRows), truncated: true };
      return { columns, rows };
    } catch (err) {
      if (timedOut && /interrupt/i.test(messageOf(err))) {
        throw sluiceError('SQL_TIMEOUT', `the query was interrupted after ${formatDuration(opts.timeoutMs ?? 0)} (server.sql.timeout)`, err);
      }
      if (opts.readOnly === true && /read-only mode/i.test(messageOf(err))) {
        throw sluiceError('SQL_NOT_READ_ONLY', `the statement tried to write: ${messageOf(err)}`, err);
      }
      throw queryError(err);
    } finally {
      if (timer !== null) clearTimeout(timer);
      if (inTransaction) await conn.run('ROLLBACK').catch(() => undefined);
      conn.closeSync();
    }
  }

  /**
   * Export closed ranges to Parquet: for each result table, every range that changed since its
   * last export and ends at or before `closedBefore[pipeline]` (every window starting before it
   * is closed); for each archive, the same with `closedBefore[stream]` (pass the stream's
   * watermark: a later late event marks its range changed again, and the next call re-exports
   * it). Tables without an entry are skipped; `Infinity` exports everything (end of input).
   */
  async exportParquet(closedBefore: Readonly<Record<string, number>>): Promise<{ files: string[] }> {
    this.assertOpen();
    const run = this.exports.then(() => this.exportNow(closedBefore));
    this.exports = run.catch(() => undefined);
    return run;
  }

  private async exportNow(closedBefore: Readonly<Record<string, number>>): Promise<{ files: string[] }> {
    const every = this.every;
    const files: string[] = [];
    const sources: { owner: string; src: ExportSource }[] = [];
    for (const t of this.pipelines.values()) {
      const keys = t.definition.groupBy.map((k) => k.name);
      sources.push({ owner: t.name, src: { table: t.result.name, timeColumn: 'window_start', orderBy: ['window_start', 'window_end', ...keys] } });
    }
    for (const t of this.archives.values()) sources.push({ owner: t.name, src: { table: t.table.name, timeColumn: t.definition.eventTime, orderBy: [] } });
    for (const { owner, src } of sources) {
      const limit = Object.hasOwn(closedBefore, owner) ? closedBefore[owner] : undefined;
      if (typeof limit !== 'number' || Number.isNaN(limit)) continue;
      let ranges: { start: number; commit: number }[];
      try {
        // ranges touched by a commit newer than the one their file was exported at
        const reader = await this.exportConn.runAndReadAll(
          'SELECT t.range_start, max(t.commit_id) AS c FROM sluice_touches t ' +
          'LEFT JOIN sluice_exports e ON e.table_name = t.table_name AND e.range_ms = t.range_ms AND e.range_start = t.range_start ' +
          'WHERE t.table_name = $1 AND t.range_ms = $2::BIGINT ' +
          'GROUP BY t.range_start HAVING max(t.commit_id) > coalesce(max(e.exported_commit), 0) ORDER BY t.range_start',
          [src.table, every]);
        ranges = reader.getRows().map((r) => ({ start: Number(r[0]), commit: Number(r[1]) }));
      } catch (err) {
        throw sluiceError('STORAGE_IO', `Parquet export of ${src.table}: ${messageOf(err)}`, err);
      }
      const dir = join(this.parquetDir, src.table);
      for (const { start, commit } of ranges) {
        if (start + every > limit) continue;
        let out: { path: string; rows: number };
        try {
          mkdirSync(dir, { recursive: true });
          // The commit id was read before the COPY: rows committed in between are in the file
          // but their touches stay, so the range is at worst exported once more.
          out = await exportRange(this.exportConn, src, dir, start, every);
        } catch (err) {
          throw sluiceError('STORAGE_IO', `Parquet export of ${src.table} range ${new Date(start).toISOString()}: ${messageOf(err)}`, err);
        }
        await this.write(() => this.recordExport(src.table, start, commit, out.path.slice(dir.length + 1), out.rows));
        files.push(out.path);
      }
    }
    return { files };
  }

  private async recordExport(table: string, start: number, commit: number, file: string, rows: number): Promise<void> {
    const conn = this.writeConn;
    const key = [table, this.every, start];
    await conn.run('BEGIN TRANSACTION');
    try {
      await conn.run('DELETE FROM sluice_exports WHERE table_name = $1 AND range_ms = $2::BIGINT AND range_start = $3::BIGINT', key);
      await conn.run('INSERT INTO sluice_exports VALUES ($1, $2::BIGINT, $3::BIGINT, $4::BIGINT, $5, $6::BIGINT, now()::TIMESTAMP)', [...key, commit, file, rows]);
      await conn.run('DELETE FROM sluice_touches WHERE table_name = $1 AND range_ms = $2::BIGINT AND range_start = $3::BIGINT AND commit_id <= $4::BIGINT', [...key, commit]);
      await conn.run('COMMIT');
    } catch (err) {
      await conn.run('ROLLBACK').catch(() => undefined);
      throw sluiceError('STORAGE_IO', `recording the Parquet export of ${table}: ${messageOf(err)}`, err);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.exports;
    await this.writes;
    await Promise.all(this.queries);
    this.insertCheckpoint?.destroySync();
    this.insertPart?.destroySync();
    this.exportConn.closeSync();
    this.writeConn.closeSync();
    this.instance.closeSync();
    this.releaseLock();
  }

  private assertOpen(): void {
    if (this.closed) throw sluiceError('INTERNAL', 'storage is closed');
  }

  /** Run fn after every earlier write on writeConn has finished. */
  private write<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.writes.then(fn, fn);
    this.writes = run.catch(() => undefined);
    return run;
  }
}

// ---------------------------------------------------------------------------------------------
// Open: reconcile the configuration with the tables in the file
// ---------------------------------------------------------------------------------------------

const CHECKPOINTS_COLUMNS = '(id BIGINT PRIMARY KEY, created_at TIMESTAMP NOT NULL, positions VARCHAR NOT NULL, state BLOB NOT NULL)';
/** Incremental checkpoints: one row per serialized open window (or sessions) state. */
const STATE_PARTS_COLUMNS = '(id BIGINT PRIMARY KEY, bytes BLOB NOT NULL)';
/** Which parts each kept checkpoint references. */
const CHECKPOINT_PARTS_COLUMNS = '(checkpoint_id BIGINT NOT NULL, part_id BIGINT NOT NULL)';
const CHECKPOINT_TABLES: readonly (readonly [string, string])[] = [
  ['sluice_checkpoints', CHECKPOINTS_COLUMNS],
  ['sluice_state_parts', STATE_PARTS_COLUMNS],
  ['sluice_checkpoint_parts', CHECKPOINT_PARTS_COLUMNS],
];

/**
 * Every this many checkpoints the checkpoint tables are copied into fresh ones (their few live
 * rows) and the old ones dropped, in the commit's transaction. DuckDB does not give back the
 * space of deleted rows in a row group that still holds live ones, and these tables always hold
 * live rows: deleting old blobs alone left them in the file and in DuckDB's memory (measured when
 * the whole state was one blob, at 10 M events/s with a 1.6 MB state: +1.5 MiB/s of DuckDB
 * memory, the file +2.4 MB/s; a 128 MB memory_limit ran out after ~100 s). The blobs are now
 * the parts in sluice_state_parts (the parts test: 68 MiB without its rebuild, < 40 with it);
 * sluice_checkpoints still takes whatever state a caller stores (an opaque blob, small for the
 * runtime's manifests). A dropped table's blocks are free for reuse after DuckDB's next
 * checkpoint.
 */
const CHECKPOINT_TABLE_REBUILD = 16;

/** The statements that copy each checkpoint table into a fresh one and drop the old (see above). */
const REBUILD_CHECKPOINT_TABLES: readonly string[] = CHECKPOINT_TABLES.flatMap(([table, columns]) => [
  `CREATE TABLE ${table}_next ${columns}`,
  `INSERT INTO ${table}_next SELECT * FROM ${table}`,
  `DROP TABLE ${table}`,
  `ALTER TABLE ${table}_next RENAME TO ${table}`,
]);

/** Integers for an IN (...) list or a list literal (ids are ours, checked safe integers). */
function idList(ids: readonly number[]): string {
  for (const id of ids) if (!Number.isSafeInteger(id)) throw sluiceError('INTERNAL', `not an id: ${id}`);
  return ids.join(', ');
}

const INTERNAL_TABLES = [
  `CREATE TABLE IF NOT EXISTS sluice_meta (kind VARCHAR NOT NULL, name VARCHAR NOT NULL, definition VARCHAR NOT NULL, created_at TIMESTAMP NOT NULL, PRIMARY KEY (kind, name))`,
  `CREATE TABLE IF NOT EXISTS sluice_checkpoints ${CHECKPOINTS_COLUMNS}`,
  `CREATE TABLE IF NOT EXISTS sluice_state_parts ${STATE_PARTS_COLUMNS}`,
  `CREATE TABLE IF NOT EXISTS sluice_checkpoint_parts ${CHECKPOINT_PARTS_COLUMNS}`,
  `CREATE TABLE IF NOT EXISTS sluice_touches (table_name VARCHAR NOT NULL, range_ms BIGINT NOT NULL, range_start BIGINT NOT NULL, commit_id BIGINT NOT NULL)`,
  `CREATE TABLE IF NOT EXISTS sluice_exports (table_name VARCHAR NOT NULL, range_ms BIGINT NOT NULL, range_start BIGINT NOT NULL, ` +
    `exported_commit BIGINT NOT NULL, file VARCHAR NOT NULL, rows BIGINT NOT NULL, exported_at TIMESTAMP NOT NULL)`,
];

interface Reconciled {
  fresh: Set<string>;
  /** tables whose Parquet folder holds files of an earlier table of that name */
  moveAside: string[];
  /** Parquet files of a range length no longer configured */
  deleteFiles: string[];
  nextCommitId: number;
}

async function reconcile(conn: DuckDBConnection, targets: readonly Target[], ctx: OpenContext): Promise<Reconciled> {
  await conn.run('BEGIN TRANSACTION');
  try {
    const out = await reconcileInTransaction(conn, targets, ctx);
    await conn.run('COMMIT');
    return out;
  } catch (err) {
    await conn.run('ROLLBACK').catch(() => undefined);
    throw err;
  }
}

async function reconcileInTransaction(conn: DuckDBConnection, targets: readonly Target[], ctx: OpenContext): Promise<Reconciled> {
  for (const sql of INTERNAL_TABLES) await conn.run(sql);
  await conn.run(`INSERT OR IGNORE INTO sluice_meta VALUES ('storage', 'format', $1, now()::TIMESTAMP)`, [JSON.stringify({ version: STORAGE_FORMAT_VERSION })]);

  const metaRows = (await conn.runAndReadAll('SELECT kind, name, definition, strftime(created_at, \'%Y-%m-%dT%H:%M:%SZ\') FROM sluice_meta')).getRows();
  const meta = new Map<string, MetaRow>();
  for (const [kind, name, definition, createdAt] of metaRows) {
    const parsed = JSON.parse(String(definition)) as unknown;
    if (kind === 'storage') {
      const version = typeof parsed === 'object' && parsed !== null && 'version' in parsed ? Number(parsed.version) : NaN;
      if (name === 'format' && UPGRADABLE_FORMATS.includes(version)) {
        await conn.run(`UPDATE sluice_meta SET definition = $1 WHERE kind = 'storage' AND name = 'format'`, [JSON.stringify({ version: STORAGE_FORMAT_VERSION })]);
        ctx.log.info(`storage: ${ctx.file} upgraded from storage format ${version} to ${STORAGE_FORMAT_VERSION}`);
      } else if (name === 'format' && version !== STORAGE_FORMAT_VERSION) {
        throw sluiceError('STORAGE_IO', `${ctx.file} has storage format ${version}; this Sluice reads format ${STORAGE_FORMAT_VERSION}. Use the Sluice version that wrote it, or a fresh storage.dir`);
      }
      continue;
    }
    meta.set(`${String(kind)}:${String(name).toLowerCase()}`, { name: String(name), definition: parsed as Definition, createdAt: String(createdAt) });
  }

  const existing = new Map<string, ColumnDef[]>();
  const columnRows = (await conn.runAndReadAll(
    `SELECT table_name, column_name, data_type FROM duckdb_columns() WHERE database_name = current_database() AND schema_name = 'main' ORDER BY table_name, column_index`)).getRows();
  for (const [table, column, type] of columnRows) {
    const key = String(table).toLowerCase();
    let cols = existing.get(key);
    if (cols === undefined) existing.set(key, (cols = []));
    cols.push({ name: String(column), type: String(type) as SqlType });
  }

  const fresh = new Set<string>();
  const moveAside: string[] = [];
  const problems: string[] = [];
  const configured = new Set<string>();

  for (const t of targets) {
    const key = `${t.kind}:${t.name.toLowerCase()}`;
    configured.add(key);
    const stored = meta.get(key);
    const tables = tablesOf(t);
    const changes = stored === undefined ? [] : definitionChanges(stored.definition, t.definition);
    if (changes.length === 0) {
      for (const spec of tables) {
        const actual = existing.get(spec.name.toLowerCase());
        if (actual !== undefined) changes.push(...columnChanges(spec.name, actual, spec.natural));
      }
    }
    const primary = tables[0]!;
    if (changes.length > 0) {
      if (ctx.mode === 'error') {
        problems.push(changeProblem(t, stored, changes, ctx.file));
        continue;
      }
      ctx.log.warn(`storage: ${t.kind} '${t.name}' changed (${changes.join('; ')}); recreating its tables as storage.onPipelineChange is recreate`);
      for (const spec of tables) {
        await conn.run(`DROP TABLE IF EXISTS ${quoteIdent(spec.name)}`);
        existing.delete(spec.name.toLowerCase());
      }
    }
    if (!existing.has(primary.name.toLowerCase())) {
      fresh.add(t.name);
      await conn.run('DELETE FROM sluice_exports WHERE lower(table_name) = lower($1)', [primary.name]);
      await conn.run('DELETE FROM sluice_touches WHERE lower(table_name) = lower($1)', [primary.name]);
      moveAside.push(primary.name);
    }
    for (const spec of tables) {
      const actual = existing.get(spec.name.toLowerCase());
      if (actual === undefined) await conn.run(createTableSql(spec));
      else adoptColumns(spec, actual);
    }
    const definition = JSON.stringify(t.definition);
    if (stored === undefined || JSON.stringify(stored.definition) !== definition || changes.length > 0) {
      await conn.run('DELETE FROM sluice_meta WHERE kind = $1 AND lower(name) = lower($2)', [t.kind, t.name]);
      await conn.run('INSERT INTO sluice_meta VALUES ($1, $2, $3, now()::TIMESTAMP)', [t.kind, t.name, definition]);
    }
  }
  if (problems.length > 0) {
    const n = problems.length === 1 ? 'one definition differs' : `${problems.length} definitions differ`;
    throw sluiceError('STORAGE_PIPELINE_CHANGED', `${ctx.file}: ${n} from the tables in the file; nothing was changed.\n\n${problems.join('\n\n')}`);
  }

  for (const [key, row] of meta) {
    if (configured.has(key)) continue;
    const tables = row.definition.kind === 'pipeline' ? `${row.name}, ${row.name}__late` : row.name;
    ctx.log.info(`storage: ${row.definition.kind} '${row.name}' is no longer configured; its table${row.definition.kind === 'pipeline' ? 's' : ''} (${tables}) stay as they are`);
  }

  const last = (await conn.runAndReadAll(
    'SELECT greatest((SELECT coalesce(max(commit_id), 0) FROM sluice_touches), (SELECT coalesce(max(exported_commit), 0) FROM sluice_exports))')).getRows()[0]![0];
  let nextCommitId = Number(last) + 1;
  const deleteFiles = await reconcileExports(conn, targets, ctx, nextCommitId);
  if (deleteFiles !== null) nextCommitId++;
  return { fresh, moveAside, deleteFiles: deleteFiles ?? [], nextCommitId };
}

function changeProblem(t: Target, stored: MetaRow | undefined, changes: readonly string[], file: string): string {
  const tables = tablesOf(t).map((s) => s.name);
  const what = t.kind === 'pipeline' ? `pipeline '${t.name}'` : `archived stream '${t.name}'`;
  const since = stored === undefined ? 'its existing table was not created by this configuration' : `it is defined differently from when its table was created (${stored.createdAt})`;
  const metaName = stored?.name ?? t.name;
  const sql = [
    ...tables.map((n) => `DROP TABLE IF EXISTS ${quoteIdent(n)};`),
    `DELETE FROM sluice_meta WHERE kind = ${quoteString(t.kind)} AND name = ${quoteString(metaName)};`,
    `DELETE FROM sluice_exports WHERE table_name = ${quoteString(tables[0]!)};`,
    `DELETE FROM sluice_touches WHERE table_name = ${quoteString(tables[0]!)};`,
  ].join(' ');
  return [
    `${what}: ${since}:`,
    ...changes.map((c) => `  ${c}`),
    `Its table${tables.length > 1 ? 's' : ''} ${tables.join(', ')} hold${tables.length > 1 ? '' : 's'} rows of the old definition. To go on, either`,
    `  - give the ${t.kind === 'pipeline' ? 'pipeline' : 'stream'} a new name in the config (the old tables stay as they are), or`,
    `  - drop the old tables and start afresh, losing their rows (copy them first if you need them): with Sluice stopped run`,
    `      duckdb ${file} "${sql.replaceAll('"', '\\"')}"`,
    `    or start once with storage.onPipelineChange: recreate, which does the same and moves their Parquet folder aside.`,
  ].join('\n');
}

/**
 * When storage.parquet.every changed, the files of the old range length are deleted and every
 * range of the table is marked for export under the new one (as commit `commitId`); otherwise
 * old and new files would overlap and a reader of `*.parquet` would see rows twice. Returns the
 * files to delete, or null when nothing had to change.
 */
async function reconcileExports(conn: DuckDBConnection, targets: readonly Target[], ctx: OpenContext, commitId: number): Promise<string[] | null> {
  let deleteFiles: string[] | null = null;
  for (const t of targets) {
    const table = t.kind === 'pipeline' ? t.result.name : t.table.name;
    const timeColumn = t.kind === 'pipeline' ? 'window_start' : t.definition.eventTime;
    const stale = (await conn.runAndReadAll(
      'SELECT file FROM sluice_exports WHERE lower(table_name) = lower($1) AND range_ms <> $2::BIGINT ' +
      'UNION ALL SELECT NULL FROM sluice_touches WHERE lower(table_name) = lower($1) AND range_ms <> $2::BIGINT', [table, ctx.every])).getRows();
    if (stale.length === 0) continue;
    ctx.log.info(`storage: storage.parquet.every is now ${formatDuration(ctx.every)}; ${table} is exported again in ranges of that length`);
    deleteFiles ??= [];
    for (const [file] of stale) if (file !== null) deleteFiles.push(join(ctx.parquetDir, table, String(file)));
    await conn.run('DELETE FROM sluice_exports WHERE lower(table_name) = lower($1)', [table]);
    await conn.run('DELETE FROM sluice_touches WHERE lower(table_name) = lower($1)', [table]);
    const time = quoteIdent(timeColumn);
    await conn.run(
      `INSERT INTO sluice_touches SELECT DISTINCT $1, $2::BIGINT, CAST(floor(epoch_ms(${time}) / $2::BIGINT) AS BIGINT) * $2::BIGINT, $3::BIGINT ` +
      `FROM ${quoteIdent(table)} WHERE ${time} IS NOT NULL`,
      [table, ctx.every, commitId]);
  }
  return deleteFiles;
}

/** A table created afresh must not share its Parquet folder with files of an earlier table. */
function moveParquetAside(ctx: OpenContext, table: string): void {
  const dir = join(ctx.parquetDir, table);
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return;
  }
  if (entries.length === 0) return;
  const stamp = new Date().toISOString().replace(/\.\d+Z$/, 'Z').replaceAll(':', '-');
  let target = `${dir}.replaced-${stamp}`;
  for (let i = 2; existsSync(target); i++) target = `${dir}.replaced-${stamp}-${i}`;
  try {
    renameSync(dir, target);
  } catch (err) {
    throw sluiceError('STORAGE_IO', `cannot move ${dir} aside: ${messageOf(err)}`, err);
  }
  ctx.log.warn(`storage: table ${table} was created afresh; its earlier Parquet files are now in ${target}`);
}

interface LoadedCheckpoints {
  latest: StoredCheckpoint | null;
  refs: Map<number, readonly number[]>;
}

/**
 * The latest checkpoint and the parts every kept checkpoint references. Parts no checkpoint
 * references (none should exist: every change is transactional) go.
 */
async function loadCheckpoints(conn: DuckDBConnection): Promise<LoadedCheckpoints> {
  const refs = new Map<number, number[]>();
  for (const [c] of (await conn.runAndReadAll('SELECT id FROM sluice_checkpoints')).getRows()) refs.set(Number(c), []);
  for (const [c, p] of (await conn.runAndReadAll('SELECT checkpoint_id, part_id FROM sluice_checkpoint_parts')).getRows()) {
    refs.get(Number(c))?.push(Number(p));
  }
  await conn.run('DELETE FROM sluice_state_parts WHERE id NOT IN (SELECT part_id FROM sluice_checkpoint_parts WHERE checkpoint_id IN (SELECT id FROM sluice_checkpoints))');
  const rows = (await conn.runAndReadAll('SELECT id, epoch_ms(created_at), positions, state FROM sluice_checkpoints ORDER BY id DESC LIMIT 1')).getRows();
  const row = rows[0];
  if (row === undefined) return { latest: null, refs };
  const [id, createdAt, positions, state] = row;
  if (!(state instanceof DuckDBBlobValue)) throw sluiceError('STORAGE_IO', 'sluice_checkpoints.state is not a BLOB');
  const latest: StoredCheckpoint = {
    id: Number(id),
    createdAt: Number(createdAt),
    positions: JSON.parse(String(positions)) as Record<string, unknown>,
    // a copy that owns its memory, independent of DuckDB's result buffers
    state: new Uint8Array(state.bytes),
    partIds: refs.get(Number(id)) ?? [],
  };
  return { latest, refs };
}
