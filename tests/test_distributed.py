"""The Dask engine gives the local engine's answer: same kept set, clusters, pairs and files."""

from __future__ import annotations

import gzip
import json
import os
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

distributed = pytest.importorskip(
    "distributed", reason="dask[distributed] is not installed (pip install textsieve[dask])"
)

import textsieve  # noqa: E402
from textsieve.cli import main  # noqa: E402
from textsieve.distributed import (  # noqa: E402
    _bucket_stars,
    _large_star,
    _plan_partitions,
    _RangeReader,
    _small_star,
    _star_components,
    dedup_dask,
)
from textsieve.io import CorpusReader, expand_inputs  # noqa: E402

LETTERS = "abcdefghijklmnopqrstuvwxyz"


def paragraph(rng: random.Random, n_words: int = 50) -> str:
    return " ".join(
        "".join(rng.choice(LETTERS) for _ in range(rng.randint(2, 9))) for _ in range(n_words)
    )


def edit(rng: random.Random, text: str, n_edits: int) -> str:
    chars = list(text)
    for _ in range(n_edits):
        chars[rng.randrange(len(chars))] = rng.choice(LETTERS)
    return "".join(chars)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three JSONL files, a gzipped one and a plain-text one, with exact and edited copies planted
    across files (1 to 20 edits in ~300 characters: some above 0.8, some below), chains, empty
    documents, blank lines and records without ids."""
    rng = random.Random(11)
    root = tmp_path_factory.mktemp("corpus")
    base = [paragraph(rng) for _ in range(120)]
    docs: list[dict[str, str]] = [{"id": f"d{i}", "text": t} for i, t in enumerate(base)]
    for i in range(0, 120, 3):
        docs.append({"id": f"c{i}", "text": edit(rng, base[i], rng.choice([0, 1, 3, 6, 12, 20]))})
    for i in range(0, 120, 10):  # a chain: copy of a copy
        docs.append({"id": f"cc{i}", "text": edit(rng, docs[-1]["text"], 4)})
    docs += [{"id": "empty", "text": ""}, {"id": "blank", "text": "   "}]
    rng.shuffle(docs)
    (root / "in").mkdir()
    for f in range(3):
        with open(root / "in" / f"a{f}.jsonl", "w") as fh:
            for n, d in enumerate(docs[f::4]):
                fh.write(json.dumps(d if n % 7 else {"text": d["text"]}) + "\n")
                if n % 11 == 5:
                    fh.write("\n")  # blank line
    with gzip.open(root / "in" / "b.jsonl.gz", "wt") as fh:
        for d in docs[3::4][:20]:
            fh.write(json.dumps(d) + "\n")
    with open(root / "in" / "c.txt", "w") as fh:
        for d in docs[3::4][20:]:
            if d["text"].strip():
                fh.write(d["text"] + "\n")
        for i in range(0, 120, 5):
            fh.write(base[i] + "\n")
    return root


@pytest.fixture(scope="module")
def cluster():
    """One 2-worker LocalCluster (processes) for the whole file; tests join it by address."""
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=40
    ) as c:
        yield c.scheduler_address


def local_result(inputs: list[Path], **options):
    reader = CorpusReader(inputs)
    records = list(reader)
    return records, textsieve.dedup([r.text for r in records], **options)


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def clusters_of(ids: list[str], cluster: list[int]) -> set[frozenset[str]]:
    groups: dict[int, set[str]] = {}
    for i, c in zip(ids, cluster, strict=True):
        groups.setdefault(c, set()).add(i)
    return {frozenset(g) for g in groups.values() if len(g) > 1}


def check_against_local(outdir: Path, records, res) -> None:
    ids = [r.id for r in records]
    kept = read_jsonl(outdir / "kept.jsonl")
    removed = read_jsonl(outdir / "removed.jsonl")
    pairs = read_jsonl(outdir / "pairs.jsonl")
    # kept + removed == input, and the same kept set
    assert len(kept) + len(removed) == len(records)
    want_removed = {ids[i] for i in np.flatnonzero(~res.keep)}
    assert {r["id"] for r in removed} == want_removed
    assert len(removed) == len(want_removed) > 0
    # the same clusters, up to renumbering
    # (a kept document is its cluster's number; a removed one names its cluster)
    by_id = {r["id"]: r["cluster"] for r in removed}
    dask_cluster = [by_id.get(rid, i) for i, rid in enumerate(ids)]
    assert clusters_of(ids, dask_cluster) == clusters_of(ids, res.cluster.tolist())
    # the same pairs.jsonl rows (one per removed document, or every verified pair), same Jaccard
    if res.stats.get("all_pairs"):
        want_pairs = {(ids[i], ids[j], float(x)) for i, j, x in res.pairs.tolist()}
        assert {(p["id_a"], p["id_b"], p["jaccard"]) for p in pairs} == want_pairs
    else:
        want = [(ids[j], ids[i], float(x)) for i, j, x in res.pairs.tolist()]
        assert [(p["id"], p["duplicate_of"], p["jaccard"]) for p in pairs] == want
    # and each removed document's kept document and similarity
    for r in removed:
        i = ids.index(r["id"])
        assert r["duplicate_of"] == ids[res.duplicate_of[i]]
        assert r["jaccard"] == float(res.similarity[i])


def no_temp_files(outdir: Path) -> bool:
    return not [p for p in outdir.rglob(".*") if p.name.endswith(".tmp")]


def test_same_answer_as_local(corpus: Path, cluster: str, tmp_path: Path) -> None:
    inputs = [corpus / "in"]
    records, res = local_result(inputs)
    assert len(res.pairs) > 20 and (~res.keep).sum() > 20 and res.empty.sum() == 2
    out = tmp_path / "out"
    stats = dedup_dask(inputs, out, scheduler=cluster, partition_bytes=4000)
    assert stats["parameters"]["partitions"] > 8  # files split into line ranges
    check_against_local(out, records, res)
    assert stats["n_input"] == len(records) == stats["n_kept"] + stats["n_removed"]
    assert stats["n_input_equals_kept_plus_removed"] is True
    ds = stats["dedup_stats"]
    for key in ("n_kept", "n_removed", "n_empty", "n_pairs", "n_clusters"):
        assert ds[key] == res.stats[key], key
    assert (ds["bands"], ds["rows"]) == (res.stats["bands"], res.stats["rows"])
    assert (out / "report.html").read_text().count("<svg") >= 2
    assert no_temp_files(out)


@pytest.mark.parametrize(
    "options",
    [
        {"keep": "longest", "threshold": 0.7},
        # one row per band: big buckets, most candidates fail verification, so a star per bucket
        # would lose pairs; all-pairs-in-bucket keeps them
        {"bands": 24, "rows": 1, "num_perm": 24, "threshold": 0.6},
        {"verify": "minhash", "seed": 5, "shingle": "word", "k": 2},
    ],
)
def test_same_answer_other_options(corpus: Path, cluster: str, tmp_path: Path, options) -> None:
    inputs = sorted((corpus / "in").glob("a*.jsonl"))
    records, res = local_result(inputs, **options)
    dedup_dask(inputs, tmp_path, scheduler=cluster, partition_bytes=6000, **options)
    check_against_local(tmp_path, records, res)


def cli_both_engines(
    inputs: Path, cluster: str, tmp_path: Path, *options: str
) -> tuple[dict, dict]:
    """``textsieve dedup`` with the local and the Dask engine: the same kept, removed and pairs
    files byte for byte; returns both stats."""
    common = ["dedup", str(inputs), "-q", *options]
    assert main([*common, "-o", str(tmp_path / "local")]) == 0
    argv = [*common, "-o", str(tmp_path / "dask"), "--engine", "dask", "--scheduler", cluster]
    assert main(argv) == 0
    for name in ("kept.jsonl", "removed.jsonl", "pairs.jsonl"):
        assert (tmp_path / "dask" / name).read_bytes() == (tmp_path / "local" / name).read_bytes()
    a = json.loads((tmp_path / "local" / "stats.json").read_text())
    b = json.loads((tmp_path / "dask" / "stats.json").read_text())
    return a, b


def test_cli_dask_writes_what_local_writes(corpus: Path, cluster: str, tmp_path: Path) -> None:
    a, b = cli_both_engines(corpus / "in", cluster, tmp_path, "--threshold", "0.75")
    for key in ("n_input", "n_kept", "n_removed", "n_clusters", "n_clusters_with_duplicates"):
        assert a[key] == b[key], key
    for key in ("largest_cluster", "n_pairs", "n_empty", "n_skipped", "n_blank_lines"):
        assert a[key] == b[key], key
    assert a["input_bytes"] == b["input_bytes"]
    assert [f["records"] for f in a["input_files"]] == [f["records"] for f in b["input_files"]]
    assert b["parameters"]["engine"] == "dask"
    assert no_temp_files(tmp_path / "dask")


def test_resume_skips_finished_tasks(corpus: Path, cluster: str, tmp_path: Path) -> None:
    inputs = [corpus / "in"]
    first = dedup_dask(
        inputs, tmp_path, scheduler=cluster, partition_bytes=8000, stop_after="decide"
    )
    assert first["stopped_after"] == "decide" and not (tmp_path / "kept.jsonl").exists()
    assert first["stages"]["sign"]["ran"] == first["stages"]["sign"]["tasks"] > 1
    # a decide task that "failed": its marker never got written
    markers = sorted((tmp_path / "_work" / "done").glob("decide-*.json"))
    markers[1].unlink()
    stats = dedup_dask(inputs, tmp_path, scheduler=cluster, partition_bytes=8000)
    stages = stats["dask"]["stages"]
    assert stages["sign"]["ran"] == 0 and stages["bucket"]["ran"] == 0
    assert stages["fetch"]["ran"] == 0 and stages["decide"]["ran"] == 1
    assert stages["write"]["ran"] == stages["write"]["tasks"]
    records, res = local_result(inputs)
    check_against_local(tmp_path, records, res)
    before = (tmp_path / "kept.jsonl").read_bytes()
    # a rerun of a finished run redoes nothing but the outputs
    again = dedup_dask(inputs, tmp_path, scheduler=cluster, partition_bytes=8000)
    assert all(s["ran"] == 0 for s in again["dask"]["stages"].values())
    assert (tmp_path / "kept.jsonl").read_bytes() == before
    # other options: the work folder is stale and is started afresh
    other = dedup_dask(inputs, tmp_path, scheduler=cluster, partition_bytes=8000, threshold=0.9)
    assert other["dask"]["stages"]["sign"]["ran"] > 0


def test_range_reader_matches_whole_file(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    lines = [b'\xef\xbb\xbf{"id": "bom", "text": "first"}\n']
    for i in range(60):
        if i % 9 == 4:
            lines.append(b"\n")
        elif i % 13 == 6:
            lines.append(b"{not json\n")
        elif i % 17 == 3:
            lines.append(json.dumps({"text": f"no id {i}"}).encode() + b"\r\n")
        else:
            lines.append(json.dumps({"id": i, "text": f"doc {i} " * (i % 5 + 1)}).encode() + b"\n")
    lines.append(b'{"id": "last", "text": "no newline"}')
    path.write_bytes(b"".join(lines))
    whole = CorpusReader(path, on_error="skip")
    want = list(whole)
    parts = _plan_partitions(expand_inputs([path]), 150)
    assert len(parts) > 5
    got, skipped, base = [], [], 0
    for part in parts:
        r = _RangeReader(part, base, on_error="skip")
        got += list(r)
        skipped += r.skipped
        base += path.read_bytes()[part["start"] : part["end"]].count(b"\n")
    assert got == want
    assert skipped == whole.skipped and len(skipped) > 2


def test_bucket_stars_and_components() -> None:
    band = np.array([0, 0, 0, 1, 1, 0, 2, 2, 2, 2], np.uint32)
    key = np.array([5, 5, 5, 5, 5, 6, 9, 9, 9, 1], np.uint64)
    gid = np.array([3, 1, 2, 1, 7, 4, 8, 2, 9, 5], np.int64)
    # each bucket's smallest document with every other member: m - 1 edges, not m(m-1)/2
    pairs = {(int(p) >> 32, int(p) & 0xFFFFFFFF) for p in _bucket_stars(band, key, gid)}
    assert pairs == {(1, 2), (1, 3), (1, 7), (2, 8), (2, 9)}
    big = _bucket_stars(np.zeros(500, np.uint32), np.ones(500, np.uint64), np.arange(500)[::-1])
    assert len(big) == 499 and (big >> np.uint64(32) == 0).all()
    nodes, root = textsieve._core.connected_components(
        np.array([9, 4, 2, 7], np.uint64), np.array([4, 6, 7, 3], np.uint64)
    )
    assert dict(zip(nodes.tolist(), root.tolist(), strict=True)) == {
        2: 2,
        3: 2,
        4: 4,
        6: 4,
        7: 2,
        9: 4,
    }


@pytest.fixture(scope="module")
def copies_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Heavy exact copying: 300 copies of one text (and 1 to 12 character edits of it, some of
    them copied too), two classes of 10 copies whose texts are near-duplicates of each other, a
    triple a, b, c (3 copies each) with J(a,b) < t, J(a,c) < t and J(b,c) >= t (a shares half of
    b's text), 200 other documents and copies of empty texts; shuffled into three JSONL files."""
    rng = random.Random(29)
    root = tmp_path_factory.mktemp("copies")
    t = paragraph(rng)
    u = paragraph(rng)
    b = paragraph(rng, 60)
    a = b[: len(b) // 2] + " " + paragraph(rng, 30)
    texts = [t] * 300
    for n in range(24):
        near = edit(rng, t, 1 + n % 12)
        texts += [near] * (1 if n % 4 else 5)
    texts += [u] * 10 + [edit(rng, u, 2)] * 10
    c = edit(rng, b, 3)
    (root / "abc.json").write_text(json.dumps([a, b, c]))
    texts += [a] * 3 + [b] * 3 + [c] * 3
    texts += [paragraph(rng) for _ in range(200)] + ["", "", "  "]
    rng.shuffle(texts)
    (root / "in").mkdir()
    for f in range(3):
        with open(root / "in" / f"p{f}.jsonl", "w") as fh:
            for n, text in enumerate(texts[f::3]):
                fh.write(json.dumps({"id": f"p{f}-{n}", "text": text}) + "\n")
    return root


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"keep": "longest", "threshold": 0.7},
        # the {a, b, c} buckets
        {"bands": 24, "rows": 1, "num_perm": 24, "threshold": 0.6, "all_pairs": True},
        {"cluster": "components", "keep": "longest"},
        {"verify": "minhash", "shingle": "word", "k": 2},
    ],
)
def test_exact_copies_same_answer_near_linear_candidates(
    copies_corpus: Path, cluster: str, tmp_path: Path, options
) -> None:
    inputs = sorted((copies_corpus / "in").glob("*.jsonl"))
    records, res = local_result(inputs, **options)
    stats = dedup_dask(inputs, tmp_path, scheduler=cluster, partition_bytes=12000, **options)
    assert stats["parameters"]["partitions"] >= 6
    check_against_local(tmp_path, records, res)
    ids = [r.id for r in records]
    ds, dk = stats["dedup_stats"], stats["dask"]
    for key in ("n_kept", "n_removed", "n_clusters"):
        assert ds[key] == res.stats[key], key
    assert stats["n_pairs"] == res.stats["n_pairs"]
    assert stats["n_clusters_with_duplicates"] == len(clusters_of(ids, res.cluster.tolist()))
    # 300 copies: 44,850 pairs in one bucket, yet a few hundred edges here, and linear work in
    # the local engine (each copy settled against one kept document)
    assert dk["largest_copy_class"] == 300 and dk["copy_classes"] >= 10
    assert dk["exact_copies"] == 299 + 6 * 4 + 9 + 9 + 3 * 2  # empty texts stay out
    assert dk["candidate_edges"] < 1_000
    if not options.get("all_pairs"):
        assert res.stats["n_candidates"] < 1_000
    if options.get("rows") == 1:
        got = [(p["id_a"], p["id_b"], p["jaccard"]) for p in read_jsonl(tmp_path / "pairs.jsonl")]
        assert got == [(ids[i], ids[j], float(x)) for i, j, x in res.pairs.tolist()]
        # the triple: (b, c) found for every copy of b and c, nothing with a
        abc = json.loads((copies_corpus / "abc.json").read_text())
        assert textsieve.jaccard(abc[1], abc[2]) >= 0.6
        assert max(textsieve.jaccard(abc[0], x) for x in abc[1:]) < 0.6
        which = {r.id: abc.index(r.text) for r in records if r.text in abc}
        found = [
            tuple(sorted((which[p[0]], which[p[1]])))
            for p in got
            if p[0] in which and p[1] in which
        ]
        assert sorted(found) == [(0, 0)] * 3 + [(1, 1)] * 3 + [(1, 2)] * 9 + [(2, 2)] * 3


def test_exact_copies_cli_bytes(copies_corpus: Path, cluster: str, tmp_path: Path) -> None:
    a, b = cli_both_engines(copies_corpus / "in", cluster, tmp_path)
    for key in ("n_kept", "n_removed", "n_clusters", "n_pairs", "largest_cluster"):
        assert a[key] == b[key], key


def test_bad_record_names_file_and_line(tmp_path: Path, cluster: str, capsys) -> None:
    path = tmp_path / "bad.jsonl"
    rows = [json.dumps({"id": i, "text": f"text number {i}"}) for i in range(200)]
    rows[150] = "{oops"
    path.write_text("\n".join(rows) + "\n")
    argv = ["dedup", str(path), "-o", str(tmp_path / "o"), "--engine", "dask", "-q"]
    assert main([*argv, "--scheduler", cluster]) == 1
    assert f"{path}:151: malformed JSON" in capsys.readouterr().err
    assert os.path.isdir(tmp_path / "o")
    # the same from a partition in the middle of a split file, and with --on-error skip
    with pytest.raises(textsieve.TextsieveError, match=r"bad\.jsonl:151: malformed JSON"):
        dedup_dask([path], tmp_path / "p", scheduler=cluster, partition_bytes=1000)
    stats = dedup_dask(
        [path], tmp_path / "q", scheduler=cluster, partition_bytes=1000, on_error="skip"
    )
    assert stats["n_skipped"] == 1 and stats["skipped"][0]["line"] == 151
    assert stats["n_input"] == 199 and stats["parameters"]["partitions"] > 3


# --------------------------------------------------------------------------------------------
# Distributed components (large-star/small-star), forced with components_max_edges=0


def npz_arrays(folder: Path) -> dict[str, dict[str, np.ndarray]]:
    out = {}
    for f in sorted(folder.glob("*.npz")):
        with np.load(f) as z:
            out[f.name] = {k: z[k] for k in z.files}
    return out


def same_arrays(a: dict[str, dict[str, np.ndarray]], b: dict[str, dict[str, np.ndarray]]) -> None:
    assert a.keys() == b.keys() and len(a) > 1
    for name in a:
        assert a[name].keys() == b[name].keys(), name
        for k in a[name]:
            x, y = a[name][k], b[name][k]
            assert x.dtype == y.dtype and np.array_equal(x, y), (name, k)


def longer_copies(path: Path, seed: int) -> Path:
    """12 paragraphs, each followed by a copy a few words longer: ``keep="longest"`` decides
    otherwise than ``keep="first"`` on them."""
    rng = random.Random(seed)
    with open(path, "w") as fh:
        for n in range(12):
            text = paragraph(rng, 60)
            fh.write(json.dumps({"id": f"x{n}", "text": text}) + "\n")
            fh.write(
                json.dumps({"id": f"x{n}+", "text": text + " " + paragraph(rng, n % 4)}) + "\n"
            )
    return path


def in_memory_and_sharded(
    inputs: list[Path], tmp_path: Path, cluster: str, opts: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any], int]:
    """The Dask engine's components in memory (``mem``) and by large-star/small-star over many
    small shards (``lss``, edges crossing shards every step): (mem stats, lss stats, pairs)."""
    mem = dedup_dask(inputs, tmp_path / "mem", scheduler=cluster, **opts)
    lss = dedup_dask(
        inputs,
        tmp_path / "lss",
        scheduler=cluster,
        components_max_edges=0,
        components_shard_edges=7,
        **opts,
    )
    n_pairs = mem["dask"]["candidate_edges"]
    assert n_pairs > 20 and lss["dask"]["candidate_edges"] == n_pairs
    assert mem["dask"]["components"] == f"in memory, {n_pairs} edges <= 100,000,000"
    mode = lss["dask"]["components"]
    assert mode.startswith("distributed large-star/small-star, ") and f"{n_pairs} edges > 0" in mode
    assert f"{-(-n_pairs // 7)} shards" in mode
    assert lss["dask"]["stages"]["components"]["rounds"] >= 2
    return mem, lss, n_pairs


def same_as_local(
    tmp_path: Path,
    inputs: list[Path],
    mem: dict[str, Any],
    lss: dict[str, Any],
    argv: list[str],
    **settings: Any,
) -> list[Path]:
    """Both Dask paths write, byte for byte, what the local engine writes (``argv``), with the
    same intermediate files; returns the decide stage's files."""
    argv = ["dedup", *map(str, inputs), "-q", *argv]
    assert main([*argv, "-o", str(tmp_path / "local")]) == 0
    for name in ("kept.jsonl", "removed.jsonl", "pairs.jsonl"):
        got = (tmp_path / "lss" / name).read_bytes()
        assert got == (tmp_path / "mem" / name).read_bytes(), name
        assert got == (tmp_path / "local" / name).read_bytes(), name
    records, res = local_result(inputs, **settings)
    check_against_local(tmp_path / "lss", records, res)
    # the same intermediate files: each document's root, the decisions sent to each partition
    same_arrays(
        npz_arrays(tmp_path / "mem" / "_work" / "roots"),
        npz_arrays(tmp_path / "lss" / "_work" / "roots"),
    )
    reqs = sorted(
        p.relative_to(tmp_path / "mem" / "_work")
        for p in (tmp_path / "mem" / "_work" / "decided").rglob("*.npz")
    )
    assert reqs == sorted(
        p.relative_to(tmp_path / "lss" / "_work")
        for p in (tmp_path / "lss" / "_work" / "decided").rglob("*.npz")
    )
    for r in reqs:
        a, b = np.load(tmp_path / "mem" / "_work" / r), np.load(tmp_path / "lss" / "_work" / r)
        for k in ("gid", "dup", "jaccard", "examined"):
            assert np.array_equal(a[k], b[k], equal_nan=k == "jaccard"), (r, k)
    for key in ("n_clusters", "n_clusters_with_duplicates", "largest_cluster", "n_kept"):
        assert lss[key] == mem[key], key
    return reqs


@pytest.mark.parametrize("keep", ["first", "longest"])
def test_distributed_components_same_outputs(
    corpus: Path, cluster: str, tmp_path: Path, keep: str
) -> None:
    # and a file whose later copies are longer (a few words appended), so that keep="longest"
    # keeps some cluster's non-smallest document
    inputs = [corpus / "in", longer_copies(tmp_path / "extra.jsonl", 3)]
    opts = {"threshold": 0.7, "keep": keep, "partition_bytes": 4000, "cluster": "components"}
    mem, lss, _ = in_memory_and_sharded(inputs, tmp_path, cluster, opts)
    argv = ["--threshold", "0.7", "--keep", keep, "--cluster", "components"]
    same_as_local(tmp_path, inputs, mem, lss, argv, threshold=0.7, keep=keep, cluster="components")
    # keep="longest" keeps some cluster's non-smallest document (else it would test nothing new)
    removed = npz_arrays(tmp_path / "lss" / "_work" / "removed")
    gid = np.concatenate([z["gid"] for z in removed.values()])
    rep = np.concatenate([z["rep"] for z in removed.values()])
    assert (gid < rep).any() == (keep == "longest")


def union_find(n: int, i: np.ndarray, j: np.ndarray) -> list[int]:
    parent = list(range(n))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in zip(i.tolist(), j.tolist(), strict=True):
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)  # the smallest document stays the root
    return [find(x) for x in range(n)]


def test_star_components_match_union_find() -> None:
    rng = np.random.default_rng(6)
    most_rounds = 0
    for t in range(200):
        n = int(rng.integers(2, 300))
        kind = t % 4
        if kind == 0:  # a path through the nodes in random order: many rounds
            perm = rng.permutation(n)
            i, j = perm[:-1], perm[1:]
        elif kind == 1:  # a path in order, both directions mixed
            i, j = np.arange(n - 1), np.arange(1, n)
            flip = rng.random(n - 1) < 0.5
            i, j = np.where(flip, j, i), np.where(flip, i, j)
        else:  # sparse random graphs: many components of all sizes, repeats and self-loops
            m = int(rng.integers(1, 2 * n))
            i, j = rng.integers(0, n, m), rng.integers(0, n, m)
        nodes, root, rounds = _star_components(i, j)
        most_rounds = max(most_rounds, rounds)
        # against a plain union-find and against the core's
        uf = union_find(n, i, j)
        touched = sorted(
            {int(x) for x, y in zip(i, j, strict=True) if x != y}
            | {int(y) for x, y in zip(i, j, strict=True) if x != y}
        )
        assert nodes.tolist() == touched
        assert root.tolist() == [uf[x] for x in touched]
        keep = i != j
        lo, hi = np.minimum(i, j)[keep], np.maximum(i, j)[keep]
        cn, cr = textsieve._core.connected_components(lo.astype(np.uint64), hi.astype(np.uint64))
        assert np.array_equal(cn.astype(np.int64), nodes) and np.array_equal(
            cr.astype(np.int64), root
        )
    assert most_rounds >= 6  # the paths took several rounds


def test_star_steps() -> None:
    # the path 3 - 1 - 4 - 0 (as rows keyed by both ends)
    hi, lo = np.array([3, 4, 4]), np.array([1, 1, 0])
    h, low, changed = _large_star(np.concatenate([hi, lo]), np.concatenate([lo, hi]))
    # node 1 (neighbours 3, 4) links 3 and 4 to 1; node 0 links 4 to 0; 4 links nothing larger
    assert sorted(zip(h.tolist(), low.tolist())) == [(3, 1), (4, 0), (4, 1)] and changed == 0
    h, low, changed = _small_star(h, low)
    # node 4 (smaller neighbours 0, 1) links itself and 1 to 0; node 3 keeps 1
    assert sorted(zip(h.tolist(), low.tolist())) == [(1, 0), (3, 1), (4, 0)] and changed == 1
    nodes, root, rounds = _star_components(np.array([3, 1, 4]), np.array([1, 4, 0]))
    assert nodes.tolist() == [0, 1, 3, 4] and root.tolist() == [0, 0, 0, 0] and rounds >= 2
    # a star around its smallest node is converged: neither step changes anything
    hi, lo = np.array([5, 7, 9]), np.array([2, 2, 2])
    assert _large_star(np.concatenate([hi, lo]), np.concatenate([lo, hi]))[2] == 0
    assert _small_star(hi, lo)[2] == 0
    assert _star_components(hi, lo)[2] == 1


def largest_from_roots(outdir: Path) -> int:
    """The documents of the largest candidate component, from the ``roots/`` files."""
    roots = npz_arrays(outdir / "_work" / "roots")
    root = np.concatenate([z["root"] for z in roots.values()])
    return int(np.unique(root, return_counts=True)[1].max())


@pytest.mark.parametrize("mode", ["components", "greedy"])
def test_distributed_components_resume(
    corpus: Path, cluster: str, tmp_path: Path, mode: str
) -> None:
    inputs = [corpus / "in"]
    opts = {"partition_bytes": 8000, "components_max_edges": 0, "components_shard_edges": 5}
    opts["cluster"] = mode
    first = dedup_dask(inputs, tmp_path, scheduler=cluster, stop_after="components", **opts)
    assert first["stopped_after"] == "components" and not (tmp_path / "kept.jsonl").exists()
    done = tmp_path / "_work" / "done"
    rounds = first["stages"]["components"]["rounds"]
    assert rounds >= 3
    # the run "died" in round 2: half of its small-star tasks finished, nothing after
    small2 = sorted(done.glob("components-small-r002-*.json"))
    later = [f"components-{s}-r{r:03d}" for r in range(3, rounds + 1) for s in ("large", "small")]
    later += ["components-roots", "components-parts"]
    lost = small2[len(small2) // 2 :] + [m for name in later for m in done.glob(f"{name}-*.json")]
    for m in lost:
        m.unlink()
    for step in [f"{s}-r{r:03d}" for r in range(3, rounds + 1) for s in ("large", "small")]:
        shutil.rmtree(tmp_path / "_work" / "cc" / step)
    stats = dedup_dask(inputs, tmp_path, scheduler=cluster, **opts)
    comp = stats["dask"]["stages"]["components"]
    assert comp["ran"] == len(lost) and comp["rounds"] == rounds
    assert stats["dask"]["stages"]["edges"]["ran"] == 0
    n_sh = -(-stats["dask"]["candidate_edges"] // 5)
    assert len(list(done.glob("components-roots-*.json"))) == n_sh
    assert stats["dask"]["largest_component"] == largest_from_roots(tmp_path) >= 3
    records, res = local_result(inputs, cluster=mode)
    check_against_local(tmp_path, records, res)
    before = {
        n: (tmp_path / n).read_bytes() for n in ("kept.jsonl", "removed.jsonl", "pairs.jsonl")
    }
    # other shards: the rounds start afresh, with the same answer
    again = dedup_dask(inputs, tmp_path, scheduler=cluster, **{**opts, "components_shard_edges": 3})
    comp = again["dask"]["stages"]["components"]
    assert comp["ran"] == comp["tasks"] > 0 and again["dask"]["stages"]["write"]["ran"] == 0
    assert "shards" in again["dask"]["components"]
    for n, data in before.items():
        assert (tmp_path / n).read_bytes() == data


@pytest.mark.parametrize("keep", ["first", "longest"])
def test_distributed_greedy_same_outputs(
    corpus: Path, cluster: str, tmp_path: Path, keep: str
) -> None:
    # cluster="greedy" above components_max_edges: the rounds find the candidate components,
    # then each decide shard runs the core's greedy rule over its whole components; the chains
    # of the corpus (copies of copies, some below the threshold of the first) make components
    # of several documents
    inputs = [corpus / "in", longer_copies(tmp_path / "extra.jsonl", 5)]
    opts = {"threshold": 0.7, "keep": keep, "partition_bytes": 4000}
    mem, lss, n_edges = in_memory_and_sharded(inputs, tmp_path, cluster, opts)
    assert mem["parameters"]["cluster"] == "greedy"
    # the largest component, decided in one task: the same measure on both paths
    largest = lss["dask"]["largest_component"]
    assert largest == mem["dask"]["largest_component"] == largest_from_roots(tmp_path / "lss")
    assert largest >= 3
    done = tmp_path / "lss" / "_work" / "done"
    decide = [json.loads(m.read_text()) for m in done.glob("decide-*.json")]
    assert len(decide) == lss["parameters"]["shards"]
    assert sum(t["documents"] for t in decide) == lss["dask"]["documents_in_components"]
    assert max(t["largest_component"]["documents"] for t in decide) == largest
    assert sum(t["n_candidates"] for t in decide) == lss["n_examined"] == mem["n_examined"]
    # byte for byte what the in-memory path and the local engine write
    reqs = same_as_local(
        tmp_path, inputs, mem, lss, ["--threshold", "0.7", "--keep", keep], threshold=0.7,
        keep=keep,
    )  # fmt: skip
    assert reqs
    # the greedy rule is not the components' answer here (else it would test nothing new)
    comps = dedup_dask(inputs, tmp_path / "comps", scheduler=cluster, cluster="components", **opts)
    assert comps["n_kept"] != lss["n_kept"]


# --------------------------------------------------------------------------------------------
# Verification cost: each document against the kept documents of its buckets (issue 12)


def write_jsonl(path: Path, texts: list[str], files: int = 2) -> Path:
    path.mkdir()
    for f in range(files):
        with open(path / f"p{f}.jsonl", "w") as fh:
            for n, text in enumerate(texts[f::files]):
                fh.write(json.dumps({"id": f"p{f}-{n}", "text": text}) + "\n")
    return path


def dask_and_local(inputs: Path, scheduler: str, out: Path, **options: Any):
    """The Dask engine's stats, checked against the local engine's answer: (stats, local)."""
    records, res = local_result([inputs], **options)
    stats = dedup_dask([inputs], out, scheduler=scheduler, partition_bytes=40_000, **options)
    assert stats["parameters"]["partitions"] >= 4
    check_against_local(out, records, res)
    return stats, res


@pytest.mark.parametrize("mode", ["greedy", "components"])
def test_big_bucket_costs_linear_verification(cluster: str, tmp_path: Path, mode: str) -> None:
    # 400 distinct near-duplicates of one text (1 to 4 character edits): buckets of hundreds of
    # distinct texts, where verifying every pair of a bucket would cost ~80,000 similarities
    rng = random.Random(41)
    base = paragraph(rng, 70)
    m = 400
    near: set[str] = set()
    while len(near) < m:
        near.add(edit(rng, base, rng.randint(1, 4)))
    texts = sorted(near) + [paragraph(rng, 70) for _ in range(100)]
    rng.shuffle(texts)
    inputs = write_jsonl(tmp_path / "in", texts)
    stats, res = dask_and_local(inputs, cluster, tmp_path / "out", cluster=mode)
    dk = stats["dask"]
    assert dk["largest_bucket"] >= 300 and dk["largest_copy_class"] == 0
    # one component holds the near-duplicates, decided in one task; a star per bucket
    assert dk["largest_component"] >= m and dk["largest_decide_task"]["documents"] >= m
    assert dk["candidate_edges"] <= 21 * (m + 100)
    assert res.stats["n_removed"] >= m - 20
    if mode == "greedy":
        # each document against the kept documents of its buckets: linear, as the local engine
        assert stats["n_examined"] == res.stats["n_candidates"] <= 2 * m
        assert stats["examined_per_doc"] == res.stats["examined_per_doc"]
    assert stats["n_examined"] < m * (m - 1) // 8


def test_chain_of_windows_same_as_local(cluster: str, tmp_path: Path) -> None:
    # overlapping 150-word windows of one text, 4 words apart: each within the threshold of its
    # neighbours, far below it to most others; one candidate component, which components chain
    rng = random.Random(43)
    words = paragraph(rng, 1400).split()
    texts = [" ".join(words[s : s + 150]) for s in range(0, len(words) - 150, 4)]
    inputs = write_jsonl(tmp_path / "in", texts)
    greedy, res = dask_and_local(inputs, cluster, tmp_path / "greedy")
    assert greedy["n_kept"] > 20 and greedy["n_removed"] > 100
    removed = read_jsonl(tmp_path / "greedy" / "removed.jsonl")
    assert min(r["jaccard"] for r in removed) >= 0.8
    assert greedy["n_examined"] == res.stats["n_candidates"]
    comps, res_c = dask_and_local(inputs, cluster, tmp_path / "comps", cluster="components")
    assert comps["n_kept"] < greedy["n_kept"]
    removed = read_jsonl(tmp_path / "comps" / "removed.jsonl")
    assert min(r["jaccard"] for r in removed) < 0.5  # chained far below the threshold
    assert comps["dask"]["largest_component"] >= len(texts) - 5
    # and the local engine's warnings about the chain
    for key in ("largest_component", "n_below_threshold", "below_threshold"):
        assert comps["dedup_stats"][key] == res_c.stats[key], key
    assert comps["warnings"] == res_c.stats["warnings"] and comps["warnings"]


def test_thousand_copies_same_as_local(cluster: str, tmp_path: Path) -> None:
    # 1,200 copies of one text, 30 edited ones (some copied), 100 others: the copies are settled
    # by their text, one similarity each, as in the local engine
    rng = random.Random(47)
    t = paragraph(rng, 60)
    texts = [t] * 1200
    for n in range(30):
        texts += [edit(rng, t, 1 + n % 8)] * (1 if n % 3 else 4)
    texts += [paragraph(rng, 60) for _ in range(100)]
    rng.shuffle(texts)
    inputs = write_jsonl(tmp_path / "in", texts, files=3)
    stats, res = dask_and_local(inputs, cluster, tmp_path / "out")
    dk = stats["dask"]
    assert dk["largest_copy_class"] == 1200 and dk["candidate_edges"] < 2_000
    assert stats["n_removed"] >= 1200 + 60 - 10
    assert stats["n_examined"] == res.stats["n_candidates"] < 2 * len(texts)
    comps, _ = dask_and_local(inputs, cluster, tmp_path / "comps", cluster="components")
    assert comps["n_removed"] == stats["n_removed"]
