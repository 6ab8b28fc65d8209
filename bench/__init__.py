"""runstack's benchmark suite: what runstack costs, against baselines measured in the same run.

Run it with ``python -m bench`` from the project root; see docs/benchmarks.md.
"""
