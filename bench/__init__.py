"""Benchmarks for the Lab 3 kit: `make bench` (or `python -m bench [name ...]`).

Each `bench_<name>.py` module has a `main()` that prints a small table of timings
and ratios against a named peer, measured in the same run. Not part of `make test`.
"""
