"""Dedup beyond one machine: the same answer as :func:`textsieve.dedup`, computed on Dask.

``dedup_dask(inputs, outdir)`` reads the corpus in partitions (one per input file; large plain
JSONL/text files are split at line boundaries), and runs every stage as Dask tasks that read and
write files under ``OUTDIR/_work``, so workers only need a shared filesystem and a rerun skips the
tasks that finished (each task's marker is written last, atomically):

1. ``lines``: split files: count the lines before each partition (for ``FILE:LINE`` ids);
2. ``sign``: read a partition, MinHash signatures and band keys with the Rust kernels, a digest
   of each non-empty text (sent to a shard by digest) and the partition's ids;
3. ``copies``: per digest shard, the classes of exact copies (equal digests; the smallest
   document is the class's rep);
4. ``scatter``: send every ``(band, key, doc)`` of a rep (or a document in no class) to a bucket
   shard chosen by hashing the band key;
5. ``bucket``: per shard, group by ``(band, key)`` and emit the candidate pairs of each bucket,
   routed to the partition of their smaller document;
6. ``edges``: per partition, the distinct candidate pairs, and which documents of other
   partitions their verification needs;
7. ``fetch``: per partition, the texts (or signatures) and copy classes that other partitions
   asked for;
8. ``verify``: per partition, the exact Jaccard of every candidate pair; the pairs at or above the
   threshold, expanded to the members of both classes, plus the pairs within its classes, each
   sent to the partition of its smaller document;
9. ``pairs``: per partition, its verified pairs sorted, with both ids (``pairs.jsonl`` rows);
10. ``components``: the kept document of each document in a verified pair (the greedy rule,
    ``cluster="greedy"``, or connected components and the keep policy, ``"components"``), and per
    partition the pairs (document, kept document) still to measure. Up to
    ``components_max_edges`` pairs (:data:`COMPONENTS_IN_MEMORY_MAX_EDGES`) one task runs the
    core's greedy rule or union-find in memory; above that, large-star/small-star rounds
    (Kiveris et al. 2014) run as tasks per edge shard (``ceil(pairs / components_shard_edges)``
    shards) until a round changes no edge, and the kept documents and cluster sizes are found
    shard by shard: each shard holds whole components (every member is in its root's shard), so
    with the greedy rule each shard's task decides its components from their verified pairs,
    routed to it. Memory per task is then bounded by the shard size, except that one component
    is decided in one task (``stats["dask"]["largest_greedy_component"]`` measures the largest;
    see :func:`textsieve.dask.components._components`); both paths write the same files;
11. ``fetch2`` and ``write``: the kept document's text and id for each removed document, its
    exact similarity to it, and the partition's ``kept`` and ``removed`` records.

Then the driver concatenates the partitions into ``kept.jsonl``, ``removed.jsonl`` and
``pairs.jsonl`` and writes ``stats.json`` and ``report.html``, as ``textsieve dedup`` does.

Why the answer is the local engine's: documents get the same global numbers (input order), the
same signatures and band keys (same kernels), and the verified pairs are, as in the local engine,
*every* pair of non-empty documents that share a ``(band, key)`` bucket and reach the threshold.
The candidates are fewer, but lose nothing. Exact copies (equal texts: equal shingle sets, so
equal band keys, similarity 1.0 to each other and the same similarity to any other document)
form classes, found by a 128-bit digest of the text (trusted, not re-verified), and only each
class's rep (its smallest document) goes into the buckets. The candidate edges are one
(rep, copy) edge per copy plus every pair of reps in each bucket: near-linear where buckets are
made of copies, but still ``m(m-1)/2`` for a bucket of ``m`` distinct texts, because a star to
the bucket's smallest document would lose verified pairs: in a bucket ``{a, b, c}`` with
``J(a, b) < t``, ``J(a, c) < t`` and ``J(b, c) >= t`` the star checks only ``(a, b)`` and
``(a, c)``, so ``(b, c)`` (and the cluster it makes) would be missing. Each verified rep pair
``(A, B, x)`` stands for the pairs ``(Ai, Bj, x)`` of the members of both classes, and each
class for its pairs ``(Ai, Aj, 1.0)``. With ``all_pairs`` verify writes them all out (the
output is that big). Otherwise it writes only the pairs with a rep, ``(Ai, B, x)``, ``(A, Bj,
x)`` and ``(A, Ai, 1.0)``, linear in the copies: a class's rep is its first document, the only
member that can be kept, so a document's kept neighbours are reps, and the greedy decisions and
the connected components are those of all the pairs. Verification is the same exact Jaccard over the same 64-bit shingle
hashes (the same ``f64`` division), the components' roots are their smallest documents, as in
the local union-find (large-star/small-star converges to stars around each component's smallest
document too), and the keep policy is the same.

The modules, by concept:

- :mod:`textsieve.dask.driver`: :func:`dedup_dask` (plan, run the stages, outputs and stats),
  the runner that submits a stage's tasks and skips the finished ones, and :func:`run_command`;
- :mod:`textsieve.dask.stages`: the per-task stage functions, and :class:`Job`, what every task
  knows about the run (pickled to the workers);
- :mod:`textsieve.dask.components`: the components stage, in memory or as distributed
  large-star/small-star rounds (then the greedy rule per shard of whole components);
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
