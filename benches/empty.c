/* The empty preload library: no code, no data, no constructor. What any
 * LD_PRELOAD costs a process start (the loader opens, maps and relocates
 * one more object), the floor the shim's spawn-storm rows are measured
 * against. Built by scripts/bench.sh. */
typedef int cgofix_bench_empty_unit;
