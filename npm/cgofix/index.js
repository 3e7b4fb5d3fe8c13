'use strict';
// Where this machine's cgofix files are. They live in a per-platform package
// (@cgofix/linux-x64-gnu, @cgofix/linux-arm64-gnu) that npm and bun install from optionalDependencies
// only where its `os`/`cpu`/`libc` fields match, the way esbuild and swc ship
// native binaries (docs/background.md §10); nothing is downloaded or built
// at install time.
//
// CGOFIXTEST_PLATFORM=<os>-<cpu>[-<libc>] (e.g. linux-x64-musl, darwin-arm64)
// replaces the detected platform. It exists for cgofix's own tests (the
// unsupported-platform messages) and is not a supported setting.

const fs = require('fs');
const path = require('path');

const version = require('./package.json').version;

/** Platform (`<os>-<cpu>-<libc>`) -> the package that carries its files. */
const PACKAGES = {
  'linux-x64-gnu': '@cgofix/linux-x64-gnu',
  'linux-arm64-gnu': '@cgofix/linux-arm64-gnu',
};

/** Exit status of bin/cgofix.js when this platform has no cgofix. */
const UNSUPPORTED_EXIT_CODE = 3;

/**
 * The ELF interpreter (PT_INTERP) of `file`, e.g. /lib64/ld-linux-x86-64.so.2
 * or /lib/ld-musl-x86_64.so.1; null when it has none or cannot be read.
 */
function elfInterpreter(file) {
  let fd;
  try {
    fd = fs.openSync(file, 'r');
    const h = Buffer.alloc(64);
    // 64-bit little-endian only: the only kind any cgofix platform runs.
    if (fs.readSync(fd, h, 0, 64, 0) !== 64 || h.readUInt32BE(0) !== 0x7f454c46 || h[4] !== 2 || h[5] !== 1) {
      return null;
    }
    const phoff = Number(h.readBigUInt64LE(32));
    const phentsize = h.readUInt16LE(54);
    const phnum = h.readUInt16LE(56);
    const ph = Buffer.alloc(phentsize * phnum);
    fs.readSync(fd, ph, 0, ph.length, phoff);
    for (let i = 0; i < phnum; i++) {
      const e = i * phentsize;
      if (ph.readUInt32LE(e) !== 3 /* PT_INTERP */) continue;
      const size = Math.min(Number(ph.readBigUInt64LE(e + 32)), 4096);
      const s = Buffer.alloc(size);
      fs.readSync(fd, s, 0, size, Number(ph.readBigUInt64LE(e + 8)));
      return s.toString('latin1').replace(/\0.*$/s, '');
    }
    return null;
  } catch (_) {
    return null;
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/** `gnu` or `musl`: the C library of the runtime running this code. */
function linuxLibc() {
  const interp = elfInterpreter(process.execPath);
  if (interp) return interp.includes('musl') ? 'musl' : 'gnu';
  // A statically linked runtime: ask it, then look for musl's loader.
  const report = process.report && typeof process.report.getReport === 'function' ? process.report.getReport() : null;
  if (report && report.header && report.header.glibcVersionRuntime) return 'gnu';
  try {
    if (fs.readdirSync('/lib').some((n) => n.startsWith('ld-musl-'))) return 'musl';
  } catch (_) {
    // no /lib: nothing to go on, assume the common case
  }
  return 'gnu';
}

function detectPlatform() {
  const forced = process.env.CGOFIXTEST_PLATFORM;
  if (forced) return forced;
  const base = `${process.platform}-${process.arch}`;
  return process.platform === 'linux' ? `${base}-${linuxLibc()}` : base;
}

/** This machine's platform, e.g. `linux-x64-gnu`. */
const platform = detectPlatform();

/** The package carrying this platform's files, or null if there is none. */
const platformPackage = Object.prototype.hasOwnProperty.call(PACKAGES, platform) ? PACKAGES[platform] : null;

/** Why this platform has no cgofix, and what to do: one line. */
function unsupportedReason() {
  const [os, cpu, libc] = platform.split('-');
  const supported = Object.keys(PACKAGES).join(', ');
  if (os === 'linux' && libc === 'musl') {
    // docs/background.md §9: stock Go c-shared libraries fail to load on
    // musl (golang/go#54805: initial-exec TLS; golang/go#13492: no argv in
    // the library's init), so a musl process never holds a Go runtime.
    return (
      `cgofix: ${platform} is not supported: Go c-shared libraries do not load on musl at all ` +
      '(golang/go#54805, golang/go#13492), so there is nothing to fix; run the app on a glibc ' +
      'system (e.g. an oven/bun *-slim or *-debian image instead of *-alpine)'
    );
  }
  if (os === 'linux') {
    return (
      `cgofix: ${platform} is not supported: this release has packages for ${supported} only; ` +
      'run the app on Linux x64 or arm64 with glibc (e.g. a linux/amd64 or linux/arm64 image)'
    );
  }
  return (
    `cgofix: ${platform} is not supported: cgofix is an LD_PRELOAD library for Linux with glibc ` +
    `(packages: ${supported}); run the app on Linux x64 or arm64, e.g. in Docker (oven/bun *-slim images)`
  );
}

function unsupported(message) {
  const e = new Error(message);
  e.code = 'CGOFIX_UNSUPPORTED';
  e.exitCode = UNSUPPORTED_EXIT_CODE;
  return e;
}

/** The installed platform package's directory; throws when missing. */
function packageDir() {
  if (!platformPackage) throw unsupported(unsupportedReason());
  let manifest;
  try {
    manifest = require.resolve(`${platformPackage}/package.json`);
  } catch (_) {
    throw unsupported(
      `cgofix: ${platform}: its package ${platformPackage} is not installed (were optional ` +
        `dependencies omitted?); add it: npm i -D ${platformPackage}@${version} or bun add -d ${platformPackage}@${version}`,
    );
  }
  return path.dirname(manifest);
}

function packageFile(name) {
  const p = path.join(packageDir(), name);
  if (!fs.existsSync(p)) {
    throw unsupported(`cgofix: ${platform}: ${p} is missing from ${platformPackage}; reinstall cgofix`);
  }
  return p;
}

/** Absolute path of libcgofix.so, the library to put in LD_PRELOAD. */
function libraryPath() {
  return packageFile('libcgofix.so');
}

/** Absolute path of the `cgofix` executable (run, doctor, report). */
function cliPath() {
  const p = packageFile('cgofix');
  try {
    fs.accessSync(p, fs.constants.X_OK);
  } catch (_) {
    // Some installers drop the mode bits of package files.
    fs.chmodSync(p, 0o755);
  }
  return p;
}

module.exports = {
  version,
  platform,
  platformPackage,
  libraryPath,
  cliPath,
  UNSUPPORTED_EXIT_CODE,
};
