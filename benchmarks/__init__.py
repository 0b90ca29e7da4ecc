"""Load generator and report for hearing-server: `python -m benchmarks.run` (see benchmarks/README.md)."""
