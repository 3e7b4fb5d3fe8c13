/**
 * `cgofix/register`: importing it loads libcgofix.so into the running
 * process (no LD_PRELOAD needed); import it before anything else.
 */

/**
 * What the import did: `"skipped"` (LD_PRELOAD already names a
 * libcgofix.so), `"in-process"` (attached), `"inactive"` (another copy is
 * active), `"preload"`; under Node, which cannot ask the library,
 * `"loaded"`.
 */
export declare const mode: "skipped" | "in-process" | "inactive" | "preload" | "loaded" | string;

/** The library file that was loaded, or `null` when skipped. */
export declare const library: string | null;
