/**
 * Tokenizer of the expression language. It accepts a deliberately small alphabet: anything
 * outside it (backticks, double quotes, `;`, `$`, brackets, braces, `.`, `:` ...) is a syntax
 * error at the character itself, so text that looks like JavaScript or like another SQL
 * dialect is rejected before anything else looks at it.
 *
 * Positions are 1-based line:column; columns count Unicode code points, so an emoji inside a
 * string literal moves the column by one.
 */
import { sluiceError } from '../../engine/errors.js';
import type { Pos } from './ast.js';

export type TokenKind = 'ident' | 'number' | 'string' | 'keyword' | 'op' | 'eof';

export const KEYWORDS = ['and', 'or', 'not', 'in', 'between', 'is', 'null', 'true', 'false'] as const;
export type Keyword = (typeof KEYWORDS)[number];

export interface Token extends Pos {
  readonly kind: TokenKind;
  /**
   * ident: the name as written; keyword: lower-cased; op: the operator; number: the literal
   * as written; string: the decoded value (quotes removed, '' turned into ').
   */
  readonly text: string;
}

const KEYWORD_SET: ReadonlySet<string> = new Set(KEYWORDS);

function isDigit(c: number): boolean { return c >= 48 && c <= 57; }
function isIdentStart(c: number): boolean { return (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95; }
function isIdentPart(c: number): boolean { return isIdentStart(c) || isDigit(c); }

function describeChar(ch: string): string {
  const cp = ch.codePointAt(0)!;
  if (cp >= 0x21 && cp <= 0x7e) return `'${ch}'`;
  return `U+${cp.toString(16).toUpperCase().padStart(4, '0')}`;
}

/** Two-character spellings people bring from other languages, with the word to use instead. */
const FOREIGN_OPERATORS: ReadonlyMap<string, string> = new Map([
  ['==', "'==' (use '=')"],
  ['&&', "'&&' (use 'and')"],
  ['||', "'||' (use 'or')"],
  ['=>', "'=>'"],
  ['--', "'--' (comments are not supported)"],
]);

export function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  let line = 1;
  let col = 1;
  const n = text.length;

  const fail = (message: string, l: number, c: number): never => {
    throw sluiceError('EXPR_SYNTAX', `${message} at ${l}:${c}`);
  };

  while (i < n) {
    const c = text.charCodeAt(i);
    // whitespace and newlines (\r\n counts as one line break)
    if (c === 32 || c === 9) { i++; col++; continue; }
    if (c === 10) { i++; line++; col = 1; continue; }
    if (c === 13) {
      i++;
      if (text.charCodeAt(i) === 10) i++;
      line++; col = 1;
      continue;
    }

    const startLine = line;
    const startCol = col;

    if (isIdentStart(c)) {
      let j = i + 1;
      while (j < n && isIdentPart(text.charCodeAt(j))) j++;
      const word = text.slice(i, j);
      const lower = word.toLowerCase();
      if (KEYWORD_SET.has(lower)) tokens.push({ kind: 'keyword', text: lower, line: startLine, col: startCol });
      else tokens.push({ kind: 'ident', text: word, line: startLine, col: startCol });
      col += j - i;
      i = j;
      continue;
    }

    if (isDigit(c)) {
      let j = i;
      while (j < n && isDigit(text.charCodeAt(j))) j++;
      if (text.charCodeAt(j) === 46 && isDigit(text.charCodeAt(j + 1))) {
        j++;
        while (j < n && isDigit(text.charCodeAt(j))) j++;
      }
      const e = text.charCodeAt(j);
      if (e === 101 || e === 69) {
        let k = j + 1;
        const sign = text.charCodeAt(k);
        if (sign === 43 || sign === 45) k++;
        if (isDigit(text.charCodeAt(k))) {
          while (k < n && isDigit(text.charCodeAt(k))) k++;
          j = k;
        }
      }
      // `12abc`, `1.`, `1e`, `0x1F`, `1.2.3`: a number glued to more word characters
      if (j < n && (isIdentPart(text.charCodeAt(j)) || text.charCodeAt(j) === 46)) {
        let k = j;
        while (k < n && (isIdentPart(text.charCodeAt(k)) || text.charCodeAt(k) === 46)) k++;
        fail(`invalid number '${text.slice(i, k)}'`, startLine, startCol);
      }
      tokens.push({ kind: 'number', text: text.slice(i, j), line: startLine, col: startCol });
      col += j - i;
      i = j;
      continue;
    }

    if (c === 39) { // single-quoted string, '' is an escaped quote
      let j = i + 1;
      let value = '';
      let segment = j;
      let l = line;
      let cc = col + 1;
      for (;;) {
        if (j >= n) fail('unterminated string', startLine, startCol);
        const d = text.charCodeAt(j);
        if (d === 39) {
          if (text.charCodeAt(j + 1) === 39) {
            value += text.slice(segment, j + 1);
            j += 2; cc += 2;
            segment = j;
            continue;
          }
          value += text.slice(segment, j);
          j++; cc++;
          break;
        }
        if (d === 10 || (d === 13 && text.charCodeAt(j + 1) !== 10)) { l++; cc = 1; j++; continue; }
        if (d === 13) { j++; continue; }
        // a surrogate pair is one code point, one column
        if (d >= 0xd800 && d <= 0xdbff && j + 1 < n) {
          const lo = text.charCodeAt(j + 1);
          if (lo >= 0xdc00 && lo <= 0xdfff) { j += 2; cc++; continue; }
        }
        j++; cc++;
      }
      tokens.push({ kind: 'string', text: value, line: startLine, col: startCol });
      i = j; line = l; col = cc;
      continue;
    }

    const two = text.slice(i, i + 2);
    const foreign = FOREIGN_OPERATORS.get(two);
    if (foreign !== undefined) fail(`unexpected ${foreign}`, startLine, startCol);
    if (two === '<=' || two === '>=' || two === '!=' || two === '<>') {
      tokens.push({ kind: 'op', text: two === '<>' ? '!=' : two, line: startLine, col: startCol });
      i += 2; col += 2;
      continue;
    }
    switch (c) {
      case 43: case 45: case 42: case 47: case 37: // + - * / %
      case 61: case 60: case 62: // = < >
      case 40: case 41: case 44: // ( ) ,
        tokens.push({ kind: 'op', text: text[i]!, line: startLine, col: startCol });
        i++; col++;
        continue;
      case 33: fail("unexpected '!' (use 'not')", startLine, startCol); break;
      case 34: fail(`unexpected character '"' (string literals use single quotes; quoted names are not supported)`, startLine, startCol); break;
      default: {
        const ch = String.fromCodePoint(text.codePointAt(i)!);
        fail(`unexpected character ${describeChar(ch)}`, startLine, startCol);
      }
    }
  }
  tokens.push({ kind: 'eof', text: '', line, col });
  return tokens;
}
