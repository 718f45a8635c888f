// bench_tokenizer.js - encodes a text file with the npm gpt-3-encoder (the reference),
// the way a caller of that package would: one encode() call per document, the documents
// being the "<|endoftext|>"-separated parts (the package does not know the special
// token; 50256 is put between the parts, as the C tokenizer does).
//   node bench/bench_tokenizer.js TEXT_FILE IDS_OUT
// Writes the ids space-separated on one line to IDS_OUT (the format of
// `backpack tokenizer encode`) and prints the line of `backpack tokenizer encode --stats`:
// "npm: B bytes, N ids, S s, X MB/s, cpu C s, Y MB/s" (wall clock, then process CPU time).
'use strict';
const fs = require('fs');
const path = require('path');
const encoder = require(path.join(__dirname, '..', 'data/npm/node_modules/gpt-3-encoder'));
const [file, idsOut] = process.argv.slice(2);
const buf = fs.readFileSync(file);
const text = buf.toString('utf8');
const t0 = process.hrtime.bigint();
const c0 = process.cpuUsage();
const parts = text.split('<|endoftext|>');
const ids = [];
parts.forEach((part, k) => {
  if (k > 0) ids.push(50256);
  if (part.length) for (const id of encoder.encode(part)) ids.push(id);
});
const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
const cpu = process.cpuUsage(c0);
const cpuSeconds = (cpu.user + cpu.system) / 1e6;
fs.writeFileSync(idsOut, ids.join(' ') + '\n');
console.log(`npm: ${buf.length} bytes, ${ids.length} ids, ${seconds.toFixed(3)} s, ` +
            `${(buf.length / 1e6 / seconds).toFixed(3)} MB/s, cpu ${cpuSeconds.toFixed(3)} s, ` +
            `${(buf.length / 1e6 / cpuSeconds).toFixed(3)} MB/s`);
