"""Dedup beyond one machine: the same answer as :func:`textsieve.dedup`, computed on Dask.

``dedup_dask(inputs, outdir)`` reads the corpus in partitions (one per input file; large plain
JSONL/text files are split at line boundaries), and runs every stage as Dask tasks that read and
write files under ``OUTDIR/_work``, so workers only need a shared filesystem and a rerun skips the
tasks that finished (each task's marker is written last, atomically):

1. ``lines``: split files: count the lines before each partition (for ``FILE:LINE`` ids);
2. ``sign``: read a partition, band keys with the Rust kernels, a digest of each non-empty text
   (sent to a shard by digest) and the partition's ids;
3. ``copies``: per digest shard, the classes of exact copies (equal digests; the smallest
   document is the class's rep);
4. ``scatter``: send every ``(band, key, doc)`` of a rep (or a document in no class) to a bucket
   shard chosen by hashing the band key;
5. ``bucket``: per shard, group by ``(band, key)`` and emit each bucket's **star**: its smallest
   document with every other member (``m - 1`` edges for ``m`` members, not ``m(m-1)/2``),
   routed to the partition of the smaller document;
6. ``edges``: per partition, its distinct star edges plus an edge from each class's rep to each
   of its copies: the candidate edges;
7. ``components``: the connected components of the candidate edges (the *candidate
   components*), each document's root (its component's smallest document) written per
   partition. Up to ``components_max_edges`` edges (:data:`COMPONENTS_IN_MEMORY_MAX_EDGES`)
   one task runs the core's union-find in memory; above that, large-star/small-star rounds
   (Kiveris et al. 2014) run as tasks per edge shard (``ceil(edges /
   components_shard_edges)`` shards) until a round changes no edge; both write the same files;
8. ``fetch``: per partition, the texts of its documents in candidate components, sent to the
   decide shard of their component (a hash of its root: whole components per shard); an exact
   copy travels as the number of its rep;
9. ``decide``: per decide shard, **the core's own dedup** (``_core.DedupRun``, the local
   engine's settings and rule) over the documents of its components, in input order; each
   decision (kept document, similarity, examined) goes back to the document's partition, and
   with ``all_pairs`` every verified pair to the partition of its smaller document;
10. ``pairs``: with ``all_pairs`` only, per partition, its verified pairs sorted, with both ids;
11. ``write``: the partition's ``kept``, ``removed`` and ``pairs.jsonl`` rows.

Then the driver concatenates the partitions into ``kept.jsonl``, ``removed.jsonl`` and
``pairs.jsonl`` and writes ``stats.json`` and ``report.html``, as ``textsieve dedup`` does.

Why the answer is the local engine's: documents get the same global numbers (input order) and
the same band keys (same kernels). A document's decision, under either rule, depends only on the
documents that share a bucket with it (its candidates, and exact copies, which share every
bucket), and all of those are in its candidate component: the star edges connect exactly what
every pair of a bucket connects. So the local algorithm run on the union of whole components, in
their relative input order (also longest first: lengths do not change), makes the decisions it
makes on the whole corpus: the same kept documents, ``duplicate_of``, similarities and, with
``all_pairs``, pairs. Documents in no candidate component (no bucket mate, no copy) are kept
without a similarity computed, as in the local engine.

The cost is the local engine's: with ``cluster="greedy"`` each document is verified against the
kept documents of its buckets (a cluster of ``m`` near-copies costs ``O(m)`` similarities, not
``m^2/2``), and exact copies are settled by their text. Memory per task is bounded by the
partition size, except that one candidate component is decided in one task:
``stats["dask"]["largest_component"]`` measures the largest (documents), and
``stats["dask"]["largest_decide_task"]`` the largest decide task (documents, bytes).
``all_pairs`` lists every verified pair, quadratic in cluster size as in the local engine.

The modules, by concept:

- :mod:`textsieve.dask.driver`: :func:`dedup_dask` (plan, run the stages, outputs and stats),
  the runner that submits a stage's tasks and skips the finished ones, and :func:`run_command`;
- :mod:`textsieve.dask.stages`: the per-task stage functions, and :class:`Job`, what every task
  knows about the run (pickled to the workers);
- :mod:`textsieve.dask.components`: the components stage, in memory or as distributed
  large-star/small-star rounds;
- :mod:`textsieve.dask.plan`: partitions, reading them, counting lines;
- :mod:`textsieve.dask.workdir`: :class:`WorkDir`, the one owner of the paths under
  ``OUTDIR/_work``, and the small file helpers;
- :mod:`textsieve.dask.kernels`: the NumPy array kernels the stages share.

:mod:`textsieve.distributed` re-exports the public names, for code that imports them from there.

>>> from textsieve.dask import dedup_dask                               # doctest: +SKIP
>>> stats = dedup_dask(["shards/"], "out/", n_workers=4)                # doctest: +SKIP
>>> stats["n_kept"] + stats["n_removed"] == stats["n_input"]            # doctest: +SKIP
True
"""

from __future__ import annotations

from textsieve.dask.components import COMPONENTS_IN_MEMORY_MAX_EDGES, COMPONENTS_SHARD_EDGES
from textsieve.dask.driver import dedup_dask, run_command
from textsieve.dask.plan import DEFAULT_PARTITION_BYTES
from textsieve.dask.stages import STAGES

__all__ = [
    "COMPONENTS_IN_MEMORY_MAX_EDGES",
    "COMPONENTS_SHARD_EDGES",
    "DEFAULT_PARTITION_BYTES",
    "STAGES",
    "dedup_dask",
    "run_command",
]
