"""Dedup beyond one machine: the Dask engine, which lives in :mod:`textsieve.dask`.

This module re-exports its public names, and the few internals the tests and benchmarks use, so
that ``from textsieve.distributed import dedup_dask`` keeps working.

>>> from textsieve.distributed import dedup_dask                        # doctest: +SKIP
"""

from __future__ import annotations

from textsieve.dask.components import (
    COMPONENTS_IN_MEMORY_MAX_EDGES,
    COMPONENTS_SHARD_EDGES,
)
from textsieve.dask.components import _components as _components
from textsieve.dask.components import _large_star as _large_star
from textsieve.dask.components import _small_star as _small_star
from textsieve.dask.components import _star_components as _star_components
from textsieve.dask.driver import _Runner as _Runner
from textsieve.dask.driver import dedup_dask, run_command
from textsieve.dask.kernels import _bucket_stars as _bucket_stars
from textsieve.dask.kernels import _part_of as _part_of
from textsieve.dask.plan import DEFAULT_PARTITION_BYTES
from textsieve.dask.plan import _plan_partitions as _plan_partitions
from textsieve.dask.plan import _RangeReader as _RangeReader
from textsieve.dask.stages import STAGES
from textsieve.dask.stages import Job as Job
from textsieve.dask.workdir import WorkDir as WorkDir
from textsieve.dask.workdir import _save_npz as _save_npz

__all__ = [
    "COMPONENTS_IN_MEMORY_MAX_EDGES",
    "COMPONENTS_SHARD_EDGES",
    "DEFAULT_PARTITION_BYTES",
    "STAGES",
    "dedup_dask",
    "run_command",
]
