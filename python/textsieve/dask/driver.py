"""The driver of the Dask engine: :func:`dedup_dask` plans the partitions, runs the stages as
Dask tasks (:class:`_Runner`, :func:`_run_task`), then concatenates the partitions' outputs and
writes ``stats.json`` and ``report.html``; :func:`run_command` is ``textsieve dedup --engine
dask``. How it works: :mod:`textsieve.dask`."""

from __future__ import annotations

import contextlib
import hashlib
import heapq
import json
import os
import re
import shutil
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

import textsieve.io as _io
from textsieve.dask.components import (
    COMPONENTS_IN_MEMORY_MAX_EDGES,
    COMPONENTS_SHARD_EDGES,
    _components,
    _stage_cc_init,
    _stage_cc_large,
    _stage_cc_parts,
    _stage_cc_roots,
    _stage_cc_small,
    _stage_components,
)
from textsieve.dask.kernels import _part_of
from textsieve.dask.plan import DEFAULT_PARTITION_BYTES, _plan_partitions
from textsieve.dask.stages import (
    STAGES,
    Job,
    _stage_bucket,
    _stage_copies,
    _stage_decide,
    _stage_edges,
    _stage_fetch,
    _stage_lines,
    _stage_pairs,
    _stage_scatter,
    _stage_sign,
    _stage_snippets,
    _stage_write,
)
from textsieve.dask.workdir import _WORK_VERSION, WorkDir, _load_json, _load_npz, _save_json
from textsieve.dedup import _config, _settings, component_warnings
from textsieve.errors import TextsieveError
from textsieve.io import InputFile, atomic_write, expand_inputs, json_text
from textsieve.pipeline import (
    COMPRESSIONS,
    kept_parquet,
    output_files,
    output_name,
    remove_stale_temporaries,
    stale_outputs,
    write_kept_parquet,
)

REPORT_CLUSTERS = 12
REPORT_MEMBERS = 4


# --------------------------------------------------------------------------------------------
# Tasks: what a worker runs


_STAGE_FUNCS: dict[str, Callable[..., dict[str, Any]]] = {
    "lines": _stage_lines,
    "sign": _stage_sign,
    "copies": _stage_copies,
    "scatter": _stage_scatter,
    "bucket": _stage_bucket,
    "edges": _stage_edges,
    "components": _stage_components,
    "fetch": _stage_fetch,
    "decide": _stage_decide,
    "pairs": _stage_pairs,
    "write": _stage_write,
    # the distributed components (run by `_components` instead of "components" above the size
    # limit); "-rNNN" in a stage's name is the round, passed on
    "components-init": _stage_cc_init,
    "components-large": _stage_cc_large,
    "components-small": _stage_cc_small,
    "components-roots": _stage_cc_roots,
    "components-parts": _stage_cc_parts,
}


def _call_stage(stage: str, job: Job, idx: int) -> dict[str, Any]:
    """Run task ``idx`` of ``stage``; a name ending in ``-rNNN`` is a round of a stage."""
    m = re.fullmatch(r"(.+)-r(\d+)", stage)
    if m:
        return _STAGE_FUNCS[m.group(1)](job, idx, int(m.group(2)))
    return _STAGE_FUNCS[stage](job, idx)


#: the key of a task's result that says it met bad input (the message)
_ERROR = "textsieve_error"


def _run_task(stage: str, idx: int, job: Job) -> dict[str, Any]:
    """Run one task unless its marker says it is done; the marker (written last, atomically)
    holds the task's summary."""
    marker = job.work.marker(stage, idx)
    if os.path.exists(marker):
        return _load_json(marker)
    import resource

    t0 = time.perf_counter()
    try:
        out = _call_stage(stage, job, idx)
    except TextsieveError as exc:
        # bad input, not a failed task: returned, so that workers log no traceback, and raised
        # by the driver (:meth:`_Runner.run`) with the message, which is what counts
        return {_ERROR: str(exc)}
    out["task_seconds"] = time.perf_counter() - t0
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out["pid"] = os.getpid()
    _save_json(marker, out)
    return out


# --------------------------------------------------------------------------------------------
# The driver


def _fingerprint(
    settings: dict[str, Any],
    reader: dict[str, Any],
    files: list[InputFile],
    partition_bytes: int,
    n_shards: int | None,
) -> str:
    stat = []
    for f in files:
        st = os.stat(f.path)
        stat.append([os.path.abspath(f.path), f.format, f.compression, st.st_size, st.st_mtime_ns])
    blob = json.dumps(
        [_WORK_VERSION, settings, reader, stat, partition_bytes, n_shards],
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(blob.encode()).hexdigest()


class _Runner:
    """Submits a stage's tasks (skipping those whose marker exists) and gathers their summaries
    in order; the first failure in partition order is raised."""

    def __init__(self, client: Any, job: Job, log: Callable[[str], Any] | None) -> None:
        self.client = client
        #: what the tasks get; the driver and the components stage replace it as they learn more
        self.job = job
        self.log = log
        self.report: dict[str, dict[str, Any]] = {}

    def run(self, stage: str, indices: Iterable[int]) -> dict[int, dict[str, Any]]:
        t0 = time.perf_counter()
        scattered = self.client.scatter([self.job], broadcast=True, hash=False)[0]
        futures: dict[int, Any] = {}
        results: dict[int, dict[str, Any]] = {}
        for i in indices:
            m = self.job.work.marker(stage, i)
            if os.path.exists(m):
                results[i] = _load_json(m)
            else:
                futures[i] = self.client.submit(
                    _run_task,
                    stage,
                    i,
                    scattered,
                    pure=False,
                    key=f"textsieve-{stage}-{i}-{time.time_ns()}",
                )
        if futures:
            from distributed import wait

            wait(list(futures.values()))
            for i, f in futures.items():
                results[i] = f.result()
        for i in sorted(results):
            if _ERROR in results[i]:
                raise TextsieveError(results[i][_ERROR])
        secs = time.perf_counter() - t0
        self.report[stage] = {
            "tasks": len(results),
            "ran": len(futures),
            "skipped": len(results) - len(futures),
            "seconds": round(secs, 4),
        }
        if self.log:
            self.log(
                f"{stage}: {len(futures)} task(s) run, {len(results) - len(futures)} already done, {secs:.2f}s"
            )
        return results


def _concat(parts: Sequence[str], target: str) -> None:
    with atomic_write(target, "wb") as out:
        for f in parts:
            with open(f, "rb") as fh:
                shutil.copyfileobj(fh, out, 1 << 20)


def dedup_dask(
    inputs: Sequence[str | os.PathLike[str]] | str | os.PathLike[str],
    output_dir: str | os.PathLike[str],
    *,
    scheduler: str | None = None,
    n_workers: int = 2,
    processes: bool = True,
    threshold: float = 0.8,
    num_perm: int = 128,
    seed: int = 1,
    scheme: str = "native",
    shingle: str = "char",
    k: int = 5,
    normalize: str = "default",
    bands: int | None = None,
    rows: int | None = None,
    verify: str = "exact",
    keep: str = "first",
    cluster: str = "greedy",
    all_pairs: bool = False,
    num_threads: int = 1,
    text_field: str = "text",
    id_field: str | None = "id",
    doc_per_file: bool = False,
    on_error: str = "stop",
    format: str = "auto",
    glob: str | None = None,
    exclude_dirs: Sequence[str] = (),
    partition_bytes: int = DEFAULT_PARTITION_BYTES,
    n_shards: int | None = None,
    components_max_edges: int = COMPONENTS_IN_MEMORY_MAX_EDGES,
    components_shard_edges: int = COMPONENTS_SHARD_EDGES,
    merge: bool = True,
    compression: str | None = None,
    annotate: bool = False,
    kept_format: str = "auto",
    stop_after: str | None = None,
    client: Any = None,
    log: Callable[[str], Any] | None = None,
) -> dict[str, Any]:
    """Dedup the corpus in ``inputs`` on Dask and write the outputs of ``textsieve dedup`` to
    ``output_dir``; returns the stats (also written to ``stats.json``).

    With no ``scheduler`` (address such as ``"tcp://10.0.0.5:8786"``) and no ``client``, a
    ``distributed.LocalCluster`` of ``n_workers`` workers (processes, or threads with
    ``processes=False``; one thread each, the Rust kernels use ``num_threads``) is started and
    closed again. Workers must see ``inputs`` and ``output_dir`` at the same paths (a shared
    filesystem on a real cluster).

    The options are those of :func:`textsieve.dedup` and :class:`textsieve.io.CorpusReader`, and
    the result is the same: same kept documents, clusters, pairs and similarities. Intermediate
    files go to ``output_dir/_work``; a rerun with the same inputs and options skips every task
    that finished (``stop_after`` stops after the named stage of :data:`STAGES`). Each partition
    holds at most ``partition_bytes`` of a splittable file; ``n_shards`` bucket (and decide)
    shards (default: one per partition). The connected components of the candidate edges (a star
    per bucket, an edge per exact copy) run in one task, in memory, up to
    ``components_max_edges`` edges, and above that as distributed large-star/small-star rounds
    over shards of ``components_shard_edges`` edges; then each decide shard runs the core's dedup
    over its whole components, so one component is decided in one task (``stats["dask"]
    ["largest_component"]`` says how many documents the largest had). ``merge=False`` leaves
    ``kept/``, ``removed/`` and ``pairs/`` as one file per partition instead of concatenating
    them.
    """
    t_start = time.perf_counter()
    settings = _settings(
        threshold, num_perm, seed, scheme, shingle, k, normalize, bands, rows, verify, keep, cluster
    )
    settings["all_pairs"] = bool(all_pairs)
    settings["annotate"] = bool(annotate)
    if verify not in ("exact", "minhash"):
        raise TextsieveError(f"verify: expected 'exact' or 'minhash', got {verify!r}")
    if keep not in ("first", "longest"):
        raise TextsieveError(f"keep: expected 'first' or 'longest', got {keep!r}")
    cfg = _config(settings)
    settings["bands"], settings["rows"] = cfg.bands, cfg.rows
    if stop_after is not None and stop_after not in STAGES:
        raise TextsieveError(f"stop_after: expected one of {', '.join(STAGES)}, got {stop_after!r}")
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    inputs = [os.fspath(x) for x in inputs]
    reader_opts = {
        "text_field": text_field,
        "id_field": id_field,
        "doc_per_file": doc_per_file,
        "on_error": on_error,
        "format": format,
    }
    files = expand_inputs(
        inputs, doc_per_file=doc_per_file, format=format, glob=glob, exclude_dirs=exclude_dirs
    )
    outdir = os.path.abspath(os.fspath(output_dir))
    work = WorkDir(os.path.join(outdir, "_work"))
    fp = _fingerprint(settings, reader_opts, files, partition_bytes, n_shards)
    plan_path = work.path("plan.json")
    plan = _load_json(plan_path) if os.path.exists(plan_path) else None
    if plan is None or plan.get("fingerprint") != fp:
        shutil.rmtree(work.root, ignore_errors=True)  # other inputs or options: start afresh
        parts = _plan_partitions(files, partition_bytes)
        plan = {"fingerprint": fp, "parts": parts}
        _save_json(plan_path, plan)
    parts = plan["parts"]
    n_parts = len(parts)
    job = Job(
        work=work,
        cwd=os.getcwd(),
        parts=tuple(parts),
        reader=reader_opts,
        settings=settings,
        num_threads=num_threads,
        n_shards=n_shards or max(1, n_parts),
        components_max_edges=components_max_edges,
        components_shard_edges=components_shard_edges,
        line_base=(0,) * n_parts,
        offsets=(0,) * n_parts,
        counts=(0,) * n_parts,
    )

    own_client = own_cluster = None
    if client is None:
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            raise TextsieveError(
                "the Dask engine needs Dask: pip install textsieve[dask]"
            ) from None
        if scheduler:
            client = own_client = Client(scheduler)
        else:
            own_cluster = LocalCluster(
                n_workers=n_workers,
                threads_per_worker=1,
                processes=processes,
                dashboard_address=None,
                silence_logs=40,
            )
            client = own_client = Client(own_cluster)
    try:
        runner = _Runner(client, job, log)
        stats = _drive(
            runner, files, inputs, outdir, stop_after, merge, t_start, compression, kept_format
        )
        if stats is not None:
            stats["parameters"]["scheduler"] = scheduler or (
                "client" if own_client is None else "LocalCluster"
            )
    finally:
        if own_client is not None:
            own_client.close()
        if own_cluster is not None:
            own_cluster.close()
    return stats if stats is not None else {"stopped_after": stop_after, "stages": runner.report}


def _worker_peaks(client: Any) -> dict[str, float]:
    def peak() -> float:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    try:
        return {addr: round(mb, 1) for addr, mb in client.run(peak).items()}
    except Exception:  # a client without workers it can reach
        return {}


def _drive(
    runner: _Runner,
    files: list[InputFile],
    inputs: list[str],
    outdir: str,
    stop_after: str | None,
    merge: bool,
    t_start: float,
    compression: str | None = None,
    kept_format: str = "auto",
) -> dict[str, Any] | None:
    """Run the stages, then write the outputs and return the stats (None after ``stop_after``).
    ``runner.job`` is the run's :class:`~textsieve.dask.stages.Job`; it learns the line bases,
    then the document numbers, on the way."""
    job = runner.job
    work, parts, s = job.work, job.parts, job.settings
    n_parts = len(parts)
    everything = range(n_parts)
    stage_t: dict[str, float] = {}

    def stage(name: str, idx: Iterable[int]) -> dict[int, dict[str, Any]] | None:
        t0 = time.perf_counter()
        out = runner.run(name, idx)
        stage_t[name] = time.perf_counter() - t0
        return out

    # 1. line numbers where files are split
    split = [p for p in everything if parts[p]["start"] is not None]
    lines = stage("lines", split)
    base = 0
    line_base = [0] * n_parts
    for p in everything:
        if parts[p]["start"] is None:
            continue
        if parts[p]["start"] == 0:
            base = 0
        line_base[p] = base
        base += lines[p]["lines"]
    job = runner.job = replace(job, line_base=tuple(line_base))
    if stop_after == "lines":
        return None
    # 2. signatures
    signed = stage("sign", everything)
    counts = [signed[p]["n"] for p in everything]
    offsets = (
        np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
        if n_parts
        else np.zeros(0, np.int64)
    )
    n_docs = int(sum(counts))
    if n_docs > 0xFFFFFFFF:
        raise TextsieveError("texts: more than 4,294,967,295 documents in one run")
    job = runner.job = replace(job, offsets=tuple(offsets.tolist()), counts=tuple(counts))
    if stop_after == "sign":
        return None
    # 3. exact-copy classes (by content digest)
    copies = stage("copies", range(job.n_shards))
    if stop_after == "copies":
        return None
    # 4-6. shuffle by band key (reps only), star edges per bucket, edges per partition
    stage("scatter", everything)
    if stop_after == "scatter":
        return None
    buckets = stage("bucket", range(job.n_shards))
    if stop_after == "bucket":
        return None
    edges = stage("edges", everything)
    if stop_after == "edges":
        return None
    # 7. connected components of the candidate edges: in memory or distributed
    n_edges = sum(e["star_edges"] + e["copy_edges"] for e in edges.values())
    comp = _components(runner, n_edges, stage)
    stage_t["components"] = comp["seconds"]
    if stop_after == "components":
        return None
    # 8-9. the texts of each component to its decide shard; the core's dedup per shard
    stage("fetch", everything)
    if stop_after == "fetch":
        return None
    decided = stage("decide", range(job.n_shards))
    if stop_after == "decide":
        return None
    # 10-11. with all_pairs, the verified pairs with their ids; the partitions' outputs
    stage("pairs", everything if s["all_pairs"] else [])
    if stop_after == "pairs":
        return None
    written = stage("write", everything)
    if stop_after == "write":
        return None

    # outputs
    t0 = time.perf_counter()
    # a previous run's stats.json goes first: only a complete run has one (it is written last)
    remove_stale_temporaries(outdir)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(os.path.join(outdir, "stats.json"))
    annotate = bool(s.get("annotate"))
    parquet = not annotate and kept_parquet(files, kept_format)
    out_names = output_files(annotate, parquet)
    paths = {name: os.path.join(outdir, output_name(name, compression)) for name in out_names}
    names = [f"part-{p:05d}.jsonl" for p in everything]
    # pairs.jsonl: one row per removed document, or every verified pair with all_pairs; with
    # annotate the "kept" parts hold every record with its decision
    pair_sub = "pairs" if s["all_pairs"] else "removals"
    subs = [("annotated", "kept")] if annotate else [("kept", "kept"), ("removed", "removed")]
    subs.append(("pairs", pair_sub))
    if parquet:  # the kept rows from the inputs, by the removed documents of every partition
        subs.remove(("kept", "kept"))
        removed = np.zeros(n_docs, bool)
        for p in everything:
            removed[_load_npz(work.part("removed", p))["gid"]] = True
        with atomic_write(paths["kept.parquet"], "wb") as fh:
            write_kept_parquet(files, removed, job.reader["text_field"], fh)
    if merge:
        for out, sub in subs:
            _concat([work.path(sub, n) for n in names], paths[f"{out}.jsonl"])
    else:
        suffix = COMPRESSIONS[compression] if compression else ""
        for out, sub in subs:
            dest = os.path.join(outdir, out)
            os.makedirs(dest, exist_ok=True)
            for n in names:
                _concat([work.path(sub, n)], os.path.join(dest, n + suffix))
            paths[f"{out}.jsonl"] = dest
    n_kept = sum(w["kept"] for w in written.values())
    n_removed = sum(w["removed"] for w in written.values())
    # clusters with duplicates: each kept document that removed ones name, and their number
    removed_rows = [_load_npz(work.part("removed", p)) for p in everything]
    rm_gid, rm_rep, rm_sim = (
        np.concatenate([z[k] for z in removed_rows]) if n_parts else np.empty(0)
        for k in ("gid", "rep", "jaccard")
    )
    del removed_rows
    reps_u, n_dups = np.unique(rm_rep.astype(np.int64), return_counts=True)
    multi_sizes = (n_dups + 1).tolist()
    multi_reps = reps_u.tolist()
    extra: dict[str, Any] = {}
    if s["cluster"] == "components":  # what chains hide, as the local engine reports it
        extra = component_warnings(
            np.concatenate([rm_rep, reps_u]),
            np.concatenate([rm_sim, np.full(len(reps_u), np.nan)]),
            s["threshold"],
        )
        extra["below_threshold"] = [int(rm_gid[i]) for i in extra["below_threshold"]]
        extra["largest_component"] = max(extra["largest_component"], min(n_docs, 1))
    n_clusters = n_kept  # one kept document per cluster, with either rule
    shown = _report_clusters(runner, multi_reps, multi_sizes)
    n_pairs = sum(v["pairs"] for v in decided.values())
    n_examined = sum(v["n_candidates"] for v in decided.values())
    examined_sum = sum(w["examined"] for w in written.values())
    examined_max = max((w["most_examined"] for w in written.values()), default=0)
    largest_task = max(
        (
            {"documents": v["documents"], "bytes": v["bytes"]}
            for v in decided.values()
            if v["documents"]
        ),
        key=lambda t: (t["documents"], t["bytes"]),
        default={"documents": 0, "bytes": 0},
    )
    largest_component = comp["largest_component"]["documents"]
    n_copies = sum(c["copies"] for c in copies.values())
    reader_info = [signed[p]["reader"] for p in everything]
    n_skipped = sum(r["skipped"] for r in reader_info)
    skipped = [ex for r in reader_info for ex in r["skipped_examples"]][: _io.MAX_SKIPPED_EXAMPLES]
    n_bytes_read = sum(r["bytes"] for r in reader_info)
    n_empty = sum(signed[p]["n_empty"] for p in everything)
    file_rows = []
    for fi, f in enumerate(files):
        mine = [p for p in everything if parts[p]["file"] == fi]
        file_rows.append(
            {
                "path": f.path,
                "format": f.format,
                "compression": f.compression,
                "records": sum(signed[p]["reader"]["records"] for p in mine),
                "skipped": sum(signed[p]["reader"]["skipped"] for p in mine),
                "bytes": sum(signed[p]["reader"]["file_bytes"] for p in mine),
                "partitions": len(mine),
            }
        )
    largest = max(multi_sizes, default=1 if n_docs else 0)
    summary = {
        "input files": len(files),
        "documents in": n_docs,
        "kept": n_kept,
        "removed": n_removed,
        "clusters with duplicates": len(multi_sizes),
        "clustering": s["cluster"],
        "pairs listed": n_pairs if s["all_pairs"] else n_removed,
        "similarities computed": n_examined,
        "largest candidate component": largest_component,
        "empty documents": n_empty,
        "skipped bad records": n_skipped,
        "threshold": s["threshold"],
        "shingles": f"{s['shingle']}:{s['k']}",
        "permutations": s["num_perm"],
        "seed": s["seed"],
        "keep": s["keep"],
        "MB read": round(n_bytes_read / 1e6, 2),
        "engine": f"dask, {n_parts} partitions",
    }
    from textsieve.report import write_report

    write_report(
        paths["report.html"],
        similarities=rm_sim.tolist(),
        cluster_sizes=multi_sizes,
        clusters=shown,
        summary=summary,
        threshold=s["threshold"],
        subtitle=", ".join(inputs[:3])
        + (f" and {len(inputs) - 3} more" if len(inputs) > 3 else ""),
    )
    t_write = time.perf_counter() - t0 + stage_t.get("write", 0.0)
    t_total = time.perf_counter() - t_start
    t_read = stage_t.get("lines", 0.0) + stage_t.get("sign", 0.0)
    from textsieve import __version__

    sign_secs = {"read": 0.0, "signatures": 0.0}
    for v in signed.values():
        for key in sign_secs:
            sign_secs[key] += v["seconds"][key]
    stats: dict[str, Any] = {
        "textsieve": __version__,
        "n_input": n_docs,
        "n_kept": n_kept,
        "n_removed": n_removed,
        "n_input_equals_kept_plus_removed": n_docs == n_kept + n_removed,
        "n_clusters": n_clusters,
        "n_clusters_with_duplicates": len(multi_sizes),
        "largest_cluster": largest,
        "n_pairs": n_pairs if s["all_pairs"] else n_removed,
        "n_examined": n_examined,
        "warnings": extra.get("warnings", []),
        "examined_per_doc": {
            "mean": examined_sum / n_docs if n_docs else 0.0,
            "max": examined_max,
        },
        "n_empty": n_empty,
        "n_skipped": n_skipped,
        "skipped": skipped,
        "n_blank_lines": sum(r["blank"] for r in reader_info),
        "input_bytes": n_bytes_read,
        "inputs": inputs,
        "input_files": file_rows,
        "parameters": {
            "threshold": s["threshold"],
            "num_perm": s["num_perm"],
            "seed": s["seed"],
            "shingle": s["shingle"],
            "k": s["k"],
            "keep": s["keep"],
            "cluster": s["cluster"],
            "all_pairs": s["all_pairs"],
            "compression": compression,
            "annotate": annotate,
            "kept_format": kept_format,
            **{k_: v for k_, v in job.reader.items()},
            "engine": "dask",
            "threads": job.num_threads,
            "partitions": n_parts,
            "shards": job.n_shards,
        },
        "timings_s": {
            "read": round(t_read, 4),
            "dedup": round(t_total - t_read - t_write, 4),
            "write": round(t_write, 4),
            "total": round(t_total, 4),
        },
        "throughput": {
            "docs_per_s": round(n_docs / t_total, 1) if t_total > 0 else None,
            "mb_per_s": round(n_bytes_read / 1e6 / t_total, 2) if t_total > 0 else None,
        },
        "dedup_stats": {
            "n_docs": n_docs,
            "n_kept": n_kept,
            "n_removed": n_removed,
            "n_empty": n_empty,
            "n_pairs": n_pairs if s["all_pairs"] else n_removed,
            "n_candidates": n_examined,
            "n_clusters": n_clusters,
            **{k_: v for k_, v in s.items()},
            "seconds": {
                "signatures": sign_secs["signatures"],
                "read": sign_secs["read"],
                "components": comp["seconds"],
                "decide": sum(v["seconds"] for v in decided.values()),
            },
            "n_bytes": sum(signed[p]["n_bytes"] for p in everything),
            **{k_: v for k_, v in extra.items() if k_ != "warnings"},
        },
        "dask": {
            "stages": runner.report,
            "components": comp["mode"],
            # the candidate component with the most documents: decided whole, in one task
            "largest_component": largest_component,
            # the decide task with the most documents (whole components of one shard)
            "largest_decide_task": largest_task,
            "candidate_components": comp["components"],
            "documents_in_components": comp["nodes"],
            "largest_bucket": max((b["largest_bucket"] for b in buckets.values()), default=0),
            "exact_copies": n_copies,
            "copy_classes": sum(c["classes"] for c in copies.values()),
            "largest_copy_class": max((c["largest_class"] for c in copies.values()), default=0),
            # star edges per bucket plus an edge per exact copy: linear in the buckets' sizes
            "candidate_edges": n_edges,
            "task_peak_rss_mb": {
                name: round(
                    max(
                        (_load_json(m)["peak_rss_mb"] for m in work.glob("done", f"{name}-*.json")),
                        default=0.0,
                    ),
                    1,
                )
                for name in STAGES
            },
            "worker_peak_rss_mb": _worker_peaks(runner.client),
        },
        "outdir": outdir,
        "outputs": {name: os.path.abspath(p) for name, p in paths.items()},
    }
    for stale in stale_outputs(outdir, compression, out_names):
        os.unlink(stale)
    with atomic_write(paths["stats.json"], "w") as fh:
        fh.write(json_text(stats, indent=2))
        fh.write("\n")
    return stats


def _report_clusters(runner: _Runner, reps: list[int], sizes: list[int]) -> list[dict[str, Any]]:
    """The largest clusters with a few members each, as the local command shows them."""
    job = runner.job
    work = job.work
    offsets = np.asarray(job.offsets)
    top = heapq.nsmallest(
        REPORT_CLUSTERS, zip(sizes, reps, strict=True), key=lambda t: (-t[0], t[1])
    )
    if not top:
        return []
    top_reps = np.array([r for _, r in top], np.int64)
    members: dict[int, list[int]] = {int(r): [] for r in top_reps}
    sims: dict[int, float] = {}
    for a in range(len(offsets)):
        rem = _load_npz(work.part("removed", a))
        sel = np.isin(rem["rep"], top_reps)
        for g, r, x in zip(
            rem["gid"][sel].tolist(),
            rem["rep"][sel].tolist(),
            rem["jaccard"][sel].tolist(),
            strict=True,
        ):
            members[r].append(g)
            sims[g] = x
    chosen: dict[int, list[int]] = {}
    for _, r in top:
        idxs = sorted(members[r])
        removed = sorted(idxs, key=lambda g: -(sims.get(g, -1.0)))
        chosen[r] = ([r] + removed)[:REPORT_MEMBERS]
    want = sorted({g for gs in chosen.values() for g in gs})
    by_part: dict[int, list[int]] = {}
    for g, a in zip(want, _part_of(offsets, np.array(want)).tolist(), strict=True):
        by_part.setdefault(a, []).append(g)
    futs = {
        a: runner.client.submit(_stage_snippets, job, a, gs, pure=False)
        for a, gs in by_part.items()
    }
    got: dict[int, tuple[str, str]] = {}
    for f in futs.values():
        got.update(f.result())
    shown = []
    for size, r in top:
        shown.append(
            {
                "cluster": r,
                "size": size,
                "members": [
                    {
                        "id": got[g][0],
                        "text": got[g][1],
                        "kept": g == r,
                        "jaccard": None if g == r else sims.get(g),
                    }
                    for g in chosen[r]
                ],
            }
        )
    return shown


def run_command(
    args: Any,
    inputs: list[str],
    outdir: str,
    doc_per_file: bool,
    glob: str | None,
    on_error: str,
    exclude_dirs: Sequence[str],
) -> int:
    """``textsieve dedup --engine dask``: the parsed arguments of ``textsieve dedup``, run on Dask;
    prints what the local command prints (stats as JSON with ``--json``)."""
    shingle, k = args.shingle
    quiet = args.quiet or args.json

    def log(msg: str) -> None:
        if not quiet:
            print(f"dask: {msg}", file=sys.stderr)

    stats = dedup_dask(
        inputs,
        outdir,
        scheduler=getattr(args, "scheduler", None),
        n_workers=getattr(args, "workers", 2) or 2,
        threshold=args.threshold,
        num_perm=args.num_perm,
        seed=args.seed,
        shingle=shingle,
        k=k,
        keep=args.keep,
        cluster=args.cluster,
        all_pairs=args.all_pairs,
        num_threads=args.threads or 1,
        text_field=args.text_field,
        id_field=args.id_field,
        doc_per_file=doc_per_file,
        on_error=on_error,
        format=args.format,
        glob=glob,
        exclude_dirs=exclude_dirs,
        compression=args.compress,
        annotate=args.annotate,
        kept_format=args.kept_format,
        log=log,
    )
    if args.json:
        print(json_text(stats))
    elif not args.quiet:
        from textsieve.pipeline import print_summary

        print_summary(stats)
        dk = stats["dask"]
        log(
            f"largest candidate component: {dk['largest_component']:,} documents, decided in "
            f"one task ({dk['candidate_components']:,} components, "
            f"{dk['candidate_edges']:,} candidate edges)"
        )
    return 0
