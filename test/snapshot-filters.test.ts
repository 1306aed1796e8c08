// containerd filter strings against snapshot fields, as a snapshotter's Walk/List applies them (pure).
import * as assert from 'uvu/assert';
import { test } from 'uvu';
import { parseFilters, FilterSyntaxError, type SnapshotFields } from '../src/snapshotter/filters.js';

const REF = 'containerd.io/snapshot.ref';
const CHAIN = 'sha256:' + 'de'.repeat(32);

function snap(over: Partial<SnapshotFields> = {}): SnapshotFields {
  return { name: 'default/12/sha256:' + 'ab'.repeat(32), parent: '', kind: 'committed', labels: {}, ...over };
}
function matches(filter: string | string[], s: SnapshotFields): boolean {
  return parseFilters(typeof filter === 'string' ? [filter] : filter)(s);
}
function syntaxError(filter: string): FilterSyntaxError {
  try {
    parseFilters([filter]);
  } catch (e) {
    assert.instance(e, FilterSyntaxError, filter);
    return e as FilterSyntaxError;
  }
  assert.unreachable(`no FilterSyntaxError for ${JSON.stringify(filter)}`);
  throw new Error('unreachable');
}
/** Go's %q for the strings a snapshotter sees: JSON's escapes are all Go escapes too. */
const goQuote = (s: string) => JSON.stringify(s);

test('no filter, or an empty one, matches everything; a blank one is an error', () => {
  for (const s of [snap(), snap({ kind: 'active', labels: { a: 'b' } })]) {
    assert.ok(matches([], s));
    assert.ok(matches([''], s));
    assert.ok(matches(['', 'name==nothing'], s));
  }
  assert.is(syntaxError(' ').expected, 'expected field or quoted');
});

test('== and != on name, parent and kind', () => {
  const s = snap({ name: 'a', parent: 'p', kind: 'view' });
  assert.ok(matches('name==a', s));
  assert.not.ok(matches('name==b', s));
  assert.ok(matches('name!=b', s));
  assert.not.ok(matches('name!=a', s));
  assert.ok(matches('parent==p', s));
  assert.ok(matches('kind==view', s));
  assert.not.ok(matches('kind==committed', s));
  assert.ok(matches('kind!=active', s));
  for (const kind of ['view', 'active', 'committed'] as const) assert.ok(matches(`kind==${kind}`, snap({ kind })), kind);
});

test('presence: name, parent and kind always (an empty parent too); a label when its key exists', () => {
  const root = snap({ parent: '', labels: { empty: '', x: '1' } });
  assert.ok(matches('name', root));
  assert.ok(matches('parent', root));
  assert.ok(matches('kind', root));
  assert.ok(matches('labels.empty', root));
  assert.ok(matches('labels.x', root));
  assert.not.ok(matches('labels.y', root));
  assert.not.ok(matches('labels', root));
  assert.not.ok(matches('other', root));
  assert.not.ok(matches('labels.x', snap()));
  // Object.prototype is no label
  for (const key of ['constructor', '__proto__', 'toString', 'hasOwnProperty']) assert.not.ok(matches(`labels.${key}`, root), key);
});

test('an absent field compares as the empty string, as containerd\'s selector does', () => {
  const s = snap({ labels: { set: '', other: 'v' } });
  assert.not.ok(matches('labels.missing==v', s));
  assert.not.ok(matches('labels.missing==""', s));
  assert.ok(matches('labels.set==""', s));
  assert.ok(matches('labels.missing!=v', s));
  assert.not.ok(matches('labels.missing!=""', s));
  assert.ok(matches('labels.missing~=^$', s));
  assert.not.ok(matches('labels.missing~="."', s));
  assert.ok(matches('unknown!=x', s));
  assert.not.ok(matches('unknown==""', s));
});

test('field paths: labels.a.b is the label "a.b", quoted parts, only the first part of name/parent/kind', () => {
  const s = snap({ name: 'n', labels: { 'a.b': '1', [REF]: CHAIN, 'with space': 'y', 'my-label_1': 'z', '1abc': 'd', 'q"\\': 'e' } });
  assert.ok(matches('labels.a.b==1', s));
  assert.ok(matches('labels."a.b"==1', s));
  assert.ok(matches('labels."a".b==1', s));
  assert.ok(matches(`labels."${REF}"==${CHAIN}`, s));
  assert.ok(matches('labels.containerd.io', snap({ labels: { 'containerd.io': '' } })));
  assert.ok(matches('labels."with space"==y', s));
  assert.ok(matches('labels.my-label_1==z', s));
  assert.ok(matches('labels.1abc==d', s));
  assert.ok(matches('labels."q\\"\\\\"==e', s));
  assert.ok(matches('labels."\\x61.\\u0062"==1', s));
  assert.ok(matches('name.anything==n', s));
  assert.ok(matches('labels. a.b==1', s), 'spaces before a field');
});

test('bare values hold "/", ":", ".", "=", quotes and other printable runs; only "," and spaces end them', () => {
  const name = 'default/12/sha256:' + 'ab'.repeat(32);
  assert.ok(matches(`name==${name}`, snap({ name })));
  assert.ok(matches(`name==${name},kind==committed`, snap({ name })));
  assert.ok(matches('labels.x==a=b==c', snap({ labels: { x: 'a=b==c' } })));
  assert.ok(matches('labels.x==say"hi"', snap({ labels: { x: 'say"hi"' } })));
  assert.ok(matches("labels.x=='q'", snap({ labels: { x: "'q'" } })), 'single quotes are no quotes');
  assert.ok(matches('labels.x==1.2.3-rc/4+x', snap({ labels: { x: '1.2.3-rc/4+x' } })));
  assert.ok(matches('labels.x==été→€', snap({ labels: { x: 'été→€' } })));
  assert.ok(matches('name== a', snap({ name: 'a' })), 'spaces before a value');
  assert.ok(matches('name ==a', snap({ name: 'a' })), 'spaces before an operator');
});

test('quoted values: commas and spaces inside, Go escapes', () => {
  const eq = (filter: string, value: string) => assert.ok(matches(`labels.x==${filter}`, snap({ labels: { x: value } })), filter);
  eq('"a b, c"', 'a b, c');
  eq('""', '');
  eq('"\\a\\b\\f\\n\\r\\t\\v\\\\\\""', '\x07\b\f\n\r\t\v\\"');
  eq('"\\x41\\101\\u00e9\\U0001F600"', 'AAé😀');
  eq('"\\xc3\\xa9"', 'é');
  eq('"\\ud800"', '\ufffd');
  eq('"é😀,/|"', 'é😀,/|');
  // bytes that are not UTF-8 name no string: == never, != always
  assert.not.ok(matches('labels.x=="\\xff"', snap({ labels: { x: '\ufffd' } })));
  assert.ok(matches('labels.x!="\\xff"', snap({ labels: { x: '\ufffd' } })));
  assert.not.ok(matches('labels."\\xff"', snap({ labels: { '\ufffd': '' } })));
});

test('Go %q of any key round-trips (the metadata snapshotter quotes the parent with %q)', () => {
  for (const key of ['default/3/sha256:' + 'cd'.repeat(32), 'a "quoted" \\ key', 'tab\there', 'ctl\x01\x7f', 'é😀', '']) {
    assert.ok(matches(`parent==${goQuote(key)}`, snap({ parent: key })), key);
    assert.not.ok(matches(`parent==${goQuote(key)}`, snap({ parent: key + 'x' })), key);
  }
});

test('the filter containerd\'s metadata snapshotter sends to find a remote snapshot (with a parent)', () => {
  const parent = 'default/3/sha256:' + 'cd'.repeat(32);
  const filter = `labels.${goQuote(REF)}==${CHAIN},parent==${goQuote(parent)}`;
  assert.is(filter, `labels."containerd.io/snapshot.ref"==${CHAIN},parent=="${parent}"`);
  const target = snap({ parent, labels: { [REF]: CHAIN } });
  assert.ok(matches(filter, target));
  assert.not.ok(matches(filter, snap({ parent: '', labels: { [REF]: CHAIN } })), 'other parent');
  assert.not.ok(matches(filter, snap({ parent: parent + '0', labels: { [REF]: CHAIN } })), 'longer parent');
  assert.not.ok(matches(filter, snap({ parent, labels: { [REF]: CHAIN.slice(0, -1) } })), 'other ref');
  assert.not.ok(matches(filter, snap({ parent })), 'no ref label');
  assert.ok(matches(filter, { ...target, kind: 'active' }), 'kind is the caller\'s to check');
});

test('... and with an empty parent: parent=="" matches only a root; parent== is a syntax error', () => {
  const filter = `labels."${REF}"==${CHAIN},parent==""`;
  assert.ok(matches(filter, snap({ labels: { [REF]: CHAIN } })));
  assert.not.ok(matches(filter, snap({ parent: 'default/1/x', labels: { [REF]: CHAIN } })));
  const e = syntaxError(`labels."${REF}"==${CHAIN},parent==`);
  assert.is(e.position, e.filter.length);
  assert.is(e.expected, 'expected value or quoted');
  assert.is(syntaxError('parent==,name==x').position, 8);
});

test('AND within a filter, OR across filters', () => {
  const a = snap({ name: 'a', kind: 'active', labels: { l: '1' } });
  const b = snap({ name: 'b', kind: 'committed', labels: { l: '2' } });
  assert.ok(matches('name==a,kind==active,labels.l==1', a));
  assert.not.ok(matches('name==a,kind==committed', a));
  assert.not.ok(matches('name==a,labels.l==2', a));
  const either = ['name==a,kind==active', 'labels.l==2'];
  assert.ok(matches(either, a));
  assert.ok(matches(either, b));
  assert.not.ok(matches(either, snap({ name: 'c' })));
  assert.not.ok(matches(['name==x', 'name==y'], a));
});

test('~=: unanchored Go regexp, bare or quoted with /…/ or |…|', () => {
  const s = snap({ name: 'default/12/sha256:abc', labels: { v: 'v1.2.3', ml: 'one\ntwo', greek: 'αβγ' } });
  assert.ok(matches('name~=sha256', s));
  assert.ok(matches('name~=^default/[0-9]+/sha256:[a-f]+$', s));
  assert.not.ok(matches('name~=^sha256', s));
  assert.ok(matches('labels.v~=/^v[0-9]+\\\\.[0-9]+/', s), 'a /quoted/ pattern needs \\\\ for \\');
  assert.ok(matches('labels.v~=^v\\d\\.\\d', s), 'a bare pattern needs no doubling');
  assert.ok(matches('labels.v~=|^v1|', s));
  assert.ok(matches('name~=/default\\/12/', s), '\\/ inside /…/');
  assert.ok(matches('name~="^default/"', s));
  assert.ok(matches('labels.v~=/[abc]{0,1}"/,name!=foo', snap({ labels: { v: '"' } })));
  assert.ok(matches('kind~=^(view|committed)$', s));
  assert.not.ok(matches('kind~=^(view|active)$', s));
});

test('~=: Go regexp features mapped to JavaScript', () => {
  const ml = snap({ labels: { x: 'one\ntwo', y: 'αβγ', z: 'a.b:c', w: 'A1 \u00a0', r: 'a\rb' } });
  const yes = (re: string) => assert.ok(matches(`labels.x~=${re}`, ml) || matches(`labels.y~=${re}`, ml) || matches(`labels.z~=${re}`, ml), re);
  const on = (f: string, re: string, expect: boolean) => assert.is(matches(`labels.${f}~=${re}`, ml), expect, `${f} ~= ${re}`);
  on('x', '(?i)ONE', true);
  on('x', 'ONE', false);
  on('x', 'one.two', false);
  on('x', '(?s)one.two', true);
  on('r', 'a.b', true); // Go's dot stops only at \n
  on('x', '^two', false);
  on('x', '(?m)^two$', true);
  on('x', '(?m)one$', true);
  on('x', '\\Aone', true);
  on('x', 'two\\z', true);
  on('x', '\\Atwo', false);
  on('y', '^\\pL+$', true);
  on('y', '^\\p{Greek}+$', true);
  on('y', '\\p{^Greek}', false);
  on('z', '^[[:alpha:].:]+$', true);
  on('z', '[[:digit:]]', false);
  on('z', '\\Qa.b\\E', true);
  on('z', 'a\\:?b', false);
  on('z', 'b\\:c', true);
  on('z', '^a{1}', true);
  on('z', 'x{', false);
  on('z', '(?P<first>a)', true);
  on('w', '^A\\d\\s', true);
  on('w', '^A1\\s\\s', false); // Go's \s is the ASCII spaces only, not U+00A0
  on('w', '^A1\\s\\S', true);
  on('w', '^[\\S]\\S\\s[\\S]$', true);
  on('w', '\\x{41}\\061', true);
  yes('t\\x77o');
});

test('~=: patterns Go refuses, or that JavaScript cannot mean the same way, are syntax errors', () => {
  for (const re of ['[a', '(a', 'a**', '(?=a)', '(?!a)', '(?<=a)b', '(a)\\1', 'a{1001}', '/a{3,2}/', '(?U)a+', 'a(?i)b', '(?i:a)',
    '[[:^alpha:]]', '[[:nope:]]', '\\C', '\\q', '/\\d/', '/a\\.b/', '\\']) {
    const e = syntaxError(`labels.x~=${re}`);
    assert.ok(e.expected.startsWith('invalid regular expression') || e.expected === 'illegal escape sequence' ||
      e.expected === 'quoted literal not terminated', `${re}: ${e.expected}`);
    assert.ok(e.position >= 'labels.x~='.length, re); // the value, or the bad escape in a /quoted/ one
  }
});

test('malformed filters: positions and what was expected', () => {
  const cases: Array<[string, number, string]> = [
    ['name=="abc', 6, 'quoted literal not terminated'],
    ['labels."abc==x', 7, 'quoted literal not terminated'],
    ['name=="a\nb"', 6, 'quoted literal not terminated'],
    ['labels.ns/key==value', 9, 'quoted literal not terminated'],
    ['labels.key==/value', 12, 'quoted literal not terminated'],
    ['name==', 6, 'expected value or quoted'],
    ['name== ', 7, 'expected value or quoted'],
    ['image~=,id?=?fbaq', 7, 'expected value or quoted'],
    ['name==x,', 8, 'expected field or quoted'],
    ['labels.x~=.*', 10, 'expected value or quoted'],
    ['name==!x', 4, 'unsupported operator "==!"'],
    ['name== !x', 7, 'expected value or quoted'],
    [',name==x', 0, 'expected field or quoted'],
    ['name==x,,kind==view', 8, 'expected field or quoted'],
    ['labels.', 7, 'expected field or quoted'],
    ['labels.?"x"', 7, 'expected field or quoted'],
    ['==x', 0, 'expected field or quoted'],
    ['name x', 5, 'expected an operator ("==" | "!=" | "~=")'],
    ['name ,kind', 5, 'expected an operator ("==" | "!=" | "~=")'],
    ['name===x', 4, 'unsupported operator "==="'],
    ['name=x', 4, 'unsupported operator "="'],
    ['name~x', 4, 'unsupported operator "~"'],
    ['name==x ', 7, "unexpected input: expected ',' or the end of the filter"],
    ['name==x ,kind==view', 7, "unexpected input: expected ',' or the end of the filter"],
    ['name=="x"y', 9, "unexpected input: expected ',' or the end of the filter"],
    ['name=="a\\qb"', 8, 'illegal escape sequence'],
    ['name=="\\/"', 7, 'illegal escape sequence'],
    ["name==\"\\'\"", 7, 'illegal escape sequence'],
    ['name=="\\x4"', 7, 'illegal numeric escape sequence'],
    ['name=="\\u12"', 7, 'illegal numeric escape sequence'],
    ['name=="\\400"', 7, 'octal escape \\400 is above \\377'],
    ['name=="\\U00110000"', 7, 'escape beyond U+10FFFF'],
    ['labels.|foo|==x', 7, 'invalid quote: a field is quoted with "…"'],
    ['labels./foo/', 7, 'invalid quote: a field is quoted with "…"'],
    ['name==/x/', 6, 'invalid quote: only a ~= value may be quoted with /…/ or |…|'],
    ['name!=|x|', 6, 'invalid quote: only a ~= value may be quoted with /…/ or |…|'],
    ['name==a\0b', 7, 'unexpected null'],
    ['name==\ud800', 6, 'invalid UTF-16 (a lone surrogate)'],
  ];
  for (const [filter, position, expected] of cases) {
    const e = syntaxError(filter);
    assert.is(e.expected, expected, JSON.stringify(filter));
    assert.is(e.position, position, JSON.stringify(filter));
    assert.is(e.filter, filter);
    assert.ok(e.message.includes(`position ${position}`) && e.message.includes(expected), e.message);
  }
});

test('the error names the filter, the position and the character there', () => {
  const e = syntaxError('labels.ns/key==value');
  assert.is(e.name, 'FilterSyntaxError');
  assert.instance(e, Error);
  assert.is(e.message, 'filter "labels.ns/key==value", position 9 (at "/"): quoted literal not terminated');
  assert.is(syntaxError('name==x,').message, 'filter "name==x,", position 8 (the end): expected field or quoted');
});

test('one bad filter among several fails the whole list', () => {
  assert.throws(() => parseFilters(['name==a', 'name==']), (e: unknown) => e instanceof FilterSyntaxError && e.filter === 'name==');
});

test.run();
