"""Shared fixtures. Data under ../shared/data is optional: tests that need it skip without it."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

# The teaching notebook's 10-document Japanese corpus, in this order.
SEED_DOCS = [
    "事前学習では大量のテキストから次トークン予測を学ぶ。",
    "言語モデルは文脈に応じた分布を出力する。",
    "トークン化の設計は学習効率と性能に強く影響する。",
    "前処理では重複除去や品質フィルタリングが重要になる。",
    "評価ではperplexityや下流タスク性能を併用する。",
    "モデル規模とデータ規模のバランスが学習の成否を左右する。",
    "機械論的解釈可能性は内部回路の理解に役立つ。",
    "SFTは事前学習済みモデルを指示追従に調整する工程である。",
    "推論時は温度やサンプリング戦略が出力を変える。",
    "長文文脈では注意機構の設計が効いてくる。",
]

DATA_DIR = Path(__file__).resolve().parent.parent.parent / "shared" / "data"


@pytest.fixture
def seed_split() -> tuple[list[str], list[str]]:
    """The notebook's split: random.seed(0); random.shuffle(docs); 8 train, 2 validation."""
    docs = list(SEED_DOCS)
    random.seed(0)
    random.shuffle(docs)
    return docs[:8], docs[8:]


def shared_file(name: str) -> Path:
    path = DATA_DIR / name
    if not path.exists():
        pytest.skip(f"{path} is absent (the shared corpora are not part of the repository)")
    return path


@pytest.fixture
def shakespeare() -> str:
    return shared_file("tinyshakespeare.txt").read_text(encoding="utf-8")
