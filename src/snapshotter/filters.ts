// containerd's filter syntax as a snapshotter's Walk (the List RPC) applies it: containerd's pkg/filters
// (parser.go for the grammar, scanner.go for what a token may hold, quote.go for the escapes, filter.go for
// what each operator means) over the fields of core/metadata/adaptors.go adaptSnapshot.
//
//   filter    := selector (',' selector)*            all must hold; parseFilters ORs whole filters
//   selector  := fieldpath [operator value]          no operator: the field is present
//   fieldpath := field ('.' field)*
//   field     := [A-Za-z0-9_-]+ | "quoted"
//   operator  := '==' | '!=' | '~='                  ~= is an unanchored Go RE2 match (./re2.ts)
//   value     := a run of letters, marks, numbers, punctuation and symbols but ',' (so '/', ':', '.', '='
//                and '"' inside are fine) | "quoted" | /quoted/ or |quoted| after ~= only
//   quoted    := Go string syntax: \a \b \f \n \r \t \v \\, the quote itself, \ooo, \xhh, \uhhhh, \Uhhhhhhhh
//
// The rules, as containerd has them:
//   - Spaces may come before a field, an operator or a value; after a value or a bare fieldpath they are an
//     error (the parser looks at the next character without skipping them). '' matches all; ' ' is an error.
//   - A bare value cannot start with ',' '.' (separators), '=' '!' '~' (taken into the operator: `name==!x`
//     is the operator "==!") or '"' '/' '|' (quotes): `~=.*` is an error, `~=".*"` is not.
//   - `parent==` with nothing after the operator is a syntax error: containerd's metadata snapshotter sends
//     `labels."containerd.io/snapshot.ref"==<chain id>,parent=="<backend parent key>"` (Go's %q), so an
//     empty parent arrives as `parent==""`.
//   - name, parent and kind are always present (an empty parent too: bare `parent` matches every snapshot);
//     only their first path component counts (`name.x` is `name`). labels.<a>.<b> looks up the label "a.b"
//     (components joined with '.'), present when the key exists, even with an empty value. Anything else is
//     absent.
//   - An absent field compares as '': `==` is false, `!=` is true unless the value is '', and `~=` matches
//     the pattern against '' (so `labels.x~=^$` holds for a missing label).
//   - A /regexp/ is a quoted string first: `\.` is an illegal escape there (write `\\.`, or leave the value
//     bare: `~=^sha256:[0-9a-f]+$` needs no quotes).
// Deviations:
//   - A ~= pattern that does not compile is a FilterSyntaxError here; containerd accepts the filter, logs
//     the regexp error and lets the selector match nothing.
//   - Positions are offsets in the JavaScript string (UTF-16 units), not bytes; an escape error points at
//     the backslash, not at the opening quote.
//   - A quoted string whose escapes spell bytes that are not UTF-8 (`"\xff"`) names no label and equals no
//     value, which is what comparing it with containerd's (always UTF-8) strings gives.

import { compileRe2 } from './re2.js';

export interface SnapshotFields { name: string; parent: string; kind: 'view' | 'active' | 'committed'; labels: Record<string, string> }
export type SnapshotFilter = (s: SnapshotFields) => boolean;

export class FilterSyntaxError extends Error {
  /** The filter string at fault, its offset, and what the parser expected or refused there. */
  constructor(readonly filter: string, readonly position: number, readonly expected: string) {
    super(`filter ${JSON.stringify(filter)}, position ${position}` +
      `${position < filter.length ? ` (at ${JSON.stringify(String.fromCodePoint(filter.codePointAt(position)!))})` : ' (the end)'}: ${expected}`);
    this.name = 'FilterSyntaxError';
  }
}

/** ORs the filters (each a containerd filter string); [] or [''] matches everything. Throws FilterSyntaxError (a class you export, message naming the position and what was expected) on bad syntax. */
export function parseFilters(filters: readonly string[]): SnapshotFilter {
  if (filters.length === 0) return () => true;
  const alternatives = filters.map((f) => (f === '' ? [] : new Parser(f).filter()));
  return (s) => alternatives.some((selectors) => selectors.every((sel) => sel(s)));
}

type Selector = (s: SnapshotFields) => boolean;
/** A field's value, or undefined when the snapshot has no such field. */
type Field = (s: SnapshotFields) => string | undefined;
/** A quoted string's value; null when its escapes spell bytes that are not UTF-8. */
type Text = string | null;
type Token =
  | { kind: 'end'; pos: number }
  | { kind: 'field' | 'value' | 'operator' | 'other'; pos: number; text: string }
  | { kind: 'separator'; pos: number; text: ',' | '.' }
  | { kind: 'quoted'; pos: number; quote: string; text: Text };

const isSpace = (c: string) => /^\p{White_Space}$/u.test(c);
const isFieldChar = (c: string) => /^[A-Za-z0-9_-]$/.test(c);
// Go: !IsSpace && (IsLetter || IsDigit || IsNumber || IsGraphic || IsPunct), and not ','.
const isValueChar = (c: string) => c !== ',' && /^[\p{L}\p{M}\p{N}\p{P}\p{S}]$/u.test(c);
const QUOTES = '"/|';
const SIMPLE_ESCAPES: Record<string, number> = { a: 7, b: 8, f: 12, n: 10, r: 13, t: 9, v: 11, '\\': 92 };
const utf8 = new TextDecoder('utf-8', { fatal: true });
const encoder = new TextEncoder();

function snapshotField(path: readonly Text[]): Field {
  switch (path[0]) {
    case 'kind': return (s) => s.kind;
    case 'name': return (s) => s.name;
    case 'parent': return (s) => s.parent;
    case 'labels': {
      const rest = path.slice(1);
      if (rest.includes(null)) return () => undefined;
      const key = rest.join('.');
      return (s) => (Object.hasOwn(s.labels, key) ? s.labels[key] : undefined);
    }
  }
  return () => undefined;
}

class Parser {
  private i = 0;
  constructor(private readonly input: string) {}

  filter(): Selector[] {
    const selectors = [this.selector()];
    for (;;) {
      const c = this.peek();
      if (c === '') return selectors;
      if (c !== ',') throw this.error(this.i, `unexpected input: expected ',' or the end of the filter`);
      this.scan(false);
      selectors.push(this.selector());
    }
  }

  private selector(): Selector {
    const field = snapshotField(this.fieldpath());
    const next = this.peek();
    if (next === ',' || next === '') return (s) => field(s) !== undefined;
    const op = this.operator();
    const { pos, text: value } = this.value(op === '~=');
    switch (op) {
      case '==': return (s) => { const v = field(s); return v !== undefined && v === value; };
      case '!=': return (s) => (field(s) ?? '') !== value;
      case '~=': {
        if (value === null) throw this.error(pos, 'invalid regular expression: not UTF-8');
        const re = compileRe2(value);
        if (!re.ok) throw this.error(pos, `invalid regular expression: ${re.reason}${re.offset > 0 ? ` (pattern offset ${re.offset})` : ''}`);
        const regexp = re.regexp;
        return (s) => regexp.test(field(s) ?? '');
      }
    }
  }

  private fieldpath(): Text[] {
    const path = [this.field()];
    while (this.peek() === '.') {
      this.scan(false);
      path.push(this.field());
    }
    return path;
  }

  private field(): Text {
    const t = this.scan(false);
    if (t.kind === 'field') return t.text;
    if (t.kind === 'quoted') {
      if (t.quote !== '"') throw this.error(t.pos, 'invalid quote: a field is quoted with "…"');
      return t.text;
    }
    throw this.error(t.pos, 'expected field or quoted');
  }

  private operator(): '==' | '!=' | '~=' {
    const t = this.scan(false);
    if (t.kind !== 'operator') throw this.error(t.pos, 'expected an operator ("==" | "!=" | "~=")');
    if (t.text === '==' || t.text === '!=' || t.text === '~=') return t.text;
    throw this.error(t.pos, `unsupported operator ${JSON.stringify(t.text)}`);
  }

  private value(regexp: boolean): { pos: number; text: Text } {
    const t = this.scan(true);
    if (t.kind === 'value' || t.kind === 'field') return t;
    if (t.kind === 'quoted') {
      if (t.quote !== '"' && !regexp) throw this.error(t.pos, 'invalid quote: only a ~= value may be quoted with /…/ or |…|');
      return t;
    }
    throw this.error(t.pos, 'expected value or quoted');
  }

  // ---- scanner (containerd's scanner.go) ----

  /** The character at i, '' at the end; NUL and lone surrogates are errors wherever they are. */
  private charAt(i: number): string {
    const cp = this.input.codePointAt(i);
    if (cp === undefined) return '';
    if (cp === 0) throw this.error(i, 'unexpected null');
    if (cp >= 0xd800 && cp <= 0xdfff) throw this.error(i, 'invalid UTF-16 (a lone surrogate)');
    return String.fromCodePoint(cp);
  }

  private peek(): string {
    return this.charAt(this.i);
  }

  /** The next token after any spaces; `value` after an operator, where any printable run is a value. */
  private scan(value: boolean): Token {
    let c = this.peek();
    while (c !== '' && isSpace(c)) { this.i += c.length; c = this.peek(); }
    const pos = this.i;
    if (c === '') return { kind: 'end', pos };
    this.i += c.length;
    if (QUOTES.includes(c)) return { kind: 'quoted', pos, quote: c, text: this.quoted(pos, c) };
    if (c === ',' || c === '.') return { kind: 'separator', pos, text: c };
    if ('=!~'.includes(c)) {
      this.skipWhile((ch) => '=!~'.includes(ch));
      return { kind: 'operator', pos, text: this.input.slice(pos, this.i) };
    }
    if (value) {
      this.skipWhile(isValueChar);
      return { kind: 'value', pos, text: this.input.slice(pos, this.i) };
    }
    if (isFieldChar(c)) {
      this.skipWhile(isFieldChar);
      return { kind: 'field', pos, text: this.input.slice(pos, this.i) };
    }
    return { kind: 'other', pos, text: c };
  }

  private skipWhile(ok: (c: string) => boolean): void {
    for (let c = this.peek(); c !== '' && ok(c); c = this.peek()) this.i += c.length;
  }

  /** The rest of a string opened at `start` by `quote`, decoded as Go's strconv.Unquote would. */
  private quoted(start: number, quote: string): Text {
    const bytes: number[] = [];
    for (;;) {
      const c = this.peek();
      if (c === '' || c === '\n') throw this.error(start, 'quoted literal not terminated');
      this.i += c.length;
      if (c === quote) break;
      if (c !== '\\') { bytes.push(...encoder.encode(c)); continue; }
      const at = this.i - 1;
      const e = this.peek();
      if (e === '') throw this.error(start, 'quoted literal not terminated');
      this.i += e.length;
      if (e in SIMPLE_ESCAPES) bytes.push(SIMPLE_ESCAPES[e]!);
      else if (e === quote) bytes.push(quote.charCodeAt(0));
      else if (e >= '0' && e <= '7') {
        const v = parseInt(e + this.digits(at, 8, 2), 8);
        if (v > 255) throw this.error(at, `octal escape \\${v.toString(8)} is above \\377`);
        bytes.push(v);
      } else if (e === 'x') bytes.push(parseInt(this.digits(at, 16, 2), 16));
      else if (e === 'u' || e === 'U') {
        let cp = parseInt(this.digits(at, 16, e === 'u' ? 4 : 8), 16);
        if (cp > 0x10ffff) throw this.error(at, 'escape beyond U+10FFFF');
        if (cp >= 0xd800 && cp <= 0xdfff) cp = 0xfffd; // Go's utf8.EncodeRune of a surrogate
        bytes.push(...encoder.encode(String.fromCodePoint(cp)));
      } else throw this.error(at, 'illegal escape sequence');
    }
    try {
      return utf8.decode(new Uint8Array(bytes));
    } catch {
      return null;
    }
  }

  private digits(at: number, base: 8 | 16, n: number): string {
    const s = this.input.slice(this.i, this.i + n);
    const ok = base === 8 ? /^[0-7]+$/ : /^[0-9A-Fa-f]+$/;
    if (s.length < n || !ok.test(s)) throw this.error(at, 'illegal numeric escape sequence');
    this.i += n;
    return s;
  }

  private error(pos: number, expected: string): FilterSyntaxError {
    return new FilterSyntaxError(this.input, pos, expected);
  }
}
