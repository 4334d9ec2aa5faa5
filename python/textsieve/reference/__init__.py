"""Pure-Python reference implementations (stdlib only) of every Rust kernel.

They are the specification: the tests assert that the Rust core gives the same results, and the
benchmarks time both.
"""

from textsieve.reference import dedup  # noqa: F401
