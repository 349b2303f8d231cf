/**
 * What makes a statement acceptable to the read-only SQL endpoint (DESIGN.md A4: "anything but
 * SELECT / WITH / EXPLAIN / DESCRIBE / SHOW / SUMMARIZE is 400"). Three layers, each enough for
 * the common cases and together closing the gaps of each:
 *
 *   1. DuckDB parses the text: exactly one statement, and the statement type it reports for the
 *      prepared statement is SELECT or EXPLAIN. This is the decision, made by DuckDB's parser,
 *      not by matching text — INSERT, UPDATE, DELETE, CREATE, DROP, COPY, ATTACH, INSTALL, LOAD,
 *      SET, CALL, EXPORT ... all have types of their own.
 *   2. Some statements DuckDB rewrites into a SELECT before it reports the type: `PRAGMA
 *      version`, `PRAGMA show_tables` prepare as SELECT. The first keyword of the text (after
 *      comments and opening parentheses) must therefore be one of the read-only forms below.
 *   3. The statement runs in a `BEGIN TRANSACTION READ ONLY` transaction that is rolled back, so
 *      even a write reached through a read form (`EXPLAIN ANALYZE DELETE ...`) fails.
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

/**
 * The first keyword of a SQL text, upper-cased, skipping whitespace, `-- line` and
 * `/* block *\/` comments and opening parentheses; '' when the text starts with anything else.
 */
export function firstKeyword(sql: string): string {
  let i = 0;
  const n = sql.length;
  for (;;) {
    while (i < n && (/\s/.test(sql[i]!) || sql[i] === '(')) i++;
    if (sql.startsWith('--', i)) {
      const nl = sql.indexOf('\n', i);
      if (nl < 0) return '';
      i = nl + 1;
    } else if (sql.startsWith('/*', i)) {
      const end = sql.indexOf('*/', i + 2);
      if (end < 0) return '';
      i = end + 2;
    } else {
      break;
    }
  }
  let j = i;
  while (j < n && /[A-Za-z_]/.test(sql[j]!)) j++;
  return sql.slice(i, j).toUpperCase();
}

/** The statement type's name as DuckDB spells it (INSERT, COPY, ...), for messages. */
export function statementTypeName(t: StatementType): string {
  return StatementType[t] ?? `statement type ${t}`;
}
