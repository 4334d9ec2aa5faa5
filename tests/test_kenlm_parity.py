"""Modified Kneser-Ney against KenLM: the same ARPA file as ``lmplz -o N`` on the same
sentences, and the same sentence scores as ``kenlm.Model.score``. ``lmplz`` is built by
``benches/build_lmplz.sh`` (found through $LMPLZ, ./.lmplz/bin/lmplz or PATH); without it, or
without the ``kenlm`` module, these tests skip."""

import math
import os
import random
import shutil
import subprocess
from pathlib import Path

import pytest
import textsieve as ts

from .conftest import DATA_DIR

ROOT = Path(__file__).resolve().parent.parent


def lmplz() -> str:
    for candidate in (os.environ.get("LMPLZ"), str(ROOT / ".lmplz" / "bin" / "lmplz")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which("lmplz")
    if found is None:
        pytest.skip("lmplz is absent (build it with benches/build_lmplz.sh, or set $LMPLZ)")
    return found


def sentences() -> list[list[str]]:
    """Lines of Tiny Shakespeare (words), when present; else seeded random sentences."""
    path = DATA_DIR / "tinyshakespeare.txt"
    if path.exists():
        lines = path.read_text(encoding="utf-8").splitlines()[:3000]
        return [line.split() for line in lines if line.strip()]
    rng = random.Random(7)
    words = "the a cat dog sat on mat log and saw was red big small ran to".split()
    return [
        [rng.choice(words[: rng.randint(3, len(words))]) for _ in range(rng.randint(1, 12))]
        for _ in range(2000)
    ]


def read_arpa(path: Path) -> dict[tuple[str, ...], tuple[float, float]]:
    out: dict[tuple[str, ...], tuple[float, float]] = {}
    k = 0
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("ngram ") or line in ("\\data\\", "\\end\\"):
            continue
        if line.startswith("\\"):
            k = int(line[1 : line.index("-")])
            continue
        f = line.split()
        out[tuple(f[1 : 1 + k])] = (float(f[0]), float(f[1 + k]) if len(f) > 1 + k else 0.0)
    return out


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    sents = sentences()
    path = tmp_path_factory.mktemp("kenlm") / "corpus.txt"
    path.write_text("".join(" ".join(s) + "\n" for s in sents), encoding="utf-8")
    return path, sents


@pytest.mark.parametrize("order", [2, 3, 5])
def test_modified_kneser_ney_writes_lmplzs_arpa_and_scores_as_kenlm(corpus, order, tmp_path):
    kenlm = pytest.importorskip("kenlm", reason="the kenlm module is not installed")
    binary = lmplz()
    path, sents = corpus
    theirs = tmp_path / "lmplz.arpa"
    with open(path, "rb") as src, open(theirs, "wb") as dst:
        # --discount_fallback: small corpora can lack counts of counts (textsieve falls back the
        # same way, and says so in discount_fallback)
        cmd = [binary, "-o", str(order), "-S", "10%", "-T", str(tmp_path), "--discount_fallback"]
        subprocess.run(cmd, stdin=src, stdout=dst, stderr=subprocess.DEVNULL, check=True)
    lm = ts.NgramLM(order).fit(sents)
    mine = tmp_path / "textsieve.arpa"
    lm.to_arpa(mine)
    a, b = read_arpa(theirs), read_arpa(mine)
    assert set(a) == set(b)
    for gram, (p, bo) in a.items():
        assert abs(b[gram][0] - p) < 1e-4 and abs(b[gram][1] - bo) < 1e-4, gram
    # KenLM scores each sentence from either file as textsieve does
    from_lmplz = ts.NgramLM.from_arpa(theirs)
    for model_path in (theirs, mine):
        model = kenlm.Model(str(model_path))
        for s in sents[:500] + [["an", "unseen", "word"], []]:
            want = model.score(" ".join(s), bos=True, eos=True)
            got = lm.token_log_probs(s).sum() / math.log(10)
            assert math.isclose(got, want, rel_tol=1e-4, abs_tol=1e-5), s
            read = from_lmplz.token_log_probs(s).sum() / math.log(10)
            assert math.isclose(read, want, rel_tol=1e-4, abs_tol=1e-5), s


def test_every_backoff_model_round_trips_through_arpa_into_kenlm(corpus, tmp_path):
    kenlm = pytest.importorskip("kenlm", reason="the kenlm module is not installed")
    _, sents = corpus
    sents = sents[:400]
    for smoothing, kw in [
        ("witten-bell", {}),
        ("absolute-discount", {"discount": 0.5}),
        ("kneser-ney", {"discount": 0.75}),
    ]:
        lm = ts.NgramLM(3, smoothing, **kw).fit(sents)
        lm.to_arpa(tmp_path / "m.arpa")
        model = kenlm.Model(str(tmp_path / "m.arpa"))
        back = ts.NgramLM.from_arpa(tmp_path / "m.arpa")
        for s in sents[:100]:
            want = lm.token_log_probs(s)
            assert math.isclose(model.score(" ".join(s)), want.sum() / math.log(10), rel_tol=1e-4)
            assert math.isclose(back.token_log_probs(s).sum(), want.sum(), rel_tol=1e-9)
