"""The docstring examples of every module of the installed package run as tests.

They run here, over the installed ``textsieve`` (what ``pip install '.[test]' && pytest`` tests),
rather than with ``--doctest-modules`` over ``python/``: a wheel install has no ``_core`` in the
source tree, and importing the same module from two places fails. A module whose optional
dependency (torch, dask) is absent is skipped with the reason.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest
import textsieve

# Modules that run something when imported, and what each optional module needs.
NOT_IMPORTABLE = {"textsieve.__main__", "textsieve.workshop.__main__"}
NEEDS = {
    "textsieve.lm._torch_gru": "torch",
    "textsieve.dask": "dask",
    "textsieve.distributed": "dask",
}

MODULES = sorted(
    info.name
    for info in pkgutil.walk_packages(textsieve.__path__, "textsieve.")
    if info.name not in NOT_IMPORTABLE
)


def _needs(name: str) -> str | None:
    return next(
        (dep for mod, dep in NEEDS.items() if name == mod or name.startswith(mod + ".")), None
    )


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    dep = _needs(name)
    if dep is not None:
        pytest.importorskip(dep, reason=f"{name} needs {dep}")
    module = importlib.import_module(name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in finder.find(module, name):
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"


def test_the_examples_are_found() -> None:
    """So that a broken finder cannot pass by finding nothing."""
    attempted = 0
    for name in ("textsieve.dedup", "textsieve.report", "textsieve.io", "textsieve._checks"):
        finder = doctest.DocTestFinder(exclude_empty=True)
        attempted += sum(len(t.examples) for t in finder.find(importlib.import_module(name)))
    assert attempted >= 15
