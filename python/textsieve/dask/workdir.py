"""The work directory ``OUTDIR/_work``: every path in it, and the small helpers that read and
write its files (every file is written atomically: a temporary beside it, renamed into place).

The layout (``N``, ``S``: zero-padded partition and shard numbers)::

    plan.json                         the partitions, and the fingerprint of inputs and options
    done/STAGE-N.json                 a task's marker (its summary), written last
    sign/part-N.npz                   band keys, empty flags
    ids/part-N.npy, .offsets.npy      the partition's ids, one UTF-8 blob and offsets
    digests/, shuffle/                shuffles: from-N.npy sorted by shard, from-N.cuts.npy
    classes/, copyof/, cand/          part-N/shard-S.npz: what shard S sent to partition N
    edges/part-N.npz                  a partition's candidate edges (bucket stars, copies)
    cc/                               the distributed components' shard files (plan.json, steps)
    roots/part-N.npz                  its documents in candidate components, and their roots
    texts/to-S/from-N.json            texts partition N sends to decide shard S
    decided/to-N/from-S.npz           decide shard S's decisions for partition N's documents
    xpairs/to-N/from-S.npz            all_pairs: verified pairs sent to partition N
    pairs/part-N.jsonl                all_pairs: a partition's verified pairs, with ids
    kept/, removed/, removals/        part-N.jsonl: the partition's outputs (removed/part-N.npz)
"""

from __future__ import annotations

import contextlib
import glob as _glob
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

import textsieve.io as _io
from textsieve.dask.kernels import _part_of

#: The version of the work layout: a run with another version starts afresh.
_WORK_VERSION = 3


# --------------------------------------------------------------------------------------------
# Small file helpers (every file is written atomically)


def _work_file(path: str, mode: str = "wb") -> contextlib.AbstractContextManager[Any]:
    """Write an intermediate file with :func:`textsieve.io.atomic_write` (a temporary beside it,
    renamed into place if the block succeeds)."""
    return _io.atomic_write(path, mode, None if "b" in mode else "utf-8")


def _save_npz(path: str, **arrays: np.ndarray) -> None:
    with _work_file(path, "wb") as fh:
        np.savez(fh, **arrays)


def _load_npz(path: str) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def _save_json(path: str, obj: Any) -> None:
    with _work_file(path, "w") as fh:
        fh.write(_io.json_text(obj))


def _write_rows(path: str, rows: Iterable[Any]) -> None:
    """JSON lines, encoded as :func:`textsieve.io.write_jsonl` encodes them."""
    with _work_file(path, "w") as fh:
        for row in rows:
            fh.write(_io._dumps(row))
            fh.write("\n")


def _load_json(path: str) -> Any:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def _load_all(files: Iterable[str], *names: str) -> list[np.ndarray]:
    """The named arrays of the ``.npz`` ``files``, concatenated (empty int64 arrays when there
    is none)."""
    zs = [_load_npz(f) for f in files]
    return [np.concatenate([z[n] for z in zs]) if zs else np.empty(0, np.int64) for n in names]


# --------------------------------------------------------------------------------------------
# The work directory


@dataclass(frozen=True)
class WorkDir:
    """The work directory at ``root`` (``OUTDIR/_work``): the one owner of its paths. Small and
    immutable, it travels to the workers inside the :class:`~textsieve.dask.stages.Job`."""

    root: str

    def path(self, *parts: str) -> str:
        """``root/parts...``, e.g. ``path("cc", "plan.json")``."""
        return os.path.join(self.root, *parts)

    def glob(self, *parts: str) -> list[str]:
        """The files matching the pattern ``root/parts...``, sorted."""
        return sorted(_glob.glob(self.path(*parts)))

    def marker(self, stage: str, idx: int) -> str:
        """Task ``idx`` of ``stage``'s marker: its summary, written last."""
        return self.path("done", f"{stage}-{idx:05d}.json")

    def part(self, sub: str, p: int, ext: str = "npz") -> str:
        """Partition ``p``'s file in ``sub``: ``sub/part-N.ext``."""
        return self.path(sub, f"part-{p:05d}.{ext}")

    def shard(self, sub: str, a: int, sh: int) -> str:
        """What shard ``sh`` sends to partition ``a``: ``sub/part-N/shard-S.npz``."""
        return self.path(sub, f"part-{a:05d}", f"shard-{sh:05d}.npz")

    def shards(self, sub: str, a: int) -> list[str]:
        """Every file that shards sent to partition ``a`` in ``sub``, sorted."""
        return self.glob(sub, f"part-{a:05d}", "shard-*.npz")

    def letter(self, box: Sequence[str], to: int, frm: int, ext: str = "npz") -> str:
        """What ``frm`` sends to ``to`` through ``box`` (e.g. ``("r1", "req")``):
        ``box/to-N/from-M.ext``."""
        return self.path(*box, f"to-{to:05d}", f"from-{frm:05d}.{ext}")

    def letters(self, box: Sequence[str], to: int, ext: str = "npz") -> list[str]:
        """Every ``box/to-N/from-*.ext`` sent to ``to``, sorted by sender."""
        return self.glob(*box, f"to-{to:05d}", f"from-*.{ext}")

    # shuffles: one file per source task, sorted by destination, and the row range of each

    def save_routed(
        self, box: Sequence[str], src: int, rows: np.ndarray, dest: np.ndarray, n_dest: int
    ) -> None:
        """Task ``src``'s rows for a shuffle through ``box``: one file sorted by destination (a
        shard or a partition), and the row range of each destination (``dest`` ``d`` reads rows
        ``cuts[d]:cuts[d+1]``, see :meth:`load_routed`)."""
        order = np.argsort(dest, kind="stable")
        cuts = np.searchsorted(dest[order], np.arange(n_dest + 1)).astype(np.int64)
        with _work_file(self.path(*box, f"from-{src:05d}.npy")) as fh:
            np.save(fh, rows[order])
        with _work_file(self.path(*box, f"from-{src:05d}.cuts.npy")) as fh:
            np.save(fh, cuts)

    def load_routed(self, box: Sequence[str], n_src: int, dest: int, dtype: np.dtype) -> np.ndarray:
        """The rows of a shuffle through ``box`` routed to ``dest``, from each of its ``n_src``
        source files (memory-mapped slices)."""
        chunks = []
        for t in range(n_src):
            cuts = np.load(self.path(*box, f"from-{t:05d}.cuts.npy"))
            x, y = int(cuts[dest]), int(cuts[dest + 1])
            if x < y:
                rows = np.load(self.path(*box, f"from-{t:05d}.npy"), mmap_mode="r")
                chunks.append(np.array(rows[x:y]))
        return np.concatenate(chunks) if chunks else np.empty(0, dtype)

    # ids

    def save_ids(self, p: int, ids: list[str]) -> None:
        """Partition ``p``'s ids as one UTF-8 blob and offsets, read back a few at a time with
        :meth:`ids_of` (memory-mapped)."""
        encoded = [i.encode("utf-8", "surrogatepass") for i in ids]
        offsets = np.zeros(len(ids) + 1, np.int64)
        offsets[1:] = np.cumsum([len(e) for e in encoded])
        blob = np.frombuffer(b"".join(encoded) + b"\0", np.uint8)  # never empty: mmap refuses that
        with _work_file(self.part("ids", p, "npy")) as fh:
            np.save(fh, blob)
        with _work_file(self.part("ids", p, "offsets.npy")) as fh:
            np.save(fh, offsets)

    def ids_of(self, offsets: np.ndarray, gids: np.ndarray) -> list[str]:
        """The ids of documents anywhere in the corpus, in the order of ``gids``."""
        u, inv = np.unique(gids, return_inverse=True)
        names = np.empty(len(u), object)
        owner = _part_of(offsets, u)
        for b in np.unique(owner).tolist():
            sel = np.flatnonzero(owner == b)
            off = np.load(self.part("ids", b, "offsets.npy"), mmap_mode="r")
            blob = np.load(self.part("ids", b, "npy"), mmap_mode="r")
            local = u[sel] - int(offsets[b])
            names[sel] = [
                bytes(blob[x:y]).decode("utf-8", "surrogatepass")
                for x, y in zip(off[local].tolist(), off[local + 1].tolist(), strict=True)
            ]
        return names[inv].tolist()
