"""Benchmarks run single-threaded unless they say otherwise, so ratios compare like with like."""

import os

os.environ.setdefault("RAYON_NUM_THREADS", "1")
