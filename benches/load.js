// Time to load one native module (require for .node, bun:ffi dlopen for
// .so), in ms; with "call", until the first call into Go has returned
// (the shim may move the wait for Go's runtime from that call into load).
//   bun|node load.js MODULE [call]
'use strict';
const file = require('path').resolve(process.argv[2]);
const call = process.argv[3] === 'call';
const t0 = performance.now();
if (file.endsWith('.node')) {
  const m = require(file);
  if (call) m.goroutines(1);
} else {
  const { symbols } = require('bun:ffi').dlopen(file, { GoSum: { args: ['i64'], returns: 'i64' } });
  if (call) symbols.GoSum(1);
}
console.log((performance.now() - t0).toFixed(3));
