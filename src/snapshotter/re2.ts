// Go regexp (RE2 syntax) → JavaScript RegExp, for the `~=` operator of containerd filters (./filters.ts).
//
// containerd compiles a `~=` value with Go's regexp.Compile and matches it unanchored (MatchString). We
// rewrite the pattern so a V8 RegExp with the `u` flag means the same thing, and refuse what would mean
// something else or what RE2 itself refuses:
//   - refused as RE2 refuses them: backreferences (\1), lookaround ((?=, (?!, (?<=, (?<!), \C; refusing them
//     also keeps the accepted language inside RE2's;
//   - refused because V8 (Node 20) cannot say them: flags anywhere but at the very start ((?i) mid-pattern,
//     (?i:…) groups), the ungreedy flag U, negated POSIX classes ([[:^alpha:]]);
//   - rewritten: leading (?ims) → RegExp flags; `.` → [^\n] (Go's dot stops only at \n, V8's also at \r,
//     U+2028/9); with (?m), ^ and $ see only \n as a line end, as in Go; \A, \z; \Q…\E; \s, \S (Go's are
//     the five ASCII spaces); \a; \x{…}; octal \0nn; \pL → \p{L} and script names → \p{Script=…};
//     [[:alpha:]] and the other ASCII classes; an escaped ASCII punctuation character (Go allows \: \- \@…,
//     V8's u mode does not) → \xHH; a `{` that starts no repetition, and a lone `}` or `]`, are literals.
// Not reproduced: RE2's linear-time guarantee (a V8 RegExp backtracks; filters come from containerd over the
// snapshotter's socket, not from the network), and \w/\b under (?i), which V8 folds with ſ and K (Kelvin).

export type Re2Result = { ok: true; regexp: RegExp } | { ok: false; offset: number; reason: string };

/** Raised inside the translator only; compileRe2 turns it into its result. */
class Refused {
  constructor(readonly offset: number, readonly reason: string) {}
}

const POSIX: Record<string, string> = {
  alnum: '0-9A-Za-z', alpha: 'A-Za-z', ascii: '\\x00-\\x7f', blank: '\\t ', cntrl: '\\x00-\\x1f\\x7f',
  digit: '0-9', graph: '!-~', lower: 'a-z', print: ' -~', punct: '!-\\/:-@\\[-`{-~',
  space: '\\t\\n\\v\\f\\r ', upper: 'A-Z', word: '0-9A-Za-z_', xdigit: '0-9A-Fa-f',
};
const GO_SPACE = '\\t\\n\\f\\r ';
const GO_NOT_SPACE = '\\x00-\\x08\\x0b\\x0e-\\x1f!-\\u{10ffff}';
const MAX_REPEAT = 1000; // Go refuses a larger {n,m}
const hex2 = (c: string) => '\\x' + c.charCodeAt(0).toString(16).padStart(2, '0');
const isAsciiPunct = (c: string) => /^[!-/:-@[-`{-~]$/.test(c);
const isOctal = (c: string | undefined) => c !== undefined && c >= '0' && c <= '7';

/** Compiles a Go RE2 pattern to a RegExp that matches the same strings, unanchored, as Go's MatchString. */
export function compileRe2(pattern: string): Re2Result {
  try {
    const { source, flags } = translate(pattern);
    return { ok: true, regexp: new RegExp(source, flags) };
  } catch (e) {
    if (e instanceof Refused) return { ok: false, offset: e.offset, reason: e.reason };
    // V8's message repeats the (translated) source: keep only its reason.
    const msg = (e as Error).message;
    return { ok: false, offset: 0, reason: msg.slice(msg.lastIndexOf(': ') + 2) };
  }
}

function translate(p: string): { source: string; flags: string } {
  let i = 0;
  let ignoreCase = false, multiline = false, dotAll = false;
  // Leading flag groups, (?i) (?ms) (?i-s): Go's flags start off, so a `-` list changes nothing.
  const FLAGS = /^\(\?([imsU]*)(?:-([imsU]*))?\)/;
  for (let m = FLAGS.exec(p); m !== null && m[0] !== '(?)' && m[0] !== '(?-)'; m = FLAGS.exec(p.slice(i))) {
    if (m[0].includes('U')) throw new Refused(i, 'the ungreedy flag (?U) is not supported');
    ignoreCase ||= m[1]!.includes('i');
    multiline ||= m[1]!.includes('m');
    dotAll ||= m[1]!.includes('s');
    i += m[0].length;
  }

  const out: string[] = [];
  while (i < p.length) {
    const c = p[i]!;
    if (c === '\\') {
      if (p[i + 1] === 'Q') {
        const end = p.indexOf('\\E', i + 2);
        const lit = p.slice(i + 2, end < 0 ? p.length : end);
        for (const ch of lit) out.push(isAsciiPunct(ch) ? hex2(ch) : ch);
        i = end < 0 ? p.length : end + 2;
        continue;
      }
      i = escape(p, i, false, out);
    } else if (c === '[') {
      i = charClass(p, i, out);
    } else if (c === '(') {
      i = group(p, i, out);
    } else if (c === '{') {
      const m = /^\{(\d+)(,(\d*))?\}/.exec(p.slice(i));
      if (m === null) { out.push('\\{'); i++; continue; }
      const min = Number(m[1]), max = m[3] === undefined || m[3] === '' ? min : Number(m[3]);
      if (min > MAX_REPEAT || max > MAX_REPEAT || max < min) throw new Refused(i, `invalid repeat count ${m[0]}`);
      out.push(m[0]);
      i += m[0].length;
    } else {
      if (c === '}' || c === ']') out.push('\\' + c);
      else if (c === '.') out.push(dotAll ? '.' : '[^\\n]');
      else if (c === '^') out.push(multiline ? '(?<![^\\n])' : '^');
      else if (c === '$') out.push(multiline ? '(?![^\\n])' : '$');
      else out.push(c);
      i++;
    }
  }
  return { source: out.join(''), flags: 'u' + (ignoreCase ? 'i' : '') + (dotAll ? 's' : '') };
}

function group(p: string, i: number, out: string[]): number {
  if (p[i + 1] !== '?') { out.push('('); return i + 1; }
  const rest = p.slice(i + 2);
  if (rest.startsWith(':')) { out.push('(?:'); return i + 3; }
  if (rest.startsWith('P<')) { out.push('(?<'); return i + 4; }
  if (rest.startsWith('<') && rest[1] !== '=' && rest[1] !== '!') { out.push('(?<'); return i + 3; }
  if (/^(=|!|<=|<!)/.test(rest)) throw new Refused(i, 'lookaround is not RE2 syntax');
  if (/^[imsU-]/.test(rest)) throw new Refused(i, 'flags are supported only at the start of the pattern, as (?flags)');
  throw new Refused(i, 'invalid or unsupported Perl syntax');
}

/** [...] from p[i] === '['; returns the index after its ']'. */
function charClass(p: string, i: number, out: string[]): number {
  const start = i;
  out.push('[');
  i++;
  if (p[i] === '^') { out.push('^'); i++; }
  if (p[i] === ']') { out.push('\\]'); i++; } // Go: a ']' first in the class is a literal
  for (;;) {
    const c = p[i];
    if (c === undefined) throw new Refused(start, 'missing closing ]');
    if (c === ']') { out.push(']'); return i + 1; }
    if (c === '[' && p[i + 1] === ':') {
      const end = p.indexOf(':]', i + 2);
      if (end >= 0) {
        const name = p.slice(i + 2, end);
        if (name.startsWith('^')) throw new Refused(i, `negated POSIX class [:${name}:] is not supported`);
        const set = POSIX[name];
        if (set === undefined) throw new Refused(i, `unknown POSIX class [:${name}:]`);
        out.push(set);
        i = end + 2;
        continue;
      }
    }
    if (c === '\\') { i = escape(p, i, true, out); continue; }
    out.push(c === '[' ? '\\[' : c);
    i++;
  }
}

/** One escape from p[i] === '\\'; returns the index after it. */
function escape(p: string, i: number, inClass: boolean, out: string[]): number {
  const e = p[i + 1];
  if (e === undefined) throw new Refused(i, 'trailing backslash');
  switch (e) {
    case 'A': case 'z':
      if (inClass) break;
      out.push(e === 'A' ? '(?<![\\s\\S])' : '(?![\\s\\S])');
      return i + 2;
    case 'b': case 'B':
      if (inClass) break;
      out.push('\\' + e);
      return i + 2;
    case 'd': case 'D': case 'w': case 'W': case 'f': case 'n': case 'r': case 't': case 'v':
      out.push('\\' + e);
      return i + 2;
    case 'a':
      out.push('\\x07');
      return i + 2;
    case 's':
      out.push(inClass ? GO_SPACE : `[${GO_SPACE}]`);
      return i + 2;
    case 'S':
      out.push(inClass ? GO_NOT_SPACE : `[${GO_NOT_SPACE}]`);
      return i + 2;
    case 'x': {
      const m = /^\{([0-9A-Fa-f]+)\}|^[0-9A-Fa-f]{2}/.exec(p.slice(i + 2));
      if (m === null) break;
      const cp = parseInt(m[1] ?? m[0], 16);
      if (cp > 0x10ffff) break;
      out.push(`\\u{${cp.toString(16)}}`);
      return i + 2 + m[0].length;
    }
    case 'p': case 'P': {
      let neg = e === 'P', name: string, len: number;
      if (p[i + 2] === '{') {
        const end = p.indexOf('}', i + 3);
        if (end < 0) break;
        name = p.slice(i + 3, end);
        len = end + 1 - i;
        if (name.startsWith('^')) { neg = !neg; name = name.slice(1); }
      } else {
        name = p[i + 2] ?? '';
        len = 3;
      }
      if (!/^[A-Za-z_]+$/.test(name)) break;
      const prop = /^[A-Z][a-z]?$/.test(name) || name === 'Any' ? name : `Script=${name}`;
      out.push(`\\${neg ? 'P' : 'p'}{${prop}}`);
      return i + len;
    }
    default: {
      if (isOctal(e) && (e === '0' || isOctal(p[i + 2]))) {
        // Go: \0, \0n, \0nn and \nn, \nnn (a lone \1…\7 would be a backreference).
        let j = i + 2, v = Number(e);
        while (j < i + 4 && isOctal(p[j])) v = v * 8 + Number(p[j++]);
        out.push(`\\u{${v.toString(16)}}`);
        return j;
      }
      if (e >= '1' && e <= '9') throw new Refused(i, 'backreferences are not RE2 syntax');
      if (isAsciiPunct(e)) { out.push(hex2(e)); return i + 2; }
    }
  }
  throw new Refused(i, `invalid escape \\${e}`);
}
