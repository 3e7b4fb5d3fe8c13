// Memory of a Worker-heavy Bun: 8 Workers up and idle, then "READY" and a
// pause while the benchmark reads /proc/PID/status.
'use strict';
const src = 'self.onmessage = (e) => postMessage(e.data * 2);';
const url = URL.createObjectURL(new Blob([src], { type: 'application/javascript' }));
(async () => {
  const ws = Array.from({ length: 8 }, () => new Worker(url));
  await Promise.all(ws.map((w, i) => new Promise((r) => { w.onmessage = r; w.postMessage(i); })));
  Bun.gc(true);
  console.log('READY');
  await new Promise((r) => setTimeout(r, 300));
  ws.forEach((w) => w.terminate());
})();
