/**
 * `sluice query "SELECT ..." [--url http://127.0.0.1:8080] [--format table|json|csv]
 * [--param V ...] [--token T]` (DESIGN.md A1): one POST /v1/sql, printed on stdout.
 *
 * - table: aligned columns, a header, a dashed rule and a `(n rows)` footer that says when the
 *   server cut the result at server.sql.maxRows; NULL for null, numbers right-aligned.
 * - json: the server's answer exactly as it sent it ({"columns", "rows", "truncated"?}): no
 *   value is re-rendered, so nothing is lost (int64 beyond 2^53 as the server's strings,
 *   duplicate column names kept). One object per row is `jq -c '.rows[]'` away.
 * - csv: a header line of column names, then one line per row, lines ending in LF, quoted as
 *   RFC 4180 says (a field with a comma, a double quote, CR or LF is quoted, quotes doubled);
 *   null is an empty field and the empty string is `""`, so the two stay apart.
 *
 * Errors: the server's `{"error": {"code", "message"}}` → stderr `sluice: CODE: message`, exit
 * 1; an unreachable server → `sluice: cannot reach URL: reason`, exit 1; bad usage → exit 2.
 * The HTTP helpers here are shared with `sluice gen`.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

export const QUERY_USAGE = `usage: sluice query "SELECT ..." [--url http://127.0.0.1:8080] [--format table|json|csv]
                    [--param V ...] [--token T]
  SQL '-' reads the statement from stdin; --param binds $1, $2, ... in order (a JSON number,
  true, false or null is sent as such, anything else as a string); the token defaults to
  $SLUICE_TOKEN
`;

export const DEFAULT_HTTP_URL = 'http://127.0.0.1:8080';

/** A failure to report as `sluice: [CODE: ]message`; `code` is the server's SLUICE_* code. */
export class ClientError extends Error {
  constructor(readonly code: string | null, message: string) {
    super(message);
    this.name = 'ClientError';
  }

  get line(): string {
    return `sluice: ${this.code === null ? '' : `${this.code}: `}${this.message}`;
  }
}

/** `ws://h:p/x` or `http://h:p/x` (or `h:p`) → `http://h:p` (https for wss). */
export function httpBase(url: string): string {
  const withScheme = /^[a-z]+:\/\//i.test(url) ? url : `http://${url}`;
  let u: URL;
  try {
    u = new URL(withScheme);
  } catch {
    throw new ClientError(null, `not a URL: '${url}'`);
  }
  const scheme = u.protocol === 'wss:' || u.protocol === 'https:' ? 'https:' : u.protocol === 'ws:' || u.protocol === 'http:' ? 'http:' : null;
  if (scheme === null) throw new ClientError(null, `unsupported URL scheme '${u.protocol}' in '${url}': use http(s):// or ws(s)://`);
  return `${scheme}//${u.host}${u.pathname.replace(/\/+$/, '')}`;
}

function reason(err: unknown): string {
  const cause = err instanceof Error ? err.cause : undefined;
  if (cause instanceof Error) {
    // AggregateError (IPv4 and IPv6 both refused) carries its reasons inside
    const inner = cause instanceof AggregateError && cause.errors[0] instanceof Error ? cause.errors[0] : cause;
    return inner.message;
  }
  return err instanceof Error ? err.message : String(err);
}

export interface ServerAnswer {
  readonly status: number;
  readonly text: string;
  readonly body: unknown;
}

/**
 * One request; the parsed JSON answer when 2xx. A JSON error answer becomes a ClientError with
 * the server's code; anything else (not JSON, no answer) a ClientError without one.
 */
export async function requestJson(url: string, init: { method: 'GET' | 'POST'; token?: string | undefined; body?: string; timeoutMs?: number }): Promise<ServerAnswer> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (init.body !== undefined) headers['content-type'] = 'application/json';
  if (init.token !== undefined && init.token !== '') headers['authorization'] = `Bearer ${init.token}`;
  let res: Response;
  let text: string;
  try {
    const req: RequestInit = { method: init.method, headers };
    if (init.body !== undefined) req.body = init.body;
    if (init.timeoutMs !== undefined) req.signal = AbortSignal.timeout(init.timeoutMs);
    res = await fetch(url, req);
    text = await res.text();
  } catch (err) {
    if (err instanceof Error && err.name === 'TimeoutError') throw new ClientError(null, `no answer from ${new URL(url).origin} within ${init.timeoutMs} ms`);
    const why = reason(err);
    // undici refuses the "bad ports" of the Fetch standard (1, 9, 25, 6000, ...) before connecting
    if (why === 'bad port') throw new ClientError(null, `cannot reach ${new URL(url).origin}: fetch refuses to use port ${new URL(url).port} (a "bad port" of the Fetch standard): serve on another port`);
    throw new ClientError(null, `cannot reach ${new URL(url).origin}: ${why} (is \`sluice serve\` running there?)`);
  }
  let body: unknown = undefined;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON: reported below
  }
  if (res.ok && body !== undefined) return { status: res.status, text, body };
  const error = typeof body === 'object' && body !== null ? (body as { error?: unknown }).error : undefined;
  if (typeof error === 'object' && error !== null) {
    const { code, message } = error as { code?: unknown; message?: unknown };
    if (typeof code === 'string') throw new ClientError(code, typeof message === 'string' ? message : JSON.stringify(error));
  }
  const snippet = text.length > 200 ? `${text.slice(0, 200)}...` : text;
  throw new ClientError(null, `${init.method} ${url}: HTTP ${res.status}${res.ok ? ', not JSON' : ''}: ${snippet}`);
}

// --- output formats ---------------------------------------------------------------------------

export interface SqlAnswer {
  readonly columns: readonly { readonly name: string; readonly type: string }[];
  readonly rows: readonly (readonly unknown[])[];
  readonly truncated?: boolean;
}

function isSqlAnswer(v: unknown): v is SqlAnswer {
  if (typeof v !== 'object' || v === null) return false;
  const { columns, rows } = v as { columns?: unknown; rows?: unknown };
  return Array.isArray(columns) && Array.isArray(rows) && rows.every((r) => Array.isArray(r));
}

/** A value as table text: NULL, numbers and booleans as JS prints them, nested values as JSON. */
function cellText(v: unknown): string {
  if (v === null || v === undefined) return 'NULL';
  if (typeof v === 'string') return v.replace(/[\n\r\t]/g, (c) => (c === '\n' ? '\\n' : c === '\r' ? '\\r' : '\\t'));
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

function width(s: string): number {
  let n = 0;
  for (const _ of s) n++;
  return n;
}

export function formatTable(a: SqlAnswer): string {
  const header = a.columns.map((c) => c.name);
  const cells = a.rows.map((r) => a.columns.map((_, j) => cellText(r[j])));
  // a column is right-aligned when every value in it is a number
  const right = a.columns.map((_, j) => a.rows.some((r) => r[j] !== null) && a.rows.every((r) => r[j] === null || typeof r[j] === 'number'));
  const widths = header.map((h, j) => Math.max(width(h), ...cells.map((r) => width(r[j]!))));
  const pad = (s: string, j: number): string => {
    const fill = ' '.repeat(widths[j]! - width(s));
    return right[j] ? fill + s : s + fill;
  };
  const line = (r: readonly string[]): string => r.map(pad).join('  ').trimEnd();
  const out = [line(header), widths.map((w) => '-'.repeat(w)).join('  ')];
  for (const r of cells) out.push(line(r));
  const n = a.rows.length;
  const count = `${n} row${n === 1 ? '' : 's'}`;
  out.push(a.truncated === true ? `(${count}; truncated: the server returns at most server.sql.maxRows rows)` : `(${count})`);
  return `${out.join('\n')}\n`;
}

/** RFC 4180: quote a field holding a comma, a quote, CR or LF; double the quotes inside. */
function csvField(v: unknown): string {
  if (v === null || v === undefined) return '';
  const s = typeof v === 'string' ? v : typeof v === 'object' ? JSON.stringify(v) : String(v);
  return s === '' || /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function formatCsv(a: SqlAnswer): string {
  const lines = [a.columns.map((c) => csvField(c.name)).join(',')];
  for (const r of a.rows) lines.push(a.columns.map((_, j) => csvField(r[j])).join(','));
  return `${lines.join('\n')}\n`;
}

/** `--param` text → the JSON value sent: numbers, booleans and null as such, the rest as text. */
export function paramValue(text: string): unknown {
  // an integer JSON would round (beyond 2^53) goes as text: DuckDB casts it exactly
  if (/^-?\d+$/.test(text) && !Number.isSafeInteger(Number(text))) return text;
  try {
    const v: unknown = JSON.parse(text);
    if (v === null || typeof v === 'boolean' || typeof v === 'string' || (typeof v === 'number' && Number.isFinite(v))) return v;
  } catch {
    // plain text
  }
  return text;
}

/** Resolves once the text is handed to the OS: the CLI calls process.exit right after. */
export function writeStdout(text: string): Promise<void> {
  return new Promise((resolve, reject) => process.stdout.write(text, (err) => (err ? reject(err) : resolve())));
}

const FORMATS = ['table', 'json', 'csv'] as const;
type QueryFormat = (typeof FORMATS)[number];

export async function runQuery(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    await writeStdout(QUERY_USAGE);
    return 0;
  }
  let values: { url?: string | undefined; format?: string | undefined; param?: string[] | undefined; token?: string | undefined };
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: argv,
      options: {
        url: { type: 'string' },
        format: { type: 'string', short: 'f' },
        param: { type: 'string', short: 'p', multiple: true },
        token: { type: 'string' },
      },
      strict: true,
      allowPositionals: true,
    }));
    if (positionals.length !== 1) throw new Error(positionals.length === 0 ? 'the SQL statement is missing' : `one SQL statement expected, got ${positionals.length} arguments (quote the statement)`);
    if (values.format !== undefined && !(FORMATS as readonly string[]).includes(values.format)) {
      throw new Error(`--format takes ${FORMATS.join(', ')}, got '${values.format}'`);
    }
  } catch (err) {
    process.stderr.write(`sluice query: ${err instanceof Error ? err.message : String(err)}\n\n${QUERY_USAGE}`);
    return 2;
  }
  const format = (values.format ?? 'table') as QueryFormat;
  const sql = positionals[0] === '-' ? readFileSync(0, 'utf8') : positionals[0]!;
  const token = values.token ?? process.env['SLUICE_TOKEN'];
  try {
    const base = httpBase(values.url ?? DEFAULT_HTTP_URL);
    const answer = await requestJson(`${base}/v1/sql`, { method: 'POST', token, body: JSON.stringify({ sql, params: (values.param ?? []).map(paramValue) }) });
    if (!isSqlAnswer(answer.body)) throw new ClientError(null, `unexpected answer from ${base}/v1/sql: ${answer.text.slice(0, 200)}`);
    switch (format) {
      case 'json': await writeStdout(answer.text.endsWith('\n') ? answer.text : `${answer.text}\n`); break;
      case 'csv': await writeStdout(formatCsv(answer.body)); break;
      case 'table': await writeStdout(formatTable(answer.body)); break;
    }
    return 0;
  } catch (err) {
    if (!(err instanceof ClientError)) throw err;
    process.stderr.write(`${err.line}\n`);
    return 1;
  }
}
