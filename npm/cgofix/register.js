'use strict';
// `cgofix/register`: loads libcgofix.so into the running process, without
// LD_PRELOAD. The library's constructor sees that it was not preloaded and
// attaches in-process: it rewrites every loaded object's GOT slots for the
// functions it hooks (sigaction and friends, pthread_create, dlopen), so
// everything loaded afterwards, Go libraries included, goes through it
// (README "In-process mode" says what it cannot see that the preload can).
// Import it first:
//
//   import "cgofix/register";                 // first line of the entry,
//   await import("./app.js");                 // then the app (Bun evaluates
//                                             // static CommonJS imports out of
//                                             // order: main README)
//   bunfig.toml: preload = ["cgofix/register"]
//   node --import cgofix/register app.js
//
// Does nothing when LD_PRELOAD already names a libcgofix.so (the preload
// does the job; a second copy would stay inactive anyway).

const fs = require('fs');
const os = require('os');
const path = require('path');

const isBun = typeof Bun !== 'undefined';

/** LD_PRELOAD names a libcgofix*.so (separators: blanks and colons, as ld.so). */
function preloaded() {
  return (process.env.LD_PRELOAD || '')
    .split(/[\s:]+/)
    .some((f) => /^libcgofix[^/]*\.so$/.test(path.basename(f)));
}

/**
 * In a `bun build --compile` executable: the library embedded in it (an
 * embedded file named libcgofix*.so, README "Compiled executables"). The
 * platform package is not there to resolve, and bun:ffi opens a path in
 * the executable's virtual file system (/$bunfs/...) itself (measured:
 * Bun 1.1.45 and 1.3.14, tests/inprocess.rs).
 */
function embeddedLibrary() {
  if (!isBun || !Array.isArray(Bun.embeddedFiles)) return null;
  const f = Bun.embeddedFiles.find((b) => /^libcgofix[^/]*\.so$/.test(path.basename(b.name || '')));
  if (!f) return null;
  return f.name.startsWith('/') ? f.name : `/$bunfs/root/${f.name}`;
}

/**
 * Loads `file`; returns the library's mode (1 preload, 2 in-process,
 * 3 inactive) where the runtime can ask (Bun), else null.
 */
function load(file) {
  if (isBun) {
    const { dlopen, FFIType } = require('bun:ffi');
    const lib = dlopen(file, { cgofix_instance: { args: [FFIType.i32], returns: FFIType.i32 } });
    return lib.symbols.cgofix_instance(0);
  }
  // Node loads libraries only as addons: process.dlopen runs dlopen, finds
  // no module registration, calls dlclose and throws "Module did not
  // self-register". The library is linked with -z nodelete, so that
  // dlclose unmaps nothing and the attached hooks stay (measured:
  // tests/inprocess.rs, `node --import`, the report's mode "in-process"
  // at exit and the late SIGUSR2 handler with SA_ONSTACK). Exporting a
  // `napi_register_module_v1` would avoid the error but adds an N-API
  // entry point to a library that is also preloaded into every process,
  // for nothing the catch does not give.
  try {
    process.dlopen({ exports: {} }, file, os.constants.dlopen.RTLD_NOW);
  } catch (e) {
    if (!/did not self-register/.test(String(e && e.message))) throw e;
  }
  return null;
}

const MODES = { 1: 'preload', 2: 'in-process', 3: 'inactive' };

/** What register did: `skipped` (LD_PRELOAD), or the library's mode. */
let mode = 'skipped';
/** The library loaded, or null. */
let library = null;

if (!preloaded()) {
  library = embeddedLibrary() || require('./index.js').libraryPath();
  const m = load(library);
  mode = m === null ? 'loaded' : MODES[m] || `unknown (${m})`;
}

module.exports = { mode, library };
