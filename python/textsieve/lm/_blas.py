"""Pinning the BLAS thread count while the NumPy backend runs its own worker threads.

The NumPy backend parallelises over the sequences of a batch with Python threads (NumPy releases
the GIL inside matrix products and ufunc loops), each calling a single-threaded BLAS. Multi-
threaded OpenBLAS busy-waits between the many small per-step products of a recurrent network and
collapses when the cores are shared (measured: 1k chars/s instead of 20k on a loaded 2-core
machine), so the BLAS pool is set to one thread for the duration and restored afterwards.

Uses threadpoolctl when installed, else OpenBLAS's own setter in the library NumPy loaded, else
does nothing.
"""

from __future__ import annotations

import contextlib
import ctypes
import glob
import os
from collections.abc import Iterator

import numpy as np

_SETTERS = (
    "scipy_openblas_set_num_threads64_",
    "scipy_openblas_set_num_threads",
    "openblas_set_num_threads64_",
    "openblas_set_num_threads",
)
_GETTERS = (
    "scipy_openblas_get_num_threads64_",
    "scipy_openblas_get_num_threads",
    "openblas_get_num_threads64_",
    "openblas_get_num_threads",
)
_openblas: tuple | None = None
_searched = False


def _find_openblas() -> tuple | None:
    """(getter, setter) of the OpenBLAS that NumPy uses, when it is a bundled OpenBLAS."""
    global _openblas, _searched
    if _searched:
        return _openblas
    _searched = True
    base = os.path.dirname(np.__file__)
    candidates = glob.glob(os.path.join(base, "..", "numpy.libs", "*openblas*"))
    candidates += glob.glob(os.path.join(base, ".dylibs", "*openblas*"))
    for path in candidates:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        getter = next((getattr(lib, n) for n in _GETTERS if hasattr(lib, n)), None)
        setter = next((getattr(lib, n) for n in _SETTERS if hasattr(lib, n)), None)
        if getter is not None and setter is not None:
            getter.restype = ctypes.c_int
            setter.argtypes = [ctypes.c_int]
            _openblas = (getter, setter)
            break
    return _openblas


@contextlib.contextmanager
def blas_threads(n: int | None) -> Iterator[None]:
    """Run the block with the BLAS pool limited to ``n`` threads (None: leave it alone)."""
    if n is None:
        yield
        return
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        threadpool_limits = None
    if threadpool_limits is not None:
        with threadpool_limits(limits=n, user_api="blas"):
            yield
        return
    found = _find_openblas()
    if found is None:
        yield
        return
    getter, setter = found
    before = int(getter())
    setter(n)
    try:
        yield
    finally:
        setter(before)
