/* An empty library: preloading it measures what preloading costs before
 * an allocator does anything. */
int ringpool_bench_empty;
