#!/usr/bin/env node
'use strict';
// `cgofix` from node_modules/.bin: runs the platform package's executable
// with this process's arguments and stdio, and leaves with its exit status,
// or dies of the signal that killed it. On a platform without cgofix (or
// with the platform package missing) it prints one line and exits 3.

const { spawn } = require('child_process');
const os = require('os');
const cgofix = require('..');

let cli;
try {
  cli = cgofix.cliPath();
} catch (e) {
  if (e.code !== 'CGOFIX_UNSUPPORTED') throw e;
  process.stderr.write(`${e.message}\n`);
  process.exit(cgofix.UNSUPPORTED_EXIT_CODE);
}

const child = spawn(cli, process.argv.slice(2), { stdio: 'inherit' });

// Node has no exec(): the executable runs as a child. Signals aimed at this
// process alone (kill PID, a supervisor's SIGTERM) are passed on. SIGINT and
// SIGQUIT come from the terminal to the whole foreground process group, the
// child included, so they are only kept from killing this process before
// the child has finished (passing them on would deliver them twice).
const forwarded = ['SIGTERM', 'SIGHUP', 'SIGUSR2'];
const handlers = new Map();
for (const sig of forwarded) handlers.set(sig, () => child.kill(sig));
for (const sig of ['SIGINT', 'SIGQUIT']) handlers.set(sig, () => {});
for (const [sig, h] of handlers) process.on(sig, h);

child.on('error', (e) => {
  // The CLI's own convention for a command that cannot start (127: missing,
  // 126: not executable), as for `cgofix run`.
  process.stderr.write(`cgofix: cannot run ${cli}: ${e.message}\n`);
  process.exit(e.code === 'ENOENT' ? 127 : 126);
});

child.on('exit', (code, signal) => {
  for (const [sig, h] of handlers) process.off(sig, h);
  if (signal) {
    // Die of the same signal, so callers see what the shell would have.
    process.kill(process.pid, signal);
    // Still alive a moment later: the runtime ignores that signal (Node
    // ignores SIGPIPE), so report it the way shells do.
    setTimeout(() => process.exit(128 + (os.constants.signals[signal] || 0)), 500);
    return;
  }
  process.exit(code);
});
