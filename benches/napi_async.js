// N-API async work throughput into Go: N works, 64 in flight; prints
// microseconds per work.   bun|node napi_async.js MODULE N
'use strict';
const m = require(require('path').resolve(process.argv[2]));
const n = Number(process.argv[3] || 2000);
(async () => {
  await m.asyncWork(10); // Go runtime initialised, pool threads up
  const t0 = process.hrtime.bigint();
  let next = 0;
  const lane = async () => { while (next < n) { next++; await m.asyncWork(100); } };
  await Promise.all(Array.from({ length: 64 }, lane));
  const us = Number(process.hrtime.bigint() - t0) / 1000 / n;
  console.log(us.toFixed(3));
})();
