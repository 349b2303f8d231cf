/**
 * What makes a statement acceptable to the read-only SQL endpoint (DESIGN.md A4: "anything but
 * SELECT / WITH / EXPLAIN / DESCRIBE / SHOW / SUMMARIZE is 400"). "Read-only" means more than
 * "does not write the tables": a SELECT can call `read_csv('/etc/passwd')`, `glob('/*')`,
 * `query('...')`, `checkpoint()` or `enable_logging()`, name a file as a table
 * (`FROM 'x.csv'`), or make DuckDB download and load an extension (`SELECT 1::INET`). The
 * endpoint reads the database's tables and views and computes over them; nothing else.
 *
 * Storage.query (readOnly) applies these checks in order; each one closes gaps of the others:
 *
 *   1. DuckDB's parser alone (json_serialize_sql: no binding, no pragma expansion, no file
 *      access) turns the text — for EXPLAIN, the statement it explains — into a syntax tree. A
 *      syntax error is answered with the parser's message. The text must be exactly one SELECT
 *      statement (DESCRIBE, SHOW, SUMMARIZE are SELECTs there; json_serialize_sql serializes
 *      nothing else, so any other statement, alone or after a `;`, is refused here).
 *   2. The first keyword of the text (after comments and opening parentheses) is one of the
 *      read-only forms below. This and 1 run before DuckDB extracts or prepares the text:
 *      `IMPORT DATABASE` and `COPY ... FROM` read files while DuckDB merely does that, and
 *      `PRAGMA` / `CALL` prepare as SELECT.
 *   3. `referencesOf` lists what the tree names, and:
 *        - a table function must be in TABLE_FUNCTIONS (generators and catalog listings);
 *        - a table that is not a plain unqualified name (`'x.csv'`, `probe.csv` — DuckDB reads
 *          a file for a name it does not find in the catalog) must be a table or view of the
 *          catalog;
 *        - every function and type must already be in the catalog, so that nothing is
 *          auto-installed or auto-loaded (scalar functions in DENIED_FUNCTIONS are refused).
 *   4. DuckDB extracts and prepares the text: exactly one statement whose prepared type is
 *      SELECT or EXPLAIN.
 *   5. It runs in a `BEGIN TRANSACTION READ ONLY` transaction that is rolled back, so even a
 *      write reached through a read form fails.
 */

import { StatementType } from '@duckdb/node-api';

/** statement types DuckDB reports for statements that only read */
export const READ_ONLY_STATEMENT_TYPES: ReadonlySet<StatementType> = new Set([StatementType.SELECT, StatementType.EXPLAIN]);

/**
 * First keywords of the read-only forms. FROM (`FROM t` is DuckDB's FROM-first SELECT), VALUES
 * and TABLE are SELECTs too; DESC is DESCRIBE's abbreviation; PIVOT / UNPIVOT are SELECTs over a
 * table.
 */
export const READ_ONLY_KEYWORDS: ReadonlySet<string> = new Set([
  'SELECT', 'WITH', 'FROM', 'VALUES', 'TABLE', 'EXPLAIN', 'DESCRIBE', 'DESC', 'SHOW', 'SUMMARIZE', 'PIVOT', 'UNPIVOT',
]);

/** The forms named in refusals. */
export const READ_ONLY_FORMS = 'SELECT, WITH, EXPLAIN, DESCRIBE, SHOW and SUMMARIZE';

/**
 * Table functions a query may call: generators and listings of the catalog. Everything else —
 * file readers (read_csv, read_text, read_blob, read_parquet, glob, sniff_csv, parquet_*),
 * dynamic SQL (query, query_table, json_execute_serialized_sql), functions with effects
 * (checkpoint, enable_logging, truncate_duckdb_logs), raw memory (arrow_scan), logs and secrets
 * (duckdb_logs, duckdb_secrets) and any extension's — is refused.
 */
export const TABLE_FUNCTIONS: ReadonlySet<string> = new Set([
  'range', 'generate_series', 'unnest', 'repeat', 'repeat_row', 'json_each', 'json_tree', 'pg_timezone_names', 'icu_calendar_names',
  'duckdb_columns', 'duckdb_constraints', 'duckdb_databases', 'duckdb_dependencies', 'duckdb_extensions', 'duckdb_functions',
  'duckdb_indexes', 'duckdb_keywords', 'duckdb_memory', 'duckdb_optimizers', 'duckdb_schemas', 'duckdb_sequences', 'duckdb_settings',
  'duckdb_tables', 'duckdb_temporary_files', 'duckdb_types', 'duckdb_views',
  'pragma_table_info', 'pragma_show', 'pragma_storage_info', 'pragma_database_size', 'pragma_metadata_info', 'pragma_version',
  'pragma_platform', 'pragma_collations', 'pragma_user_agent',
]);

/** Scalar functions with an effect outside the query. */
export const DENIED_FUNCTIONS: ReadonlySet<string> = new Set(['write_log']);

// --- text ------------------------------------------------------------------------------------

/**
 * Index of the first character at or after `i` that is not whitespace or inside a comment
 * (`-- line`, `/* block *\/`, nested as DuckDB's parser nests them), nor, with `parens`, an
 * opening parenthesis; -1 in an unterminated block comment.
 */
function skipSpace(sql: string, i: number, parens: boolean): number {
  const n = sql.length;
  while (i < n) {
    const c = sql[i]!;
    if (/\s/.test(c) || (parens && c === '(')) {
      i++;
    } else if (sql.startsWith('--', i)) {
      const nl = sql.indexOf('\n', i);
      i = nl < 0 ? n : nl + 1;
    } else if (sql.startsWith('/*', i)) {
      let depth = 1;
      i += 2;
      while (depth > 0) {
        if (i >= n) return -1;
        if (sql.startsWith('/*', i)) { depth++; i += 2; } else if (sql.startsWith('*/', i)) { depth--; i += 2; } else i++;
      }
    } else {
      break;
    }
  }
  return i;
}

function wordAt(sql: string, i: number): string {
  if (i < 0) return '';
  let j = i;
  while (j < sql.length && /[A-Za-z_]/.test(sql[j]!)) j++;
  return sql.slice(i, j).toUpperCase();
}

/**
 * The first keyword of a SQL text, upper-cased, skipping whitespace, comments and opening
 * parentheses; '' when the text starts with anything else or holds no statement.
 */
export function firstKeyword(sql: string): string {
  return wordAt(sql, skipSpace(sql, 0, true));
}

/** Index of the `)` closing the `(` at `open`, skipping quoted text and comments; -1 if none. */
function closingParen(sql: string, open: number): number {
  let depth = 0;
  for (let i = open; i < sql.length;) {
    const c = sql[i]!;
    if (c === "'" || c === '"') {
      const end = sql.indexOf(c, i + 1);
      if (end < 0) return -1;
      i = end + 1;
    } else if (c === '-' || c === '/') {
      const j = skipSpace(sql, i, false);
      if (j < 0) return -1;
      i = j === i ? i + 1 : j;
    } else {
      if (c === '(') depth++;
      else if (c === ')' && --depth === 0) return i;
      i++;
    }
  }
  return -1;
}

/**
 * The statement an `EXPLAIN` text explains: the text after `EXPLAIN`, `ANALYZE` / `ANALYSE`,
 * `VERBOSE` and an option list `(FORMAT JSON, ...)`; null when the text does not start with
 * EXPLAIN at the top level or its option list is not closed. A parenthesised statement
 * (`EXPLAIN (SELECT 1)`) is not taken for an option list.
 */
export function explainedStatement(sql: string): string | null {
  let i = skipSpace(sql, 0, false);
  if (wordAt(sql, i) !== 'EXPLAIN') return null;
  i = skipSpace(sql, i + 'EXPLAIN'.length, false);
  for (const optional of ['ANALYZE', 'ANALYSE', 'VERBOSE']) {
    const w = wordAt(sql, i);
    if (w === optional) i = skipSpace(sql, i + w.length, false);
  }
  if (i >= 0 && sql[i] === '(') {
    const inner = wordAt(sql, skipSpace(sql, i + 1, true));
    if (inner !== '' && !READ_ONLY_KEYWORDS.has(inner)) {
      const close = closingParen(sql, i);
      if (close < 0) return null;
      i = skipSpace(sql, close + 1, false);
    }
  }
  return i < 0 ? null : sql.slice(i);
}

// --- syntax tree -------------------------------------------------------------------------------

/** A table named in FROM / JOIN (parts as written, '' when absent). */
export interface TableName {
  readonly catalog: string;
  readonly schema: string;
  readonly name: string;
}

/** What a parsed statement names; function and type names lower-cased. */
export interface SqlReferences {
  readonly statements: number;
  readonly tableFunctions: readonly string[];
  readonly tables: readonly TableName[];
  readonly functions: readonly string[];
  readonly types: readonly string[];
  /** SHOW / DESCRIBE forms over a named listing (`SHOW TABLES` → `"tables"`) */
  readonly showNames: readonly string[];
}

/** The parse of `json_serialize_sql`: the statements, or the parser's error. */
export type SerializedSql =
  | { readonly error: false; readonly statements: readonly unknown[] }
  | { readonly error: true; readonly error_type?: string; readonly error_message?: string };

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function text(v: unknown): string {
  return typeof v === 'string' ? v : '';
}

/**
 * Every table function, table, function and unresolved type a tree of json_serialize_sql
 * names, at any depth (subqueries, CTEs, joins, set operations, lambdas, DESCRIBE targets).
 * The walk is generic over the JSON, so node kinds it does not know are still searched.
 */
export function referencesOf(tree: { readonly statements: readonly unknown[] }): SqlReferences {
  const tableFunctions = new Set<string>();
  const tables: TableName[] = [];
  const functions = new Set<string>();
  const types = new Set<string>();
  const showNames = new Set<string>();
  const walk = (node: unknown, asTableFunction: boolean): void => {
    if (Array.isArray(node)) {
      for (const x of node) walk(x, false);
      return;
    }
    if (!isRecord(node)) return;
    if (node['type'] === 'TABLE_FUNCTION') {
      walk(node['function'], true);
      for (const [k, v] of Object.entries(node)) if (k !== 'function') walk(v, false);
      return;
    }
    if (node['type'] === 'BASE_TABLE') {
      tables.push({ catalog: text(node['catalog_name']), schema: text(node['schema_name']), name: text(node['table_name']) });
    } else if (node['type'] === 'SHOW_REF' && text(node['table_name']) !== '') {
      showNames.add(text(node['table_name']));
    } else if (node['type'] === 'UNBOUND_TYPE_INFO' && text(node['name']) !== '') {
      types.add(text(node['name']).toLowerCase());
    }
    const fn = node['function_name'];
    if (typeof fn === 'string' && (node['class'] === 'FUNCTION' || node['class'] === 'WINDOW' || node['class'] === 'AGGREGATE')) {
      (asTableFunction ? tableFunctions : functions).add(fn.toLowerCase());
    }
    for (const v of Object.values(node)) walk(v, false);
  };
  walk(tree.statements, false);
  return { statements: tree.statements.length, tableFunctions: [...tableFunctions], tables, functions: [...functions], types: [...types], showNames: [...showNames] };
}

/**
 * A name DuckDB can only mean as a table of its catalog: letters, digits, `_` and `$`. Anything
 * else (`x.csv`, `/etc/passwd`, `https://...`) is what DuckDB tries as a file when no table has
 * that name.
 */
export function isPlainName(name: string): boolean {
  return /^[\p{L}\p{N}_$]+$/u.test(name);
}

/** A table reference that needs no catalog look-up: an unqualified plain name. */
export function isPlainTable(t: TableName): boolean {
  return t.catalog === '' && t.schema === '' && isPlainName(t.name);
}

/** `catalog.schema.name` as written, for messages. */
export function tableLabel(t: TableName): string {
  return [t.catalog, t.schema, t.name].filter((p) => p !== '').join('.');
}

/** A table or view of the catalog (duckdb_tables() / duckdb_views()). */
export interface CatalogTable {
  readonly database: string;
  readonly schema: string;
  readonly name: string;
}

/**
 * Whether a qualified or non-plain reference names a table or view of the catalog. `a.b` is
 * schema `a` or database `a` (its default schema); names compare case-insensitively, as
 * DuckDB's identifiers do.
 */
export function inCatalog(t: TableName, catalog: readonly CatalogTable[]): boolean {
  const eq = (a: string, b: string): boolean => a.toLowerCase() === b.toLowerCase();
  return catalog.some((c) => {
    if (!eq(c.name, t.name)) return false;
    if (t.catalog !== '') return eq(c.database, t.catalog) && eq(c.schema, t.schema);
    if (t.schema !== '') return eq(c.schema, t.schema) || eq(c.database, t.schema);
    // unqualified: DuckDB looks in the `main` schemas of its search path, then at files
    return eq(c.schema, 'main');
  });
}

/** The statement type's name as DuckDB spells it (INSERT, COPY, ...), for messages. */
export function statementTypeName(t: StatementType): string {
  return StatementType[t] ?? `statement type ${t}`;
}
