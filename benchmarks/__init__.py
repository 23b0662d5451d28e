"""Throughput and latency benchmark of the scoring consumer against a real local broker.

``python -m benchmarks`` (or ``make bench``); see docs/benchmarks.md.
"""
