"""Speed and memory benchmarks.

Run with ``make bench``; results are JSON in ``benchmarks/results/``.
"""
