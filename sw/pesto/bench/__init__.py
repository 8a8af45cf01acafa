"""`pesto bench`: speedup benchmarks of the accelerator (docs/benchmarks.md)."""
