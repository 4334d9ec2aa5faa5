"""The one set of argument checks: the library's (``TypeError`` for a wrong type, a
:class:`~textsieve.TextsieveError` for a wrong value, each naming the argument) and, built on the
same functions, the argparse types of the command line (a wrong value is a usage error, exit 2).

>>> check_int("num_perm", 128, maximum=MAX_PERM)
128
>>> check_int("num_perm", 0)
Traceback (most recent call last):
...
textsieve.TextsieveError: num_perm: must be at least 1, got 0
>>> arg_int(maximum=MAX_PERM)("70000")
Traceback (most recent call last):
...
argparse.ArgumentTypeError: must be between 1 and 65536, got 70000
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import numpy as np

from textsieve.errors import TextsieveError

T = TypeVar("T")

# The core's limits (rust/minhash.rs MAX_PERM, rust/shingle.rs MAX_K, rust/ngram.rs MAX_ORDER),
# repeated so the command line can refuse a value before any work starts.
MAX_PERM = 1 << 16
MAX_K = 1024
MAX_ORDER = 32
SEED_LIMIT = 1 << 64  # native MinHash seeds are u64
DATASKETCH_SEED_LIMIT = 1 << 32


def _named(name: str, text: str) -> str:
    return f"{name}: {text}" if name else text


def _num(x: float) -> str:
    return str(x) if isinstance(x, int) else f"{x:g}"


def _range_text(minimum: float | None, maximum: float | None) -> str:
    if minimum is not None and maximum is not None:
        return f"must be between {_num(minimum)} and {_num(maximum)}"
    if minimum is not None:
        return f"must be at least {_num(minimum)}"
    return f"must be at most {_num(maximum)}"  # type: ignore[arg-type]


def check_int(
    name: str,
    value: Any,
    minimum: int | None = 1,
    maximum: int | None = None,
    *,
    optional: bool = False,
    error: type[ValueError] = TextsieveError,
) -> Any:
    """``value`` as an ``int`` in ``[minimum, maximum]`` (``None`` passes when ``optional``)."""
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(_named(name, f"expected an int, got {type(value).__name__} {value!r}"))
    value = int(value)
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise error(_named(name, f"{_range_text(minimum, maximum)}, got {value}"))
    return value


def check_float(
    name: str,
    value: Any,
    minimum: float | None = None,
    maximum: float | None = None,
    *,
    above: float | None = None,
    error: type[ValueError] = TextsieveError,
) -> float:
    """``value`` as a finite ``float`` in ``[minimum, maximum]`` and, when given, ``> above``."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(_named(name, f"expected a number, got {type(value).__name__} {value!r}"))
    value = float(value)
    if not math.isfinite(value):
        raise error(_named(name, f"must be a finite number, got {value!r}"))
    if above is not None and value <= above:
        raise error(_named(name, f"must be greater than {_num(above)}, got {value!r}"))
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise error(_named(name, f"{_range_text(minimum, maximum)}, got {value!r}"))
    return value


def check_threshold(name: str, value: Any, *, error: type[ValueError] = TextsieveError) -> float:
    """A Jaccard threshold: ``0 < value <= 1``."""
    return check_float(name, value, maximum=1.0, above=0.0, error=error)


def check_probability(name: str, value: Any, *, error: type[ValueError] = TextsieveError) -> float:
    """A probability: ``0 <= value <= 1``."""
    return check_float(name, value, 0.0, 1.0, error=error)


def check_seed(name: str, value: Any, scheme: str = "native") -> int:
    """A MinHash seed: a u64, or a u32 for the datasketch schemes."""
    limit = DATASKETCH_SEED_LIMIT if scheme.startswith("datasketch") else SEED_LIMIT
    return check_int(name, value, 0, limit - 1)


def check_choice(name: str, value: Any, allowed: Iterable[str]) -> str:
    """One of ``allowed``."""
    allowed = tuple(allowed)
    if value not in allowed:
        raise TextsieveError(
            _named(name, f"expected one of {', '.join(map(repr, allowed))}, got {value!r}")
        )
    return value


# --------------------------------------------------------------------------------------------
# argparse types: the same checks on the text of a flag; a bad value is a usage error (exit 2)
# and argparse's one line names the flag ("argument --num-perm: must be ...").


def arg_type(parse: Callable[[str], Any], check: Callable[..., T], *args: Any, **kwargs: Any):
    """An argparse ``type=``: ``check("", parse(text), *args, **kwargs)``."""
    kind = {int: "an integer", float: "a number"}.get(parse, "a valid value")  # type: ignore[call-overload]

    def convert(text: str) -> T:
        try:
            value = parse(text.strip())
        except (ValueError, OverflowError):
            raise argparse.ArgumentTypeError(f"not {kind}: {text!r}") from None
        try:
            return check("", value, *args, **kwargs)
        except (TypeError, ValueError) as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = getattr(parse, "__name__", "value")
    return convert


def arg_int(minimum: int | None = 1, maximum: int | None = None):
    """An argparse type: an integer in ``[minimum, maximum]``."""
    return arg_type(int, check_int, minimum, maximum)


def arg_float(
    minimum: float | None = None, maximum: float | None = None, *, above: float | None = None
):
    """An argparse type: a finite number in ``[minimum, maximum]`` (and ``> above``)."""
    return arg_type(float, check_float, minimum, maximum, above=above)


def arg_threshold():
    """An argparse type: a Jaccard threshold in ``(0, 1]``."""
    return arg_type(float, check_threshold)


def arg_seed():
    """An argparse type: a native MinHash seed (``0 <= seed < 2**64``)."""
    return arg_type(int, check_seed)
