"""Benchmarks, one script each: ``python benchmarks/<name>.py --json``."""
