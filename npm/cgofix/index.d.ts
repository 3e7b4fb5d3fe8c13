/** The version of cgofix (the same for the platform packages). */
export declare const version: string;

/** This machine's platform as cgofix names it: `<os>-<cpu>[-<libc>]`, e.g. `linux-x64-gnu`. */
export declare const platform: string;

/**
 * The npm package carrying this platform's files (`@cgofix/linux-x64-gnu`),
 * or `null` where cgofix has none (musl, macOS, Windows, other CPUs).
 */
export declare const platformPackage: string | null;

/** Exit status of the `cgofix` bin when the platform is unsupported or its package is missing. */
export declare const UNSUPPORTED_EXIT_CODE: 3;

/**
 * Absolute path of `libcgofix.so`, the library to put in `LD_PRELOAD`.
 * Throws an `Error` with `code === "CGOFIX_UNSUPPORTED"` on an unsupported
 * platform or when the platform package is not installed.
 */
export declare function libraryPath(): string;

/**
 * Absolute path of the `cgofix` executable (`run`, `doctor`, `report`).
 * Throws like {@link libraryPath}.
 */
export declare function cliPath(): string;
